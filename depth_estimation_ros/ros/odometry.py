"""Odometry poses by stamp, for temporal fusion: the node and the bag tool add each
nav_msgs/Odometry as it arrives; an image takes the pose nearest its stamp within
``odometry_max_age``, or none (the fusion then resets and says so). Odometry comes at 20-200 Hz, so
the nearest pose is a few milliseconds from the image; it is not interpolated."""

from __future__ import annotations

import bisect
import threading

import numpy as np

from depth_estimation_ros.core.mounting import Mounting
from depth_estimation_ros.ros.pairing import stamp_of


def pose_matrix(msg) -> np.ndarray:
    """world_from_body (4×4) of a nav_msgs/Odometry (its ``pose.pose``)."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return Mounting((p.x, p.y, p.z), (q.x, q.y, q.z, q.w)).matrix


class PoseHistory:
    """The last ``keep`` odometry poses by stamp (thread-safe: the node's callbacks add, its
    inference thread reads)."""

    def __init__(self, max_age: float = 0.05, keep: int = 500):
        self.max_age, self.keep = max_age, keep
        self._stamps: list[int] = []
        self._poses: list[np.ndarray] = []
        self._lock = threading.Lock()

    def add(self, msg) -> None:
        """Keep ``msg``'s pose; ValueError for a pose that is not one (a zero quaternion)."""
        sec, nanosec = stamp_of(msg)
        t, pose = sec * 1_000_000_000 + nanosec, pose_matrix(msg)
        with self._lock:
            i = bisect.bisect(self._stamps, t)
            self._stamps.insert(i, t)
            self._poses.insert(i, pose)
            del self._stamps[: -self.keep], self._poses[: -self.keep]

    def at(self, stamp: tuple[int, int]) -> np.ndarray | None:
        """The pose nearest ``stamp`` (sec, nanosec) within ``max_age`` seconds, or None."""
        t = stamp[0] * 1_000_000_000 + stamp[1]
        with self._lock:
            i = bisect.bisect(self._stamps, t)
            near = [j for j in (i - 1, i) if 0 <= j < len(self._stamps)]
            if not near:
                return None
            j = min(near, key=lambda k: abs(self._stamps[k] - t))
            return self._poses[j] if abs(self._stamps[j] - t) <= round(self.max_age * 1e9) else None
