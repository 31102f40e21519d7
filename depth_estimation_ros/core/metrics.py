"""Monocular depth metrics, per image, over valid ground truth (the BTS/AdaBins definitions).

Ground truth is valid where it is finite and ``min_depth < gt < max_depth`` (strict); invalid
pixels are masked, never clipped. Predictions are clamped to ``[min_depth, max_depth]`` first.
A prediction with a non-finite value (NaN, ±inf) anywhere is a ``ValueError``: a depth network
predicts every pixel, and silently replacing such values would hide a broken model. An image
with no valid pixel scores NaN on every metric, which :func:`average_metrics` skips and counts.

Crops, caps and resizing (the protocol) live in ``training.protocol``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

METRICS = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")
HEADERS = ("δ1", "δ2", "δ3", "AbsRel", "SqRel", "RMSE", "RMSElog", "log10", "SILog")


def compute_metrics(pred: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float) -> dict[str, float]:
    """Metrics of one image: δ1–3, AbsRel, SqRel, RMSE, RMSElog, log10 and SILog (×100).

    ``pred`` and ``gt`` are depth maps in metres of the same shape; see the module docstring for
    validity, clamping and the NaN result when no pixel is valid.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    if not 0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth} and {max_depth}")
    bad = int(np.count_nonzero(~np.isfinite(pred)))
    if bad:
        raise ValueError(f"prediction has {bad} non-finite values (NaN or inf) out of {pred.size}")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    if not valid.any():
        return dict.fromkeys(METRICS, math.nan)

    p = np.clip(pred[valid], min_depth, max_depth)
    g = gt[valid]
    ratio = np.maximum(g / p, p / g)
    err = g - p
    d = np.log(p) - np.log(g)
    return {
        "d1": float(np.mean(ratio < 1.25)),
        "d2": float(np.mean(ratio < 1.25**2)),
        "d3": float(np.mean(ratio < 1.25**3)),
        "abs_rel": float(np.mean(np.abs(err) / g)),
        "sq_rel": float(np.mean(err**2 / g)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "rmse_log": float(np.sqrt(np.mean(d**2))),
        "log10": float(np.mean(np.abs(np.log10(g) - np.log10(p)))),
        "silog": float(100.0 * np.sqrt(max(np.mean(d**2) - np.mean(d) ** 2, 0.0))),
    }


def agreement_d1(pred: np.ndarray, reference: np.ndarray) -> float:
    """δ1 of one prediction against another, without ground truth (a runtime or precision against
    the fp32 reference): the share of pixels with max(a/b, b/a) < 1.25. Equal values agree (zeros,
    and NaN where both leave a pixel out, as sky); a zero, negative or NaN against another value does not."""
    a, b = np.asarray(pred, np.float64), np.asarray(reference, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"prediction shape {a.shape} differs from the reference's {b.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((a > 0) & (b > 0), np.maximum(a / b, b / a), np.inf)
    return float(np.mean((a == b) | (np.isnan(a) & np.isnan(b)) | (ratio < 1.25)))


def average_metrics(per_image: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over images (per image, then mean), skipping images scored NaN.

    Returns the metrics plus ``count`` (images averaged) and ``skipped`` (images with no valid
    ground truth). With nothing to average, every metric is NaN.
    """
    rows = list(per_image)
    kept = [r for r in rows if not any(math.isnan(r[k]) for k in METRICS)]
    table = np.array([[r[k] for k in METRICS] for r in kept], dtype=np.float64).reshape(len(kept), len(METRICS))
    means = table.mean(0) if kept else np.full(len(METRICS), np.nan)
    return {
        **{k: float(v) for k, v in zip(METRICS, means, strict=True)},
        "count": len(kept),
        "skipped": len(rows) - len(kept),
    }


def format_table(results: Mapping[str, Mapping[str, float]], digits: int = 3) -> str:
    """Markdown table, one row per named result, in the papers' column order (δ1 … SILog).

    An ``N`` column (images averaged) is added when every result carries ``count``, so tables
    over 652 and 697 KITTI frames cannot be mixed up silently.
    """
    with_count = bool(results) and all("count" in r for r in results.values())
    headers = ("", *HEADERS, *(("N",) if with_count else ()))
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" + "---:|" * (len(headers) - 1)]
    for name, r in results.items():
        cells = [name, *(f"{r[k]:.{digits}f}" for k in METRICS), *((str(int(r["count"])),) if with_count else ())]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
