"""The ``depth-estimation`` command: one entry point, one module per subcommand.

Every subcommand is a module with ``add_arguments(parser)``, ``run(args)`` and a ``main(argv)``
that runs them behind :func:`~depth_estimation_ros.core.errors.run_command`'s boundary: mistakes
print ``depth-estimation <command>: error: ...`` (exit 2 for usage, 1 otherwise), a traceback only
with ``--debug`` or ``DEPTH_ESTIMATION_DEBUG=1``. The table below is the only dispatch: a
subcommand's module is imported when it runs, so ``--help`` and the robot's commands never import
training or the benchmarks.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from depth_estimation_ros import __version__

# name → (module, one line for --help). Training's commands need the ``training`` extra; ``bench``
# runs from a checkout (the benchmarks are not installed).
COMMANDS = {
    "demo": ("depth_estimation_ros.commands.demo", "synthetic bag -> depth_node in a ROS 2 graph -> recorded bag, "
             "previews, metrics"),
    "predict": ("depth_estimation_ros.commands.predict", "depth, confidence, previews and point clouds for images "
                "or a video"),
    "bag": ("depth_estimation_ros.commands.bag", "process a rosbag2 recording exactly as the node would"),
    "models": ("depth_estimation_ros.commands.models", "parameter counts and MACs of networks at an input size, or "
               "what a model file or folder is"),
    "export": ("depth_estimation_ros.commands.export", "export a checkpoint or transformers folder to ONNX (fixed "
               "size, model card in the metadata)"),
    "quantize": ("depth_estimation_ros.commands.quantize", "int8 static quantisation of an ONNX graph for ONNX "
                 "Runtime (calibrated)"),
    "build-engine": ("depth_estimation_ros.commands.build_engine", "build a TensorRT engine from an exported ONNX "
                     "graph"),
    "train": ("training.train", "train a network (YAML config, --set overrides, --resume; torchrun for DDP)"),
    "eval": ("training.evaluate", "score a model under the NYU/KITTI protocol, with latency"),
    "synth": ("training.synth_cli", "generate synthetic RGB-D frames with exact depth and intrinsics"),
    "bench": ("benchmarks.bench", "time pre-processing, inference per backend, post-processing, clouds"),
}  # fmt: skip
# What the robot's install lacks by design: a command that needs one says how to get it.
OPTIONAL = {"training", "benchmarks", "h5py", "scipy", "tensorboard"}


def build_parser() -> argparse.ArgumentParser:
    """The top level only: the subcommands' own parsers belong to their modules."""
    parser = argparse.ArgumentParser(
        prog="depth-estimation",
        description="Monocular metric depth: models, training, evaluation, export and ROS 2 processing.",
        epilog="depth-estimation COMMAND --help describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    words = [a for a in argv if a != "--debug"]
    if not words or words[0] not in COMMANDS:  # --help, --version, or a word that is no command
        build_parser().parse_args(argv)  # exits with argparse's usage message
        return 2
    rest = list(argv)
    rest.remove(words[0])
    module, _ = COMMANDS[words[0]]
    try:
        command = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in OPTIONAL:
            raise
        print(f"depth-estimation {words[0]}: error: needs {exc.name!r}, which is not installed "
              f"(training and evaluation: pip install 'depth_estimation_ros[training]'; bench: run from a "
              f"checkout, make bench)", file=sys.stderr)  # fmt: skip
        return 1
    return command.main(rest)
