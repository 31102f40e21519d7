"""Create or refresh this checkout's environment: ``python tools/checkout_env.py DEPS ENV``.

DEPS is the dependencies' virtual environment, shared by every checkout on the machine (keyed by
requirements.lock, minutes to build: PyTorch is large). ENV is this checkout's own, made in a moment:
it holds only this checkout (installed editable by ``make develop``) and its console scripts, and sees
DEPS's packages through one ``.pth`` file. So two checkouts never run each other's code, and deleting
one breaks nothing in the other.

The ROS 2 wheels find their shared libraries from ``sys.prefix`` (their bootstrapper re-executes the
interpreter with LD_LIBRARY_PATH set to ``sys.prefix/lib`` and ``site-packages/ros_*.libs``); under
ENV that prefix is ENV, so the ``.pth`` puts DEPS's library folders on the path before the
bootstrapper runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

PROJECT = "depth_estimation_ros"
OVERLAY = f"_{PROJECT}_deps.pth"
MARK = f".made-by-{PROJECT}"  # an ENV without it is someone else's: never touched


def site_packages(environment: Path) -> Path:
    (found,) = environment.glob("lib/python3*/site-packages")
    return found


def overlay_line(deps: Path) -> str:
    """One ``.pth`` line (only lines starting with ``import`` run) that adds DEPS as a site folder."""
    site = site_packages(deps)
    libraries = [str(deps / "lib"), *map(str, sorted(site.glob("ros_*.libs")))]
    return (
        f"import os, site; os.environ['LD_LIBRARY_PATH'] = os.pathsep.join([*{libraries!r}, "
        f"*filter(None, os.environ.get('LD_LIBRARY_PATH', '').split(os.pathsep))]); site.addsitedir({str(site)!r})\n"
    )


def forget_shared_install(deps: Path) -> None:
    """Earlier Makefiles installed a checkout into DEPS itself: take it out, or every checkout runs it."""
    if any(site_packages(deps).glob(f"__editable__*{PROJECT}*")):
        subprocess.run([deps / "bin" / "python", "-m", "pip", "uninstall", "-y", "-q", PROJECT], check=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: checkout_env.py DEPS ENV", file=sys.stderr)
        return 2
    deps, environment = (Path(a).absolute() for a in argv)
    forget_shared_install(deps)
    if environment.exists() and not (environment / MARK).exists():
        print(
            f"{environment} exists and was not made by this project: move it, or name another with VENV=",
            file=sys.stderr,
        )
        return 1
    if not (environment / "bin" / "python").exists():  # new, or interrupted before the interpreter
        shutil.rmtree(environment, ignore_errors=True)  # ours (marked) or absent
        environment.mkdir(parents=True)
        (environment / MARK).touch()  # first: an interrupted creation is still known as ours
        venv.EnvBuilder(with_pip=False, symlinks=True).create(environment)
    (site_packages(environment) / OVERLAY).write_text(overlay_line(deps))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
