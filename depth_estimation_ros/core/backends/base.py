"""What every inference backend shares: the model's description and the call interface."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from functools import cached_property

import cv2
import numpy as np

from depth_estimation_ros.core.card import ModelCard, card_of
from depth_estimation_ros.core.validation import parse_json

METADATA_KEY = "depth_estimation_ros"  # ONNX metadata_props key / engine sidecar content


class DependencyError(RuntimeError):
    """An optional library (TensorRT, ONNX Runtime) or device (CUDA GPU) that a request needs is missing."""


@dataclass(frozen=True)
class ModelInfo:
    """What a deployed graph computes: enough to pre- and post-process without the checkpoint.

    The graph takes ``image`` (batch, 3, H, W) float32 RGB in [0, 1] and returns ``depth``
    (batch, 1, H, W) metres and, if ``has_confidence``, ``confidence`` in [0, 1]. Normalisation
    and ordinal decoding are inside the graph; ``normalization`` is recorded for reference.
    """

    name: str
    input_height: int
    input_width: int
    min_depth: float
    max_depth: float
    has_confidence: bool
    batch: int = 1
    config: dict = field(default_factory=dict)
    normalization: dict = field(default_factory=dict)
    version: str = ""
    card: dict = field(default_factory=dict)  # a ModelCard as a dict; empty in files from before cards
    dynamic: bool = False  # the backend runs any input size (the card's input rule picks it per frame)

    def __post_init__(self):
        """Metadata comes from files: refuse values no graph can have (and NaN, inf)."""
        sizes = (self.input_height, self.input_width, self.batch)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes):
            raise ValueError(f"input size and batch must be positive integers, got {sizes}")
        depths = (self.min_depth, self.max_depth)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in depths) or not 0 < depths[0] < depths[1]:
            raise ValueError(f"depth range must be finite with 0 < min < max, got {list(depths)}")
        if not isinstance(self.has_confidence, bool) or not isinstance(self.name, str):
            raise ValueError("name must be a string and has_confidence a boolean")
        if not isinstance(self.dynamic, bool):
            raise ValueError(f"dynamic must be a boolean, got {self.dynamic!r}")
        for name in ("card", "config", "normalization"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a mapping, got {type(getattr(self, name)).__name__}")
        if self.card:
            card = ModelCard.from_dict(self.card, self.name)  # refuse a bad card where it enters
            if self.dynamic and card.input.fixed:  # a graph of any size whose card says one size
                raise ValueError(f"dynamic is true but the card's input rule is a fixed "
                                 f"{card.input.height}x{card.input.width}")  # fmt: skip

    @cached_property
    def model_card(self) -> ModelCard:
        return card_of(self)

    @property
    def outputs(self) -> tuple[str, ...]:
        return ("depth", "confidence") if self.has_confidence else ("depth",)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> ModelInfo:
        data = parse_json(text, f"{source}: model metadata")  # bounded, duplicate keys and NaN refused
        if not isinstance(data, dict):
            raise ValueError(f"{source}: model metadata is not a JSON object")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: model metadata is not valid ({exc})") from None

    @classmethod
    def from_card(cls, card: ModelCard) -> ModelInfo:
        """What a model described by its card alone computes (a transformers folder, a graph exported
        elsewhere): its input rule's size, the card's depth range, confidence and normalisation."""
        rule = card.input
        return cls(card.family or "graph", rule.height, rule.width, card.min_depth, card.max_depth,
                   card.has_confidence, normalization=card.normalization, card=card.to_dict(),
                   dynamic=not rule.fixed)  # fmt: skip

    @classmethod
    def from_model(cls, model, input_size: tuple[int, int], batch: int = 1) -> ModelInfo:
        from depth_estimation_ros import __version__

        return cls(
            name=model.config.get("name", type(model).__name__.lower()),
            input_height=int(input_size[0]),
            input_width=int(input_size[1]),
            min_depth=model.min_depth,
            max_depth=model.max_depth,
            has_confidence=model.has_confidence,
            batch=batch,
            config=dict(model.config),
            normalization=model.normalization,
            version=__version__,
            card=model.card(input_size).to_dict(),
        )


def network_input(rgb: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB → the graphs' input, (1, 3, h, w) float32 in [0, 1] at ``size`` (h, w).

    Downscaling is area averaging (``cv2.INTER_AREA``), as in training; ``out`` is filled if given.
    """
    if rgb.shape[:2] != tuple(size):
        rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    if out is None:
        out = np.empty((1, 3, *size), np.float32)
    np.multiply(rgb.transpose(2, 0, 1)[None], np.float32(1 / 255), out=out)
    return out


class Backend(ABC):
    """Runs a depth graph: float32 (batch, 3, H, W) RGB in [0, 1] → dict of float32 arrays."""

    name: str = ""
    selection: str = ""  # what backend auto measured to choose this one, if it chose between runtimes

    def __init__(self, info: ModelInfo):
        self.info = info

    @property
    def device(self) -> str:
        return "cpu"

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        expected = (self.info.batch, 3, self.info.input_height, self.info.input_width)
        if self.info.dynamic:  # any size the card's rule gives
            expected = (self.info.batch, 3, *batch.shape[2:]) if batch.ndim == 4 else expected
        if batch.shape != expected or batch.dtype != np.float32:
            raise ValueError(f"{self.name} backend expects float32 input {expected}, got {batch.dtype} {batch.shape}")
        return np.ascontiguousarray(batch)

    @abstractmethod
    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...

    def describe(self) -> str:
        return f"{self.name} on {self.device}" + (f" (auto: {self.selection})" if self.selection else "")
