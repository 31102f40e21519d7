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

from depth_estimation_ros.core.anchoring import SOURCES as SCALE_SOURCES
from depth_estimation_ros.core.backends import BACKENDS
from depth_estimation_ros.core.edges import DEFAULT_ANGLE_DEG, DEFAULT_FLOOR_ANGLE_DEG
from depth_estimation_ros.core.estimator import RESIZE_MODES
from depth_estimation_ros.core.files import is_hub_id
from depth_estimation_ros.core.fusion import MODES as FUSION_MODES
from depth_estimation_ros.core.laserscan import DEFAULT_RANGE_MAX, DEFAULT_RANGE_MIN, DEFAULT_SCAN_HEIGHT
from depth_estimation_ros.core.mounting import Mounting
from depth_estimation_ros.core.validation import DEFAULT_MAX_FRAME_PIXELS, MAX_IMAGE_PIXELS

RELIABILITY = ("auto", "best_effort", "reliable")
# The options of the estimator's metric anchoring (configure-time), as the node names them.
ANCHOR_OPTIONS = ("scale_source", "fixed_scale", "fixed_shift", "camera_height", "camera_pitch", "camera_roll",
                  "sparse_points_transform")  # fmt: skip
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
    parse: Any = None  # a string parameter's parser: raises ValueError for a value it cannot read

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
    Parameter(
        "model",
        "",
        "Model: checkpoint (.pt), ONNX graph (.onnx), TensorRT engine (.engine), a transformers depth model "
        "folder (save_pretrained) or a Hub id already in the local cache (never downloaded).",
    ),
    Parameter("backend", "auto", "Inference backend.", BACKENDS),
    Parameter(
        "card",
        "",
        "Model card of an ONNX graph exported elsewhere (Depth Anything 3, Metric3D, UniDepth...): a built-in "
        "card's name (depth-estimation models --cards) or a YAML card file; empty: the model describes itself.",
    ),
    Parameter(
        "precision",
        "auto",
        "Precision expected of a TensorRT engine built from an ONNX graph; the graph decides (export --precision): "
        "auto takes it as it is, another value warns when the graph differs.",
        ("auto", "fp32", "fp16", "int8"),
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
    Parameter("publish_points", True, "Publish the point cloud depth/points.", live=True),
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
        "points_organized",
        True,
        "Organised cloud (image rows and columns, NaN where a point was dropped); false: only the kept points, "
        "height 1, is_dense true, for consumers that prefer it.",
        live=True,
    ),
    Parameter(
        "points_edge_filter",
        True,
        "Drop flying pixels (the points a network smooths between an object and its background, phantom obstacles) "
        "from the cloud and the scan.",
        live=True,
    ),
    Parameter(
        "edge_filter_angle",
        DEFAULT_ANGLE_DEG,
        "Degrees: a pixel inside a depth ramp whose neighbour segments along its row both meet its viewing ray at "
        "less than this is a flying pixel.",
        minimum=0.5,
        maximum=45.0,
        live=True,
    ),
    Parameter(
        "edge_filter_floor_angle",
        DEFAULT_FLOOR_ANGLE_DEG,
        "Degrees: the same along columns, where floors are seen at grazing angles too; a floor farther than "
        "camera height / sin(angle) is dropped with the veils.",
        minimum=0.5,
        maximum=45.0,
        live=True,
    ),
    Parameter(
        "edge_filter_depth",
        False,
        "Also set flying pixels to NaN in depth/image and depth/image_raw (points_edge_filter on).",
        live=True,
    ),
    Parameter(
        "publish_confidence", True, "Publish depth/confidence (32FC1, [0, 1]) when the model has one.", live=True
    ),
    Parameter(
        "publish_scan",
        False,
        "Publish depth/scan (sensor_msgs/LaserScan) from the depth (edge-filtered), as depthimage_to_laserscan.",
        live=True,
    ),
    Parameter(
        "scan_height",
        DEFAULT_SCAN_HEIGHT,
        "Rows around the optical centre row the scan takes the nearest range of, per bearing.",
        minimum=1,
        maximum=4096,
        live=True,
    ),
    Parameter(
        "scan_range_min",
        DEFAULT_RANGE_MIN,
        "Metres: scan readings nearer than this are dropped.",
        minimum=0.0,
        maximum=1000.0,
        live=True,
    ),
    Parameter(
        "scan_range_max",
        DEFAULT_RANGE_MAX,
        "Metres: scan readings farther than this are dropped.",
        minimum=0.01,
        maximum=1000.0,
        live=True,
    ),
    Parameter(
        "scan_output_frame",
        "",
        "frame_id of depth/scan: a frame whose x is the optical axis and z up (REP 103), e.g. camera_link; empty: "
        "the image's frame_id without its _optical part (camera_optical_frame → camera_frame).",
        live=True,
    ),
    Parameter(
        "sky_depth",
        0.0,
        "Metres given to sky pixels in depth/image (a model with a sky map, e.g. Depth Anything 3; 0: NaN, "
        "no depth); sky never becomes a point or a scan reading either way.",
        minimum=0.0,
        maximum=10000.0,
        live=True,
    ),
    Parameter(
        "max_image_pixels",
        DEFAULT_MAX_FRAME_PIXELS,
        "Frames with more pixels than this are skipped as bad frames, counted with their size: memory and time "
        "grow with the frame; 8388608 = 8 MP, 4K UHD fits.",
        minimum=1,
        maximum=MAX_IMAGE_PIXELS,
        live=True,
    ),
    Parameter(
        "camera_info_tolerance",
        0.0,
        "Seconds an image's stamp and its CameraInfo's may differ (0 = the same stamp); keep it below half the "
        "frame interval, or an image may take a neighbouring frame's CameraInfo.",
        minimum=0.0,
        maximum=3600.0,
        live=True,
    ),
    Parameter(
        "camera_info_wait",
        0.1,
        "Seconds an image waits for its own CameraInfo (by arrival; the bag tool: by log time) before it is "
        "skipped as a bad frame, and for its own sparse_depth before it goes on without (scale held).",
        minimum=0.0,
        maximum=10.0,
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
    Parameter(
        "focal_correction",
        "auto",
        "Rescale metric output by the camera's focal length over the training camera's (at the network input); "
        "auto: where the model card records a training camera.",
        ("auto", "on", "off"),
    ),
    Parameter(
        "scale_source",
        "none",
        "Where metric scale comes from: none (the model's own; metric models only), fixed (fixed_scale, "
        "fixed_shift), sparse_depth (the sparse_depth topic) or ground_plane (camera_height over a flat floor).",
        SCALE_SOURCES,
    ),
    Parameter(
        "fixed_scale",
        1.0,
        "scale_source fixed: Z = scale·output (metric models) or 1/Z = scale·output + shift (relative models).",
        minimum=1e-6,
        maximum=1e6,
    ),
    Parameter(
        "fixed_shift",
        0.0,
        "scale_source fixed, relative models: the shift in inverse depth (1/m).",
        minimum=-1e6,
        maximum=1e6,
    ),
    Parameter(
        "camera_height",
        0.0,
        "scale_source ground_plane: metres from the camera down to the floor.",
        minimum=0.0,
        maximum=100.0,
    ),
    Parameter(
        "camera_pitch",
        0.0,
        "scale_source ground_plane: camera pitch in degrees, positive tilted up (a metric model's fitted floor "
        "stays within 15 degrees of it and falls back to it; a relative model's floor).",
        minimum=-89.0,
        maximum=89.0,
    ),
    Parameter(
        "camera_roll",
        0.0,
        "scale_source ground_plane: camera roll about the optical axis in degrees (prior and fallback, as the pitch).",
        minimum=-89.0,
        maximum=89.0,
    ),
    Parameter(
        "sparse_points_transform",
        "",
        "scale_source sparse_points: where the cloud's frame is in the camera's optical frame, 'x y z qx qy qz qw' "
        "(metres and a unit quaternion, static_transform_publisher's order); empty: the cloud is in the optical frame.",
        parse=Mounting.from_text,
    ),
    Parameter(
        "temporal_fusion",
        "none",
        "Fuse depth over frames: none, odometry (the odometry topic gives the camera's motion) or static (a fixed "
        "camera). Averages each pixel with the fused depth so far where they agree within 5 %; replaces it where "
        "they do not (moving objects).",
        FUSION_MODES,
    ),
    Parameter(
        "camera_mounting",
        "",
        "temporal_fusion odometry: where the camera's optical frame is in the odometry's child frame (base_link), "
        "'x y z qx qy qz qw' as tf2_echo prints it; empty: the odometry is the camera's.",
        parse=Mounting.from_text,
    ),
    Parameter(
        "odometry_max_age",
        0.05,
        "temporal_fusion odometry: seconds (by stamp, either side) an odometry message may be from the image; a "
        "frame without one resets the fusion.",
        minimum=0.0,
        maximum=10.0,
        live=True,
    ),
    Parameter(
        "sparse_depth_max_age",
        0.5,
        "Seconds (by stamp, either side) a sparse_depth image or sparse_points cloud may be from the camera image "
        "and still anchor it.",
        minimum=0.0,
        maximum=3600.0,
        live=True,
    ),
    Parameter("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", minimum=0.1, maximum=60.0),
)
# Parameters that were removed, with what replaces them: a parameter file or `ros2 param set` that
# still sets one is refused with this, never silently ignored.
RETIRED = {
    "camera_info_max_age": "an image now takes only the CameraInfo of its own stamp, and camera_info_tolerance "
    "(default 0: the same stamp) and camera_info_wait replace it; delete it from the parameter file",
}
BY_NAME = {p.name: p for p in PARAMETERS}
DEFAULTS = {p.name: p.default for p in PARAMETERS}
LIVE = frozenset(p.name for p in PARAMETERS if p.live)


