"""MSFNet: Multi-Scale Features Network (Pei, "MSFNet: Multi-scale features network for monocular
depth estimation", 2021).

Encoder pyramid (SENet-154 in the paper) → DenseDepth-style decoder, with an enhanced diverse
attention module (EDA, eq. 2) on stage 3 and an upsample-stage fusion module (USF) whose
reduced-dimension refinement (RDR) output joins the decoder. Two 1×1 auxiliary heads (after
EDA and after USF) feed the auxiliary L1 loss (eq. 7). The decoder predicts at half the input
resolution; in eval mode depth is upsampled bilinearly to the input size.

The paper leaves these choices open; this module reads them as follows:

* Stages: the five encoder outputs at strides 2, 4, 8, 16, 32 are stages 1–5; "stage 3" (EDA's
  input) is the stride-8 output.
* USF inputs: the EDA output and stages 2–5 ("the output of the EDA module and another four
  stages"), as in the multi-scale fusion of Hu et al. that the paper builds on; stage 1 (stride
  2) only feeds the decoder, which keeps USF cheap.
* Up-blocks: each input gets an ESPCN sub-pixel block (3×3 conv to ``usf_channels·r²``, BN,
  ReLU, pixel shuffle by ``r``) with ``r = stride / 4``, so all land at stride 4; the adaptive
  average pooling of the paper then brings them to exactly the stride-4 size (a no-op when
  H and W are multiples of 32). Stage 2 (already at stride 4) gets ``r = 1``.
* USF fusion: concatenation → 3×3 conv → BN → ReLU (``usf_channels`` × 4 wide) → adaptive
  pooling → RDR. The result is concatenated into the decoder at stride 4 beside the stage-2 skip.
* RDR (paper Fig. 4): 1×1 squeeze to half width → split in halves → instance norm on one half,
  batch norm on the other, each followed by a separable 3×1 then 1×3 conv with ReLU →
  concatenate → 3×3 conv back to the input width → add the RDR input → 1×1 conv.
* EDA output is used only by USF and its auxiliary head; the decoder keeps the plain stage-3 skip.
* Decoder: DenseDepth's: 1×1 conv on stage 5 to half its width, then four up-steps (bilinear
  ×2 to the skip's size, concatenate, two 3×3 convs with LeakyReLU 0.2), each halving the width,
  and a 3×3 conv to one channel at stride 2.
* Output: ``min_depth + (max_depth − min_depth)·sigmoid(x)``: metres, bounded to the depth range.
  The losses work on metres. Auxiliary heads use the same mapping, at the main output's size.
* Initialisation (paper §IV): every layer outside the pretrained encoder is Xavier-initialised
  (Glorot uniform weights, zero bias; norm layers at scale 1, shift 0).
* Confidence: the paper has none, so the model publishes none.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from depth_estimation_ros.core.models.backbones import backbone_normalization, create_backbone
from depth_estimation_ros.core.models.base import DepthNet
from depth_estimation_ros.core.models.registry import register_model


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(True),
    )


def xavier_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero bias for convolutions (the paper's Xavier initialisation)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def fit_to(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """The paper's adaptive pooling: bring a map to ``size``; nothing to do when it already fits."""
    return x if tuple(x.shape[-2:]) == tuple(size) else F.adaptive_avg_pool2d(x, size)


