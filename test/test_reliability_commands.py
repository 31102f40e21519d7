"""The bad-input suite: sizes, scales and names given on the command line (one table in docs/reliability.md)."""

from __future__ import annotations

import pytest
from reliability import case, cases_of, run_case


@case("synth-huge-size", "synth", "`--height 100000` (a typo for 1000)",
      "exit 2; `expected an image side of 1 to 8192 pixels`; nothing written (not a 37 GiB allocation)")  # fmt: skip
def _(ctx):
    out = ctx.tmp / "frames"
    assert "expected an image side of 1 to 8192 pixels" in ctx.fails(2, "synth", out, "--height", "100000")
    assert not out.exists()


@case("eval-huge-size", "eval", "`--dataset synthetic --width 100000`",
      "exit 2 before evaluating; `expected an image side of 1 to 8192 pixels`")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    line = ctx.fails(2, "eval", "--checkpoint", checkpoint, "--dataset", "synthetic", "--width", "100000")
    assert "argument --width: expected an image side of 1 to 8192 pixels" in line


@case("export-huge-size", "export", "`--height 100000`",
      "exit 2 before tracing; no file")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    out = ctx.tmp / "m.onnx"
    line = ctx.fails(2, "export", "--checkpoint", checkpoint, "--output", out, "--height", "100000", "--width", "96")
    assert "argument --height: expected an image side" in line
    assert not out.exists()


@case("eval-scale-not-finite", "eval", "`--scale nan`, `-1`, `0` or `1e9` (a checkpoint at a custom scale)",
      "exit 2 (a usage error, as for every other bad option); `--scale must be a number in (0, 4]`")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    for scale in ("nan", "-1", "0", "1e9"):
        line = ctx.fails(2, "eval", "--checkpoint", checkpoint, "--dataset", "synthetic", "--count", "1",
                         "--scale", scale)  # fmt: skip
        assert f"--scale must be a number in (0, 4], got '{scale}'" in line


@case("synth-bad-namespace", "synth", "`--bag OUT --namespace 1bad//ns` or `--namespace '/a b'`",
      "exit 2 with rclpy's reason; no bag (its topics could never be subscribed to)")  # fmt: skip
def _(ctx):
    for name, reason in (("1bad//ns", "token that starts with a number"), ("/a b", "other than alphanumerics")):
        out = ctx.tmp / "bag"
        line = ctx.fails(2, "synth", "--bag", out, "-n", "2", "--namespace", name)
        assert f"{name!r} is not a ROS 2 namespace" in line
        assert reason in line
        assert not out.exists()
    assert ctx.run("synth", "--bag", ctx.tmp / "ok", "-n", "2", "--height", "48", "--width", "64",
                   "--namespace", "cam/")[0] == 0  # fmt: skip


@pytest.mark.parametrize("case_id", cases_of(__name__))
def test_bad_input(case_id, request, tmp_path, capsys):
    run_case(case_id, request, tmp_path, capsys)
