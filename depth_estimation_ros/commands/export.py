"""``depth-estimation export``: a checkpoint or transformers folder to ONNX (fixed size, model card
in the metadata), in fp32, fp16 or calibrated int8."""

from __future__ import annotations

import argparse

from depth_estimation_ros.core.errors import image_side, positive_int, run_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint (.pt), or transformers model folder (or Hub id in the local cache) to export",
    )
    parser.add_argument("--output", required=True, help="ONNX file to write")
    parser.add_argument(
        "--height",
        type=image_side,
        help="input height (default: the checkpoint's). A transformers folder takes both --height and --width or "
        "neither: by default its card's input rule on a 480x640 frame (the rule's padding added, then its network "
        "size of the padded frame: Depth Anything 518x686, ZoeDepth 384x512, DPT 384x384); a given size must be a "
        "multiple of the rule's multiple and one the network runs at",
    )
    parser.add_argument("--width", type=image_side, help="input width (default: as for --height)")
    parser.add_argument("--batch", type=positive_int, default=1, help="static batch size (default: 1)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset, 18 to 20 (default: 18)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        default="fp32",
        help="the graph's precision, which TensorRT builds as it is (strongly typed): fp16 keeps float32 I/O, "
        "normalisation and decoding; int8 is symmetric Q/DQ calibrated on --calibration-images (default: fp32)",
    )
    parser.add_argument("--calibration-images", help="folder of the camera's own frames (--precision int8)")
    parser.add_argument("--calibration-frames", type=positive_int, default=64,
                        help="calibration frames used at most (default: 64)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from depth_estimation_ros.deploy.export import export_onnx

    path = export_onnx(args.checkpoint, args.output, args.height, args.width, args.batch, args.opset,
                       overwrite=args.overwrite, precision=args.precision, calibration_images=args.calibration_images,
                       calibration_frames=args.calibration_frames)  # fmt: skip
    print(f"wrote {path} ({args.precision})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("export", __doc__, add_arguments, run, argv)
