"""The bad-input suite: CameraInfo paired with its image by stamp, and CameraInfo that cannot
describe one (one table in docs/reliability.md)."""

from __future__ import annotations

import numpy as np
import pytest
from reliability import bag_args, case, cases_of, run_case

IMAGE, INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"


def stream(ctx, broken=None, missing=(), info_offset_ns=0, frames=3):
    """A bag of ``frames`` frames (image, then its CameraInfo 5 ms later, as drivers publish them);
    ``broken(i, info)`` may spoil frame i's CameraInfo, frames in ``missing`` have none."""
    from test_bag import TYPES, frame, write_bag

    from depth_estimation_ros.ros.messages import header

    messages = []
    for i in range(frames):
        stamp, image, info = frame(i)
        messages.append(("/camera/image_raw", IMAGE, stamp, image))
        if i in missing:
            continue
        if broken is not None:
            broken(i, info)
        if info_offset_ns:  # a header of its own: the image's is shared
            stamp += info_offset_ns
            info.header = header(stamp // 10**9, stamp % 10**9, info.header.frame_id, TYPES)
        messages.append(("/camera/camera_info", INFO, stamp + 5_000_000, info))
    return write_bag(ctx.tmp / "in", messages)


def depth_infos(out):
    from test_bag import read_mcap

    return [m.ros_msg for m in read_mcap(out)["/camera/depth/camera_info"]]


@case("bag-camera-info-nan-distortion", "bag", "frame 1 of 3 has a CameraInfo with NaN in D",
      "exit 0; that frame counted bad (`D must be finite`, naming its stamp), the others processed; "
      "no NaN in any `depth/camera_info`")  # fmt: skip
def _(ctx):
    def nan_d(i, info):
        if i == 1:
            info.d = np.array([0.1, np.nan, 0, 0, 0])

    out = ctx.tmp / "out"
    status, printed, _ = ctx.run(*bag_args(ctx, stream(ctx, nan_d), out))
    assert status == 0
    assert "2 frames" in printed
    assert "1 bad" in printed
    assert "image 1700000000.100000000: CameraInfo (frame_id 'cam'): D must be finite" in printed
    infos = depth_infos(out)
    assert len(infos) == 2
    assert all(np.isfinite(info.d).all() for info in infos)


@case("bag-camera-info-bad-intrinsics", "bag", "CameraInfo with fx = 0 (frame 1), then an image with none (frame 2)",
      "exit 0; frame 1 bad (`positive focal lengths`), frame 2 bad (`no CameraInfo of its stamp`): never "
      "described by the CameraInfo before it")  # fmt: skip
def _(ctx):
    def zero_fx(i, info):
        if i == 1:
            info.k[0] = 0.0

    logged = ctx.fixture("caplog")
    out = ctx.tmp / "out"
    status, printed, _ = ctx.run(*bag_args(ctx, stream(ctx, zero_fx, missing=(2,), frames=4), out))
    assert status == 0
    assert "2 frames" in printed
    assert "2 bad" in printed
    assert "image 1700000000.100000000: CameraInfo (frame_id 'cam'): " in printed
    assert "positive focal lengths" in printed
    assert "image 1700000000.200000000: no CameraInfo of its stamp and frame 'cam' arrived within 0.1 s" in logged.text
    assert [info.header.stamp.nanosec for info in depth_infos(out)] == [0, 300_000_000]


@case("bag-camera-info-never-arrives", "bag", "frame 1 of 3 has no CameraInfo at all",
      "exit 0; frame 1 counted bad with `no CameraInfo of its stamp ... arrived within 0.1 s`, naming its "
      "stamp; frames 0 and 2 processed with their own")  # fmt: skip
def _(ctx):
    out = ctx.tmp / "out"
    status, printed, _ = ctx.run(*bag_args(ctx, stream(ctx, missing=(1,)), out))
    assert status == 0
    assert "2 frames" in printed
    assert "1 bad" in printed
    assert "image 1700000000.100000000: no CameraInfo of its stamp and frame 'cam' arrived within 0.1 s" in printed
    assert [info.header.stamp.nanosec for info in depth_infos(out)] == [0, 200_000_000]


@case("bag-camera-info-after-image-sizes", "bag",
      "each image logged 20 ms before its CameraInfo, sizes 64x48, 96x72, 64x48, 80x60",
      "exit 0; 4 frames, each with its own size and intrinsics; with `--camera-info-wait 0.01` every one "
      "is bad (its CameraInfo came too late, as in the node) and exit 1")  # fmt: skip
def _(ctx):
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    sizes = [(48, 64), (72, 96), (48, 64), (60, 80)]
    source = ctx.tmp / "in"
    write_synthetic_bag(source, frames=4, sizes=sizes, seed=2, camera_info_delay=0.02)
    out = ctx.tmp / "out"
    status, printed, _ = ctx.run(*bag_args(ctx, source, out))
    assert status == 0
    assert "4 frames" in printed
    assert "0 bad" in printed
    assert [(info.height, info.width) for info in depth_infos(out)] == sizes
    line = ctx.fails(1, *bag_args(ctx, source, ctx.tmp / "late", "--camera-info-wait", "0.01"))
    assert "(4 of 4 bad, e.g. image 1700000000.000000000: no CameraInfo of its stamp" in line
    assert "arrived within 0.01 s" in line
    assert not (ctx.tmp / "late").exists()


@case("bag-camera-info-stamp-offset", "bag", "every CameraInfo stamped 3 µs after its image",
      "default (tolerance 0): exit 1, each frame bad, the reason gives the offset (`+0.000003 s`); "
      "`--camera-info-tolerance 0.00001`: exit 0, every frame processed")  # fmt: skip
def _(ctx):
    source = stream(ctx, info_offset_ns=3_000)
    line = ctx.fails(1, *bag_args(ctx, source, ctx.tmp / "exact"))
    assert "no frame of /camera/image_raw could be processed (3 of 3 bad" in line
    assert "the nearest had stamp 1700000000.000003000 (+0.000003 s)" in line
    out = ctx.tmp / "out"
    status, printed, _ = ctx.run(*bag_args(ctx, source, out, "--camera-info-tolerance", "0.00001"))
    assert status == 0
    assert "3 frames" in printed
    assert "0 bad" in printed


@case("bag-camera-info-bad-options", "bag", "`--camera-info-wait -1`, `--camera-info-tolerance nan`",
      "exit 2; the option, the value and its range")  # fmt: skip
def _(ctx):
    source = stream(ctx)
    line = ctx.fails(2, *bag_args(ctx, source, ctx.tmp / "out", "--camera-info-wait", "-1"))
    assert "argument --camera-info-wait: -1.0 must be in [0.0, 10.0]" in line
    line = ctx.fails(2, *bag_args(ctx, source, ctx.tmp / "out", "--camera-info-tolerance", "nan"))
    assert "argument --camera-info-tolerance: nan must be a finite number" in line
    assert not (ctx.tmp / "out").exists()


@case("bag-frame-over-max-image-pixels", "bag", "frames of 64x48, 160x120 and 64x48 with `--max-image-pixels 10000`",
      "exit 0; the 160x120 frame counted bad before it is decoded (`160x120 image (19200 pixels) is larger than "
      "max_image_pixels=10000`), the others processed; the node skips and counts such frames the same way")  # fmt: skip
def _(ctx):
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    source = ctx.tmp / "in"
    write_synthetic_bag(source, frames=3, sizes=[(48, 64), (120, 160), (48, 64)], seed=3)
    out = ctx.tmp / "out"
    status, printed, _ = ctx.run(*bag_args(ctx, source, out, "--max-image-pixels", "10000"))
    assert status == 0
    assert "2 frames" in printed
    assert "1 bad" in printed
    assert "image 1700000000.100000000: 160x120 image (19200 pixels) is larger than max_image_pixels=10000" in printed
    assert [(info.height, info.width) for info in depth_infos(out)] == [(48, 64), (48, 64)]


@case("bag-fusion-without-odometry", "bag", "`--temporal-fusion odometry` on a bag with no nav_msgs/Odometry topic",
      "exit 1 before any frame; `the bag has no nav_msgs/msg/Odometry topics` with the bag's topics listed; no "
      "output bag")  # fmt: skip
def _(ctx):
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    source, out = ctx.tmp / "in", ctx.tmp / "out"
    write_synthetic_bag(source, frames=2, height=48, width=64, seed=3)
    line = ctx.fails(1, *bag_args(ctx, source, out, "--temporal-fusion", "odometry"))
    assert "temporal_fusion odometry needs the camera's odometry; the bag has no nav_msgs/msg/Odometry topics" in line
    assert "/camera/image_raw (sensor_msgs/msg/Image, 2 msgs)" in line
    assert not out.exists()


@case("bag-transform-not-a-pose", "bag", "`--sparse-points-transform '1 2 3'` or `--camera-mounting '0 0 0 0 0 0 2'`",
      "exit 2 before the model loads; the option, `seven numbers: x y z qx qy qz qw` or `unit quaternion`")  # fmt: skip
def _(ctx):
    source, out = ctx.tmp / "in", ctx.tmp / "out"  # never read: the refusal comes first
    line = ctx.fails(2, *bag_args(ctx, source, out, "--scale-source", "sparse_points", "--sparse-points-transform",
                                  "1 2 3"))  # fmt: skip
    assert "--sparse-points-transform" in line
    assert "must be seven numbers: x y z qx qy qz qw" in line
    line = ctx.fails(2, *bag_args(ctx, source, out, "--temporal-fusion", "odometry", "--camera-mounting",
                                  "0 0 0 0 0 0 2"))  # fmt: skip
    assert "--camera-mounting" in line
    assert "rotation must be a unit quaternion" in line
    assert not out.exists()


@pytest.mark.parametrize("case_id", cases_of(__name__))
def test_bad_input(case_id, request, tmp_path, capsys):
    run_case(case_id, request, tmp_path, capsys)
