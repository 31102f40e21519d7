"""A synthetic camera sequence as a rosbag2 recording, with exact metric ground truth.

One scene (one seed of :func:`depth_estimation_ros.core.scenes.render_scene`), the camera panning from
−12° to +12° across the frames, written as a camera driver and a depth ground truth would be:

* ``<ns>/image_raw``: sensor_msgs/Image, rgb8;
* ``<ns>/camera_info``: sensor_msgs/CameraInfo, plumb_bob with zero distortion, K of the render,
  R identity, P = [K | 0];
* ``<ns>/depth_gt``: sensor_msgs/Image, 32FC1 metres along the optical axis, NaN where invalid.

All three messages of a frame carry the same header (stamp, ``frame_id``); stamps start at a fixed
epoch time (:data:`START_NS`, November 2023) spaced by 1/``rate_hz``; each message's log time is its
stamp, the image's logged first (``camera_info_delay`` logs the CameraInfo later still, as drivers
that publish it after the image are recorded). Topics offer a camera driver's QoS (best effort, keep
last 5). Messages are built with
:mod:`depth_estimation_ros.ros.messages` on rosbags' ROS 2 Humble types.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.mounting import Mounting, quaternion
from depth_estimation_ros.core.pointcloud import XYZ_FIELDS, PackedCloud
from depth_estimation_ros.core.scenes import DEFAULT_FOV_DEG, KINDS, lidar_scan, render_scene
from depth_estimation_ros.ros.bag import (
    BAG_VERSION,
    STORAGES,
    qos_profile,
    require_rosbags,
    staged_output,
    storage_plugin,
    typestore_for,
)
from depth_estimation_ros.ros.messages import (
    MessageTypes,
    camera_info_msg,
    depth_image_msg,
    header,
    image_msg,
    pointcloud_msg,
)

START_NS = 1_700_000_000 * 10**9  # first stamp: 2023-11-14 22:13:20 UTC
PAN_DEG = (-12.0, 12.0)  # pan sweep across the sequence
IMAGE, CAMERA_INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"


def _namespace(namespace: str) -> str:
    """``camera``, ``/camera/`` → ``/camera``; ``""`` or ``/`` → ``""`` (the root)."""
    parts = [p for p in namespace.split("/") if p]
    return "".join(f"/{p}" for p in parts)


def sparse_samples(depth: np.ndarray, fraction: float, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Sparse metric depth (NaN = none) on a ``size`` grid registered to ``depth``'s camera: each
    grid pixel's centre maps to the depth pixel nearest it (pixel-centre convention)."""
    h, w = size
    rows = np.clip(np.floor((np.arange(h) + 0.5) * depth.shape[0] / h).astype(int), 0, depth.shape[0] - 1)
    cols = np.clip(np.floor((np.arange(w) + 0.5) * depth.shape[1] / w).astype(int), 0, depth.shape[1] - 1)
    grid = depth[rows[:, None], cols[None, :]]
    keep = rng.random((h, w)) < fraction
    return np.where(keep, grid, np.float32(np.nan)).astype(np.float32)


CAMERA_IN_BODY = "0.1 0 0.5 -0.5 0.5 -0.5 0.5"  # the optical frame 0.1 m ahead of and 0.5 m above base_link


