"""The ``depth-estimation`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    run(args.height, args.width, args.threads)
    return 0


def _models(args: argparse.Namespace) -> int:
    from .models import build_model
    from .models.complexity import count_macs, count_parameters

    rows = []
    for spec in args.specs:
        name, _, backbone = spec.partition(":")
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
    else:
        print(f"{'model':8s} {'backbone':22s} {'input':9s} {'params (M)':>10s} {'GMACs':>8s}")
        for r in rows:
            print(f"{r['model']:8s} {r['backbone']:22s} {r['input']:9s} {r['parameters_M']:10.2f} {r['GMACs']:8.2f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-estimation",
        description="Monocular metric depth: models, training, evaluation, export and ROS 2 processing.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser("demo", help="run both networks on a generated image and report what they produced")
    demo.add_argument("--height", type=int, default=256, help="input height (default: 256)")
    demo.add_argument("--width", type=int, default=352, help="input width (default: 352)")
    demo.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: all)")
    demo.set_defaults(func=_demo)

    models = sub.add_parser("models", help="parameter counts and MACs of networks at an input size")
    models.add_argument(
        "specs",
        nargs="*",
        default=["acan:resnet50", "acan:resnet101", "msfnet:legacy_senet154"],
        metavar="NAME[:BACKBONE]",
        help="models to measure (default: the papers' configurations)",
    )
    models.add_argument("--height", type=int, default=256, help="input height (default: 256)")
    models.add_argument("--width", type=int, default=352, help="input width (default: 352)")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"depth-estimation {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
