"""A small ROS 2 graph of separate processes: the node, a bag player and a recorder, in an isolated
DDS domain. Used by the demo, the tests and ``ros_bench``, so all run the node exactly as a robot would.

:class:`Graph` owns every child of one graph. Each of its waits (for a line, for a child's end, for
a while) watches all children, so a child that dies is reported at once, with its exit status and
its last error line, instead of being noticed when some other wait times out. Leaving the graph
(normally, on an error, on Ctrl-C or SIGTERM) stops every child still running: SIGINT, then SIGTERM,
then SIGKILL, to the child's whole process group. A child also gets SIGTERM from the kernel if the
parent dies without cleaning up (``PR_SET_PDEATHSIG``), so a killed parent leaves no node running.

Each graph holds an exclusive lock on its DDS domain while it runs, so concurrent graphs on one
machine (parallel tests, a demo beside a benchmark) never share a domain.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# 0 is every ROS user's default domain. Above 101 Fast DDS's ports (7400 + 250 × domain + ...) reach
# Linux's ephemeral range (32768-60999), where any program's outgoing sockets may already hold them.
DOMAINS = range(1, 102)
LOCKS = Path(tempfile.gettempdir()) / "depth_estimation_ros-dds-domains"
POLL_S = 0.05  # log files and exit statuses have nothing to block on
LINE_LIMIT = 400


class ChildExited(RuntimeError):
    """A child of a graph ended when it should not have, or failed; the message is one line."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output  # the child's whole log, for a test's failure report


# --------------------------------------------------------------------------- DDS domains


class Environment(dict):
    """``os.environ`` for one graph; holds the lock of its DDS domain as long as it is referenced
    (or until :meth:`release`). Copies of it (``{**env}``, what Popen keeps) do not."""

    def __init__(self, base, domain: int | None):
        super().__init__(base)
        self.domain, lock = (domain, None) if domain is not None else lease_domain()
        # Closing the descriptor drops the lock: on release, or when the mapping is collected.
        self._release = weakref.finalize(self, os.close, lock) if lock is not None else lambda: None

    def release(self) -> None:
        self._release()


