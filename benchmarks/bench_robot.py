"""``python -m benchmarks.bench_robot``: per-frame cost of the robot-side stages at 640×480.

    python -m benchmarks.bench_robot [--repeats N] [--output docs/benchmarks.md]

On generated frames (``depth_estimation_ros.core.scenes``): the ground-plane scale source with the
floor fitted from a metric prediction (against the configured-plane consensus fit it replaced, in
the same rounds), the LiDAR source's projection of a 64-beam scan (z-buffer and visibility test),
and temporal fusion of a 640×480 depth map with the camera's motion. Each is timed in turn within
each round (:func:`.bench.interleaved_ms`), so all see the same load of a shared machine.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path

import numpy as np

from benchmarks.bench import interleaved_ms, machine, write_section

SECTION = "robot"
FRAME = (480, 640)


def calls() -> dict:
    from depth_estimation_ros.core.anchoring import Anchor
    from depth_estimation_ros.core.camera import CameraModel
    from depth_estimation_ros.core.fusion import DepthFusion
    from depth_estimation_ros.core.lidar import project_points
    from depth_estimation_ros.core.mounting import Mounting
    from depth_estimation_ros.core.scenes import lidar_scan, render_scene

    scene = render_scene(2, *FRAME, kind="indoor")
    K, meta = scene["K"], scene["meta"]
    depth = np.where(scene["valid"], scene["depth"], np.nan).astype(np.float32)
    noise = (1 + 0.02 * np.random.default_rng(0).standard_normal(depth.shape)).astype(np.float32)
    pred = depth / 1.7 * noise
    fitted = Anchor("ground_plane", "depth", camera_height=meta["camera_height"])
    configured = Anchor("ground_plane", "depth", camera_height=meta["camera_height"])
    fitted.apply(pred, K, 0.0)
    configured.apply(pred, K, 0.0)
    camera = CameraModel(FRAME[1], FRAME[0], K)
    points, mounting = lidar_scan(2, "indoor", beams=64), Mounting((0.0, -0.3, 0.0))
    fusion, moved = DepthFusion(), render_scene(2, *FRAME, kind="indoor", pan_deg=1.0)
    poses = [meta["world_from_camera"], moved["meta"]["world_from_camera"]]
    maps = [depth * noise, np.where(moved["valid"], moved["depth"], np.nan).astype(np.float32)]
    clock = iter(range(1, 10**9))
    return {
        "ground plane, floor fitted (metric model), per frame": lambda: fitted._ground_fit(pred, K, next(clock) / 10),
        "ground plane, configured floor (consensus fit, the reference)": lambda: configured._fit(
            *configured._ground_correspondences(pred, K, configured.prior), ground=True),
        f"LiDAR projection, 64 beams ({len(points):,} points)": lambda: project_points(points, camera, mounting),
        "temporal fusion, 640×480": lambda: [fusion(m, camera, p) for m, p in zip(maps, poses, strict=True)],
    }  # fmt: skip


def render(times: dict[str, float], context: dict) -> str:
    lines = [f"<!-- bench:{SECTION} start -->", "### Robot-side stages per frame at 640×480", "",
             f"Command: `{context['command']}`. Machine: {machine()}. Date: {context['date']}. Medians of "
             f"{context['repeats']} interleaved rounds.", "", "| stage | ms |", "|---|---:|"]  # fmt: skip
    for name, ms in times.items():
        per = ms / 2 if name.startswith("temporal fusion") else ms  # two frames a call
        lines.append(f"| {name} | {per:.2f} |")
    lines += ["", f"<!-- bench:{SECTION} end -->"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_robot", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--output", default="docs/benchmarks.md", help="document whose section is rewritten")
    args = parser.parse_args(argv)
    times = interleaved_ms(calls(), args.repeats)
    command = "python -m benchmarks.bench_robot " + shlex.join(sys.argv[1:] if argv is None else argv)
    context = {"command": command.strip(), "date": datetime.date.today().isoformat(), "repeats": args.repeats}
    text = render(times, context)
    if args.output:
        write_section(Path(args.output), text, SECTION)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