def check(name: str, value: Any) -> Any:
    """One parameter's value, checked (ints are accepted for floats); raises ValueError naming it."""
    if name in RETIRED:
        raise ValueError(f"parameter {name} was removed: {RETIRED[name]}")
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
    if p.parse is not None:
        try:
            p.parse(value)
        except ValueError as exc:
            raise ValueError(f"parameter {name}: {exc}") from None
    return value


# Parameters checked against each other by check_together.
TOGETHER = ("scan_range_min", "scan_range_max")


def check_together(values: dict[str, Any]) -> None:
    """The constraints between parameters (``values`` holds at least :data:`TOGETHER`)."""
    if values["scan_range_min"] >= values["scan_range_max"]:
        raise ValueError(f"parameter scan_range_min={values['scan_range_min']} must be below parameter "
                         f"scan_range_max={values['scan_range_max']}")  # fmt: skip


# Options that only mean something with another option's value: a command given one without it
# refuses it (a silently ignored option is a silently wrong run). The node's parameter file lists
# every parameter, so the node does not apply this.
APPLIES_WITH: dict[str, tuple[str, tuple]] = {
    "fixed_scale": ("scale_source", ("fixed",)),
    "fixed_shift": ("scale_source", ("fixed",)),
    "camera_height": ("scale_source", ("ground_plane",)),
    "camera_pitch": ("scale_source", ("ground_plane",)),
    "camera_roll": ("scale_source", ("ground_plane",)),
    "sparse_points_transform": ("scale_source", ("sparse_points",)),
    "camera_mounting": ("temporal_fusion", ("odometry",)),
    "odometry_max_age": ("temporal_fusion", ("odometry",)),
    "sparse_depth_max_age": ("scale_source", ("sparse_depth", "sparse_points")),
    "edge_filter_angle": ("points_edge_filter", (True,)),
    "edge_filter_floor_angle": ("points_edge_filter", (True,)),
    "edge_filter_depth": ("points_edge_filter", (True,)),
    "scan_height": ("publish_scan", (True,)),
    "scan_range_min": ("publish_scan", (True,)),
    "scan_range_max": ("publish_scan", (True,)),
    "scan_output_frame": ("publish_scan", (True,)),
}


