"""LiDAR points as the anchor's sparse depth: moved into the camera's optical frame, projected with
the full camera model (its lens distortion included), the nearest return kept per pixel, and the
returns the camera cannot see removed.

A LiDAR sits a few decimetres from the camera, so it sees past the edges of foreground objects onto
background the camera cannot see. Projected into the image, those background returns land among
the foreground's pixels and would pull a scale fit towards the background. A return is hidden from
the camera where a nearer return lies within ``window`` pixels of it (about the spacing of the
LiDAR's beams in the image) and nearer by more than ``margin`` of its depth: the local-minimum
visibility test of LiDAR-camera fusion, one minimum filter (``cv2.erode``) over the z-buffered
image. Pure numpy and OpenCV, no per-point Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from depth_estimation_ros.core.camera import CameraModel


def _rotation(quaternion) -> np.ndarray:
    x, y, z, w = (float(v) for v in quaternion)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not (math.isfinite(norm) and abs(norm - 1) < 1e-3):
        raise ValueError(f"rotation must be a unit quaternion (x, y, z, w), got {list(quaternion)} (norm {norm:.6g})")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


@dataclass(frozen=True)
class Mounting:
    """Where the point cloud's frame is in the camera's optical frame (x right, y down, z forward):
    ``p_camera = R(rotation) · p + translation``, the rotation a unit quaternion (x, y, z, w) as
    tf2 writes it. The default: the cloud is already in the optical frame."""

    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    R: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        t = np.asarray(self.translation, np.float64)
        if t.shape != (3,) or not np.isfinite(t).all():
            raise ValueError(f"translation must be three finite metres (x, y, z), got {list(self.translation)}")
        if np.asarray(self.rotation).shape != (4,):
            raise ValueError(f"rotation must be a quaternion (x, y, z, w), got {list(self.rotation)}")
        object.__setattr__(self, "R", _rotation(self.rotation))

    @classmethod
    def from_text(cls, text: str) -> Mounting | None:
        """``"x y z qx qy qz qw"`` (metres and a unit quaternion, ``static_transform_publisher``'s
        order), or None for an empty string (the cloud is in the optical frame)."""
        if not text.strip():
            return None
        try:
            values = [float(v) for v in text.replace(",", " ").split()]
        except ValueError:
            values = []
        if len(values) != 7:
            raise ValueError(f"{text!r} must be seven numbers: x y z qx qy qz qw (metres, a unit quaternion)")
        return cls(tuple(values[:3]), tuple(values[3:]))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return points @ self.R.T + np.asarray(self.translation)


@dataclass(frozen=True)
class Projection:
    """The returns as a sparse depth image at the camera's resolution (NaN where none), how many
    fell in the image in front of the camera, and how many of those were hidden from it."""

    depth: np.ndarray
    points: int
    occluded: int


def _pixels(camera: CameraModel, xyz: np.ndarray) -> np.ndarray:
    """(u, v) of camera-frame points (N, 3) through the camera's lens model."""
    if not camera.D.any():
        return xyz[:, :2] / xyz[:, 2:] * (camera.fx, camera.fy) + (camera.cx, camera.cy)
    zero = np.zeros(3)
    if camera.distortion_model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(xyz[:, None], zero, zero, camera.K, camera.D[:4])
    else:  # OpenCV takes 4, 5, 8, 12 or 14 coefficients; the missing ones are zero
        n = next(n for n in (4, 5, 8, 12, 14) if n >= camera.D.size)
        uv, _ = cv2.projectPoints(xyz, zero, zero, camera.K, np.pad(camera.D, (0, n - camera.D.size)))
    return uv.reshape(-1, 2)


def project_points(
    points: np.ndarray, camera: CameraModel, mounting: Mounting | None = None, *, window: int = 7,
    margin: float = 0.1,
) -> Projection:  # fmt: skip
    """Sparse depth (metres, along the optical axis) of ``points`` (N, ≥ 3: x, y, z first) seen by
    ``camera``, with the returns hidden from the camera removed (see the module docstring)."""
    xyz = np.asarray(points, np.float64)
    if xyz.ndim != 2 or xyz.shape[1] < 3:
        raise ValueError(f"points must be (N, 3) or wider (x, y, z first), got shape {xyz.shape}")
    xyz = xyz[:, :3]
    xyz = xyz[np.isfinite(xyz).all(1)]
    if mounting is not None:
        xyz = mounting.to_camera(xyz)
    xyz = xyz[xyz[:, 2] > 1e-3]
    H, W = camera.height, camera.width
    depth = np.full((H, W), np.nan, np.float32)
    if not len(xyz):
        return Projection(depth, 0, 0)
    uv = np.floor(_pixels(camera, xyz) + 0.5)  # pixel centres at integers
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    index = uv[inside, 1].astype(np.int64) * W + uv[inside, 0].astype(np.int64)
    z = xyz[inside, 2].astype(np.float32)
    order = np.lexsort((z, index))  # by pixel, nearest first: the z-buffer keeps each pixel's first
    index, z = index[order], z[order]
    first = np.ones(index.size, bool)
    first[1:] = index[1:] != index[:-1]
    index, z = index[first], z[first]
    buffer = np.full(H * W, np.inf, np.float32)
    buffer[index] = z
    nearest = cv2.erode(buffer.reshape(H, W), np.ones((window, window), np.uint8)).ravel()
    visible = z <= nearest[index] * (1 + margin)
    depth.ravel()[index[visible]] = z[visible]
    return Projection(depth, int(index.size), int((~visible).sum()))