def odometry_msg(world_from_body: np.ndarray, stamp: int, store):
    """nav_msgs/Odometry (rosbags) of the pose ``world_from_body`` at ``stamp`` ns, frame odom → base_link."""
    msg = store.types
    x, y, z = (float(v) for v in world_from_body[:3, 3])
    qx, qy, qz, qw = quaternion(world_from_body[:3, :3])
    position = msg["geometry_msgs/msg/Point"](x=x, y=y, z=z)
    orientation = msg["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw)
    pose = msg["geometry_msgs/msg/Pose"](position=position, orientation=orientation)
    still = msg["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)
    twist = msg["geometry_msgs/msg/Twist"](linear=still, angular=still)
    time = msg["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
    return msg["nav_msgs/msg/Odometry"](
        header=msg["std_msgs/msg/Header"](stamp=time, frame_id="odom"),
        child_frame_id="base_link",
        pose=msg["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=msg["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)),
    )


def cloud_msg(points: np.ndarray, head, types: MessageTypes):
    """(N, 3) float32 points → an unorganised PointCloud2 of float32 x, y, z (point_step 12)."""
    data = np.frombuffer(np.ascontiguousarray(points, np.float32).tobytes(), np.uint8)
    cloud = PackedCloud(data, 1, len(points), XYZ_FIELDS, 12, 12 * len(points), is_dense=True)
    return pointcloud_msg(cloud, head, types)


def write_synthetic_bag(
    output: str | Path,
    frames: int = 30,
    kind: str = "indoor",
    height: int = 256,
    width: int = 352,
    seed: int = 0,
    rate_hz: float = 10.0,
    storage: str = "mcap",
    frame_id: str = "camera_optical_frame",
    namespace: str = "/camera",
    *,
    fov_deg: float | None = None,
    start_ns: int = START_NS,
    sparse_fraction: float = 0.0,
    sparse_size: tuple[int, int] | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    camera_info_delay: float = 0.0,
    sparse_delay: float = 0.0,
    lidar_beams: int = 0,
    odometry: bool = False,
) -> dict[str, Any]:
    """Write a ``frames``-long synthetic camera sequence to a new rosbag2 folder ``output``.

    ``sparse_fraction`` > 0 adds ``<ns>/sparse_depth``: 16UC1 millimetres (0 = none) at that
    fraction of the pixels of a ``sparse_size`` (height, width) grid registered to the camera (by
    default the camera's), as a LiDAR projected into the camera or a partial depth camera gives.

    ``lidar_beams`` > 0 adds ``<ns>/sparse_points``: the PointCloud2 (float32 x, y, z, frame
    ``lidar``) of a LiDAR with that many beams, 0.3 m above the camera with its axes parallel to the
    camera's optical frame (``sparse_points_transform`` ``0 -0.3 0 0 0 0 1``), scanning the same
    scene (:func:`~depth_estimation_ros.core.scenes.lidar_scan`), logged ``sparse_delay`` after its image.

    ``odometry`` adds ``/odom``: nav_msgs/Odometry of the robot's body (``base_link``, REP 103 axes)
    at each frame's stamp, the camera's optical frame at :data:`CAMERA_IN_BODY` in it (pass that as
    ``camera_mounting``).

    ``sizes``: (height, width) of each frame in turn, cycled (default: ``height`` × ``width`` for
    all), each with the intrinsics of its own render. ``camera_info_delay``: seconds after its image
    at which each CameraInfo is logged; ``sparse_delay``: the same for each sparse depth image (a
    LiDAR's scan of a frame's stamp is ready after the frame).

    Returns a summary: ``output``, ``storage``, ``frames``, ``topics`` (topic → (type, count)),
    ``stamps_ns`` (one per frame), ``sizes`` ((height, width) per frame) and ``pan_deg`` (one per frame).
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if not 0 < rate_hz < float("inf"):
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz}")
    if fov_deg is not None and not 0 < fov_deg < 180:
        raise ValueError(f"fov_deg must be between 0 and 180 degrees, got {fov_deg}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if not 0 <= sparse_fraction <= 1:
        raise ValueError(f"sparse_fraction must be in [0, 1], got {sparse_fraction}")
    for name, delay in (("camera_info_delay", camera_info_delay), ("sparse_delay", sparse_delay)):
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"{name} must be a finite number of seconds >= 0, got {delay}")
    cycle = [(int(h), int(w)) for h, w in sizes] if sizes is not None else [(height, width)]
    if not cycle or any(h < 1 or w < 1 for h, w in cycle):
        raise ValueError(f"sizes must be one or more positive (height, width) pairs, got {sizes}")
    shapes = [cycle[i % len(cycle)] for i in range(frames)]
    ns = _namespace(namespace)
    topics = {"image": f"{ns}/image_raw", "camera_info": f"{ns}/camera_info", "depth": f"{ns}/depth_gt"}
    msgtypes = {"image": IMAGE, "camera_info": CAMERA_INFO, "depth": IMAGE}
    if sparse_fraction > 0:
        topics["sparse"], msgtypes["sparse"] = f"{ns}/sparse_depth", IMAGE
    if lidar_beams > 0:
        topics["lidar"], msgtypes["lidar"] = f"{ns}/sparse_points", "sensor_msgs/msg/PointCloud2"
    if odometry:
        topics["odometry"], msgtypes["odometry"] = "/odom", "nav_msgs/msg/Odometry"
    sparse_rng = np.random.default_rng(seed + 1)
    store = typestore_for("humble")
    types = MessageTypes.from_typestore(store)
    pans = np.linspace(*PAN_DEG, frames) if frames > 1 else np.zeros(1)
    stamps = [int(start_ns) + round(i * 1e9 / rate_hz) for i in range(frames)]
    fov = DEFAULT_FOV_DEG[kind] if fov_deg is None else float(fov_deg)

    rosbag2, _ = require_rosbags()
    with staged_output(output) as staging, rosbag2.Writer(
        staging, version=BAG_VERSION, storage_plugin=storage_plugin(storage)
    ) as writer:  # fmt: skip
        offered = [qos_profile("best_effort", 5)]  # a camera driver's sensor-data QoS
        connections = {
            key: writer.add_connection(topics[key], msgtypes[key], typestore=store, offered_qos_profiles=offered)
            for key in topics
        }
        size = ",".join(f"{w}x{h}" for h, w in cycle)
        writer.set_custom_data(
            "depth_estimation_ros.synthetic",
            f"kind={kind} seed={seed} fov_deg={fov:g} size={size} pan_deg={PAN_DEG[0]:g}..{PAN_DEG[1]:g}",
        )
        delays_ns = {"camera_info": round(camera_info_delay * 1e9), "sparse": round(sparse_delay * 1e9),
                     "lidar": round(sparse_delay * 1e9)}  # fmt: skip
        sequence = itertools.count()
        queued: list[tuple[int, int, str, bytes]] = []  # (log time, sequence, key, CDR): written in log-time order

        def write_until(log_time: float) -> None:
            while queued and queued[0][0] <= log_time:
                logged, _, key, raw = heapq.heappop(queued)
                writer.write(connections[key], logged, raw)

        for pan, stamp, (height, width) in zip(pans, stamps, shapes, strict=True):
            sample = render_scene(seed, height, width, kind, fov, pan_deg=float(pan))
            head = header(stamp // 10**9, stamp % 10**9, frame_id, types)
            camera = CameraModel(width, height, sample["K"], D=np.zeros(5), distortion_model="plumb_bob",
                                 frame_id=frame_id)  # fmt: skip
            depth = np.where(sample["valid"], sample["depth"], np.nan).astype(np.float32)
            messages = {}
            if sparse_fraction > 0:  # before its image, unless delayed
                sparse = sparse_samples(depth, sparse_fraction, sparse_size or (height, width), sparse_rng)
                messages["sparse"] = depth_image_msg(sparse, head, types, encoding="16UC1")
            if lidar_beams > 0:
                points = lidar_scan(seed, kind, beams=lidar_beams, pan_deg=float(pan))
                messages["lidar"] = cloud_msg(points, header(stamp // 10**9, stamp % 10**9, "lidar", types), types)
            if odometry:
                world_from_body = sample["meta"]["world_from_camera"] @ np.linalg.inv(
                    Mounting.from_text(CAMERA_IN_BODY).matrix
                )
                messages["odometry"] = odometry_msg(world_from_body, stamp, store)
            messages |= {
                "image": image_msg(sample["image"], "rgb8", head, types),
                "camera_info": camera_info_msg(camera, head, types),
                "depth": depth_image_msg(depth, head, types),
            }
            for key, message in messages.items():
                logged = stamp + delays_ns.get(key, 0)
                heapq.heappush(queued, (logged, next(sequence), key, store.serialize_cdr(message, msgtypes[key])))
            write_until(stamp)  # a delayed CameraInfo or sparse depth may come after later frames' images
        write_until(math.inf)
    return {
        "output": Path(output),
        "storage": storage,
        "frames": frames,
        "topics": {topics[key]: (msgtypes[key], frames) for key in topics},
        "stamps_ns": stamps,
        "sizes": shapes,
        "pan_deg": [float(p) for p in pans],
    }
