"""A metric depth prompt from a frame's sparse depth (Prompt Depth Anything).

Prompt Depth Anything takes a low-resolution metric depth image of the scene beside the RGB frame
(it was trained on ARKit's 256x192 LiDAR depth), normalises it by its own minimum and maximum, and
maps its output back with them, so the prompt must be dense and its extremes real. A sensor's
sparse depth (a LiDAR projected into the camera, a depth camera with holes) is made so here: readings
outside the plausible 1 mm-10 km are holes, every hole takes its nearest reading (one distance
transform, no per-pixel loop), and the map is brought to at most :data:`PROMPT_SIDE` on its long side
by area averaging. Too few readings give no prompt: the frame is then skipped, never guessed.
"""

from __future__ import annotations

import cv2
import numpy as np

from depth_estimation_ros.core.card import PLAUSIBLE_DEPTH_M

PROMPT_SIDE = 256  # ARKit's LiDAR depth, what the model was trained with, is 256x192
MIN_READINGS = 16  # fewer say too little of the scene's range to normalise by


def depth_prompt(sparse: np.ndarray) -> np.ndarray | None:
    """(1, 1, h, w) float32 metres, dense, from (H, W) sparse metric depth (NaN or 0 where none); None
    when it holds fewer than :data:`MIN_READINGS` readings."""
    depth = np.asarray(sparse, np.float32)
    low, high = PLAUSIBLE_DEPTH_M
    valid = np.isfinite(depth) & (depth >= low) & (depth <= high)
    if np.count_nonzero(valid) < MIN_READINGS:
        return None
    if not valid.all():  # every hole takes its nearest reading: the label of its nearest zero pixel
        _, labels = cv2.distanceTransformWithLabels((~valid).astype(np.uint8), cv2.DIST_L2, 3,
                                                    labelType=cv2.DIST_LABEL_PIXEL)  # fmt: skip
        lut = np.zeros(labels.max() + 1, np.float32)
        lut[labels[valid]] = depth[valid]
        depth = lut[labels]
    scale = PROMPT_SIDE / max(depth.shape)
    if scale < 1:
        size = (max(1, round(depth.shape[1] * scale)), max(1, round(depth.shape[0] * scale)))
        depth = cv2.resize(depth, size, interpolation=cv2.INTER_AREA)
    if depth.min() == depth.max():  # a flat prompt has no range to normalise by (transformers does this too)
        depth = depth.copy()
        depth[0, 0] += 1e-6
    return depth[None, None]
