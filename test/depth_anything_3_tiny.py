"""Depth Anything 3's real network (the ``depth-anything-3`` package's own code) from a tiny configuration,
exported with the signature of the ika export the Nav2 tutorial downloads: ``image`` (1, 3, 280, 504)
→ ``depth``, ``sky`` (1, 1, 280, 504). Run as a script in its own process, with the package's folder on
PYTHONPATH (``make test`` installs it apart: see the Makefile's DA3 target):

    python depth_anything_3_tiny.py OUT_DIR INPUT.npy

writes ``OUT_DIR/da3.onnx`` and ``OUT_DIR/torch.npz`` (the network's own ``depth`` and ``sky`` for
INPUT, the normalised image the export is traced with).

Tiny: DINOv2 ViT-S with its first four blocks (the metric model's four out-layers) and a DPT head
with 32-128 channels instead of 256-1024; the same modules, activations (depth ``exp``, sky ReLU)
and post-processing as DA3METRIC-LARGE, random weights (seed 0), the sky head's bias shifted so
that half the input is sky.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from depth_anything_3.model.da3 import DepthAnything3Net
from depth_anything_3.model.dinov2.dinov2 import DinoV2
from depth_anything_3.model.dpt import DPT


class IkaExport(torch.nn.Module):
    """One view through the backbone and the DPT head, their raw depth and sky as (1, 1, H, W). The
    network's own sky fill (99th percentile of the non-sky depth, ``torch.quantile``, which does not
    export to ONNX) stays out of the graph: the ika node does it after the graph, on the GPU."""

    def __init__(self, net: DepthAnything3Net):
        super().__init__()
        self.net = net

    def forward(self, image):
        height, width = image.shape[-2:]
        features, _ = self.net.backbone(image[:, None], cam_token=None, export_feat_layers=[])
        out = self.net.head(features, height, width, patch_start_idx=0)
        return out["depth"], out["sky"]


def tiny_metric_network() -> DepthAnything3Net:
    torch.manual_seed(0)
    backbone = DinoV2("vits", out_layers=[0, 1, 2, 3], cat_token=False)
    backbone.pretrained.blocks = backbone.pretrained.blocks[:4]
    head = DPT(dim_in=384, output_dim=1, features=32, out_channels=[32, 64, 128, 128])
    return DepthAnything3Net(backbone, head).eval()


def sky_over_half(model: IkaExport, x: torch.Tensor) -> None:
    """Shift the sky head's last bias so that half of ``x`` scores ≥ 0.3 (random weights put all of it
    below): a test then sees both sides of the sky threshold."""
    last = model.net.head.scratch.sky_output_conv2[-1]
    logits = []
    hook = model.net.head.scratch.sky_output_conv2.register_forward_hook(lambda m, i, o: logits.append(o))
    with torch.no_grad():
        model(x)
        hook.remove()
        last.bias += 0.3 - logits[0].median()


def main(out: Path, image: Path) -> None:
    model = IkaExport(tiny_metric_network())
    x = torch.from_numpy(np.load(image)).float()
    sky_over_half(model, x)
    with torch.no_grad():
        depth, sky = model(x)
    np.savez(out / "torch.npz", depth=depth.numpy(), sky=sky.numpy())
    torch.onnx.export(model, (x,), out / "da3.onnx", input_names=["image"], output_names=["depth", "sky"],
                      dynamo=False, opset_version=17)  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
