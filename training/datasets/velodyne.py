"""KITTI ground truth projected from the raw Velodyne scans, as Eigen et al. and Monodepth2 make it.

The papers' KITTI numbers (ACAN, MSFNet, and everything before the 2017 annotated depth release)
score the 697-frame Eigen test split against this ground truth, not against the annotated maps.

Inputs, all from the KITTI raw release:

* ``<date>/<drive>/velodyne_points/data/<frame>.bin``: float32 records (x, y, z, reflectance),
  x forward, y left, z up, metres.
* ``<date>/calib_velo_to_cam.txt``: ``R`` (3×3, row-major) and ``T`` (3) from Velodyne to camera 0.
* ``<date>/calib_cam_to_cam.txt``: ``R_rect_00`` (rectifying rotation), ``P_rect_0N`` (3×4
  projection of camera N after rectification) and ``S_rect_0N`` (image width, height).

The projection is ``P_rect_0N · R_rect_00 · [R | T]`` on homogeneous points. As in Monodepth2's
``generate_depth_map``: points behind the scanner (x < 0) are dropped, image coordinates are
rounded and then shifted by −1 (KITTI's MATLAB devkit is 1-based), points outside the image are
dropped, where several points land on one pixel the nearest is kept, and negative depths become 0.
Depth is the camera z coordinate.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from training.datasets import read_bytes

PathLike = str | os.PathLike


def read_kitti_calib(path: PathLike) -> dict[str, np.ndarray]:
    """Numeric entries of a KITTI ``calib_*.txt`` (``key: v1 v2 ...``) as float64 arrays."""
    path = Path(path)
    calib = {}
    for line in read_bytes(path).decode("utf-8", errors="replace").splitlines():
        key, sep, values = line.partition(":")
        if not sep:
            continue
        try:
            calib[key.strip()] = np.array([float(v) for v in values.split()], dtype=np.float64)
        except ValueError:
            continue  # calib_time and other text entries
    return calib


def read_velodyne(path: PathLike) -> np.ndarray:
    """(N, 4) float32 ``x, y, z, reflectance`` of one scan; a file that is not whole records is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Velodyne scan not found: {path}")
    data = np.fromfile(path, dtype=np.float32)
    if data.size % 4:
        raise ValueError(f"{path}: {data.size} float32 values; a Velodyne scan holds records of 4 (x, y, z, r)")
    return data.reshape(-1, 4)


def _calib_matrix(calib: dict[str, np.ndarray], key: str, size: int, source: PathLike) -> np.ndarray:
    value = calib.get(key)
    if value is None or value.size != size:
        raise ValueError(f"{source}: expected a '{key}:' line with {size} numbers")
    return value


def velodyne_to_image(
    cam_to_cam: PathLike, velo_to_cam: PathLike, camera: str = "02"
) -> tuple[np.ndarray, tuple[int, int]]:
    """The 3×4 matrix from homogeneous Velodyne points to camera ``camera``'s image, and its (H, W)."""
    c2c, v2c = read_kitti_calib(cam_to_cam), read_kitti_calib(velo_to_cam)
    rigid = np.eye(4)
    rigid[:3, :3] = _calib_matrix(v2c, "R", 9, velo_to_cam).reshape(3, 3)
    rigid[:3, 3] = _calib_matrix(v2c, "T", 3, velo_to_cam)
    rect = np.eye(4)
    rect[:3, :3] = _calib_matrix(c2c, "R_rect_00", 9, cam_to_cam).reshape(3, 3)
    projection = _calib_matrix(c2c, f"P_rect_{camera}", 12, cam_to_cam).reshape(3, 4)
    width, height = _calib_matrix(c2c, f"S_rect_{camera}", 2, cam_to_cam)
    return projection @ rect @ rigid, (round(height), round(width))


def project_velodyne(points: np.ndarray, velo_to_image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 depth in metres from (N, ≥3) Velodyne points; 0 where no point lands."""
    points = np.asarray(points, dtype=np.float64)
    front = points[points[:, 0] >= 0]
    homogeneous = np.concatenate([front[:, :3], np.ones((len(front), 1))], axis=1)
    projected = homogeneous @ velo_to_image.T  # (N, 3): u·z, v·z, z
    z = projected[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.round(projected[:, 0] / z) - 1
        v = np.round(projected[:, 1] / z) - 1
    h, w = shape
    inside = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (v >= 0) & (u < w) & (v < h)
    u, v, z = u[inside].astype(np.int64), v[inside].astype(np.int64), z[inside]
    pixel = v * w + u
    order = np.lexsort((z, pixel))  # by pixel, nearest first
    first = np.unique(pixel[order], return_index=True)[1]
    keep = order[first]
    depth = np.zeros(h * w, dtype=np.float64)
    depth[pixel[keep]] = z[keep]
    depth[depth < 0] = 0
    return depth.reshape(h, w).astype(np.float32)


def velodyne_depth(
    scan: PathLike, calib_dir: PathLike, camera: str = "02", shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Projected depth of one scan for camera ``camera``; ``calib_dir`` holds the two calib files.

    ``shape`` defaults to ``S_rect_<camera>``.
    """
    calib_dir = Path(calib_dir)
    matrix, size = velodyne_to_image(calib_dir / "calib_cam_to_cam.txt", calib_dir / "calib_velo_to_cam.txt", camera)
    return project_velodyne(read_velodyne(scan), matrix, shape or size)
