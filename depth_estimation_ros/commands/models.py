"""``depth-estimation models``: parameter counts and MACs of networks at an input size, what a
model file or folder is (format, output kind, input rule, focal rule), or the built-in model cards."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from depth_estimation_ros.core.errors import UsageError, image_side, run_command
from depth_estimation_ros.core.files import is_hub_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "specs",
        nargs="*",
        default=["acan:resnet50", "acan:resnet101", "msfnet:legacy_senet154"],
        metavar="NAME[:BACKBONE] | PATH",
        help="networks to measure (default: the papers' configurations), or model files / transformers folders to "
        "describe (format, output kind, input rule, focal rule)",
    )
    parser.add_argument("--height", type=image_side, default=256, help="input height (default: 256)")
    parser.add_argument("--width", type=image_side, default=352, help="input width (default: 352)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--card", help="the model card of the ONNX graphs named (exported elsewhere): a built-in "
                        "card's name or a YAML card file")  # fmt: skip
    parser.add_argument("--cards", action="store_true", help="list the built-in model cards")


def run(args: argparse.Namespace) -> int:
    from depth_estimation_ros.core.card_files import builtin_cards, load_card
    from depth_estimation_ros.core.models import build_model, list_models
    from depth_estimation_ros.core.models.complexity import count_macs, count_parameters

    if args.cards:
        for name in builtin_cards():
            card = load_card(name)
            print(f"{name}: {card.source}\n    {card.describe()}")
        return 0
    card = load_card(args.card) if args.card else None
    rows = []
    for spec in args.specs:
        if Path(spec).exists() or is_hub_id(spec):  # a model to describe, not a network to build
            from depth_estimation_ros.core.backends import describe_model

            rows.append(describe_model(spec, card))
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


def main(argv: list[str] | None = None) -> int:
    return run_command("models", __doc__, add_arguments, run, argv)
