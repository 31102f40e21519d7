"""Pictures of depth for people: colour maps and side-by-side previews."""

from __future__ import annotations

import cv2
import numpy as np


def colorize(depth: np.ndarray, min_depth: float | None = None, max_depth: float | None = None) -> np.ndarray:
    """(H, W) metres → (H, W, 3) uint8 RGB, near = warm, far = cool (turbo on inverse depth); invalid black."""
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return np.zeros((*depth.shape, 3), dtype=np.uint8)
    lo = min_depth if min_depth is not None else float(np.percentile(depth[valid], 2))
    hi = max_depth if max_depth is not None else float(np.percentile(depth[valid], 98))
    lo, hi = max(lo, 1e-3), max(hi, lo * 1.001)
    inv = np.where(valid, 1 / np.clip(depth, lo, hi, where=valid, out=np.full_like(depth, hi)), 1 / hi)
    level = ((inv - 1 / hi) / (1 / lo - 1 / hi) * 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb


def side_by_side(*images: np.ndarray, height: int | None = None) -> np.ndarray:
    """RGB images next to each other, each resized to a common height."""
    height = height or images[0].shape[0]
    resized = [cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height)) for im in images]
    return np.concatenate(resized, axis=1)


def render_cloud(
    points: np.ndarray, rgb: np.ndarray, camera_k: np.ndarray, yaw_deg: float = 35.0, pitch_deg: float = 20.0
) -> np.ndarray:
    """Picture of an organised (H, W, 3) cloud seen from a camera orbiting its centre.

    The virtual camera has intrinsics ``camera_k`` and the cloud's image size; points are splatted
    (2×2) far to near so nearer points win, without a per-point Python loop.
    """
    h, w = points.shape[:2]
    xyz = points.reshape(-1, 3)
    colours = rgb.reshape(-1, 3)
    keep = np.isfinite(xyz).all(1)
    xyz, colours = xyz[keep], colours[keep]
    canvas = np.full((h, w, 3), 24, np.uint8)
    if not len(xyz):
        return canvas
    centre = np.median(xyz, axis=0)
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    # orbit: rotate about the cloud's centre, then step back so the whole cloud stays in view
    view = (xyz - centre) @ (rx @ ry).T
    view[:, 2] += centre[2] * 1.6
    front = view[:, 2] > 1e-3
    view, colours = view[front], colours[front]
    u = np.round(camera_k[0, 0] * view[:, 0] / view[:, 2] + camera_k[0, 2]).astype(np.int64)
    v = np.round(camera_k[1, 1] * view[:, 1] / view[:, 2] + camera_k[1, 2]).astype(np.int64)
    order = np.argsort(-view[:, 2])  # far first: near points overwrite them
    u, v, colours = u[order], v[order], colours[order]
    for du in (0, 1):
        for dv in (0, 1):
            uu, vv = u + du, v + dv
            inside = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
            canvas[vv[inside], uu[inside]] = colours[inside]
    return canvas
