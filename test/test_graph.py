"""Process graphs (depth_estimation_ros.ros.graph) with real child processes, no ROS: a child that dies
is noticed by every wait at once, with its error line, and no child outlives its graph, whether it
ends normally, on an error, on Ctrl-C or SIGTERM, or because the parent was killed."""

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from depth_estimation_ros.core.errors import Terminated
from depth_estimation_ros.ros.graph import (
    DOMAINS,
    LOCKS,
    PACKAGE_ROOT,
    ChildExited,
    Graph,
    alive,
    isolated_env,
    last_error_line,
)

ROOT = Path(__file__).parents[1]
SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]
# Ignores the polite signals: only SIGKILL ends it.
STUBBORN = [sys.executable, "-c", "import signal, time\nfor s in (signal.SIGINT, signal.SIGTERM): "
            "signal.signal(s, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(120)"]  # fmt: skip
# Starts a grandchild (in the child's process group) and prints its pid.
SPAWNER = [sys.executable, "-c", "import subprocess, sys, time\n"
           "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
           "print('grandchild', p.pid, flush=True)\ntime.sleep(120)"]  # fmt: skip


def failing(after_s: float, *lines: str, status: int = 1) -> list[str]:
    """A child that prints ``lines`` after ``after_s`` s and exits with ``status``."""
    text = "\n".join(lines)
    return [sys.executable, "-c", f"import sys, time\ntime.sleep({after_s})\nprint({text!r})\nsys.exit({status})"]


def gone(pids, timeout: float = 15.0) -> bool:
    """Whether every pid is gone (or a zombie) within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


NODE_FAILS = failing(0.5, "[INFO] [17.1] [x]: loading",
                     "[ERROR] [17.2] [x]: configure failed: model file not found: /x.onnx",
                     "error: depth_node could not be configured (see the log above)")  # fmt: skip


def in_graph(tmp_path, body, **options) -> None:
    """``body(graph)`` inside a graph of its own, so a test can expect what leaving the graph raises."""
    with Graph(tmp_path, **options) as graph:
        body(graph)


def test_a_child_that_dies_fails_a_wait_on_another_child_at_once_naming_it_and_its_error_line(tmp_path):
    started = {}

    def wait_while_the_node_dies(graph):
        started["waiting"], started["node"] = graph.start("recorder", SLEEPER), graph.start("depth_node", NODE_FAILS)
        graph.wait_for_line(started["waiting"], "a line that never comes", timeout=120)

    start = time.monotonic()
    with pytest.raises(ChildExited) as raised:
        in_graph(tmp_path, wait_while_the_node_dies)
    assert time.monotonic() - start < 20  # not the wait's 120 s
    waiting, node = started["waiting"], started["node"]
    assert str(raised.value) == ("depth_node exited with status 1 before the graph finished: "
                                 "[ERROR] [x]: configure failed: model file not found: /x.onnx")  # fmt: skip
    assert "\n" not in str(raised.value)
    assert gone([waiting.pid, node.pid], timeout=0.0)  # the graph waited for them before returning


def test_leaving_the_graph_stops_children_that_ignore_sigint_and_sigterm_and_what_children_started(tmp_path):
    with Graph(tmp_path, grace=0.5) as graph:
        stubborn, spawner = graph.start("stubborn", STUBBORN), graph.start("spawner", SPAWNER)
        graph.wait_for_line(stubborn, "up")
        graph.wait_for_line(spawner, "grandchild")
        grandchild = int(spawner.output.split()[-1])
        assert alive(grandchild)
    assert stubborn.poll() == -signal.SIGKILL
    assert gone([stubborn.pid, spawner.pid], timeout=0.0)
    assert gone([grandchild])


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, Terminated], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_inside_the_graph_stops_every_child(tmp_path, interrupt):
    children = []

    def interrupted(graph):
        children.extend(graph.start(f"child{i}", SLEEPER) for i in range(3))
        graph.wait_for_line(children[-1], "up")
        raise interrupt()

    with pytest.raises(interrupt):
        in_graph(tmp_path, interrupted, grace=2)
    assert gone([c.pid for c in children], timeout=0.0)


def test_a_child_that_ends_itself_with_status_0_is_no_failure_but_a_child_that_must_run_is(tmp_path):
    with Graph(tmp_path) as graph:
        graph.start("player", failing(0.0, "played 3 messages", status=0), ends_itself=True)
        node = graph.start("depth_node", SLEEPER)
        graph.wait_for_line(node, "up")
        graph.sleep(1.0)  # the player ended meanwhile: no error
        assert graph.stop(node, signal.SIGTERM) == -signal.SIGTERM

    def node_ends(graph):
        graph.start("node", failing(0.0, "done", status=0))
        graph.sleep(30)

    with pytest.raises(ChildExited, match=r"^node exited with status 0 before the graph finished: done$"):
        in_graph(tmp_path, node_ends)


def test_waiting_for_a_child_that_fails_names_its_status_and_line(tmp_path):
    def player_fails(graph):
        graph.wait(graph.start("player", failing(0.0, "player: error: /b is not a readable rosbag2", status=3)), 30)

    with pytest.raises(ChildExited, match=r"^player exited with status 3: player: error: /b is not a readable"):
        in_graph(tmp_path, player_fails)


def test_a_line_that_never_comes_times_out_naming_the_text_and_the_childs_last_line(tmp_path):
    with pytest.raises(TimeoutError, match=r"^gave up after 1 s waiting for 'ready' from recorder; last line of "
                                           r"recorder: up$"), Graph(tmp_path) as graph:  # fmt: skip
        graph.wait_for_line(graph.start("recorder", SLEEPER), "ready", timeout=1.0)


def test_a_program_that_cannot_be_started_is_a_child_that_failed(tmp_path):
    def start_the_unstartable(graph):
        graph.start("depth_node", ["/no/such/depth_node"])
        graph.sleep(30)

    with pytest.raises(ChildExited, match=r"^depth_node exited with status 1 .*cannot run /no/such/depth_node"):
        in_graph(tmp_path, start_the_unstartable)


def test_the_reported_line_is_the_logged_error_not_a_later_summary():
    assert last_error_line("a\n[ERROR] [1.5] [n]: bad model\nerror: see the log above\n") == "[ERROR] [n]: bad model"
    traceback = "Traceback (most recent call last):\n  File 'x', line 1\nValueError: no such bag\n"
    assert last_error_line(traceback) == "ValueError: no such bag"
    assert last_error_line("starting\nplayed 3 messages\n\n") == "played 3 messages"
    assert last_error_line("") == "(no output)"
    assert len(last_error_line("error: " + "x" * 5000)) <= 400


PARENT = """
import sys
from depth_estimation_ros.core.errors import run_guarded
from depth_estimation_ros.ros.graph import Graph

