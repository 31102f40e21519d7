"""The depth node's parameters: names, types, defaults, ranges, descriptions and validation, without rclpy.

The rclpy node declares exactly these (type, description, range, allowed values), ``config/depth.yaml``
lists them with their defaults, and :func:`validate` is what both the node's *configure* transition and
its set-parameters callback run: a bad value is refused with a message naming it, before it is used.

``live`` parameters take effect from the next frame when changed while the node is configured or
active; the others describe the model, the backend or the topics and are refused then, with the
reason (they take effect at the next *configure*).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .estimator import RESIZE_MODES

RELIABILITY = ("auto", "best_effort", "reliable")
OUTPUT_RELIABILITY = ("best_effort", "reliable")


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    description: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    live: bool = False  # may change while configured/active, effective from the next frame

    @property
    def type(self) -> type:
        return type(self.default)

    def describe_range(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.minimum is not None:
            return f"{self.minimum} to {self.maximum}"
        return ""


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("model", "", "Model file: checkpoint (.pt), ONNX graph (.onnx) or TensorRT engine (.engine)."),
    Parameter("backend", "auto", "Inference backend.", BACKENDS),
    Parameter(
        "precision", "fp16", "TensorRT precision when an engine is built from an ONNX graph.", ("fp32", "fp16", "int8")
    ),
    Parameter("resize", "stretch", "Fit frames to the network input by stretching or letterboxing.", RESIZE_MODES),
    Parameter(
        "output_resolution",
        "camera",
        "Publish depth at the camera's or the network's resolution.",
        ("camera", "network"),
    ),
    Parameter(
        "autostart",
        True,
        "Configure and activate at start-up; false waits for a lifecycle manager (ros2 lifecycle set ...).",
    ),
    Parameter(
        "min_confidence",
        0.0,
        "Depth with confidence below this is published as NaN (0 keeps all).",
        minimum=0.0,
        maximum=1.0,
        live=True,
    ),
    Parameter("use_compressed", False, "Subscribe to image/compressed (sensor_msgs/CompressedImage)."),
    Parameter(
        "publish_raw_depth", False, "Also publish depth/image_raw as 16UC1 millimetres (0 = invalid).", live=True
    ),
    Parameter("publish_points", True, "Publish the organised point cloud depth/points.", live=True),
    Parameter(
        "points_rgb", True, "Colour the cloud (xyzrgb, point_step 32) instead of xyz (point_step 16).", live=True
    ),
    Parameter(
        "points_decimation",
        2,
        "Keep every n-th pixel in the cloud (organised, intrinsics exact); 2 halves the cost outside the network.",
        minimum=1,
        maximum=64,
        live=True,
    ),
    Parameter(
        "points_max_range",
        0.0,
        "Drop cloud points farther than this many metres (0 = no limit).",
        minimum=0.0,
        maximum=1000.0,
        live=True,
    ),
    Parameter(
        "publish_confidence", True, "Publish depth/confidence (32FC1, [0, 1]) when the model has one.", live=True
    ),
    Parameter(
        "camera_info_max_age",
        1.0,
        "Seconds a CameraInfo older than the image (by stamp) may still describe it; 0 = same stamp only.",
        minimum=0.0,
        maximum=3600.0,
        live=True,
    ),
    Parameter(
        "input_reliability",
        "auto",
        "QoS reliability of the image subscriptions; auto matches the camera's publishers.",
        RELIABILITY,
    ),
    Parameter(
        "input_depth", 1, "QoS history depth of the image subscriptions (1: always the newest).", minimum=1, maximum=100
    ),
    Parameter("output_reliability", "reliable", "QoS reliability of the published topics.", OUTPUT_RELIABILITY),
    Parameter(
        "output_depth",
        5,
        "QoS history depth of the published topics (a few, so a synchronising consumer gets complete sets).",
        minimum=1,
        maximum=100,
    ),
    Parameter(
        "input_timeout",
        5.0,
        "Seconds without an input image, while active, before /diagnostics warns.",
        minimum=0.1,
        maximum=3600.0,
        live=True,
    ),
    Parameter("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", minimum=0.1, maximum=60.0),
)
BY_NAME = {p.name: p for p in PARAMETERS}
DEFAULTS = {p.name: p.default for p in PARAMETERS}
LIVE = frozenset(p.name for p in PARAMETERS if p.live)


def check(name: str, value: Any) -> Any:
    """One parameter's value, checked (ints are accepted for floats); raises ValueError naming it."""
    p = BY_NAME.get(name)
    if p is None:
        raise ValueError(f"unknown parameter {name!r}; expected one of {sorted(DEFAULTS)}")
    if p.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, p.type) or (p.type is int and isinstance(value, bool)):
        raise ValueError(f"parameter {name}={value!r} must be a {p.type.__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"parameter {name}={value!r} must be a finite number")
    if p.choices is not None and value not in p.choices:
        raise ValueError(f"parameter {name}={value!r} must be one of {list(p.choices)}")
    if p.minimum is not None and not p.minimum <= value <= p.maximum:
        raise ValueError(f"parameter {name}={value!r} must be in [{p.minimum}, {p.maximum}]")
    return value


def validate(values: dict[str, Any], *, require_model: bool = True) -> dict[str, Any]:
    """Check a full or partial parameter set; returns it completed with defaults."""
    merged = {**DEFAULTS, **{name: check(name, value) for name, value in values.items()}}
    if require_model:
        model = merged["model"]
        if not model:
            raise ValueError("parameter model is empty: set it to a .pt, .onnx or .engine file")
        if not Path(model).is_file():
            raise ValueError(f"parameter model={model!r}: no such file")
    return merged
