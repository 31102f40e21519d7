"""``synth``: render synthetic RGB-D frames (:mod:`training.datasets.synthetic`) to a folder.

Layout of ``OUT``::

    rgb/<name>.png       8-bit RGB
    depth/<name>.png     16-bit single channel, metres = value × depth_scale, 0 = invalid (sky, > 80 m)
    cameras.json         kind, seed, size, fov, depth_encoding, depth_scale and, per frame, its
                         name, seed, file paths and 3×3 K (pixel-centre convention)

Depth encodings are the project's (``training.datasets.DEPTH_ENCODINGS``): ``mm`` (millimetres,
NYU's) holds at most 65.535 m, so street scenes (up to 80 m) use ``m256`` (metres × 256,
KITTI's; 3.9 mm steps). ``--depth-encoding auto`` (default) picks ``mm`` for indoor and ``m256``
for street. Frame ``i`` renders seed ``--seed + i``: the same arguments write the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from training.datasets import DEPTH_ENCODINGS
from training.datasets.synthetic import DEFAULT_FOV_DEG, DEPTH_RANGE, KINDS, render_scene

_AUTO_ENCODING = {"indoor": "mm", "street": "m256"}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``synth`` options, on ``parser`` (so a subcommand can reuse them)."""
    parser.add_argument("out", type=Path, help="output folder (created; existing files are overwritten)")
    parser.add_argument("-n", "--count", type=int, default=10, help="number of frames (default: 10)")
    parser.add_argument("--kind", choices=KINDS, default="indoor", help="scene kind (default: indoor)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first frame; frame i uses seed + i")
    parser.add_argument("--height", type=int, default=256, help="image height (default: 256)")
    parser.add_argument("--width", type=int, default=352, help="image width (default: 352)")
    parser.add_argument("--fov", type=float, default=None, help="horizontal field of view, degrees (default: per kind)")
    parser.add_argument(
        "--depth-encoding",
        choices=["auto", "mm", "m256"],
        default="auto",
        help="16-bit depth PNG units: mm (≤ 65.535 m) or m256 (metres × 256); auto: mm indoor, m256 street",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(prog="synth", description="Render synthetic RGB-D frames (RGB PNG, 16-bit depth PNG).")
    )


def encode_depth(depth: np.ndarray, valid: np.ndarray, encoding: str) -> np.ndarray:
    """uint16 image of ``depth`` in ``encoding`` units, 0 where invalid; a depth that does not fit is an error."""
    dtype, unit = DEPTH_ENCODINGS[encoding]
    values = np.where(valid, np.rint(depth.astype(np.float64) / unit), 0)
    if values.max(initial=0) > np.iinfo(dtype).max:
        raise ValueError(f"depth {float(depth[valid].max()):.2f} m does not fit 16-bit {encoding!r}")
    return np.where(valid, np.maximum(values, 1), 0).astype(dtype)  # a valid depth never becomes 0


def run(args: argparse.Namespace) -> int:
    if args.count < 0 or args.seed < 0:
        raise ValueError("--count and --seed must be non-negative")
    encoding = _AUTO_ENCODING[args.kind] if args.depth_encoding == "auto" else args.depth_encoding
    max_depth = DEPTH_RANGE[args.kind][1]
    dtype, unit = DEPTH_ENCODINGS[encoding]
    if max_depth / unit > np.iinfo(dtype).max:
        raise ValueError(
            f"{args.kind} depth reaches {max_depth:g} m, more than 16-bit {encoding!r} holds "
            f"({np.iinfo(dtype).max * unit:g} m); use --depth-encoding m256"
        )
    out: Path = args.out
    (out / "rgb").mkdir(parents=True, exist_ok=True)
    (out / "depth").mkdir(parents=True, exist_ok=True)
    frames = []
    start = time.perf_counter()
    for i in range(args.count):
        seed = args.seed + i
        sample = render_scene(seed, args.height, args.width, args.kind, args.fov)
        name = sample["name"]
        rgb, depth = f"rgb/{name}.png", f"depth/{name}.png"
        if not cv2.imwrite(str(out / rgb), cv2.cvtColor(sample["image"], cv2.COLOR_RGB2BGR)):
            raise ValueError(f"cannot write {out / rgb}")
        if not cv2.imwrite(str(out / depth), encode_depth(sample["depth"], sample["valid"], encoding)):
            raise ValueError(f"cannot write {out / depth}")
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
    (out / "cameras.json").write_text(json.dumps(cameras, indent=1) + "\n")
    elapsed = time.perf_counter() - start
    size = f"{args.width}×{args.height}"
    print(f"wrote {args.count} {args.kind} frames ({size}, depth {encoding}) to {out} in {elapsed:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError) as exc:
        print(f"synth: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
