"""Depth image → organised point cloud, its PointCloud2 byte layouts, and PLY files.

Back-projection (pinhole, ``u, v`` integer pixel centres): ``x = (u − cx)·z/fx``,
``y = (v − cy)·z/fy``, ``z = depth``, in the optical frame of the camera.

PointCloud2 layouts (little endian; organised: height = rows, width = columns, NaN for invalid
points, ``is_dense = False``; or unorganised, for consumers that prefer it: height 1, only the
valid points, ``is_dense = True``):

* xyz: x, y, z FLOAT32 at offsets 0, 4, 8, point_step 16 (depth_image_proc's layout);
* xyzrgb: plus ``rgb`` FLOAT32 at offset 16 holding the bits of 0x00RRGGBB, point_step 32
  (PCL's PointXYZRGB layout).

:class:`CloudPacker` writes these bytes in one pass over the cloud, straight into the buffer the
message will carry: x, y, z and the colour words are computed as image-sized planes (a fraction of
the cloud's size) and interleaved by one ``cv2.merge``; the per-camera rays (and range limits) are
computed once, not per frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from depth_estimation_ros.core.camera import CameraModel

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

    ``data`` is a flat uint8 array (or the buffer it was packed into), as rosbags expects.
    """

    data: np.ndarray
    height: int
    width: int
    fields: tuple[PointField, ...]
    point_step: int
    row_step: int
    is_bigendian: bool = False
    is_dense: bool = False


def cloud_layout(rgb: bool) -> tuple[tuple[PointField, ...], int]:
    """(fields, point_step) of the xyz or xyzrgb layout."""
    return (XYZRGB_FIELDS, 32) if rgb else (XYZ_FIELDS, 16)


def range_limit(camera: CameraModel, max_range: float) -> np.ndarray:
    """(H, W) float32 depth beyond which a pixel's point is farther than ``max_range`` metres.

    |p| = z·sqrt(1 + ru² + rv²), so the test on z needs no square root per frame.
    """
    ru, rv = camera.ray_grid()
    return (max_range / np.sqrt(1 + ru.astype(np.float64) ** 2 + rv.astype(np.float64) ** 2)).astype(np.float32)


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
    z = valid_depth(depth.astype(np.float32, copy=False), None if max_range is None else range_limit(camera, max_range))
    points = np.empty((*depth.shape, 3), dtype=np.float32)
    np.multiply(ru, z, out=points[..., 0])
    np.multiply(rv, z, out=points[..., 1])
    points[..., 2] = z
    return points


def valid_depth(z: np.ndarray, limit: np.ndarray | None = None) -> np.ndarray:
    """``z`` with NaN where it is not a point: non-finite, ≤ 0, or beyond ``limit`` (same shape)."""
    valid = z > 0  # False for NaN too
    valid &= z < (np.float32(np.inf) if limit is None else limit)
    return np.where(valid, z, np.float32(np.nan))


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W) float32 whose bits are 0x00RRGGBB (PCL's packing)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"colours must be an (H, W, 3) uint8 RGB array, got {rgb.dtype} {rgb.shape}")
    c = rgb.astype(np.uint32)
    return ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).view(np.float32)


