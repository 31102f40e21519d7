"""Depth image → organised point cloud, its PointCloud2 byte layouts, and PLY files.

Back-projection (pinhole, ``u, v`` integer pixel centres): ``x = (u − cx)·z/fx``,
``y = (v − cy)·z/fy``, ``z = depth``, in the optical frame of the camera.

PointCloud2 layouts (little endian, organised: height = rows, width = columns, NaN for invalid
points, ``is_dense = False``):

* xyz: x, y, z FLOAT32 at offsets 0, 4, 8, point_step 16 (depth_image_proc's layout);
* xyzrgb: plus ``rgb`` FLOAT32 at offset 16 holding the bits of 0x00RRGGBB, point_step 32
  (PCL's PointXYZRGB layout).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import CameraModel

FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32


@dataclass(frozen=True)
class PointField:
    name: str
    offset: int
    datatype: int = FLOAT32
    count: int = 1


XYZ_FIELDS = (PointField("x", 0), PointField("y", 4), PointField("z", 8))
XYZRGB_FIELDS = (*XYZ_FIELDS, PointField("rgb", 16))


@dataclass(frozen=True)
class PackedCloud:
    """The contents of an organised sensor_msgs/PointCloud2, ready to put in a message.

    ``data`` is a flat uint8 array (a view of the packed floats, no copy), as rosbags expects.
    """

    data: np.ndarray
    height: int
    width: int
    fields: tuple[PointField, ...]
    point_step: int
    row_step: int
    is_bigendian: bool = False
    is_dense: bool = False


def depth_to_points(depth: np.ndarray, camera: CameraModel | np.ndarray, max_range: float | None = None) -> np.ndarray:
    """Organised (H, W, 3) float32 points from (H, W) metric depth; NaN where depth is invalid.

    ``camera`` is a :class:`CameraModel` (its P is used) or a 3×3 K. Invalid: non-finite, ≤ 0,
    or beyond ``max_range`` metres (Euclidean distance from the camera) when given.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D (H, W) array, got shape {depth.shape}")
    if not isinstance(camera, CameraModel):
        K = np.asarray(camera, dtype=np.float64)
        camera = CameraModel(depth.shape[1], depth.shape[0], K)
    camera.check_image(depth.shape, "depth image")
    ru, rv = camera.ray_grid()
    z = depth.astype(np.float32, copy=False)
    points = np.empty((*depth.shape, 3), dtype=np.float32)
    np.multiply(ru, z, out=points[..., 0])
    np.multiply(rv, z, out=points[..., 1])
    points[..., 2] = z
    invalid = ~(z > 0) | ~np.isfinite(z)  # ~(z > 0) also catches NaN
    if max_range is not None:
        # |p| = z·sqrt(1 + ru² + rv²): no need to square the points themselves
        invalid |= z * np.sqrt(1 + ru * ru + rv * rv) > max_range
    points[invalid] = np.nan
    return points


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W) float32 whose bits are 0x00RRGGBB (PCL's packing)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"colours must be an (H, W, 3) uint8 RGB array, got {rgb.dtype} {rgb.shape}")
    c = rgb.astype(np.uint32)
    return ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).view(np.float32)


def pack_cloud(points: np.ndarray, rgb: np.ndarray | None = None) -> PackedCloud:
    """Pack organised (H, W, 3) points (and optional (H, W, 3) uint8 colours) as PointCloud2 bytes."""
    if points.ndim != 3 or points.shape[2] != 3:
        raise ValueError(f"points must be an organised (H, W, 3) array, got shape {points.shape}")
    height, width = points.shape[:2]
    floats_per_point = 4 if rgb is None else 8
    buffer = np.zeros((height, width, floats_per_point), dtype="<f4")
    buffer[..., :3] = points
    if rgb is not None:
        if rgb.shape[:2] != (height, width):
            raise ValueError(f"colours are {rgb.shape[1]}x{rgb.shape[0]} but the cloud is {width}x{height}")
        buffer[..., 4] = pack_rgb(rgb)
    point_step = 4 * floats_per_point
    return PackedCloud(
        data=buffer.reshape(-1).view(np.uint8),
        height=height,
        width=width,
        fields=XYZ_FIELDS if rgb is None else XYZRGB_FIELDS,
        point_step=point_step,
        row_step=point_step * width,
        is_dense=bool(np.isfinite(points).all()),
    )


def organised_cloud(
    depth: np.ndarray,
    camera: CameraModel,
    rgb: np.ndarray | None = None,
    decimation: int = 1,
    max_range: float | None = None,
) -> PackedCloud:
    """Depth (and colours) → packed organised cloud, decimated by striding with an exact camera."""
    camera.check_image(depth.shape, "depth image")
    if rgb is not None:
        camera.check_image(rgb.shape, "colour image")
    if decimation != 1:
        sub = camera.decimate(decimation)
        depth = depth[::decimation, ::decimation]
        rgb = None if rgb is None else rgb[::decimation, ::decimation]
        camera = sub
    return pack_cloud(depth_to_points(depth, camera, max_range), rgb)


def write_ply(path: str | os.PathLike, points: np.ndarray, rgb: np.ndarray | None = None) -> Path:
    """Binary little-endian PLY of the finite points (x, y, z float; red, green, blue uchar)."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    keep = np.isfinite(points).all(axis=1)
    properties = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if rgb is not None:
        properties += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertices = np.empty(int(keep.sum()), dtype=properties)
    for i, axis in enumerate("xyz"):
        vertices[axis] = points[keep, i]
    if rgb is not None:
        colours = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)[keep]
        for i, channel in enumerate(("red", "green", "blue")):
            vertices[channel] = colours[:, i]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(vertices)}"]
    ply_type = {"<f4": "float", "u1": "uchar"}
    header += [f"property {ply_type[t]} {name}" for name, t in properties]
    header.append("end_header")
    path = Path(path)
    with path.open("wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(vertices.tobytes())
    return path