class EnhancedDiverseAttention(nn.Module):
    """EDA (eq. 2): ``M = σ(f7×7([X_avg − X_min; X_max − X_min])) ⊙ X``."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_max = x.amax(1, keepdim=True)
        x_min = x.amin(1, keepdim=True)
        x_avg = x.mean(1, keepdim=True)
        return torch.sigmoid(self.conv(torch.cat([x_avg - x_min, x_max - x_min], 1))) * x


class SubPixelUp(nn.Module):
    """Up-block with an efficient sub-pixel convolution (Shi et al.): conv to C·r², pixel shuffle r."""

    def __init__(self, in_channels: int, out_channels: int, scale: int):
        super().__init__()
        self.block = nn.Sequential(conv_bn_relu(in_channels, out_channels * scale * scale), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class ReducedDimensionRefinement(nn.Module):
    """RDR (paper Fig. 4): squeeze, instance-norm/batch-norm halves with separable convs, residual."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        half = channels // 2
        self.squeeze = nn.Conv2d(channels, 2 * (half // 2), 1)
        q = half // 2

        def branch(norm: nn.Module) -> nn.Sequential:
            return nn.Sequential(
                norm,
                nn.Conv2d(q, q, (3, 1), padding=(1, 0)),
                nn.ReLU(True),
                nn.Conv2d(q, q, (1, 3), padding=(0, 1)),
                nn.ReLU(True),
            )

        self.instance = branch(nn.InstanceNorm2d(q, affine=True))
        self.batch = branch(nn.BatchNorm2d(q))
        self.merge = nn.Conv2d(2 * q, channels, 3, padding=1)
        self.project = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.squeeze(x).chunk(2, dim=1)
        refined = self.merge(torch.cat([self.instance(a), self.batch(b)], 1))
        return self.project(refined + x)


class UpsampleStageFusion(nn.Module):
    """USF: sub-pixel up-blocks to a common stride, adaptive pooling, a conv block, RDR."""

    def __init__(self, in_channels: list[int], strides: list[int], channels: int = 16, target_stride: int = 4):
        super().__init__()
        self.ups = nn.ModuleList(
            SubPixelUp(c, channels, max(1, s // target_stride)) for c, s in zip(in_channels, strides, strict=True)
        )
        fused = channels * 4
        self.fuse = conv_bn_relu(channels * len(in_channels), fused)
        self.refine = ReducedDimensionRefinement(fused, fused)
        self.out_channels = fused

    def forward(self, features: list[torch.Tensor], size: torch.Size) -> torch.Tensor:
        x = torch.cat([fit_to(up(f), size) for up, f in zip(self.ups, features, strict=True)], 1)
        return self.refine(fit_to(self.fuse(x), size))


class UpStep(nn.Module):
    """DenseDepth up-step: bilinear ×2 to the skip's size, concatenate, two 3×3 convs + LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, True),
        )

    def forward(self, x: torch.Tensor, *skips: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skips[0].shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, *skips], 1))


@register_model("msfnet")
class MSFNet(DepthNet):
    """MSFNet with EDA, USF/RDR, a DenseDepth decoder and two auxiliary heads.

    Args:
        backbone: timm model name with a five-level pyramid at strides 2…32; ``legacy_senet154``
            (the original SENet-154) in the paper, lighter ones (resnet18, efficientnet_b0,
            mobilenetv3_large_100, …) for deployment.
        min_depth, max_depth: output range in metres (NYU 0.1–10, KITTI 0.1–80 are usual).
        pretrained: False, True (timm ImageNet weights) or a path to backbone weights.
        usf_channels: width of each USF up-block output (the fused width is 4×).
        decoder_width: decoder width as a fraction of the deepest encoder width (DenseDepth: 0.5).
    """

    size_divisor = 32

    def __init__(
        self,
        backbone: str = "legacy_senet154",
        min_depth: float = 0.1,
        max_depth: float = 10.0,
        pretrained: bool | str | os.PathLike = False,
        usf_channels: int = 16,
        decoder_width: float = 0.5,
    ):
        encoder = create_backbone(backbone, pretrained=pretrained, out_indices=(0, 1, 2, 3, 4))
        super().__init__(*backbone_normalization(encoder), min_depth, max_depth)
        strides = encoder.feature_info.reduction()
        if strides != [2, 4, 8, 16, 32]:
            raise ValueError(f"backbone {backbone!r} has feature strides {strides}; MSFNet needs [2, 4, 8, 16, 32]")
        self.encoder = encoder
        c1, c2, c3, c4, c5 = encoder.feature_info.channels()
        self.eda = EnhancedDiverseAttention()
        self.usf = UpsampleStageFusion([c3, c2, c3, c4, c5], [8, 4, 8, 16, 32], usf_channels)
        width = int(c5 * decoder_width)
        self.bottleneck = nn.Conv2d(c5, width, 1)
        self.up1 = UpStep(width + c4, width // 2)
        self.up2 = UpStep(width // 2 + c3, width // 4)
        self.up3 = UpStep(width // 4 + c2 + self.usf.out_channels, width // 8)
        self.up4 = UpStep(width // 8 + c1, width // 16)
        self.head = nn.Conv2d(width // 16, 1, 3, padding=1)
        self.aux_eda = nn.Conv2d(c3, 1, 1)
        self.aux_usf = nn.Conv2d(self.usf.out_channels, 1, 1)
        for name, child in self.named_children():
            if name != "encoder":
                xavier_init(child)

    def to_metres(self, x: torch.Tensor) -> torch.Tensor:
        return self.min_depth + (self.max_depth - self.min_depth) * torch.sigmoid(x)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        f1, f2, f3, f4, f5 = self.encoder(self.normalize(image))
        attended = self.eda(f3)
        fused = self.usf([attended, f2, f3, f4, f5], f2.shape[-2:])
        x = self.up1(self.bottleneck(f5), f4)
        x = self.up2(x, f3)
        x = self.up3(x, f2, fused)
        x = self.up4(x, f1)
        half = self.to_metres(self.head(x))  # half the input resolution
        out = {"depth": F.interpolate(half, size=image.shape[-2:], mode="bilinear", align_corners=False)}
        if self.training:
            size = half.shape[-2:]

            def aux(head: nn.Module, feature: torch.Tensor) -> torch.Tensor:
                return self.to_metres(F.interpolate(head(feature), size=size, mode="bilinear", align_corners=False))

            out.update(depth_half=half, aux=[aux(self.aux_eda, attended), aux(self.aux_usf, fused)])
        return out
