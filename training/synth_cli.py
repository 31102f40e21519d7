"""``depth-estimation synth``: render synthetic RGB-D frames (:mod:`depth_estimation_ros.core.scenes`) to a folder.

Layout of ``OUT``::

    rgb/<name>.png       8-bit RGB
    depth/<name>.png     16-bit single channel, metres = value × depth_scale, 0 = invalid (sky, > 80 m)
    cameras.json         kind, seed, size, fov, depth_encoding, depth_scale and, per frame, its
                         name, seed, file paths and 3×3 K (pixel-centre convention)

Depth encodings are the project's (``training.datasets.DEPTH_ENCODINGS``): ``mm`` (millimetres,
NYU's) holds at most 65.535 m, so street scenes (up to 80 m) use ``m256`` (metres × 256,
KITTI's; 3.9 mm steps). ``--depth-encoding auto`` (default) picks ``mm`` for indoor and ``m256``
for street. Frame ``i`` renders seed ``--seed + i``: the same arguments write the same files.
Files appear only when complete; a folder that is not empty is written into only with
``--overwrite``.

``--bag OUT`` writes a rosbag2 camera sequence instead (:mod:`depth_estimation_ros.ros.synthetic_bag`): one scene
(seed ``--seed``) panned from −12° to +12° over ``--frames`` frames (default 30), on
``<namespace>/image_raw`` (rgb8), ``<namespace>/camera_info`` and ``<namespace>/depth_gt`` (32FC1
metres, NaN invalid) at ``--rate`` Hz, e.g. ``depth-estimation synth --bag seq --frames 60``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from depth_estimation_ros.core.errors import (
    UsageError,
    image_side,
    non_negative_int,
    positive_float,
    positive_int,
    run_command,
)
from depth_estimation_ros.core.files import imwrite, write_text
from depth_estimation_ros.core.scenes import DEFAULT_FOV_DEG, DEPTH_RANGE, KINDS, render_scene
from training.datasets import DEPTH_ENCODINGS

_AUTO_ENCODING = {"indoor": "mm", "street": "m256"}


def fov(text: str) -> float:
    value = positive_float(text)
    if value >= 180:
        raise argparse.ArgumentTypeError(f"expected a field of view below 180 degrees, got {text!r}")
    return value


def namespace(text: str) -> str:
    """A ROS 2 namespace (``camera`` and ``/camera/`` read as ``/camera``), checked by rclpy's own rule,
    so a bag never carries topics no ROS node could subscribe to."""
    from rclpy.exceptions import InvalidNamespaceException
    from rclpy.validate_namespace import validate_namespace

    name = "/" + text.strip("/")
    try:
        validate_namespace(name)
    except InvalidNamespaceException as exc:
        reason = str(exc).split(":", 1)[-1].rsplit(":", 1)[0].strip()  # "…: <reason>: '<name>' ^"
        raise argparse.ArgumentTypeError(f"{text!r} is not a ROS 2 namespace: {reason}") from None
    return name


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``synth`` options, on ``parser`` (so a subcommand can reuse them)."""
    parser.add_argument(
        "out", type=Path, nargs="?", help="output folder for PNG frames (created; must be empty without --overwrite)"
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    parser.add_argument("--bag", type=Path, help="write a rosbag2 camera sequence to this new folder instead")
    parser.add_argument(
        "-n",
        "--count",
        "--frames",
        dest="count",
        type=positive_int,
        help="number of frames (default: 10; 30 with --bag)",
    )
    parser.add_argument("--kind", choices=KINDS, default="indoor", help="scene kind (default: indoor)")
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the first frame; frame i uses seed + i (--bag: the scene's seed)",
    )
    parser.add_argument("--height", type=image_side, default=256, help="image height (default: 256)")
    parser.add_argument("--width", type=image_side, default=352, help="image width (default: 352)")
    parser.add_argument("--fov", type=fov, default=None, help="horizontal field of view, degrees (default: per kind)")
    parser.add_argument(
        "--depth-encoding",
        choices=["auto", "mm", "m256"],
        default="auto",
        help="16-bit depth PNG units: mm (≤ 65.535 m) or m256 (metres × 256); auto: mm indoor, m256 street",
    )
    bag = parser.add_argument_group("rosbag2 sequence (with --bag)")
    bag.add_argument("--rate", type=positive_float, default=10.0, help="frame rate, Hz (default: 10)")
    bag.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default: mcap)")
    bag.add_argument("--frame-id", default="camera_optical_frame", help="header frame_id (default: %(default)s)")
    bag.add_argument("--namespace", type=namespace, default="/camera", help="topic namespace (default: %(default)s)")
    return parser


