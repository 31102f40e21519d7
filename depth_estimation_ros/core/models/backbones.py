"""Backbone feature extractors from timm, with explicit handling of pretrained weights.

``pretrained`` is ``False`` (random initialisation: tests, or weights from a checkpoint), ``True``
(timm's ImageNet weights from the local Hugging Face cache, downloading only if the user's
machine can), or a path to a ``.pth``/``.safetensors`` state dict of the classification model.
Local files load with ``weights_only=True``: they are never unpickled as arbitrary objects.
"""

from __future__ import annotations

import os
from pathlib import Path

import timm
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``torch.save`` file, without unpickling objects."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated or a pickle with objects
        raise ValueError(f"cannot read weights from {path}: {exc}") from exc
    for key in ("state_dict", "model"):  # common wrappers around a state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def create_backbone(
    name: str,
    *,
    pretrained: bool | str | os.PathLike = False,
    out_indices: tuple[int, ...] | None = None,
    output_stride: int | None = None,
) -> nn.Module:
    """A timm ``features_only`` model; ``feature_info`` gives its channels and strides."""
    kwargs = {"features_only": True}
    if out_indices is not None:
        kwargs["out_indices"] = out_indices
    if output_stride is not None:
        kwargs["output_stride"] = output_stride
    if name not in timm.list_models():
        raise ValueError(f"unknown backbone {name!r}: expected a timm model name, e.g. resnet50")
    if pretrained is True:
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except Exception as exc:
            raise RuntimeError(
                f"ImageNet weights for backbone {name!r} are not in the local cache and could not be "
                f"downloaded ({type(exc).__name__}: {exc}). Pass pretrained=/path/to/weights.pth "
                "(a state dict of the timm classification model), or pretrained=False."
            ) from exc
    model = timm.create_model(name, pretrained=False, **kwargs)
    if pretrained:
        state = read_state_dict(pretrained)
        missing, _ = model.load_state_dict(state, strict=False)  # classifier keys are expected extras
        if missing:
            raise ValueError(
                f"weights in {pretrained} do not fit backbone {name!r}: {len(missing)} missing "
                f"tensors, e.g. {missing[:3]}"
            )
    return model


def backbone_normalization(backbone: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input mean/std the backbone's pretrained weights expect (ImageNet's by default)."""
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))


def dilate_every_block(encoder: nn.Module, stages: tuple[str, ...] = ("layer3", "layer4")) -> None:
    """Give every 3×3 convolution of a dilated ResNet stage that stage's dilation, in place.

    timm's output-stride-8 ResNet builds the first block of a dilated stage with the previous
    stage's dilation (DeepLab's layout: stage 3 starts at 1, stage 4 at 2). The ACAN reference,
    and the paper's "2-dilated and 4-dilated residual blocks", dilate every block of stage 3 by 2
    and of stage 4 by 4. Only the dilation and padding of stride-1 convolutions change, so no
    weight changes shape. Encoders without ResNet stages (``layer3``, ``layer4``) are left as built.
    """
    for name in stages:
        stage = getattr(encoder, name, None)
        if stage is None:
            return
        convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        dilation = max((m.dilation[0] for m in convs), default=1)
        for conv in convs:
            if conv.stride == (1, 1) and conv.dilation[0] < dilation:
                conv.dilation, conv.padding = (dilation, dilation), (dilation, dilation)