def inapplicable(values: dict[str, Any]) -> list[tuple[str, str, tuple]]:
    """(option, the option it needs, the values that option needs) for each option in ``values``
    set away from its default while the option it needs does not have one of those values."""
    found = []
    for name, (needs, allowed) in APPLIES_WITH.items():
        if name in values and needs in values and values[name] != DEFAULTS[name] and values[needs] not in allowed:
            found.append((name, needs, allowed))
    return found


def check_applicable(values: dict[str, Any], flags: dict[str, str] | None = None) -> None:
    """Refuse the first option of :func:`inapplicable`, named as a command-line flag (``flags``:
    how a command spells a switch, e.g. ``{"publish_scan": "--scan"}``)."""
    flags = flags or {}

    def flag(name: str) -> str:
        return flags.get(name, "--" + name.replace("_", "-"))

    for name, needs, allowed in inapplicable(values):
        condition = flag(needs) if allowed == (True,) else f"{flag(needs)} {' or '.join(map(str, allowed))}"
        raise ValueError(f"{flag(name)} applies only with {condition}; it would be ignored here")


def validate(values: dict[str, Any], *, require_model: bool = True) -> dict[str, Any]:
    """Check a full or partial parameter set; returns it completed with defaults."""
    merged = {**DEFAULTS, **{name: check(name, value) for name, value in values.items()}}
    check_together(merged)
    if require_model:
        model = merged["model"]
        if not model:
            raise ValueError(
                "parameter model is empty: set it to a .pt, .onnx or .engine file or a transformers model folder"
            )
        if not Path(model).exists() and not is_hub_id(model):
            raise ValueError(f"parameter model={model!r}: no such file or folder")
    return merged


def add_arguments(parser, names: tuple[str, ...]) -> None:
    """Command-line options ``--name-with-dashes`` for the node parameters ``names``, with the
    parameters' types, choices, ranges, defaults and descriptions (the bag tool and predict)."""
    for name in names:
        p = BY_NAME[name]

        def parse(text: str, name=name, p=p):
            import argparse

            try:
                return check(name, p.type(text))
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc).replace(f"parameter {name}=", "")) from None

        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=parse, default=p.default,
                            help=f"{p.description.replace('%', '%%')} (default: %(default)s)")  # fmt: skip


def options_from(args, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names}


FUSION_OPTIONS = ("temporal_fusion", "camera_mounting")  # DepthEstimator's; odometry_max_age is the ROS layer's
SCALE_ARGUMENTS = ("focal_correction", *ANCHOR_OPTIONS)
SCAN_ARGUMENTS = ("scan_height", "scan_range_min", "scan_range_max", "scan_output_frame")
