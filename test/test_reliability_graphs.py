"""Bad-input cases for process graphs (the demo's ROS 2 graph): a node that cannot start fails the
demo at once with the node's own error line, and no child process or staging folder outlives it."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability import ROOT, case, cases_of, hashes, run_case

HANG_S = 60  # a hang check, not a benchmark: before, these waited 240 s for the recorder


def needs_ros() -> None:
    pytest.importorskip("rclpy", reason="the demo's graph needs rclpy")


def processes_naming(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (a case's scratch path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def corrupt_model(ctx) -> Path:
    model = ctx.tmp / "models" / "corrupt.onnx"
    model.parent.mkdir()
    model.write_text("not an ONNX file, only renamed\n")
    return model


def timed_fail(ctx, *argv) -> str:
    start = time.monotonic()
    line = ctx.fails(1, *argv)
    assert time.monotonic() - start < HANG_S, line
    return line


@case("demo-model-missing", "demo", "`--model missing.onnx` (no such file)",
      "exit 1 before anything starts, naming the path; no output or staging folder left")  # fmt: skip
def _(ctx):
    out = ctx.tmp / "runs"
    out.mkdir()
    missing = ctx.tmp / "missing.onnx"
    line = timed_fail(ctx, "demo", "--output", out / "demo", "--model", missing, "--frames", "2")
    assert f"model file not found: {missing}" in line
    assert left_in(out) == []


@case("demo-model-corrupt", "demo", "`--model bad.onnx`, a text file renamed",
      "exit 1 within seconds with depth_node's own error line; staging removed, no depth_node left")  # fmt: skip
def _(ctx):
    needs_ros()
    out, model = ctx.tmp / "runs", corrupt_model(ctx)
    out.mkdir()
    line = timed_fail(ctx, "demo", "--output", out / "demo", "--model", model, "--frames", "2")
    assert "depth_node exited with status 1 before the graph finished" in line
    assert f"{model} is not a readable ONNX file" in line
    assert left_in(out) == []
    assert processes_naming(str(ctx.tmp)) == []


@case("demo-model-folder", "demo", "`--model` an existing folder",
      "exit 1 within seconds with one error line; staging removed, no child left")  # fmt: skip
def _(ctx):
    needs_ros()
    out, model = ctx.tmp / "runs", ctx.tmp / "a-folder.onnx"
    out.mkdir()
    model.mkdir()
    line = timed_fail(ctx, "demo", "--output", out / "demo", "--model", model, "--frames", "2")
    assert str(model) in line
    assert left_in(out) == []
    assert processes_naming(str(ctx.tmp)) == []


@case("demo-failed-rerun", "demo", "an earlier demo's `--output`, re-run with a corrupt `--model`",
      "exit 1; the earlier demo's folder is unchanged and nothing else is left beside it")  # fmt: skip
def _(ctx):
    from depth_estimation_ros.commands.demo import MARKER

    needs_ros()
    out, model = ctx.tmp / "runs", corrupt_model(ctx)
    earlier = out / "demo"
    earlier.mkdir(parents=True)
    (earlier / MARKER).write_text("made by depth-estimation demo\n")
    (earlier / "metrics.json").write_text('{"frames": 24}')
    before = hashes(earlier)
    assert "is not a readable ONNX file" in timed_fail(ctx, "demo", "--output", earlier, "--model", model,
                                                       "--frames", "2")  # fmt: skip
    assert hashes(earlier) == before
    assert left_in(out) == ["demo"]


@case("demo-rerun-over-earlier", "demo", "`--output D` where D is an earlier demo's, with a stray file in it",
      "exit 0; D holds only the new run (the stray file is gone), nothing staged is left beside it")  # fmt: skip
def _(ctx):
    import json

    from depth_estimation_ros.commands.demo import MARKER

    needs_ros()
    out = ctx.tmp / "runs"
    earlier = out / "demo"
    earlier.mkdir(parents=True)
    (earlier / MARKER).write_text("made by depth-estimation demo\n")
    (earlier / "stale.txt").write_text("from the earlier run")
    status, _, err = ctx.run("demo", "--output", earlier, "--frames", "2")
    assert status == 0, err
    assert left_in(out) == ["demo"]
    assert not (earlier / "stale.txt").exists()
    assert json.loads((earlier / "metrics.json").read_text())["frames_published"] == 2


@case("demo-sigterm-mid-graph", "demo", "SIGTERM to a real `demo` process once depth_node's log exists",
      "exit 143 with one `terminated` line; no child process left, staging removed")  # fmt: skip
def _(ctx):
    needs_ros()
    out, onnx = ctx.tmp / "runs", ctx.tmp / "model.onnx"
    out.mkdir()
    shutil.copyfile(ctx.deployed["acan"][1], onnx)  # so the node's command line names this case's folder
    env = {k: v for k, v in os.environ.items() if k != "DEPTH_ESTIMATION_DEBUG"}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "depth_estimation_ros.commands", "demo", "--output", str(out / "demo"),
            "--model", str(onnx), "--frames", "200"]  # fmt: skip
    demo = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + HANG_S
        while not list(out.glob("*/node.log")):
            assert demo.poll() is None, demo.stderr.read() if demo.stderr else ""
            assert time.monotonic() < deadline, "the demo started no depth_node"
            time.sleep(0.05)
        assert len(processes_naming(str(ctx.tmp))) >= 3  # the demo, the recorder and the node at least
        demo.send_signal(signal.SIGTERM)
        _, err = demo.communicate(timeout=HANG_S)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 143, err
    assert err.strip() == "depth-estimation demo: terminated; output staged so far was removed"
    assert processes_naming(str(ctx.tmp)) == []
    assert left_in(out) == []


@case("node-sigterm-while-loading", "depth_node", "SIGTERM while the node loads its model (a transformers folder: "
      "seconds; a TensorRT build: minutes)", "the node stops there with status 0, as when it runs; it never gets "
      "to `loaded`")  # fmt: skip
def _(ctx):
    needs_ros()
    from depth_estimation_ros.ros.graph import depth_node, isolated_env

    env, model = isolated_env(), ctx.fixture("hf_folders")["depth_anything_metric"]
    try:
        node = depth_node(env, ctx.tmp / "node.log", "-p", f"model:={model}")
        try:
            node.wait_for_line("loading ")
            node.send(signal.SIGTERM)
            assert node.wait(timeout=HANG_S) == 0, node.output
        finally:
            node.stop(signal.SIGKILL)
    finally:
        env.release()
    assert "loaded " not in node.output, node.output  # stopped in the middle of loading
    assert "Traceback" not in node.output, node.output


@pytest.mark.parametrize("case_id", cases_of(__name__))
def test_bad_input(case_id, request, tmp_path, capsys):
    run_case(case_id, request, tmp_path, capsys)
