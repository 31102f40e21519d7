"""Helpers for tests that run a real ROS 2 graph: separate processes, isolated DDS domains."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Every test's participants run in a DDS domain of their own, with this checkout first on the path.
from depth_estimation_ros.ros.graph import depth_node, isolated_env, python_module  # noqa: F401


def read_bag(path: Path) -> dict[str, list]:
    """Deserialised messages of a rosbag2 by topic, in log-time order."""
    from rosbags.rosbag2 import Reader

    from depth_estimation_ros.ros.bag import typestore_for

    store = typestore_for("jazzy")
    topics: dict[str, list] = {}
    with Reader(path) as reader:
        for connection, _, raw in reader.messages():
            topics.setdefault(connection.topic, []).append(store.deserialize_cdr(raw, connection.msgtype))
    return topics


def stamp(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def diagnostic_values(array) -> dict[str, str]:
    return {kv.key: kv.value for status in array.status for kv in status.values}


def cloud_xyz(msg) -> np.ndarray:
    """(H, W, 3) float32 x, y, z of an organised PointCloud2 (offsets from its fields)."""
    offsets = {f.name: f.offset for f in msg.fields}
    raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, msg.point_step)
    return np.stack([raw[..., offsets[a] : offsets[a] + 4].copy().view(np.float32)[..., 0] for a in "xyz"], -1)
