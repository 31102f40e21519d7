"""``depth-estimation quantize``: static int8 quantisation of an exported graph, for ONNX Runtime on
the CPU or for TensorRT, calibrated on the camera's frames or generated scenes
(:mod:`depth_estimation_ros.deploy.quantize` does the work)."""

from __future__ import annotations

import argparse

from depth_estimation_ros.core.backends.onnxruntime_backend import read_onnx_info
from depth_estimation_ros.core.errors import positive_int, run_command
from depth_estimation_ros.core.files import folder_frames
from depth_estimation_ros.core.scenes import KINDS
from depth_estimation_ros.deploy.quantize import TARGETS, quantize, synthetic_frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("onnx", help="exported fp32 graph")
    parser.add_argument("output", help="int8 graph to write (must not exist)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--images", help="folder of calibration images (the camera's own frames are best)")
    source.add_argument("--synthetic", choices=KINDS, default="indoor",
                        help="generated calibration scenes when no --images (default: indoor)")  # fmt: skip
    parser.add_argument("--frames", type=positive_int, default=64, help="calibration frames (default: 64)")
    parser.add_argument("--target", choices=TARGETS, default="onnxruntime",
                        help="onnxruntime (CPU, uint8 activations) or tensorrt (symmetric int8 Q/DQ; "
                        "depth-estimation export --precision int8 makes this too) (default: onnxruntime)")  # fmt: skip
    parser.add_argument("--card", help="model card of a graph exported elsewhere (a built-in card's name or a YAML "
                        "file; depth-estimation models --cards lists them)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from depth_estimation_ros.core.card_files import load_card

    card = load_card(args.card) if args.card else None
    if card is not None:
        height, width = 480, 640  # a VGA camera's frames, for the card's own input rule to take
    else:
        info = read_onnx_info(args.onnx)
        height, width = info.input_height, info.input_width
    frames = (
        folder_frames(args.images, args.frames)
        if args.images
        else synthetic_frames(args.synthetic, args.frames, height, width)
    )
    path = quantize(args.onnx, args.output, frames, target=args.target, card=card)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("quantize", __doc__, add_arguments, run, argv)
