"""What every depth network here shares: input normalisation, the size rule and its config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from depth_estimation_ros.core.card import InputRule, ModelCard


class DepthNet(nn.Module):
    """Base of the depth networks.

    Contract: ``forward`` takes RGB in [0, 1] of shape (B, 3, H, W), with H and W multiples of
    ``size_divisor``, and normalises it internally. In eval mode it returns a dict with
    ``depth`` (B, 1, H, W) in metres and, where the model has one, ``confidence`` in [0, 1];
    in training mode the dict also holds what the losses need.

    ``config`` holds the keyword arguments that rebuild the model with ``build_model``.
    """

    size_divisor: int = 32
    has_confidence: bool = False

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], min_depth: float, max_depth: float):
        super().__init__()
        if not 0 < min_depth < max_depth:
            raise ValueError(f"depth range must satisfy 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.config: dict[str, Any] = {}
        # Focal length (px) of the training camera at the network input; None: unknown (see card()).
        self.focal_length: float | None = None

    @property
    def normalization(self) -> dict[str, list[float]]:
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    def card(self, input_size: tuple[int, int]) -> ModelCard:
        """This network's model card at ``input_size`` (h, w): metric depth, scaled by the ratio of
        focal lengths when the training camera is known (``focal_length``)."""
        return ModelCard(
            output="metric_depth",
            input=InputRule(int(input_size[0]), int(input_size[1])),
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            has_confidence=self.has_confidence,
            focal_rule="ratio" if self.focal_length else "none",
            focal_length=self.focal_length,
            normalization=self.normalization,
            family=self.config.get("name", type(self).__name__.lower()),
            source="depth_estimation_ros",
        )

    def check_input(self, image: torch.Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an RGB batch of shape (B, 3, H, W), got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        d = self.size_divisor
        if h % d or w % d:
            raise ValueError(
                f"input size {h}x{w} (HxW) is not supported by {type(self).__name__}: height and width "
                f"must be multiples of {d} (e.g. {max(d, h // d * d)}x{max(d, w // d * d)})"
            )

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        self.check_input(image)
        return (image - self.mean) / self.std
