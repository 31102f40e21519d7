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
