"""ACAN: Attention-based Context Aggregation Network (Chen et al., 2019).

Dilated ResNet encoder (output stride 8) → context aggregation module (CAM: pixel-level
self-attention, eq. 2–4, beside image-level pooling) → 1×1 classifier with 2K ordinal channels
→ bilinear ×8 upsampling → ordinal decoding (eq. 12–13) to metres.

Readings of the paper and departures from the public reference code:

* The input is normalised with the backbone's ImageNet mean/std (the reference feeds RGB/255).
* Key and query share one transform φ = 1×1 conv → BN → ReLU (paper §III-B); C_K = 512.
  The value transform ψ is 3×3 conv → ReLU → 1×1 conv → ReLU with C_V equal to the encoder's
  channels (2048 for ResNet-50/101), as in the reference; ``value_channels`` can shrink it.
* Image pooling uses global (adaptive) average pooling, so any input size works; the reference
  fixes the kernel to the training crop. Its MLP is 2048→512→512 with ReLU and dropout.
* Fusion of the two branches: concatenation → 1×1 conv (512) → ReLU → dropout → 1×1
  classifier with 2K channels. The paper does not give the width; 512 follows the reference.
* The attention map W (B, N, N), N = h·w at stride 8, is returned in training mode for the
  attention loss (eq. 6–7).
* Depth is decoded with soft inference (eq. 13) by default; ``decode="hard"`` gives eq. 12.
  Bins and their decoding are defined in :mod:`depth_estimation_ros.ordinal`.
* Confidence is the ordinal probability mass within one bin of the estimate
  (:meth:`OrdinalBins.confidence`).
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from ..ordinal import OrdinalBins
from .backbones import backbone_normalization, create_backbone
from .base import DepthNet


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
        out_channels: int = 512,
        dropout: float = 0.1,
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
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(in_channels, pool_channels),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(pool_channels, pool_channels),
            nn.ReLU(True),
        )
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
        pooled = self.pool(x)[:, :, None, None].expand(-1, -1, h, w)
        return self.fuse(torch.cat([context, pooled], 1)), attention


class ACAN(DepthNet):
    """ACAN with an ordinal classifier over ``num_bins`` log-spaced bins.

    Args:
        backbone: timm model name; resnet50/resnet101 in the paper, lighter ones (resnet18,
            efficientnet_b0, mobilenetv3_large_100, …) for deployment. Must support output stride 8.
        num_bins: ordinal bins K (80 in the paper).
        min_depth, max_depth: range of the bins in metres (NYU 0.72–10, KITTI 1.98–80 in the reference).
        pretrained: False, True (timm ImageNet weights) or a path to backbone weights.
        key_channels, value_channels, pool_channels, fuse_channels, dropout: CAM widths.
        decode: "soft" (eq. 13) or "hard" (eq. 12) inference.
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
        fuse_channels: int = 512,
        dropout: float = 0.1,
        decode: str = "soft",
    ):
        if decode not in ("soft", "hard"):
            raise ValueError(f"decode must be 'soft' or 'hard', got {decode!r}")
        encoder = create_backbone(backbone, pretrained=pretrained, output_stride=8, out_indices=(-1,))
        super().__init__(*backbone_normalization(encoder), min_depth, max_depth)
        stride = encoder.feature_info.reduction()[-1]
        if stride != 8:
            raise ValueError(f"backbone {backbone!r} gives output stride {stride}; ACAN needs 8 (dilation)")
        self.encoder = encoder
        self.bins = OrdinalBins(min_depth, max_depth, num_bins)
        self.decode = decode
        self.cam = ContextAggregation(
            encoder.feature_info.channels()[-1], key_channels, value_channels, pool_channels, fuse_channels, dropout
        )
        self.classifier = nn.Conv2d(fuse_channels, 2 * num_bins, 1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.encoder(self.normalize(image))[-1]
        features, attention = self.cam(x)
        logits = F.interpolate(self.classifier(features), size=image.shape[-2:], mode="bilinear", align_corners=False)
        probs = self.bins.probabilities(logits)
        decode = self.bins.decode_soft if self.decode == "soft" else self.bins.decode_hard
        out = {"depth": decode(probs), "confidence": self.bins.confidence(probs)}
        if self.training:
            out.update(logits=logits, probabilities=probs, attention=attention)
        return out
