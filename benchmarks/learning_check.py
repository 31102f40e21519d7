"""Does training work end to end? Train a small model on synthetic scenes, score it on held-out seeds
against the best constant-depth predictor, and record the result in ``docs/benchmarks.md``.

``python -m benchmarks.learning_check [--config config/train/synthetic_acan.yaml] [--run DIR]``
(part of ``make bench``; ``config/train/synthetic_msfnet.yaml`` checks MSFNet). With ``--run``
pointing at a finished run, training is skipped. Each network has its own section in the file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.bench import machine, write_section
from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.core.metrics import format_table
from training.datasets.synthetic import SyntheticDataset
from training.evaluate import evaluate, evaluate_constant, median_depth
from training.train import Trainer, load_config

NAMES = {"acan": "ACAN", "msfnet": "MSFNet"}


def describe(model: dict) -> str:
    """One phrase naming the network and what sets its size."""
    name = model["name"]
    if name == "acan":
        return f"ACAN with a {model['backbone']} encoder and {model['num_bins']} bins"
    return f"MSFNet with a {model['backbone']} encoder (USF width {model.get('usf_channels', 16)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/train/synthetic_acan.yaml")
    parser.add_argument("--run", help="an existing run folder (skip training)")
    parser.add_argument("--test-count", type=int, default=100, help="held-out frames to score")
    parser.add_argument("--output", default="docs/benchmarks.md")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    args = parser.parse_args(argv)
    config = load_config(args.config, [*args.set, *([f"output={args.run}"] if args.run else [])])
    run = Path(config["output"])
    minutes = None
    if not (args.run and (run / "best.pt").is_file()):
        start = time.perf_counter()
        Trainer(config).fit()
        minutes = (time.perf_counter() - start) / 60
    train = config["data"]["train"]
    test = SyntheticDataset(args.test_count, kind=train["kind"], height=train["height"], width=train["width"],
                            seed=2_000_000)  # fmt: skip  # seeds never used by training or validation
    constant = median_depth(SyntheticDataset(**train))
    name = NAMES[config["model"]["name"]]
    results = {
        f"constant {constant:.2f} m (training median)": evaluate_constant(constant, test, crop=None),
        f"small {name} (best.pt)": evaluate(DepthEstimator(run / "best.pt", "torch"), test, crop=None)["metrics"],
    }
    table = format_table(results)
    print(table)
    model = config["model"]
    section = f"synthetic-learning-{model['name']}"
    text = "\n".join([
        f"<!-- bench:{section} start -->",
        f"## Learning check: small {name} on synthetic {train['kind']} scenes",
        "",
        f"Command: `python -m benchmarks.learning_check --config {args.config}"
        + "".join(f" --set {a}" for a in args.set)
        + f"` (part of `make bench`). Machine: "
        f"{machine()}. Model: {describe(model)}, random "
        f"initialisation, trained on {train['length']} generated {train['kind']} frames at "
        f"{train['height']}x{train['width']} for {config['train']['epochs']} epochs"
        + (f" ({minutes:.1f} min)." if minutes else "."),
        f"Scored on {args.test_count} held-out frames (seeds from 2,000,000; training uses 0-{train['length'] - 1},"
        " validation 900,000+), whole image, caps 1e-3-10 m, no flip.",
        "",
        table,
        f"<!-- bench:{section} end -->",
    ])  # fmt: skip
    write_section(Path(args.output), text + "\n", section)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
