"""A small ROS 2 graph of separate processes: the node, a bag player and a recorder, in an isolated
DDS domain. Used by the demo and by the tests, so both run the node exactly as a robot would."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def isolated_env(domain: int | None = None) -> dict[str, str]:
    """Environment for a graph of its own: a DDS domain of its own (random unless given), discovery
    on this machine only, and this copy of the package first on the path."""
    return {
        **os.environ,
        "ROS_DOMAIN_ID": str(random.randint(1, 200) if domain is None else domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "PYTHONUNBUFFERED": "1",
        "RCUTILS_COLORIZED_OUTPUT": "0",
    }


class Process:
    """A child process whose output goes to a log file (no pipe to fill up)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._file = log.open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._file, stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._file.close()

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        """Until a line containing ``text`` is in the output; RuntimeError if the process ends first."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no {text!r} from {' '.join(self.proc.args[:3])}; its output:\n{self.output}")
            time.sleep(0.05)  # polling a log file: there is nothing to block on

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


def depth_node(env, log: Path, *ros_args: str) -> Process:
    """The installed ``depth_node`` executable as its own process."""
    return Process([str(BIN / "depth_node"), "--ros-args", *ros_args], env, log)


def python_module(env, log: Path, module: str, *args: str) -> Process:
    return Process([sys.executable, "-m", module, *args], env, log)
