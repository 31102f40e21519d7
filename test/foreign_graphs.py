"""ONNX graphs with the exact signatures of the exports users run (the families' own code does not
install here): names, shapes, dtypes and value conventions as each family's export code and the ROS
nodes that run them have them (see the built-in cards in depth_estimation_ros/data/cards). Each is a
small torch module whose outputs are simple functions of its inputs, so a test can compute by hand
what the family's own post-processing makes of them. Exported at test time; nothing is committed.

* DA3 metric (ika export): ``image`` (1, 3, 280, 504), RGB normalised with ImageNet mean/std outside
  the graph → ``depth`` = 1 + 4·red, ``sky`` = ReLU score 2·(green − 0.5) (red, green in [0, 1]).
* Metric3D v2 ViT: ``image`` (1, 3, 616, 1064) RGB in [0, 255] (normalised inside the real graph) →
  ``pred_depth`` = 10·red (canonical depth at f = 1000 px).
* UniDepth V2: ``rgbs`` (1, 3, 462, 616) ImageNet-normalised and ``rays`` (1, 3, 462, 616) unit rays
  → ``pts_3d`` = rays · (2 + red) (so z = ray_z · radius), ``confidence`` = 3·(1 − green) (an
  uncertainty), ``intrinsics`` (1, 3, 3).
* MoGe-2 (static export, ika's 291x518): ``image`` (1, 3, 291, 518) RGB in [0, 1] (normalised inside
  the real graph) → ``points`` (1, 291, 518, 3) up to scale and z-shift, ``mask`` (1, 291, 518),
  ``metric_scale`` (1,).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _rgb01(normalised: torch.Tensor) -> torch.Tensor:
    return normalised * IMAGENET_STD + IMAGENET_MEAN


class DA3Metric(nn.Module):
    def forward(self, image):
        rgb = _rgb01(image)
        return 1 + 4 * rgb[:, 0:1], torch.relu(2 * (rgb[:, 1:2] - 0.5))


class Metric3D(nn.Module):
    def forward(self, image):
        return 10 * image[:, 0:1] / 255


class UniDepthV2(nn.Module):
    def __init__(self, with_camera: bool = True):
        super().__init__()
        self.with_camera = with_camera

    def forward(self, rgbs, rays=None):
        rgb = _rgb01(rgbs)
        if rays is None:  # its own camera: straight ahead everywhere
            rays = torch.cat([torch.zeros_like(rgb[:, :2]), torch.ones_like(rgb[:, :1])], 1)
        radius = 2 + rgb[:, 0:1]
        intrinsics = torch.eye(3).unsqueeze(0) * rgb.mean()
        return rays * radius, 3 * (1 - rgb[:, 1:2]), intrinsics


class MoGe2(nn.Module):
    """Points of a scene of depth 2 + 2·red seen by a camera baked in (f = 400 px, centre
    ((518 − 1)/2, (291 − 1)/2) at 291x518), divided by the scale 2.5 and less the z-shift 0.8, as
    MoGe's affine-invariant map; mask = green (a probability); metric_scale 2.5."""

    def forward(self, image):
        depth = 2 + 2 * image[0, 0]  # (H, W)
        h, w = depth.shape
        v = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
        u = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
        a, b = (u - (w - 1) / 2) / 400, (v - (h - 1) / 2) / 400
        points = torch.stack([depth * a / 2.5, depth * b / 2.5, depth / 2.5 - 0.8], -1)[None]
        return points, image[:, 1], torch.full((1,), 2.5)


GRAPHS = {  # name → (module, inputs (name, shape), outputs)
    "depth_anything_3_metric": (DA3Metric, [("image", (1, 3, 280, 504))], ["depth", "sky"]),
    "metric3d_v2_vit": (Metric3D, [("image", (1, 3, 616, 1064))], ["pred_depth"]),
    "unidepth_v2": (UniDepthV2, [("rgbs", (1, 3, 462, 616)), ("rays", (1, 3, 462, 616))],
                    ["pts_3d", "confidence", "intrinsics"]),
    "unidepth_v2_no_camera": (lambda: UniDepthV2(False), [("rgbs", (1, 3, 462, 616))],
                              ["pts_3d", "confidence", "intrinsics"]),
    "moge_2": (MoGe2, [("image", (1, 3, 291, 518))], ["points", "mask", "metric_scale"]),
}  # fmt: skip


def export(name: str, path: Path) -> Path:
    """The stand-in graph of the built-in card ``name``, written to ``path``."""
    factory, inputs, outputs = GRAPHS[name]
    examples = tuple(torch.rand(shape) for _, shape in inputs)
    torch.onnx.export(factory().eval(), examples, str(path), input_names=[n for n, _ in inputs],
                      output_names=outputs, opset_version=17, dynamo=False)  # fmt: skip
    return path
