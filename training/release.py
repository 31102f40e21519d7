"""A deployable copy of a training checkpoint: the model and its weights, without optimiser state.

``python -m training.release runs/demo_acan/best.pt depth_estimation_ros/data/demo_acan.pt [--fp32]``

Training checkpoints carry the optimiser (Adam: two more copies of the weights), scheduler and RNG
state for ``--resume``; a release keeps the weights, the training camera's focal length at the
network input, the training config and the validation metrics (provenance), and by default stores
the learned parameters as float16, halving the file. Loading widens them back into the float32
model exactly (every float16 value is a float32 value), so the released model computes with the
rounded weights in full precision; BatchNorm statistics stay float32.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from depth_estimation_ros.core.models import load_checkpoint, model_from_checkpoint, save_checkpoint


def release(source: str | os.PathLike, output: str | os.PathLike, half: bool = True) -> Path:
    """Write the release of the checkpoint ``source`` to ``output`` (a new file; never overwritten)."""
    output = Path(output)
    if output.exists():
        raise FileExistsError(f"{output} exists; remove it or choose another output")
    state = load_checkpoint(source)
    model = model_from_checkpoint(state, source)
    if half:
        for parameter in model.parameters():
            parameter.data = parameter.data.half()
    training = state["extra"].get("training", {})
    extra = {
        "source": Path(source).name,
        "epoch": training.get("epoch"),
        "metrics": state["extra"].get("metrics", {}),
        "training_config": training.get("config", {}),
        "parameters_dtype": "float16" if half else "float32",
    }
    # the training camera's focal length travels with the weights (None for checkpoints without one)
    return save_checkpoint(
        model, output, input_size=state["input_size"], extra=extra, focal_length=state.get("focal_length")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.release", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="training checkpoint (best.pt or last.pt of a run)")
    parser.add_argument("output", help="release file to write")
    parser.add_argument("--fp32", action="store_true", help="keep float32 parameters (default: float16)")
    args = parser.parse_args(argv)
    try:
        path = release(args.source, args.output, half=not args.fp32)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
