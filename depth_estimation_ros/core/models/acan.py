"""ACAN: Attention-based Context Aggregation Network (Chen et al., 2019).

Dilated ResNet encoder (output stride 8) → context aggregation module (CAM: pixel-level
self-attention, eq. 2–4, beside image-level pooling) → 1×1 classifier with 2K ordinal channels
→ bilinear ×8 upsampling → ordinal decoding (eq. 12–13) to metres.

By default the network is built as the public reference code (miraiaroha/ACAN) builds it:

* Encoder: every residual block of stage 3 dilated by 2 and of stage 4 by 4 (the paper's
  "2-dilated and 4-dilated residual blocks"). timm's output-stride-8 ResNet leaves the first
  block of each dilated stage at the previous dilation (1 and 2); ``full_dilation=True`` patches
  those two blocks (timm ResNets only; other backbones keep timm's layout).
* Key and query share one transform φ = 1×1 conv → BN → ReLU (paper §III-B); C_K = 512. The
  value transform ψ is 3×3 conv → ReLU → 1×1 conv → ReLU with C_V equal to the encoder's
  channels (2048 for ResNet-50/101); ``value_channels`` can shrink it.
* Image pooling → dropout → MLP 2048→512→512 with ReLU, broadcast to the feature grid.
* Fusion: concatenation → dropout → 1×1 conv (2048 wide) → ReLU → dropout → 1×1 classifier to
  2K channels. Dropout is 0.5 in these three places.
* The ×8 upsampling of the logits is bilinear with ``align_corners=True``.
* New layers: Kaiming-normal convolutions (fan-in, ReLU gain) with zero bias, BN at 1/0; the
  linear layers keep PyTorch's default, as in the reference.

Departures from the reference, each with its reason (docs/models.md tables them all):

* The input is normalised with the backbone's ImageNet mean/std (the reference feeds RGB/255,
  which does not match the pretrained weights).
* Image pooling is global (adaptive) average pooling, so any input size works; the reference
  fixes the kernel to the training crop. Its dropout is channel dropout on the features before
  pooling, which equals the reference's channel dropout after pooling in distribution.
* φ's convolution has no bias (it is followed by BN, which absorbs it).
* Bins and their decoding are defined in :mod:`depth_estimation_ros.core.ordinal` (no half-bin bias).

Lighter variants: ``fuse_channels``, ``key_channels``, ``value_channels``, ``pool_channels`` and
``dropout`` by keyword, and any timm backbone with output stride 8.

The attention map W (B, N, N), N = h·w at stride 8, is returned in training mode for the
attention loss (eq. 6–7). Depth is decoded with soft inference (eq. 13) by default;
``decode="hard"`` gives eq. 12. Confidence is the ordinal probability mass within one bin of the
estimate (:meth:`OrdinalBins.confidence`).

Checkpoints saved before ``align_corners``, ``full_dilation`` and ``reference_init`` existed were
built with timm's dilation, ``align_corners=False`` and PyTorch's default initialisation:
:data:`LEGACY_DEFAULTS` rebuilds them that way.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from depth_estimation_ros.core.models.backbones import backbone_normalization, create_backbone, dilate_every_block
from depth_estimation_ros.core.models.base import DepthNet
from depth_estimation_ros.core.models.registry import register_model
from depth_estimation_ros.core.ordinal import OrdinalBins

# Options added after checkpoint format 1 shipped: a stored config without them was built this way.
LEGACY_DEFAULTS = {"align_corners": False, "full_dilation": False, "reference_init": False}


def kaiming_init(module: nn.Module) -> None:
    """The reference's initialisation of new layers: Kaiming-normal convolutions, BN at 1 and 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ContextAggregation(nn.Module):
    """CAM: pixel-level self-attention beside image-level pooling, concatenated and fused.

    Returns the fused features (B, out_channels, h, w) and the attention map W (B, N, N).
    """

    def __init__(
        self,
        in_channels: int,
        key_channels: int = 512,
        value_channels: int | None = None,
        pool_channels: int = 512,
        out_channels: int = 2048,
        dropout: float = 0.5,
    ):
        super().__init__()
        value_channels = value_channels or in_channels
        self.key_channels = key_channels
        # φ: shared by key and query (paper §III-B).
        self.key = nn.Sequential(
            nn.Conv2d(in_channels, key_channels, 1, bias=False), nn.BatchNorm2d(key_channels), nn.ReLU(True)
        )
        self.value = nn.Sequential(
            nn.Conv2d(in_channels, value_channels, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(value_channels, value_channels, 1),
            nn.ReLU(True),
        )
        # Channel dropout before global pooling = the reference's channel dropout after it.
        self.pool_dropout = nn.Dropout2d(dropout)
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(in_channels, pool_channels),
            nn.ReLU(True),
            nn.Identity(),  # keeps the parameter indices of checkpoint format 1 (a dropout sat here)
            nn.Linear(pool_channels, pool_channels),
            nn.ReLU(True),
        )
        self.fuse_dropout = nn.Dropout2d(dropout)
        self.fuse = nn.Sequential(
            nn.Conv2d(value_channels + pool_channels, out_channels, 1), nn.ReLU(True), nn.Dropout2d(dropout)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        key = self.key(x).flatten(2)  # (B, C_K, N)
        # eq. 2–3: w_ij = softmax_j(φ(x_i)·φ(x_j) / √C_K)
        attention = torch.softmax(key.transpose(1, 2) @ key / math.sqrt(self.key_channels), dim=-1)
        value = self.value(x).flatten(2)  # (B, C_V, N)
        context = (value @ attention.transpose(1, 2)).view(b, -1, h, w)  # eq. 4: c_i = Σ_j w_ij ψ(x_j)
        pooled = self.pool(self.pool_dropout(x))[:, :, None, None].expand(-1, -1, h, w)
        return self.fuse(self.fuse_dropout(torch.cat([context, pooled], 1))), attention


@register_model("acan")
class ACAN(DepthNet):
    """ACAN with an ordinal classifier over ``num_bins`` log-spaced bins.

    Args:
        backbone: timm model name; resnet50/resnet101 in the paper, lighter ones (resnet18,
            efficientnet_b0, mobilenetv3_large_100, …) for deployment. Must support output stride 8.
        num_bins: ordinal bins K (80 in the paper).
        min_depth, max_depth: range of the bins in metres (NYU 0.72–10, KITTI 1.98–80 in the reference).
        pretrained: False, True (timm ImageNet weights) or a path to backbone weights.
        key_channels, value_channels, pool_channels, fuse_channels: CAM widths (reference: 512,
            encoder width, 512, 2048).
        dropout: probability in the CAM's three dropout layers (reference: 0.5).
        decode: "soft" (eq. 13) or "hard" (eq. 12) inference.
        align_corners: of the bilinear ×8 logit upsampling (reference: True).
        full_dilation: dilate every block of stages 3 and 4 (2 and 4) as the reference does;
            False keeps timm's output-stride-8 layout (first block of each at the previous dilation).
        reference_init: Kaiming-initialise the new layers as the reference does; False keeps
            PyTorch's default initialisation (how models were built before this option).
    """

    size_divisor = 8
    has_confidence = True

    def __init__(
        self,
        backbone: str = "resnet50",
        num_bins: int = 80,
        min_depth: float = 0.72,
        max_depth: float = 10.0,
        pretrained: bool | str | os.PathLike = False,
        key_channels: int = 512,
        value_channels: int | None = None,
        pool_channels: int = 512,
        fuse_channels: int = 2048,
        dropout: float = 0.5,
        decode: str = "soft",
        align_corners: bool = True,
        full_dilation: bool = True,
        reference_init: bool = True,
    ):
        if decode not in ("soft", "hard"):
            raise ValueError(f"decode must be 'soft' or 'hard', got {decode!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        encoder = create_backbone(backbone, pretrained=pretrained, output_stride=8, out_indices=(-1,))
        super().__init__(*backbone_normalization(encoder), min_depth, max_depth)
        stride = encoder.feature_info.reduction()[-1]
        if stride != 8:
            raise ValueError(f"backbone {backbone!r} gives output stride {stride}; ACAN needs 8 (dilation)")
        if full_dilation:
            dilate_every_block(encoder)
        self.encoder = encoder
        self.bins = OrdinalBins(min_depth, max_depth, num_bins)
        self.decode = decode
        self.align_corners = bool(align_corners)
        self.cam = ContextAggregation(
            encoder.feature_info.channels()[-1], key_channels, value_channels, pool_channels, fuse_channels, dropout
        )
        self.classifier = nn.Conv2d(fuse_channels, 2 * num_bins, 1)
        if reference_init:
            kaiming_init(self.cam)
            kaiming_init(self.classifier)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder(self.normalize(image))[-1]
        features, attention = self.cam(x)
        logits = F.interpolate(
            self.classifier(features), size=image.shape[-2:], mode="bilinear", align_corners=self.align_corners
        )
        probs = self.bins.probabilities(logits)
        decode = self.bins.decode_soft if self.decode == "soft" else self.bins.decode_hard
        out = {"depth": decode(probs), "confidence": self.bins.confidence(probs)}
        if self.training:
            out.update(logits=logits, probabilities=probs, attention=attention)
        return out
