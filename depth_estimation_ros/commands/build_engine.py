"""``depth-estimation build-engine``: a TensorRT engine from an exported ONNX graph, with its
description (the model card, precision, TensorRT version) in a ``.json`` beside it."""

from __future__ import annotations

import argparse

from depth_estimation_ros.core.errors import UsageError, positive_float, run_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx", required=True, help="ONNX graph from depth-estimation export")
    parser.add_argument("--output", required=True, help="engine file to write (a .json description goes beside it)")
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        help="check that the graph has this precision (the engine always has the graph's: export --precision)",
    )
    parser.add_argument("--calibration-images", help=argparse.SUPPRESS)  # moved to export --precision int8
    parser.add_argument("--timing-cache", help="TensorRT timing cache file to read and update")
    parser.add_argument("--workspace", type=positive_float, default=4.0, help="builder workspace in GiB (default: 4)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output and its .json")
    parser.add_argument("--card", help="model card of a graph exported elsewhere (a built-in card's name or a YAML "
                        "file); the .json carries it, so the engine runs with its rules")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from depth_estimation_ros.core.backends.tensorrt_backend import build_engine

    if args.calibration_images is not None:
        raise UsageError(
            "build-engine takes the precision from the graph (strongly typed TensorRT); calibration is part of "
            "export: depth-estimation export --precision int8 --calibration-images FRAMES, then build-engine on it"
        )
    from depth_estimation_ros.core.card_files import load_card

    card = load_card(args.card) if args.card else None
    path = build_engine(args.onnx, args.output, args.timing_cache, args.workspace, overwrite=args.overwrite,
                        precision=args.precision, card=card)  # fmt: skip
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("build-engine", __doc__, add_arguments, run, argv)
