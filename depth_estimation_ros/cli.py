"""The ``depth-estimation`` command: one entry point, one subcommand per job.

Every subcommand runs behind :func:`~depth_estimation_ros.errors.run_guarded`: mistakes print
``depth-estimation <command>: error: ...`` (exit 2 for usage, 1 otherwise), a traceback only with
``--debug`` or ``DEPTH_ESTIMATION_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import UsageError, finite_float, image_side, positive_float, positive_int, run_guarded, unit_float
from .files import is_hub_id
from .parameters import SCALE_ARGUMENTS, options_from
from .parameters import add_arguments as add_parameter_arguments


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    run(args.output, args.frames, model=args.model, epochs=args.epochs, train_frames=args.train_frames,
        train=args.train, scale_source=args.scale_source)  # fmt: skip
    return 0


def _models(args: argparse.Namespace) -> int:
    from .models import build_model, list_models
    from .models.complexity import count_macs, count_parameters

    rows = []
    for spec in args.specs:
        if Path(spec).exists() or is_hub_id(spec):  # a model to describe, not a network to build
            from .backends import describe_model

            rows.append(describe_model(spec))
            continue
        name, _, backbone = spec.partition(":")
        if name not in list_models():
            raise UsageError(f"unknown model {name!r} in {spec!r}: expected NAME[:BACKBONE], NAME in {list_models()}")
        kwargs = {"backbone": backbone} if backbone else {}
        model = build_model(name, **kwargs)
        rows.append(
            {
                "model": name,
                "backbone": model.config["backbone"],
                "input": f"{args.height}x{args.width}",
                "parameters_M": round(count_parameters(model) / 1e6, 2),
                "GMACs": round(count_macs(model, args.height, args.width) / 1e9, 2),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in (r for r in rows if "card" in r):
        print(f"{r['model']}: {r['format']}, {r['name']}: {r['summary']}")
    rows = [r for r in rows if "card" not in r]
    if rows:
        print(f"{'model':8s} {'backbone':22s} {'input':9s} {'params (M)':>10s} {'GMACs':>8s}")
        for r in rows:
            print(f"{r['model']:8s} {r['backbone']:22s} {r['input']:9s} {r['parameters_M']:10.2f} {r['GMACs']:8.2f}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from training.export import export_onnx

    path = export_onnx(args.checkpoint, args.output, args.height, args.width, args.batch, args.opset,
                       overwrite=args.overwrite, precision=args.precision, calibration_images=args.calibration_images,
                       calibration_frames=args.calibration_frames)  # fmt: skip
    print(f"wrote {path} ({args.precision})")
    return 0


def _build_engine(args: argparse.Namespace) -> int:
    from .backends.tensorrt_backend import build_engine

    if args.calibration_images is not None:
        raise UsageError(
            "build-engine takes the precision from the graph (strongly typed TensorRT); calibration is part of "
            "export: depth-estimation export --precision int8 --calibration-images FRAMES, then build-engine on it"
        )
    path = build_engine(args.onnx, args.output, args.timing_cache, args.workspace, overwrite=args.overwrite,
                        precision=args.precision)  # fmt: skip
    print(f"wrote {path}")
    return 0


def _camera(args: argparse.Namespace):
    from .camera import CameraModel

    if args.camera:
        return CameraModel.from_yaml(args.camera)
    given = [v is not None for v in (args.fx, args.fy, args.cx, args.cy)]
    if any(given) and not all(given):
        raise UsageError("give all of --fx --fy --cx --cy, or --camera CAMERA_INFO_YAML")
    return None if not any(given) else (args.fx, args.fy, args.cx, args.cy)


def _predict(args: argparse.Namespace) -> int:
    from .camera import CameraModel
    from .estimator import DepthEstimator
    from .predict import frames, predict

    camera = _camera(args)
    if isinstance(camera, tuple):  # intrinsics without a size: the size is the input's
        _, first = frames(args.input)
        height, width = next(first)[1].shape[:2]
        camera = CameraModel.from_intrinsics(*camera, width, height)
    estimator = DepthEstimator(args.model, args.backend, resize=args.resize, min_confidence=args.min_confidence,
                               **options_from(args, SCALE_ARGUMENTS))  # fmt: skip
    count = predict(estimator, args.input, args.output, camera, args.max_range, overwrite=args.overwrite,
                    sparse=args.sparse_depth)  # fmt: skip
    print(f"wrote {count} frame(s) to {args.output} ({estimator.backend.describe()})")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import run

    if args.threads:
        torch_threads(args.threads)
    run(args.output, args.repeats, (args.height, args.width), args.models,
        command=" ".join(["depth-estimation bench", *sys.argv[2:]]), open3d_python=args.open3d_python,
        checkpoint=args.checkpoint)  # fmt: skip
    return 0


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


# Subcommands whose parser lives with their code; listed in --help, dispatched before parsing.
DELEGATED = {
    "bag": ("depth_estimation_ros.bag", "process a rosbag2 recording exactly as the node would"),
    "train": ("training.train", "train a network (YAML config, --set overrides, --resume; torchrun for DDP)"),
    "synth": ("training.synth_cli", "generate synthetic RGB-D frames with exact depth and intrinsics"),
    "quantize": ("training.quantize", "int8 static quantisation of an ONNX graph for ONNX Runtime (calibrated)"),
}


def _eval(args: argparse.Namespace) -> int:
    from training.evaluate import run

    from .files import refuse_existing

    if args.dataset == "synthetic" and args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.output_json and not args.overwrite:
        refuse_existing(args.output_json)  # before spending the evaluation
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-estimation",
        description="Monocular metric depth: models, training, evaluation, export and ROS 2 processing.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo", help="synthetic bag -> depth_node in a ROS 2 graph -> recorded bag, previews, metrics"
    )
    demo.add_argument("--output", default="demo_output", help="folder for the results (default: %(default)s)")
    demo.add_argument("--frames", type=positive_int, default=24, help="frames in the synthetic sequence (default: 24)")
    demo.add_argument("--model", help="use this model instead of the shipped one")
    demo.add_argument("--train", action="store_true", help="train a small model on the CPU instead (a few minutes)")
    demo.add_argument("--epochs", type=positive_int, default=4, help="training epochs with --train (default: 4)")
    demo.add_argument("--train-frames", type=positive_int, default=320, help="generated training frames (default: 320)")
    demo.add_argument("--scale-source", choices=("none", "sparse_depth"), default="none",
                      help="sparse_depth: the sequence gets a LiDAR-like sparse depth topic and the node anchors its "
                           "scale to it (default: %(default)s)")  # fmt: skip
    demo.set_defaults(func=_demo)

    models = sub.add_parser(
        "models", help="parameter counts and MACs of networks at an input size, or what a model file or folder is"
    )
    models.add_argument(
        "specs",
        nargs="*",
        default=["acan:resnet50", "acan:resnet101", "msfnet:legacy_senet154"],
        metavar="NAME[:BACKBONE] | PATH",
        help="networks to measure (default: the papers' configurations), or model files / transformers folders to "
        "describe (format, output kind, input rule, focal rule)",
    )
    models.add_argument("--height", type=image_side, default=256, help="input height (default: 256)")
    models.add_argument("--width", type=image_side, default=352, help="input width (default: 352)")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=_models)

    export = sub.add_parser(
        "export", help="export a checkpoint or transformers folder to ONNX (fixed size, model card in the metadata)"
    )
    export.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint (.pt), or transformers model folder (or Hub id in the local cache) to export",
    )
    export.add_argument("--output", required=True, help="ONNX file to write")
    export.add_argument(
        "--height",
        type=image_side,
        help="input height (default: the checkpoint's). A transformers folder takes both --height and --width or "
        "neither: by default its card's input rule on a 480x640 frame (the rule's padding added, then its network "
        "size of the padded frame: Depth Anything 518x686, ZoeDepth 384x512, DPT 384x384); a given size must be a "
        "multiple of the rule's multiple and one the network runs at",
    )
    export.add_argument("--width", type=image_side, help="input width (default: as for --height)")
    export.add_argument("--batch", type=positive_int, default=1, help="static batch size (default: 1)")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset, 18 to 20 (default: 18)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    export.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        default="fp32",
        help="the graph's precision, which TensorRT builds as it is (strongly typed): fp16 keeps float32 I/O, "
        "normalisation and decoding; int8 is symmetric Q/DQ calibrated on --calibration-images (default: fp32)",
    )
    export.add_argument("--calibration-images", help="folder of the camera's own frames (--precision int8)")
    export.add_argument("--calibration-frames", type=positive_int, default=64,
                        help="calibration frames used at most (default: 64)")  # fmt: skip
    export.set_defaults(func=_export)

    engine = sub.add_parser("build-engine", help="build a TensorRT engine from an exported ONNX graph")
    engine.add_argument("--onnx", required=True, help="ONNX graph from depth-estimation export")
    engine.add_argument("--output", required=True, help="engine file to write (a .json description goes beside it)")
    engine.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        help="check that the graph has this precision (the engine always has the graph's: export --precision)",
    )
    engine.add_argument("--calibration-images", help=argparse.SUPPRESS)  # moved to export --precision int8
    engine.add_argument("--timing-cache", help="TensorRT timing cache file to read and update")
    engine.add_argument("--workspace", type=positive_float, default=4.0, help="builder workspace in GiB (default: 4)")
    engine.add_argument("--overwrite", action="store_true", help="replace an existing --output and its .json")
    engine.set_defaults(func=_build_engine)

    predict = sub.add_parser("predict", help="depth, confidence, previews and point clouds for images or a video")
    predict.add_argument(
        "--model", required=True, help="checkpoint (.pt), ONNX graph (.onnx), engine (.engine) or transformers folder"
    )
    predict.add_argument("--input", required=True, help="an image, a folder of images, or a video file")
    predict.add_argument("--output", required=True, help="folder for the results")
    predict.add_argument("--backend", choices=("auto", "tensorrt", "onnxruntime", "torch"), default="auto")
    predict.add_argument("--camera", help="camera_info YAML (ROS camera_calibration format)")
    for name in ("fx", "fy", "cx", "cy"):
        kind = positive_float if name in ("fx", "fy") else finite_float
        predict.add_argument(f"--{name}", type=kind, help=f"intrinsic {name} in pixels (instead of --camera)")
    predict.add_argument("--resize", choices=("stretch", "letterbox"), default="stretch",
                         help="how frames are fitted to the network input (default: stretch)")  # fmt: skip
    predict.add_argument("--min-confidence", type=unit_float, default=0.0, help="drop depth below this confidence")
    predict.add_argument("--max-range", type=positive_float,
                         help="drop cloud points farther than this many metres (default: no limit)")  # fmt: skip
    predict.add_argument("--overwrite", action="store_true", help="replace result files that exist in --output")
    add_parameter_arguments(predict, SCALE_ARGUMENTS)
    predict.add_argument("--sparse-depth", metavar="FOLDER",
                         help="sparse metric depth per frame for --scale-source sparse_depth: <stem>.png (16-bit mm) "
                              "or <stem>.npy (float32 m), registered to the camera, any resolution")  # fmt: skip
    predict.set_defaults(func=_predict)

    bench = sub.add_parser("bench", help="time pre-processing, inference per backend, post-processing, clouds")
    bench.add_argument("--output", default="docs/benchmarks.md", help="document to update (default: %(default)s)")
    bench.add_argument("--repeats", type=positive_int, default=5, help="timed runs per stage (default: 5)")
    bench.add_argument("--height", type=image_side, default=256, help="network input height (default: 256)")
    bench.add_argument("--width", type=image_side, default=352, help="network input width (default: 352)")
    bench.add_argument("--models", nargs="*", help="subset of models by label (default: all)")
    bench.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch")
    bench.add_argument("--open3d-python", help="a Python with open3d for the reference (default: this one)")
    bench.add_argument("--checkpoint", help="trained checkpoint: accuracy of bf16 and int8 against fp32")
    bench.set_defaults(func=_bench)

    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)

    from training.evaluate import add_arguments

    evaluation = sub.add_parser("eval", help="score a model under the NYU/KITTI protocol, with latency")
    add_arguments(evaluation)
    evaluation.add_argument("--overwrite", action="store_true", help="replace an existing --output-json")
    evaluation.set_defaults(func=_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    words = [a for a in argv if a != "--debug"]
    if words and words[0] in DELEGATED:  # their own main has the same boundary (and sees --debug)
        import importlib

        rest = list(argv)
        rest.remove(words[0])
        return importlib.import_module(DELEGATED[words[0]][0]).main(rest)
    prog = " ".join(["depth-estimation", *words[:1]]) if words and not words[0].startswith("-") else "depth-estimation"
    return run_guarded(prog, _dispatch, argv)


def _dispatch(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