def encode_depth(depth: np.ndarray, valid: np.ndarray, encoding: str) -> np.ndarray:
    """uint16 image of ``depth`` in ``encoding`` units, 0 where invalid; a depth that does not fit is an error."""
    dtype, unit = DEPTH_ENCODINGS[encoding]
    values = np.where(valid, np.rint(depth.astype(np.float64) / unit), 0)
    if values.max(initial=0) > np.iinfo(dtype).max:
        raise ValueError(f"depth {float(depth[valid].max()):.2f} m does not fit 16-bit {encoding!r}")
    return np.where(valid, np.maximum(values, 1), 0).astype(dtype)  # a valid depth never becomes 0


def run_bag(args: argparse.Namespace) -> int:
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    start = time.perf_counter()
    summary = write_synthetic_bag(
        args.bag,
        frames=30 if args.count is None else args.count,
        kind=args.kind,
        height=args.height,
        width=args.width,
        seed=args.seed,
        rate_hz=args.rate,
        storage=args.storage,
        frame_id=args.frame_id,
        namespace=args.namespace,
        fov_deg=args.fov,
    )
    topics = ", ".join(summary["topics"])
    print(
        f"wrote {summary['frames']} {args.kind} frames ({args.width}×{args.height}, {args.rate:g} Hz) to "
        f"{args.bag} ({args.storage}: {topics}) in {time.perf_counter() - start:.1f} s"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if (args.out is None) == (args.bag is None):
        raise UsageError("give an output folder for PNG frames or --bag OUT for a rosbag2, one of the two")
    if args.bag is not None:
        return run_bag(args)
    if args.count is None:
        args.count = 10
    encoding = _AUTO_ENCODING[args.kind] if args.depth_encoding == "auto" else args.depth_encoding
    max_depth = DEPTH_RANGE[args.kind][1]
    dtype, unit = DEPTH_ENCODINGS[encoding]
    if max_depth / unit > np.iinfo(dtype).max:
        raise ValueError(
            f"{args.kind} depth reaches {max_depth:g} m, more than 16-bit {encoding!r} holds "
            f"({np.iinfo(dtype).max * unit:g} m); use --depth-encoding m256"
        )
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output {out} is a file, expected a folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"output folder {out} is not empty; choose another or pass --overwrite")
    frames = []
    start = time.perf_counter()
    for i in range(args.count):
        seed = args.seed + i
        sample = render_scene(seed, args.height, args.width, args.kind, args.fov)
        name = sample["name"]
        rgb, depth = f"rgb/{name}.png", f"depth/{name}.png"
        imwrite(out / rgb, cv2.cvtColor(sample["image"], cv2.COLOR_RGB2BGR), args.overwrite)
        imwrite(out / depth, encode_depth(sample["depth"], sample["valid"], encoding), args.overwrite)
        frames.append({"name": name, "seed": seed, "rgb": rgb, "depth": depth, "K": sample["K"].tolist()})
    cameras = {
        "kind": args.kind,
        "seed": args.seed,
        "count": args.count,
        "height": args.height,
        "width": args.width,
        "fov_deg": DEFAULT_FOV_DEG[args.kind] if args.fov is None else args.fov,
        "depth_encoding": encoding,
        "depth_scale": unit,
        "frames": frames,
    }
    write_text(out / "cameras.json", json.dumps(cameras, indent=1) + "\n", args.overwrite)
    elapsed = time.perf_counter() - start
    size = f"{args.width}×{args.height}"
    print(f"wrote {args.count} {args.kind} frames ({size}, depth {encoding}) to {out} in {elapsed:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("synth", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