def command(argv):
    with Graph(argv[0], grace=2) as graph:
        children = [graph.start(f"child{i}", [sys.executable, "-c", "import time; time.sleep(120)"]) for i in range(2)]
        print(*(c.pid for c in children), flush=True)
        graph.sleep(120)
    return 0

sys.exit(run_guarded("parent", command))
"""


def start_parent(tmp_path) -> tuple[subprocess.Popen, list[int]]:
    """A parent process running a graph of two sleeping children; it and their pids."""
    out = tmp_path / "parent.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with out.open("w") as file:
        parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=file,
                                  stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    deadline = time.monotonic() + 60
    while not out.read_text().endswith("\n"):
        assert parent.poll() is None, parent.stderr.read() if parent.stderr else ""
        assert time.monotonic() < deadline, "the parent printed no pids within 60 s"
        time.sleep(0.05)
    return parent, [int(p) for p in out.read_text().split()]


def test_sigterm_to_the_parent_stops_its_graph_and_exits_143(tmp_path):
    parent, pids = start_parent(tmp_path)
    assert all(alive(p) for p in pids)
    parent.send_signal(signal.SIGTERM)
    _, err = parent.communicate(timeout=60)
    assert parent.returncode == 143, err
    assert err.strip() == "parent: terminated; output staged so far was removed"
    assert gone(pids, timeout=0.0)


def test_a_parent_killed_with_sigkill_leaves_no_child(tmp_path):
    parent, pids = start_parent(tmp_path)
    parent.kill()
    parent.wait(30)
    assert gone(pids), "children outlived a killed parent"


def test_concurrent_graphs_hold_different_domains_in_the_safe_range_until_released():
    first, second = isolated_env(), isolated_env()
    assert first.domain != second.domain
    assert {first.domain, second.domain} <= set(DOMAINS)
    assert DOMAINS[0] >= 1  # 0 is everyone's default
    assert DOMAINS[-1] <= 101  # above 101 Fast DDS's ports are in the ephemeral range
    assert first["ROS_DOMAIN_ID"] == str(first.domain)

    def lockable(domain: int) -> bool:  # another open file: conflicts with a lock held in this process too
        fd = os.open(LOCKS / f"{domain}.lock", os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    assert not lockable(first.domain)
    first.release()
    assert lockable(first.domain)
    domain = second.domain
    del second  # a mapping nobody references holds nothing
    assert lockable(domain)
    assert isolated_env(7).domain == 7  # a given domain is the caller's business


def test_children_import_the_package_from_the_checkout_or_install_the_graph_belongs_to():
    """The child processes' PYTHONPATH holds the folder that contains the package (not the package
    itself, where ``import depth_estimation_ros`` would find nothing)."""
    assert (PACKAGE_ROOT / "depth_estimation_ros" / "__init__.py").is_file()
    assert str(PACKAGE_ROOT) in isolated_env()["PYTHONPATH"].split(os.pathsep)
