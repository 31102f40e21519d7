"""Point maps known up to a shift along the optical axis (MoGe, MoGe-2), made metric with the camera.

MoGe predicts, per pixel, a point ``p = (x, y, z)`` of an affine-invariant point map: the scene's
points are ``s · (x, y, z + t)`` for one scale s and one z-shift t (MoGe-2 predicts s as
``metric_scale``; MoGe-1 leaves it to anchoring). With the camera known, t is what makes each point
project back onto its own pixel: ``x / (z + t) = a``, ``y / (z + t) = b`` with ``(a, b) = ((u − cx) /
fx, (v − cy) / fy)`` the pixel's ray. Each valid pixel gives its own least-squares root
``t_i = (a·x + b·y) / (a² + b²) − z``, and the shift is their median: robust to the mask's stray
pixels and to points the network smeared across an edge, cheap (one pass, no iterations), and the
rule ika's ros2-moge-trt node applies. (MoGe's own ``recover_focal_shift`` minimises the same
reprojection error with Levenberg-Marquardt; on a consistent map both give the same t.) Pixels near
the principal point, whose ray is nearly the axis, say nothing about t and are left out.

The depth is then ``Z = s · (z + t)``.
"""

from __future__ import annotations

import numpy as np

SAMPLES = 64  # per side: the shift is one number; 4096 pixels fix it, whatever the image size
NEAR_AXIS = 0.02  # rays closer than this (tan of the angle) to the optical axis are left out


def recover_shift(points: np.ndarray, valid: np.ndarray, K: np.ndarray) -> float:
    """The z-shift of an (H, W, 3) point map whose pixels' camera is ``K`` (valid: (H, W) bool); NaN
    when no usable pixel remains."""
    height, width = valid.shape
    rows = np.linspace(0, height - 1, min(SAMPLES, height)).round().astype(int)
    cols = np.linspace(0, width - 1, min(SAMPLES, width)).round().astype(int)
    p = points[rows][:, cols].reshape(-1, 3).astype(np.float64)
    keep = valid[rows][:, cols].reshape(-1) & np.isfinite(p).all(axis=1)
    a = np.broadcast_to(((cols - K[0, 2]) / K[0, 0])[None, :], (rows.size, cols.size)).reshape(-1)
    b = np.broadcast_to(((rows - K[1, 2]) / K[1, 1])[:, None], (rows.size, cols.size)).reshape(-1)
    norm = a * a + b * b
    keep &= norm > NEAR_AXIS**2
    if not keep.any():
        return float("nan")
    roots = (a[keep] * p[keep, 0] + b[keep] * p[keep, 1]) / norm[keep] - p[keep, 2]
    return float(np.median(roots))


def depth_from_points(points: np.ndarray, valid: np.ndarray, K: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """(H, W) float32 metres ``scale · (z + t)`` of an (H, W, 3) point map up to a z-shift, NaN where
    ``valid`` is False, behind the camera, or everywhere when no shift can be recovered."""
    shift = recover_shift(points, valid, K)
    depth = (points[..., 2].astype(np.float64) + shift) * scale
    depth[~valid | ~(depth > 0)] = np.nan
    return depth.astype(np.float32)
