"""The depth node's parameters: names, defaults, descriptions and validation, without rclpy.

The rclpy node declares exactly these (with their descriptions), ``config/depth.yaml`` lists them
with their defaults, and :func:`validate` is what the node's *configure* transition runs: a bad
value is rejected there with a message naming it, before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .estimator import RESIZE_MODES

RELIABILITY = ("best_effort", "reliable")


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    description: str
    choices: tuple | None = None
    minimum: float | None = None


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
        "min_confidence", 0.0, "Depth with confidence below this is published as NaN (0 keeps all).", minimum=0.0
    ),
    Parameter("use_compressed", False, "Subscribe to image/compressed (sensor_msgs/CompressedImage)."),
    Parameter("publish_raw_depth", False, "Also publish depth/image_raw as 16UC1 millimetres (0 = invalid)."),
    Parameter("publish_points", True, "Publish the organised point cloud depth/points."),
    Parameter("points_rgb", True, "Colour the cloud (xyzrgb, point_step 32) instead of xyz (point_step 16)."),
    Parameter("points_decimation", 1, "Keep every n-th pixel in the cloud (organised, intrinsics exact).", minimum=1),
    Parameter("points_max_range", 0.0, "Drop cloud points farther than this many metres (0 = no limit).", minimum=0.0),
    Parameter("publish_confidence", True, "Publish depth/confidence (32FC1, [0, 1]) when the model has one."),
    Parameter("input_reliability", "best_effort", "QoS reliability of the image subscriptions.", RELIABILITY),
    Parameter("input_depth", 1, "QoS history depth of the image subscriptions (1: always the newest).", minimum=1),
    Parameter("output_reliability", "reliable", "QoS reliability of the published topics.", RELIABILITY),
    Parameter("output_depth", 1, "QoS history depth of the published topics.", minimum=1),
    Parameter("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", minimum=0.1),
)
DEFAULTS = {p.name: p.default for p in PARAMETERS}


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Check a full or partial parameter set; returns it completed with defaults."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
    merged = {**DEFAULTS, **values}
    for p in PARAMETERS:
        value = merged[p.name]
        expected = type(p.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = merged[p.name] = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(f"parameter {p.name}={value!r} must be a {expected.__name__}")
        if p.choices is not None and value not in p.choices:
            raise ValueError(f"parameter {p.name}={value!r} must be one of {list(p.choices)}")
        if p.minimum is not None and value < p.minimum:
            raise ValueError(f"parameter {p.name}={value!r} must be >= {p.minimum}")
    model = merged["model"]
    if not model:
        raise ValueError("parameter model is empty: set it to a .pt, .onnx or .engine file")
    if not Path(model).is_file():
        raise ValueError(f"parameter model={model!r}: no such file")
    return merged