def lease_domain() -> tuple[int, int | None]:
    """A DDS domain no other graph on this machine holds, and the locked descriptor that holds it."""
    candidates = list(DOMAINS)
    random.shuffle(candidates)  # graphs that do not lock (another tool's) are unlikely to meet ours
    opened = False
    with contextlib.suppress(OSError):
        LOCKS.mkdir(mode=0o777, exist_ok=True)
        if LOCKS.stat().st_uid == os.getuid():
            LOCKS.chmod(0o1777)  # every user's graphs share the machine's domains, so their locks too
    for domain in candidates:
        try:
            fd = os.open(LOCKS / f"{domain}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:
            continue
        opened = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # another graph has it
            continue
        return domain, fd
    if not opened:  # no lock can be made here (read-only /tmp): a random domain, as before locks
        return candidates[0], None
    raise RuntimeError(f"every DDS domain {DOMAINS[0]}..{DOMAINS[-1]} is held by another graph on this machine "
                       f"(locks in {LOCKS}); wait for one to finish")  # fmt: skip


def isolated_env(domain: int | None = None) -> Environment:
    """Environment for a graph of its own: a DDS domain of its own (a free one, locked while the
    returned mapping lives, unless given), discovery on this machine only, and this copy of the
    package first on the path."""
    env = Environment(os.environ, domain)
    env.update({
        "ROS_DOMAIN_ID": str(env.domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "PYTHONUNBUFFERED": "1",
        "RCUTILS_COLORIZED_OUTPUT": "0",
    })  # fmt: skip
    return env


# --------------------------------------------------------------------------- one child

# Run before the real program: ask the kernel for SIGTERM when the parent dies (PR_SET_PDEATHSIG = 1;
# it survives exec), give up if the parent is already gone, then become the program. A launcher
# rather than preexec_fn, which may deadlock in a parent with threads (torch has several).
_LAUNCHER = (
    "import os, signal, sys\n"
    "try:\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "except (ImportError, OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "try:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as exc:\n"
    "    sys.exit(f'error: cannot run {sys.argv[2]}: {exc.strerror}')\n"
)
_SEVERITY = re.compile(r"^\[(ERROR|FATAL)\]")
_STAMP = re.compile(r"^(\[[A-Z]+\]) \[[\d.]+\] ")  # rcutils' time stamp: noise in a one-line message


def last_error_line(output: str) -> str:
    """The line of a log that says what went wrong: the last logged at ERROR or FATAL (rcutils), else
    the last with ``error:`` (``prog: error: ...``, a Python exception), else the last non-empty one."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for test in (_SEVERITY.search, lambda line: "error:" in line.lower() or "fatal" in line.lower()):
        picked = [line for line in lines if test(line)]
        if picked:
            break
    else:
        picked = lines or ["(no output)"]
    line = _STAMP.sub(r"\1 ", picked[-1])
    return line if len(line) <= LINE_LIMIT else line[: LINE_LIMIT - 3] + "..."


def exit_status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"status {code}"


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a parent that never reaps keeps those)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class Process:
    """A child process whose output goes to a log file (no pipe to fill up), in a process group of
    its own (a terminal's Ctrl-C reaches the parent, which stops the children in order).

    ``ends_itself``: the child finishes on its own (a player, a recorder), so an exit with status 0
    is never a failure; any other child must run until it is stopped or waited for."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, name: str | None = None,
                 ends_itself: bool = False):  # fmt: skip
        self.args, self.log, self.ends_itself = [str(a) for a in args], Path(log), ends_itself
        self.name = name or Path(self.args[0]).name
        self.expected = False  # set once the caller waits for the end or stops it
        self._file = self.log.open("wb")
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid())]
        self.proc = subprocess.Popen([*launcher, *self.args], env=env, stdin=subprocess.DEVNULL, stdout=self._file,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.pid = self.proc.pid  # the launcher becomes the program: one pid

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def poll(self) -> int | None:
        return self.proc.poll()

    def failed(self) -> bool:
        """Whether it ended in a way that fails the graph."""
        code = self.proc.poll()
        if code is None:
            return False
        return code != 0 or not (self.expected or self.ends_itself)

    def describe(self, when: str = "") -> str:
        code = self.proc.poll()
        return f"{self.name} exited with {exit_status(code)}{when}: {last_error_line(self.output)}"

    def send(self, sig: int) -> None:
        """``sig`` to its process group (so to anything it started), while it is not reaped."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0, grace: float = 5.0) -> int:
        """Stop it with ``sig``; SIGTERM after ``timeout`` s, SIGKILL ``grace`` s later. Its status."""
        self.expected = True
        for signum, wait in ((sig, timeout), (signal.SIGTERM, grace), (signal.SIGKILL, None)):
            self.send(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
                break
        self._file.close()
        return self.proc.returncode

    def wait(self, timeout: float = 60.0) -> int:
        """Its exit status; stopped (and the status of that) if it has not ended within ``timeout``."""
        self.expected = True
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        return self.stop(signal.SIGTERM, timeout=5.0)

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        """Until a line containing ``text`` is in the output; ChildExited if it ends first."""
        _poll([self], lambda: text in self.output, timeout, f"{text!r} from {self.name}", self)


def _check(children: list[Process]) -> None:
    for child in children:
        if child.failed():
            raise ChildExited(child.describe(" before the graph finished"), child.output)


def _poll(children: list[Process], done: Callable[[], bool], timeout: float, what: str,
          source: Process | None = None) -> bool:  # fmt: skip
    """Poll until ``done()``; ChildExited as soon as one of ``children`` fails (or ``source`` ends
    before ``done``), TimeoutError after ``timeout`` s (``what`` says what was waited for)."""
    deadline = time.monotonic() + timeout
    while True:
        if done():
            return True
        _check(children)
        if source is not None and source.poll() is not None and not done():
            raise ChildExited(source.describe(f" before printing {what}"), source.output)
        if time.monotonic() > deadline:
            culprit = f"; last line of {source.name}: {last_error_line(source.output)}" if source else ""
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}{culprit}")
        time.sleep(POLL_S)


# --------------------------------------------------------------------------- the graph


class Graph:
    """Every process of one graph, in a DDS domain of its own (a context manager).

    ``folder``: where the children's logs go (a temporary folder, removed at the end, if None).
    ``grace``: seconds a child has to end after SIGINT at the end of the graph, and again after SIGTERM.

    Children are started in the thread that owns the graph: the kernel's parent-death signal
    follows the starting thread, not the process."""

    def __init__(self, folder: str | os.PathLike | None = None, domain: int | None = None, grace: float = 10.0):
        self._scratch = None if folder is not None else tempfile.mkdtemp(prefix="depth-graph-")
        self.folder = Path(folder if folder is not None else self._scratch)
        self.grace = grace
        self.env = isolated_env(domain)
        self.children: list[Process] = []

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # starting

    def start(self, name: str, args: list[str], log: str | None = None, ends_itself: bool = False) -> Process:
        child = Process(args, self.env, self.folder / (log or f"{name}.log"), name, ends_itself)
        self.children.append(child)
        return child

    def depth_node(self, *ros_args: str, log: str = "node.log") -> Process:
        """The installed ``depth_node`` executable; it must run until stopped."""
        return self.start("depth_node", [str(BIN / "depth_node"), "--ros-args", *ros_args], log)

    def module(self, module: str, *args: str, name: str | None = None, ends_itself: bool = True) -> Process:
        """``python -m module args``; by default a child that finishes on its own."""
        name = name or module.rsplit(".", 1)[-1]
        return self.start(name, [sys.executable, "-m", module, *args], ends_itself=ends_itself)

    # waiting: every wait watches every child

    def check(self) -> None:
        """ChildExited if a child has failed (see :class:`Process`)."""
        _check(self.children)

    def wait_for_line(self, child: Process, text: str, timeout: float = 60.0) -> None:
        _poll(self.children, lambda: text in child.output, timeout, f"{text!r} from {child.name}", child)

    def wait(self, child: Process, timeout: float = 60.0) -> int:
        """Until ``child`` ends (0); ChildExited if it fails or another child does first."""
        child.expected = True
        _poll(self.children, lambda: child.poll() is not None, timeout, f"{child.name} to finish")
        if child.failed():
            raise ChildExited(child.describe(), child.output)
        return 0

    def sleep(self, seconds: float) -> None:
        """Let the graph run ``seconds``, failing at once if a child does."""
        end = time.monotonic() + seconds
        _poll(self.children, lambda: time.monotonic() >= end, seconds + 1.0, "nothing")

    def stop(self, child: Process, sig: int = signal.SIGINT, timeout: float | None = None) -> int:
        """Stop one child (its exit status); the others keep being watched."""
        return child.stop(sig, self.grace if timeout is None else timeout, self.grace)

    # the end

    def close(self) -> None:
        """Stop every child still running, all at once: SIGINT, then SIGTERM and SIGKILL to those
        that outlast ``grace``. Interrupted (a second Ctrl-C), it kills the rest at once."""
        try:
            running = [c for c in self.children if c.poll() is None]
            for sig in (signal.SIGINT, signal.SIGTERM):
                for child in running:
                    child.send(sig)
                deadline = time.monotonic() + self.grace
                while running and time.monotonic() < deadline:
                    time.sleep(POLL_S)
                    running = [c for c in running if c.poll() is None]
        finally:
            for child in self.children:
                child.stop(signal.SIGKILL, timeout=5.0)  # no-op for those that ended; closes the log
            self.env.release()
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)


# --------------------------------------------------------------------------- one child, no graph


def depth_node(env, log: Path, *ros_args: str) -> Process:
    """The installed ``depth_node`` executable as its own process."""
    return Process([str(BIN / "depth_node"), "--ros-args", *ros_args], env, log, "depth_node")


def python_module(env, log: Path, module: str, *args: str) -> Process:
    return Process([sys.executable, "-m", module, *args], env, log, module.rsplit(".", 1)[-1])
