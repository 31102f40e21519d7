"""Evaluation protocol: depth caps, crops, resizing to ground truth and flip test-time augmentation.

The metric formulas are in :mod:`depth_estimation_ros.core.metrics`. A crop is applied by marking
ground truth outside it invalid (a boolean mask), never by slicing, so it composes with any
resolution and leaves the prediction untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import torch

from depth_estimation_ros.core.metrics import compute_metrics

CAPS = {"nyu": (1e-3, 10.0), "kitti": (1e-3, 80.0)}
DEFAULT_CROP = {"nyu": "bts", "kitti": "garg"}

# NYU crops as (top, bottom, left, right) on the 480×640 frame.
NYU_CROPS = {"bts": (45, 471, 41, 601), "densedepth": (20, 460, 24, 616)}
# KITTI crops as fractions (top, bottom, left, right) of the image height and width.
KITTI_CROPS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
}


def _box_mask(h: int, w: int, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def nyu_crop_mask(h: int, w: int, style: str = "bts") -> np.ndarray:
    """NYU evaluation crop: rows 45:471, cols 41:601 (``"bts"``, BTS/AdaBins lineage) or rows
    20:460, cols 24:616 (``"densedepth"``) of 480×640.

    Other sizes take the crop scaled proportionally (bounds rounded half up), which
    assumes the image is a resized 480×640 frame, not a cropped one.
    """
    if style not in NYU_CROPS:
        raise ValueError(f"unknown NYU crop style {style!r}; expected one of {sorted(NYU_CROPS)}")
    top, bottom, left, right = NYU_CROPS[style]
    y = np.floor(np.array([top, bottom]) * h / 480 + 0.5).astype(int)
    x = np.floor(np.array([left, right]) * w / 640 + 0.5).astype(int)
    return _box_mask(h, w, y[0], y[1], x[0], x[1])


def garg_crop_mask(h: int, w: int) -> np.ndarray:
    """KITTI Garg crop, computed per image from fractions of h and w (bounds truncated to int)."""
    return kitti_crop_mask(h, w, "garg")


def eigen_crop_mask(h: int, w: int) -> np.ndarray:
    """KITTI Eigen crop, computed per image from fractions of h and w (bounds truncated to int)."""
    return kitti_crop_mask(h, w, "eigen")


def kitti_crop_mask(h: int, w: int, style: str = "garg") -> np.ndarray:
    """KITTI ``"garg"`` or ``"eigen"`` crop of an h×w image, bounds truncated to int as in BTS/AdaBins."""
    if style not in KITTI_CROPS:
        raise ValueError(f"unknown KITTI crop style {style!r}; expected one of {sorted(KITTI_CROPS)}")
    top, bottom, left, right = KITTI_CROPS[style]
    return _box_mask(h, w, int(top * h), int(bottom * h), int(left * w), int(right * w))


def crop_mask(h: int, w: int, crop: str) -> np.ndarray:
    """Any named crop: ``"bts"``, ``"densedepth"`` (NYU), ``"garg"``, ``"eigen"`` (KITTI)."""
    if crop in NYU_CROPS:
        return nyu_crop_mask(h, w, crop)
    if crop in KITTI_CROPS:
        return kitti_crop_mask(h, w, crop)
    raise ValueError(f"unknown crop {crop!r}; expected one of {sorted({*NYU_CROPS, *KITTI_CROPS})} or None")


CROPS = {"nyu": NYU_CROPS, "kitti": KITTI_CROPS}


def resolve_crop(dataset: str, crop: str | None) -> str | None:
    """The crop name a protocol uses: ``"default"`` becomes the dataset's, ``None``/``"none"`` no crop.

    A crop of the other dataset (e.g. KITTI's ``"eigen"`` on NYU) is an error: its fractions
    describe a different camera and would silently score the wrong pixels.
    """
    if dataset not in CAPS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(CAPS)}")
    if crop is None or crop == "none":
        return None
    if crop == "default":
        return DEFAULT_CROP[dataset]
    if crop in CROPS[dataset]:
        return crop
    owner = next((name for name, crops in CROPS.items() if crop in crops), None)
    what = f"is a {owner.upper()} crop" if owner else "is not a crop"
    raise ValueError(
        f"crop {crop!r} {what}; {dataset.upper()} crops are {', '.join(sorted(CROPS[dataset]))}, default or none"
    )


def resize_prediction(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (cv2, pixel-centre aligned) of an (H, W) depth map to ``shape`` = (h, w).

    Leading singleton axes, as in a (1, 1, H, W) network output, are dropped.
    """
    pred = np.asarray(pred, dtype=np.float32)
    if pred.ndim > 2 and all(s == 1 for s in pred.shape[:-2]):
        pred = pred.reshape(pred.shape[-2:])
    if pred.ndim != 2:
        raise ValueError(f"expected an (H, W) depth map, got shape {pred.shape}")
    h, w = shape
    if pred.shape == (h, w):
        return pred
    return cv2.resize(pred, (w, h), interpolation=cv2.INTER_LINEAR)


def flip_tta(predict_fn: Callable[[Any], Any], image: Any) -> Any:
    """Mean of the prediction for ``image`` and the prediction for its mirror image, flipped back.

    ``image`` is a torch tensor (..., C, H, W) or a numpy array (H, W, C) / (H, W); the
    prediction's width is its last axis.
    """
    if isinstance(image, torch.Tensor):
        return 0.5 * (predict_fn(image) + predict_fn(image.flip(-1)).flip(-1))
    mirrored = np.ascontiguousarray(np.flip(image, axis=1))
    return 0.5 * (np.asarray(predict_fn(image)) + np.flip(np.asarray(predict_fn(mirrored)), axis=-1))


def evaluate_image(
    pred: np.ndarray,
    gt: np.ndarray,
    dataset: str = "nyu",
    crop: str | None = "default",
    min_depth: float | None = None,
    max_depth: float | None = None,
) -> dict[str, float]:
    """Score one prediction under the protocol: resize to ``gt``, mask the crop, cap, compute metrics.

    Caps default to NYU 1e-3..10 m and KITTI 1e-3..80 m; ``crop="default"`` is ``"bts"`` for NYU
    and ``"garg"`` for KITTI, ``None`` scores the whole image; a crop of the other dataset is an
    error (:func:`resolve_crop`).
    """
    if dataset not in CAPS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(CAPS)}")
    lo, hi = CAPS[dataset]
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 2:
        raise ValueError(f"expected (H, W) ground truth, got shape {gt.shape}")
    pred = resize_prediction(pred, gt.shape)
    crop = resolve_crop(dataset, crop)
    if crop is not None:
        gt = np.where(crop_mask(*gt.shape, crop), gt, np.nan)
    return compute_metrics(pred, gt, lo if min_depth is None else min_depth, hi if max_depth is None else max_depth)


def eval_scale(config: dict) -> float:
    """Image scale at which evaluation shows whole frames to a network trained with ``config``.

    ``eval.scale`` when the config sets it (the paper configs do: the scale of the paper's own
    test input), else the middle of ``data.augment.scale``, else 1 (training crops at native
    scale). Training records it in the checkpoint so eval needs nothing else.
    """
    explicit = (config.get("eval") or {}).get("scale")
    if explicit:
        return float(explicit)
    low_high = ((config.get("data") or {}).get("augment") or {}).get("scale")
    return float(sum(low_high) / 2) if low_high else 1.0
