"""The per-frame inputs a scale source can need, as topics: declared once.

A scale source (:data:`depth_estimation_ros.core.anchoring.SCALE_SOURCES`) names the input it fits
to each frame, if any; this table says what that input is on the wire: its relative topic name
(the node subscribes to it, the launch file remaps it, the bag tool looks for it in the image's
namespace), its message type, the node parameter holding how far its stamp may be from the
image's (:class:`~.pairing.FramePairing` matches it by stamp), and how a message becomes the
array the anchor takes. A new topic-fed scale source is its fit in ``anchoring``, one row here and
its tolerance parameter in :mod:`.parameters`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from depth_estimation_ros.core.anchoring import SCALE_SOURCES
from depth_estimation_ros.ros.messages import depth_from_image, points_from_cloud


@dataclass(frozen=True)
class FrameInput:
    name: str  # the scale source's ``frame_input``, also the relative topic name
    msgtype: str  # ROS 2 type name
    tolerance: str  # the parameter: seconds its stamp may be from the image's
    to_array: Callable[[Any], np.ndarray]  # message → what the estimator takes as ``sparse``
    description: str
    registered: bool = True  # in the image's own frame (else placed by a parameter: any frame_id pairs)

    def message_class(self, types):
        return getattr(types, self.msgtype.rsplit("/", 1)[-1])


FRAME_INPUTS = {
    "sparse_depth": FrameInput(
        "sparse_depth", "sensor_msgs/msg/Image", "sparse_depth_max_age", depth_from_image,
        "sparse metric depth registered to the camera (16UC1 mm or 32FC1 m, 0/NaN = none), any resolution",
    ),
    "sparse_points": FrameInput(
        "sparse_points", "sensor_msgs/msg/PointCloud2", "sparse_depth_max_age", points_from_cloud,
        "LiDAR points (float32 x, y, z; other fields ignored) in the camera's optical frame, or the frame "
        "sparse_points_transform places", registered=False,
    ),
}  # fmt: skip


def frame_input(scale_source: str) -> FrameInput | None:
    """The topic-fed input ``scale_source`` needs, or None."""
    name = SCALE_SOURCES[scale_source].frame_input
    return None if name is None else FRAME_INPUTS[name]
