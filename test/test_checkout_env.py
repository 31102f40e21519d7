"""Each checkout has its own environment (``make develop``, tools/checkout_env.py): a second clone on
the same machine runs its own code, and deleting it leaves this one working."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
MARK = ROOT / ".venv" / ".made-by-depth_estimation_ros"
DEPS = Path(torch.__file__).parents[4]  # the dependencies' environment: <env>/lib/python3.x/site-packages/torch

pytestmark = pytest.mark.skipif(
    Path(sys.prefix) != ROOT / ".venv" or not MARK.exists(), reason="runs under the checkout's own environment"
)


def tracked_copy(destination: Path) -> Path:
    """The checkout's files as they are now (tracked, and new ones not ignored): a second clone."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in filter(None, names.stdout.split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def where_the_package_comes_from(python: Path) -> Path:
    done = subprocess.run(
        [python, "-c", "import depth_estimation_ros as p; print(p.__file__)"],
        capture_output=True, text=True, cwd="/", check=True,
    )  # fmt: skip
    return Path(done.stdout.strip()).parent.parent


def make_develop(checkout: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-C", checkout, "develop", f"DEPS={DEPS}", f"PYTHON={sys.executable}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_second_checkout_runs_its_own_code_and_deleting_it_breaks_nothing_here(tmp_path):
    other = tracked_copy(tmp_path / "clone")
    done = make_develop(other)
    assert done.returncode == 0, done.stderr
    assert where_the_package_comes_from(other / ".venv" / "bin" / "python") == other
    script = subprocess.run([other / ".venv" / "bin" / "depth-estimation", "--version"], capture_output=True, text=True)
    assert script.returncode == 0, script.stderr
    assert where_the_package_comes_from(ROOT / ".venv" / "bin" / "python") == ROOT

    shutil.rmtree(other)
    here = subprocess.run([ROOT / ".venv" / "bin" / "depth-estimation", "--version"], capture_output=True, text=True)
    assert here.returncode == 0, here.stderr
    assert where_the_package_comes_from(ROOT / ".venv" / "bin" / "python") == ROOT


def test_an_environment_folder_the_project_did_not_make_is_left_alone(tmp_path):
    other = tracked_copy(tmp_path / "clone")
    (other / ".venv").mkdir()
    (other / ".venv" / "mine.txt").write_text("a user's own environment")
    done = make_develop(other)
    assert done.returncode != 0
    assert "was not made by this project" in done.stderr
    assert "VENV=" in done.stderr
    assert (other / ".venv" / "mine.txt").read_text() == "a user's own environment"
    assert sorted(p.name for p in (other / ".venv").iterdir()) == ["mine.txt"]
