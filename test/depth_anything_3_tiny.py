"""Depth Anything 3's real network (the ``depth-anything-3`` package's own code) from a tiny configuration,
exported with the signature of the ika export the Nav2 tutorial downloads: ``image`` (1, 3, 280, 504)
→ ``depth``, ``sky`` (1, 1, 280, 504) (:mod:`benchmarks.card_graphs` builds it). Run as a script in its
own process, with the package's folder and the repository on PYTHONPATH (``make test`` installs the
package apart: see the Makefile's DA3 target):

    python depth_anything_3_tiny.py OUT_DIR INPUT.npy

writes ``OUT_DIR/da3.onnx`` and ``OUT_DIR/torch.npz`` (the network's own ``depth`` and ``sky`` for
INPUT, the normalised image the export is traced with). Random weights (seed 0), the sky head's
bias shifted so that half the input is sky.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.card_graphs import IkaExport, depth_anything_3_metric


def sky_over_half(model: IkaExport, x: torch.Tensor) -> None:
    """Shift the sky head's last bias so that half of ``x`` scores ≥ 0.3 (random weights put all of it
    below): a test then sees both sides of the sky threshold."""
    head = model.net.head.scratch.sky_output_conv2
    logits = []
    hook = head.register_forward_hook(lambda m, i, o: logits.append(o))
    with torch.no_grad():
        model(x)
        hook.remove()
        head[-1].bias += 0.3 - logits[0].median()


def main(out: Path, image: Path) -> None:
    torch.manual_seed(0)
    model = depth_anything_3_metric(tiny=True)
    x = torch.from_numpy(np.load(image)).float()
    sky_over_half(model, x)
    with torch.no_grad():
        depth, sky = model(x)
    np.savez(out / "torch.npz", depth=depth.numpy(), sky=sky.numpy())
    torch.onnx.export(model, (x,), out / "da3.onnx", input_names=["image"], output_names=["depth", "sky"],
                      dynamo=False, opset_version=17)  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
