"""Random-weight networks of the card-described families at their published widths, with each
export's signature read from its built-in card (input names and size, what each output is), for
``benchmarks.bench_cards``; and Depth Anything 3's own network as the ika export has it.

* Depth Anything 3 metric: the ``depth-anything-3`` package's own modules when it is importable
  (``make test``/``make bench`` install it apart, ``DEPTH_ANYTHING_3_PATH``): DINOv2 ViT-L/14 with
  the metric model's out-layers and its DPT head (features 256), raw depth and sky as the ika export
  returns them (:class:`IkaExport`). Without it, the body below at ViT-L.
* Metric3D v2, UniDepth V2, MoGe-2 (their code does not install here): the encoder at the width of
  the family's small published model (DINOv2 ViT-S/14), and Depth Anything's DPT head in place of
  the family's own decoder (Metric3D's RAFT-style refinement, UniDepth's camera module, MoGe's
  multi-scale head): the encoder's cost is the family's, the decoder's an approximation. The body
  is transformers' ``DepthAnythingForDepthEstimation`` with those widths.

Around the body, :class:`CardGraph` derives every output the card names from the body's depth map
with cheap operations (points = rays · depth, confidence, sky and validity scores, a metric scale,
a K), so the graph has the export's exact inputs and outputs and the estimator's whole road runs.
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

from depth_estimation_ros.core.card import ModelCard

PATCH = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def own_depth_anything_3() -> bool:
    """Whether Depth Anything 3's own package can be imported (put on the path from
    ``DEPTH_ANYTHING_3_PATH``, where ``make`` installs it apart)."""
    folder = os.environ.get("DEPTH_ANYTHING_3_PATH", "")
    if folder and os.path.isfile(os.path.join(folder, ".ready")) and folder not in sys.path:
        sys.path.append(folder)
    try:
        import depth_anything_3.model.da3  # noqa: F401
    except ImportError:
        return False
    return True


class IkaExport(nn.Module):
    """Depth Anything 3 (one view) through its backbone and DPT head, raw depth and sky as
    (1, 1, H, W), as ika's export returns them. The network's own sky fill (the 99th percentile of
    the non-sky depth, ``torch.quantile``, which does not export to ONNX) stays out of the graph:
    the ika node does it after the graph, and this project's card makes sky NaN."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image):
        height, width = image.shape[-2:]
        features, _ = self.net.backbone(image[:, None], cam_token=None, export_feat_layers=[])
        out = self.net.head(features, height, width, patch_start_idx=0)
        return out["depth"], out["sky"]


def depth_anything_3_metric(tiny: bool = False) -> IkaExport:
    """DA3METRIC-LARGE's network (its package's ``configs/da3metric-large.yaml``: ViT-L, out-layers
    4, 11, 17, 23, DPT features 256 on channels 256-1024), or ``tiny``: ViT-S with its first four
    blocks and a DPT head of 32-128 channels. Random weights."""
    from depth_anything_3.model.da3 import DepthAnything3Net
    from depth_anything_3.model.dinov2.dinov2 import DinoV2
    from depth_anything_3.model.dpt import DPT

    torch.manual_seed(0)
    if tiny:
        backbone = DinoV2("vits", out_layers=[0, 1, 2, 3], cat_token=False)
        backbone.pretrained.blocks = backbone.pretrained.blocks[:4]
        head = DPT(dim_in=384, output_dim=1, features=32, out_channels=[32, 64, 128, 128])
    else:
        backbone = DinoV2("vitl", out_layers=[4, 11, 17, 23], cat_token=False)
        head = DPT(dim_in=1024, output_dim=1, features=256, out_channels=[256, 512, 1024, 1024])
    return IkaExport(DepthAnything3Net(backbone, head).eval())


class Body(nn.Module):
    """transformers' Depth Anything (DINOv2 + DPT head) at a published width: ImageNet-normalised
    RGB (1, 3, height, width) → positive depth (1, 1, height, width); an input that is not a multiple
    of the patch is resized to the nearest one and the depth back (MoGe's 291-row export)."""

    def __init__(self, size: str, height: int, width: int):
        super().__init__()
        import transformers as tf

        from benchmarks.bench_pretrained import _dinov2_depth_anything

        widths, backbone = _dinov2_depth_anything(size)
        config = tf.DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=widths["hidden_size"],
                                        neck_hidden_sizes=widths["neck"], fusion_hidden_size=widths["fusion"],
                                        head_hidden_size=widths["head"])  # fmt: skip
        self.net = tf.DepthAnythingForDepthEstimation(config).eval()
        self.size = (height, width)  # the export's: fixed, so the patch grid is too
        self.grid = (max(PATCH, round(height / PATCH) * PATCH), max(PATCH, round(width / PATCH) * PATCH))

    def forward(self, x):
        if self.grid != self.size:
            x = F.interpolate(x, size=self.grid, mode="bilinear", align_corners=False)
        depth = self.net(pixel_values=x).predicted_depth[:, None] + 0.1
        if self.grid != self.size:
            depth = F.interpolate(depth, size=self.size, mode="bilinear", align_corners=False)
        return depth


class CardGraph(nn.Module):
    """A body with the inputs and outputs ``card`` names (see the module docstring)."""

    def __init__(self, body: nn.Module, card: ModelCard):
        super().__init__()
        self.body, self.io, self.card = body, card.graph_io, card
        self.own_normalisation = not card.normalization  # the graph normalises inside, as the export does
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        h, w = card.input.height, card.input.width
        f = 0.8 * w  # the camera MoGe's points are seen with
        v, u = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
        self.register_buffer("directions", torch.stack([u / f, v / f, torch.ones_like(u)], -1)[None])

    def forward(self, image, intrinsics=None):
        io = self.io
        x = image / self.io.value_range if self.own_normalisation else image
        if self.own_normalisation:
            x = (x - self.mean) / self.std
        depth = self.body(x)
        out = {}
        if io.depth:
            out[io.depth] = intrinsics * depth if io.depth_channel == 2 else depth  # UniDepth: rays · depth
        if io.points:
            points = self.directions * depth[:, 0, :, :, None]
            out[io.points] = torch.cat([points[..., :2], points[..., 2:] - 0.5], -1)  # up to a z-shift
            out[io.metric_scale] = depth.mean().reshape(1)
        centred = depth - depth.mean()
        if io.confidence:
            out[io.confidence] = F.softplus(centred)
        if io.sky:
            out[io.sky] = F.relu(centred)
        if io.mask:
            out[io.mask] = torch.sigmoid(centred)[:, 0]
        if io.predicted_intrinsics:
            out[io.predicted_intrinsics] = torch.eye(3)[None] * depth.mean()
        return tuple(out[name] for name in io.output_names)


def build(card: ModelCard, size: str, own_code: bool) -> nn.Module:
    """The family's network with its export's signature: DA3's own (``own_code``) or the body."""
    if own_code:
        return depth_anything_3_metric()
    return CardGraph(Body(size, card.input.height, card.input.width), card).eval()


def example_inputs(card: ModelCard) -> tuple[torch.Tensor, ...]:
    shape = (1, 3, card.input.height, card.input.width)
    return tuple(torch.rand(shape) for _ in card.graph_io.input_names)


def export(module: nn.Module, card: ModelCard, path) -> None:
    """``module`` as an ONNX graph with the card's tensor names (one file: these fit in 2 GiB)."""
    with torch.no_grad():
        torch.onnx.export(module, example_inputs(card), str(path), input_names=card.graph_io.input_names,
                          output_names=card.graph_io.output_names, opset_version=17, dynamo=False)  # fmt: skip
