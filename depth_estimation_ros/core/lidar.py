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

from dataclasses import dataclass

import cv2
import numpy as np

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.mounting import Mounting


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
