"""The node's output topics, declared once: relative topic name, message type, the option (node
parameter and :class:`~.pipeline.DepthPipeline` option of the same name) that switches it on, and
how its message is built from a frame's results.

The node's publishers, the pipeline's messages (host and device paths alike), the bag tool's
connections, the demo's recording and docs/ros.md's topic table all come from :data:`OUTPUTS`.
A new output is one row here, its switch in :mod:`.parameters` (and ``PIPELINE_OPTIONS``), and,
if it needs a new computation, that computation in :class:`~.pipeline.DepthPipeline`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.laserscan import Scan
from depth_estimation_ros.core.pointcloud import PackedCloud
from depth_estimation_ros.ros.messages import (
    MessageTypes,
    camera_info_msg,
    depth_image_msg,
    header,
    image_msg,
    laserscan_msg,
    pointcloud_msg,
)

IMAGE, CAMERA_INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
POINTCLOUD2, LASERSCAN = "sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/LaserScan"


@dataclass
class FrameArrays:
    """What one frame leaves for its messages, filled by the host or the device path: arrays that
    are views of message buffers (``storages``), so building a message copies nothing."""

    depth: np.ndarray  # (H, W) float32 metres, NaN invalid
    camera: CameraModel  # describes ``depth`` (and ``confidence``) exactly
    storages: dict[str, Any]  # "depth", "confidence": the buffers the arrays view
    confidence: np.ndarray | None = None  # (H, W) float32 in [0, 1]
    cloud: PackedCloud | None = None
    scan: Scan | None = None
    scan_frame: str = ""  # the frame the scan's angles turn about (x forward, z up)
    scan_time: float = 0.0  # seconds since the previous frame's stamp, 0 when unknown


@dataclass(frozen=True)
class OutputTopic:
    topic: str  # relative to the node's namespace
    msgtype: str  # ROS 2 type name
    enabled_by: str | None  # the option that switches it on; None: always published
    build: Callable[[FrameArrays, Any, MessageTypes], Any | None]  # (arrays, header, types) → message or None
    description: str

    def message_class(self, types: MessageTypes):
        return getattr(types, self.msgtype.rsplit("/", 1)[-1])


def _confidence(f: FrameArrays, header, types: MessageTypes):
    return None if f.confidence is None else image_msg(f.confidence, "32FC1", header, types, f.storages["confidence"])


def _scan(f: FrameArrays, image_header, types: MessageTypes):
    if f.scan is None:  # not computed for this frame (the reason is in the frame's notes)
        return None
    stamp = image_header.stamp
    return laserscan_msg(f.scan, header(stamp.sec, stamp.nanosec, f.scan_frame, types), types, f.scan_time)


OUTPUTS: tuple[OutputTopic, ...] = (
    OutputTopic("depth/image", IMAGE, None,
                lambda f, header, types: image_msg(f.depth, "32FC1", header, types, f.storages["depth"]),
                "32FC1 metres, NaN where invalid (REP 118)"),
    OutputTopic("depth/image_raw", IMAGE, "publish_raw_depth",
                lambda f, header, types: depth_image_msg(f.depth, header, types, encoding="16UC1"),
                "16UC1 millimetres, 0 where invalid"),
    OutputTopic("depth/camera_info", CAMERA_INFO, None,
                lambda f, header, types: camera_info_msg(f.camera, header, types),
                "describes depth/image exactly (its size and intrinsics)"),
    OutputTopic("depth/points", POINTCLOUD2, "publish_points",
                lambda f, header, types: pointcloud_msg(f.cloud, header, types),
                "xyz or xyzrgb cloud in the image's frame, organised (NaN) or only its valid points"),
    OutputTopic("depth/confidence", IMAGE, "publish_confidence", _confidence,
                "32FC1 in [0, 1], when the model has a confidence"),
    OutputTopic("depth/scan", LASERSCAN, "publish_scan", _scan,
                "planar scan of the rows around the optical centre (depthimage_to_laserscan's semantics)"),
)  # fmt: skip
BY_TOPIC = {output.topic: output for output in OUTPUTS}
TOPICS = tuple(BY_TOPIC)


def enabled(options) -> tuple[OutputTopic, ...]:
    """The outputs ``options`` (an object or a mapping with the enabling options) switch on."""
    get = options.get if isinstance(options, dict) else lambda name: getattr(options, name)
    return tuple(o for o in OUTPUTS if o.enabled_by is None or get(o.enabled_by))


def build_messages(
    outputs: tuple[OutputTopic, ...], arrays: FrameArrays, header, types: MessageTypes
) -> dict[str, Any]:
    """Topic → message for each of ``outputs`` that the frame has (a model without confidence has none)."""
    messages = {}
    for output in outputs:
        msg = output.build(arrays, header, types)
        if msg is not None:
            messages[output.topic] = msg
    return messages
