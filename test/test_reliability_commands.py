"""The bad-input suite: sizes, scales and names given on the command line (one table in docs/reliability.md)."""

from __future__ import annotations

import pytest
from reliability import bag_args, case, cases_of, images, predict_args, run_case


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


@case("options-that-do-not-apply", "predict, bag", "`--fixed-scale 2` without `--scale-source fixed`, "
      "`--camera-height 1.5` with `sparse_depth`, `--sparse-depth DIR` without it; for bag also `--scan-height 5` "
      "without `--scan`, `--edge-filter-depth` with `--edge-filter false`",
      "exit 2 before the model loads, naming the option and what it needs (`applies only with ...`); nothing "
      "written")  # fmt: skip
def _(ctx):
    source, sparse = images(ctx.tmp / "in"), ctx.tmp / "sparse"
    sparse.mkdir()
    bag = ctx.tmp / "bag"  # never read: the refusal comes first
    for extra, expected in [
        (("--fixed-scale", "2"), "--fixed-scale applies only with --scale-source fixed"),
        (("--scale-source", "sparse_depth", "--camera-height", "1.5"),
         "--camera-height applies only with --scale-source ground_plane"),
        (("--sparse-depth", sparse), "--sparse-depth applies only with --scale-source sparse_depth"),
    ]:  # fmt: skip
        out = ctx.tmp / "out"
        line = ctx.fails(2, *predict_args(ctx, source, out, "--model", ctx.tmp / "not-loaded.pt", *extra))
        assert expected in line
        assert not out.exists()
    for extra, expected in [
        (("--fixed-scale", "2"), "--fixed-scale applies only with --scale-source fixed"),
        (("--scan-height", "5"), "--scan-height applies only with --scan"),
        (("--edge-filter", "false", "--edge-filter-depth"), "--edge-filter-depth applies only with --edge-filter true"),
        (("--sparse-depth-topic", "/lidar"), "--sparse-depth-topic applies only with --scale-source sparse_depth"),
    ]:  # fmt: skip
        line = ctx.fails(2, *bag_args(ctx, bag, ctx.tmp / "bag_out", *extra))
        assert expected in line
        assert not (ctx.tmp / "bag_out").exists()


@pytest.mark.parametrize("case_id", cases_of(__name__))
def test_bad_input(case_id, request, tmp_path, capsys):
    run_case(case_id, request, tmp_path, capsys)