class CloudPacker:
    """Depth (and colours) → organised PointCloud2 bytes, one pass, rays cached per camera.

    Args:
        rgb: xyzrgb layout (colours required at :meth:`pack`) instead of xyz.
        decimation: keep every n-th row and column (the camera follows exactly).
        max_range: points farther than this many metres from the camera become NaN.
        organized: False packs only the valid points (height 1, dense), see :func:`compact`.
    """

    def __init__(self, rgb: bool = True, decimation: int = 1, max_range: float | None = None, organized: bool = True):
        if isinstance(decimation, bool) or not isinstance(decimation, (int, np.integer)) or decimation < 1:
            raise ValueError(f"decimation must be a positive integer, got {decimation!r}")
        if max_range is not None and not max_range > 0:
            raise ValueError(f"max_range must be positive metres (or None), got {max_range}")
        self.rgb, self.decimation, self.max_range, self.organized = rgb, int(decimation), max_range, organized
        self.fields, self.point_step = cloud_layout(rgb)
        self._camera: CameraModel | None = None
        self._rays: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self._scratch: tuple[np.ndarray, ...] = ()

    def _planes(self, height: int, width: int) -> tuple[np.ndarray, ...]:
        """Private per-frame planes (x, y, z, zeros, BGRA bytes, zero bytes), reused between frames."""
        if not self._scratch or self._scratch[0].shape != (height, width):
            x, y, z = (np.empty((height, width), np.float32) for _ in range(3))
            zero, bgra, zero8 = (
                np.zeros_like(x),
                np.empty((height, width, 4), np.uint8),
                np.zeros((height, width), np.uint8),
            )
            self._scratch = (x, y, z, zero, bgra, zero8)
        return self._scratch

    def cloud_camera(self, camera: CameraModel) -> CameraModel:
        """The camera of the (decimated) cloud."""
        return camera.decimate(self.decimation)

    def nbytes(self, camera: CameraModel) -> int:
        """Size of the cloud's ``data`` for images of ``camera``."""
        sub = self.cloud_camera(camera)
        return sub.width * sub.height * self.point_step

    def _rays_for(self, camera: CameraModel):
        if self._camera is None or not (camera.size == self._camera.size and np.array_equal(camera.P, self._camera.P)):
            sub = self.cloud_camera(camera)
            ru, rv = sub.ray_grid()
            limit = None if self.max_range is None else range_limit(sub, self.max_range)
            self._camera, self._rays = camera, (ru, rv, limit)
        return self._rays

    def pack(
        self, depth: np.ndarray, camera: CameraModel, rgb: np.ndarray | None = None, out: np.ndarray | None = None
    ) -> PackedCloud:
        """Pack ``depth`` (H, W) metres (NaN invalid) and ``rgb`` (H, W, 3) uint8 for ``camera``.

        ``out``: a writable buffer of :meth:`nbytes` bytes to pack into (e.g. the message's own
        storage); a new one is allocated when omitted. Every byte of it is written. An unorganised
        packer packs there first, then returns the valid points in a new buffer.
        """
        camera.check_image(depth.shape, "depth image")
        if self.rgb:
            if rgb is None:
                raise ValueError("an xyzrgb cloud needs the colour image")
            camera.check_image(rgb.shape, "colour image")
            if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
                raise ValueError(f"colours must be an (H, W, 3) uint8 RGB array, got {rgb.dtype} {rgb.shape}")
        n = self.decimation
        if n > 1:
            depth = depth[::n, ::n]
            rgb = None if rgb is None else rgb[::n, ::n]
        height, width = depth.shape
        size = height * width * self.point_step
        data = np.empty(size, np.uint8) if out is None else np.frombuffer(out, np.uint8)
        if data.size != size:
            raise ValueError(f"cloud buffer has {data.size} bytes, expected {size} ({width}x{height} points)")
        cloud = data.view("<f4").reshape(height, width, self.point_step // 4)
        ru, rv, limit = self._rays_for(camera)
        x, y, z, zero, bgra, zero8 = self._planes(height, width)
        valid = np.greater(depth, 0)  # False for NaN too
        valid &= depth < (np.inf if limit is None else limit)
        z.fill(np.nan)
        np.copyto(z, depth, where=valid, casting="same_kind")
        np.multiply(ru, z, out=x)
        np.multiply(rv, z, out=y)
        planes = [x, y, z, zero]
        if self.rgb:
            # 0x00RRGGBB little endian is the bytes B, G, R, 0
            cv2.mixChannels([rgb, zero8], [bgra], [2, 0, 1, 1, 0, 2, 3, 3])
            planes += [bgra.view(np.float32)[..., 0], zero, zero, zero]
        # The one pass over the cloud's bytes: interleave the planes into the buffer.
        merged = cv2.merge(planes, dst=cloud)
        if merged.ctypes.data != cloud.ctypes.data:  # OpenCV allocated instead of writing in place
            cloud[...] = merged
        packed = PackedCloud(
            data=data if out is None else out,
            height=height,
            width=width,
            fields=self.fields,
            point_step=self.point_step,
            row_step=self.point_step * width,
            is_dense=bool(valid.all()),
        )
        return packed if self.organized else compact(packed)


def compact(cloud: PackedCloud) -> PackedCloud:
    """The unorganised, dense cloud of ``cloud``'s valid points (z not NaN), in a new buffer."""
    points = np.frombuffer(cloud.data, np.uint8).view("<f4").reshape(-1, cloud.point_step // 4)
    kept = points[~np.isnan(points[:, 2])]
    return PackedCloud(kept.view(np.uint8).reshape(-1), 1, len(kept), cloud.fields, cloud.point_step,
                       cloud.point_step * len(kept), is_dense=True)  # fmt: skip


def organised_cloud(
    depth: np.ndarray,
    camera: CameraModel,
    rgb: np.ndarray | None = None,
    decimation: int = 1,
    max_range: float | None = None,
) -> PackedCloud:
    """Depth (and colours) → packed organised cloud, decimated by striding with an exact camera."""
    return CloudPacker(rgb is not None, decimation, max_range).pack(np.asarray(depth), camera, rgb)


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
