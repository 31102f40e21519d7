"""Anchoring: a depth network's raw output to metric depth, robustly and stably over time.

Two kinds of model output are handled (``KINDS``):

* ``depth`` — a metric model (trained on metric depth) whose output is depth in metres up to an
  unknown global scale (a different camera, focal length or domain): ``Z = s · pred``, shift 0.
  The scale is fitted in log space, where a scale is an offset: minimise
  ``Σ huber(log Z_ref − log(s · pred))``, i.e. the relative error, by iteratively reweighted least
  squares (IRLS) from the median of the log ratios (:func:`fit_depth_scale`).
* ``inverse_depth`` — a relative model (MiDaS / DPT / Depth Anything "relative" style) trained with
  a loss that is invariant to scale and shift of disparity, so its output is affine in inverse
  depth: ``1/Z = s · pred + t`` with unknown ``s > 0`` and ``t``. Such an output carries no metric
  scale at all and is never returned as metres without a fitted (or fixed) ``s, t``.
  :func:`fit_inverse_affine` fits ``s, t`` with a small vectorised RANSAC (MSAC scoring: all
  hypotheses scored against a ≤ 1000-point subsample in one matrix operation) followed by Huber
  IRLS weighted least squares on the points near the consensus. Residuals are relative to the
  reference inverse depth, ``r = (s · pred + t) · Z_ref − 1``, so near and far points count alike
  (``|r|`` is also, to first order, the relative depth error).

Where the metric reference comes from (``SOURCES``):

* ``none`` — metric models only: the model's own output is used as it is.
* ``fixed`` — configured ``fixed_scale`` / ``fixed_shift``.
* ``sparse_depth`` — a sparse depth image (LiDAR projected into the camera, a depth camera), at
  any resolution, registered to the same camera: :func:`sample_sparse` maps every valid sparse
  pixel to the nearest prediction pixel (pixel-centre convention) and only those prediction
  values are read.
* ``sparse_points`` — LiDAR points (a point cloud in the camera's optical frame or a frame with a
  fixed transform to it), projected with the camera model, nearest return per pixel, returns hidden
  from the camera removed (:func:`depth_estimation_ros.core.lidar.project_points`, run by the
  estimator): then the same fit as ``sparse_depth``.
* ``ground_plane`` — a flat floor ``camera_height`` metres below the camera. For a metric model its
  plane (pitch, roll, a slope) is fitted from the prediction every frame
  (:func:`depth_estimation_ros.core.ground_plane.fit_floor`: a search over normals within 15° of the
  configured one on a grid of about 3000 pixels below the configured horizon), and the scale
  follows from the plane's distance, which must be the camera height. Where no floor is found (too
  few pixels on one plane), and always for a relative model (whose floor cannot give its pitch: see
  :mod:`~depth_estimation_ros.core.ground_plane`), the last fitted plane stands in for up to 2 s,
  then the configured ``camera_pitch``/``camera_roll``. With a known plane every pixel below the
  horizon has a floor depth (:func:`~depth_estimation_ros.core.ground_plane.floor_depth`); a grid of
  such pixels serves as sparse depth, pixels that do not see the floor (walls, furniture, cars)
  being gross outliers, so a largest-consensus fit is used: for ``depth`` the densest
  2·huber-wide window of sorted log ratios (exact 1-D consensus) starts a Huber IRLS on the points
  near it; for ``inverse_depth`` the RANSAC with more hypotheses (256). ``/diagnostics`` says which
  plane each frame used, with its pitch and roll.

Over time (:class:`ScaleFilter`): an exponential moving average of ``log s`` (and of ``t / s`` —
the shift in prediction units, which does not change when only the scale does) with gating: a fit
whose ``log s`` is more than ``gate`` from the filtered value is rejected as an outlier, except
that three consecutive rejected fits that agree with each other (within ``gate``) re-initialise
the filter (the scene really changed). Fits that are not ``ok`` are ignored, so the last good
scale is held; its age and the jitter of the accepted raw fits are reported so a stale or
drifting scale is visible (:meth:`Anchor.diagnostics`).

Cost: the fits touch only the correspondences (a few thousand), never the full image; the only
full-image work is the final ``s · pred (+ t)`` (and reciprocal) in :meth:`Anchor.apply`. Pure
numpy, no per-pixel Python loops.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from depth_estimation_ros.core.card import PLAUSIBLE_DEPTH_M
from depth_estimation_ros.core.ground_plane import (
    PlaneFilter,
    fit_floor,
    floor_candidates,
    floor_grid,
    floor_normal,
    pitch_roll,
)

KINDS = ("depth", "inverse_depth")


@dataclass(frozen=True)
class ScaleSource:
    """A metric reference, declared once: its name (the ``scale_source`` value), whether it is
    fitted per frame (filtered over time, diagnosed for age and drift), and the per-frame input
    the fit needs (``frame_input``: None, or the name of a measurement fed with each frame, which
    the ROS layer maps to a topic, depth_estimation_ros.ros.inputs)."""

    name: str
    fitted: bool = False
    frame_input: str | None = None


SCALE_SOURCES = {
    source.name: source
    for source in (
        ScaleSource("none"),
        ScaleSource("fixed"),
        ScaleSource("sparse_depth", fitted=True, frame_input="sparse_depth"),
        # LiDAR points, projected into the camera by the estimator (core.lidar): then as sparse depth
        ScaleSource("sparse_points", fitted=True, frame_input="sparse_points"),
        ScaleSource("ground_plane", fitted=True),
    )
}
SOURCES = tuple(SCALE_SOURCES)

_SUBSAMPLE = 1000  # RANSAC scores hypotheses on at most this many points
_HYPOTHESES = 64  # RANSAC pairs for sparse depth
_GROUND_HYPOTHESES = 256  # more for the ground plane, whose outlier share is large
_BAND = 3.0  # IRLS uses points with |residual| <= _BAND * threshold of the current solution
_DRIFT = 0.05  # jitter (std of log-scale) above which diagnostics warn "drifting"
_REINIT = 3  # consecutive consistent rejections that re-initialise the filter
_FULL_SEARCH = 10  # the ground plane's whole search every so many frames, else around the last floor


@dataclass(frozen=True)
class ScaleFit:
    """The result of one scale fit.

    ``depth``: ``Z = scale · pred`` (``shift`` is 0). ``inverse_depth``: ``1/Z = scale · pred + shift``.
    ``points``: usable correspondences offered; ``inliers``: those within the robust threshold at
    the solution; ``residual``: median absolute relative depth error ``|Z_fit − Z_ref| / Z_ref`` of
    the inliers. ``ok`` False (too few points, degenerate, non-positive scale) with ``reason``.
    """

    scale: float
    shift: float
    points: int
    inliers: int
    residual: float
    ok: bool
    reason: str


def _failed(points: int, reason: str, scale: float = math.nan, shift: float = math.nan, inliers: int = 0) -> ScaleFit:
    return ScaleFit(float(scale), float(shift), int(points), int(inliers), math.nan, False, reason)


# --------------------------------------------------------------------------- correspondences


def sample_sparse(pred: np.ndarray, sparse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correspondences ``(pred values, metric depths)`` (float64, equal length) from a sparse depth image.

    ``sparse`` (h, w) is registered to the same camera as ``pred`` (H, W) but may have any
    resolution. Valid sparse pixels are finite, > 0 and plausible metres (``PLAUSIBLE_DEPTH_M``:
    0, NaN and a reading of 1e30 are holes); ``uint16`` is read
    as millimetres (metres = value / 1000), floating point as metres. Each valid sparse pixel
    ``(u_s, v_s)`` maps to the prediction pixel whose centre is nearest, with the pixel-centre
    convention ``u = (u_s + 0.5) · W / w − 0.5`` (and likewise ``v``), rounded half up and clipped
    to the image. Pairs whose prediction value is not finite are dropped. Only the sparse image is
    scanned; the prediction is read at the mapped pixels only.
    """
    pred = np.asarray(pred)
    sparse = np.asarray(sparse)
    if pred.ndim != 2 or sparse.ndim != 2:
        raise ValueError(f"pred and sparse must be 2-D images, got shapes {pred.shape} and {sparse.shape}")
    H, W = pred.shape
    h, w = sparse.shape
    flat = sparse.reshape(-1)
    index = np.flatnonzero(flat > 0)  # NaN > 0 is False: holes (0, NaN, negative) drop out here
    if sparse.dtype == np.uint16:
        depth = flat[index] * 0.001
    elif np.issubdtype(sparse.dtype, np.floating):
        depth = flat[index].astype(np.float64)
        finite = np.isfinite(depth)
        if not finite.all():
            index, depth = index[finite], depth[finite]
    else:
        raise ValueError(f"sparse depth must be uint16 millimetres or float metres, got dtype {sparse.dtype}")
    low, high = PLAUSIBLE_DEPTH_M
    plausible = (depth >= low) & (depth <= high)  # a reading of 1e30 m is a hole, not a scale
    if not plausible.all():
        index, depth = index[plausible], depth[plausible]
    vs, us = np.divmod(index, w)
    if (h, w) == (H, W):
        pixel = index
    else:
        u = np.floor((us + 0.5) * (W / w)).astype(np.int64)  # floor(x + 0.5) with x = (u_s + 0.5)·W/w − 0.5
        v = np.floor((vs + 0.5) * (H / h)).astype(np.int64)
        np.clip(u, 0, W - 1, out=u)
        np.clip(v, 0, H - 1, out=v)
        pixel = v * W + u
    values = np.asarray(pred.reshape(-1).take(pixel), dtype=np.float64)
    good = np.isfinite(values)
    if not good.all():
        values, depth = values[good], depth[good]
    return values, depth


# --------------------------------------------------------------------------- fits


def _usable(pred_values, ref_depth, positive_pred: bool) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred_values, dtype=np.float64).reshape(-1)
    z = np.asarray(ref_depth, dtype=np.float64).reshape(-1)
    if p.shape != z.shape:
        raise ValueError(f"pred_values and ref_depth must have the same length, got {p.size} and {z.size}")
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(p) & np.isfinite(z) & (z > 0)
        if positive_pred:
            keep &= p > 0
    if not keep.all():
        p, z = p[keep], z[keep]
    return p, z


def _check_options(min_points, threshold, iterations, name: str) -> None:
    if isinstance(min_points, bool) or int(min_points) != min_points or min_points < 2:
        raise ValueError(f"min_points must be an integer >= 2, got {min_points!r}")
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"{name} must be finite and > 0, got {threshold!r}")
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")


def _log_scale_irls(log_ratio: np.ndarray, start: float, huber: float, iterations: int, band: float) -> float:
    """Huber IRLS estimate of the offset ``c`` in ``log_ratio ≈ c``, from ``start``; points with
    ``|log_ratio − c| > band`` get zero weight (``band = inf``: plain Huber over all points)."""
    c = start
    for _ in range(iterations):
        a = np.abs(log_ratio - c)
        w = np.minimum(1.0, huber / np.maximum(a, 1e-300))
        if math.isfinite(band):
            w[a > band] = 0.0
        total = w.sum()
        if total <= 0:
            break
        new = float(w @ log_ratio / total)
        done = abs(new - c) < 1e-12
        c = new
        if done:
            break
    return c


def _densest(sorted_values: np.ndarray, width: float) -> tuple[float, int]:
    """Centre (median of its members) and size of the ``width``-wide window holding most values."""
    ends = np.searchsorted(sorted_values, sorted_values + width, side="right")
    counts = ends - np.arange(sorted_values.size)
    k = int(np.argmax(counts))
    members = sorted_values[k : ends[k]]
    return float(np.median(members)), int(counts[k])


def _scale_fit(
    p: np.ndarray, z: np.ndarray, min_points: int, huber: float, iterations: int, consensus: bool
) -> ScaleFit:
    n = p.size
    if n < min_points:
        return _failed(n, f"too few points: {n} < min_points {min_points}")
    log_ratio = np.log(z) - np.log(p)
    if consensus:
        start, _ = _densest(np.sort(log_ratio), 2.0 * huber)
        c = _log_scale_irls(log_ratio, start, huber, iterations, _BAND * huber)
    else:
        c = _log_scale_irls(log_ratio, float(np.median(log_ratio)), huber, iterations, math.inf)
    r = log_ratio - c
    inlier = np.abs(r) <= huber
    m = int(inlier.sum())
    scale = math.exp(c)
    if m < min_points:
        return _failed(n, f"too few inliers: {m} of {n} within {huber:g} < min_points {min_points}", scale, 0.0, m)
    residual = float(np.median(np.abs(np.expm1(-r[inlier]))))  # |s·p − z| / z = |exp(−r) − 1|
    return ScaleFit(scale, 0.0, n, m, residual, True, f"ok: {m} of {n} points within {huber:g}")


def fit_depth_scale(pred_values, ref_depth, *, min_points=20, huber=0.05, iterations=10) -> ScaleFit:
    """Scale of a metric model's output: ``Z ≈ scale · pred`` (shift 0).

    Minimises the Huber loss (threshold ``huber``, in log units ≈ relative error) of
    ``log Z_ref − log(scale · pred)`` over the usable pairs (finite, ``pred > 0``, ``Z_ref > 0``)
    by IRLS from the median of the log ratios, at most ``iterations`` steps. Not ok with fewer
    than ``min_points`` usable pairs or inliers (``|residual| ≤ huber``).
    """
    _check_options(min_points, huber, iterations, "huber")
    p, z = _usable(pred_values, ref_depth, positive_pred=True)
    return _scale_fit(p, z, int(min_points), float(huber), int(iterations), consensus=False)


def _inverse_affine(
    p: np.ndarray, q: np.ndarray, min_points: int, threshold: float, iterations: int, hypotheses: int, seed: int
) -> ScaleFit:
    n = p.size
    if n < min_points:
        return _failed(n, f"too few points: {n} < min_points {min_points}")
    spread = float(np.ptp(p))
    if not spread > 1e-9 * max(1.0, float(np.max(np.abs(p)))):
        return _failed(n, f"degenerate: all {n} prediction values equal ({p[0]:.6g}), no affine fit")
    inv_q = 1.0 / q
    rng = np.random.default_rng(seed)
    # RANSAC on a regular subsample: every hypothesis scored with one (hypotheses × m) matrix op
    m = min(n, _SUBSAMPLE)
    sub = (np.arange(m) * n) // m if m < n else np.arange(n)
    ps, qs, iqs = p[sub], q[sub], inv_q[sub]
    i = rng.integers(0, m, hypotheses)
    j = rng.integers(0, m - 1, hypotheses)
    j += j >= i
    dp = ps[i] - ps[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (qs[i] - qs[j]) / dp
    t = qs[i] - s * ps[i]
    finite = np.isfinite(s) & np.isfinite(t)
    good = finite & (s > 0)
    if not good.any():
        if finite.any():
            return _failed(n, f"non-positive scale: all {int(finite.sum())} finite RANSAC pair fits have scale <= 0")
        return _failed(n, f"degenerate: none of {hypotheses} RANSAC pairs gave a finite fit")
    s, t = s[good], t[good]
    r = (s[:, None] * ps + t[:, None]) * iqs - 1.0
    cost = np.minimum(r * r, threshold * threshold).sum(axis=1)  # MSAC: truncated squared residuals
    best = int(np.argmin(cost))
    scale, shift = float(s[best]), float(t[best])

    # Huber IRLS weighted least squares on the points near the current solution (all n points)
    a, b = p * inv_q, inv_q  # residual = scale·a + shift·b − 1
    band = _BAND * threshold
    for _ in range(iterations):
        res = np.abs(scale * a + shift * b - 1.0)
        w = np.minimum(1.0, threshold / np.maximum(res, 1e-300))
        w[res > band] = 0.0
        wa, wb = w * a, w * b
        saa, sab, sbb = wa @ a, wa @ b, wb @ b
        ya, yb = wa.sum(), wb.sum()
        det = saa * sbb - sab * sab
        if not det > 1e-12 * max(saa * sbb, 1e-300):
            break
        new_scale = (ya * sbb - yb * sab) / det
        new_shift = (saa * yb - sab * ya) / det
        done = abs(new_scale - scale) <= 1e-12 * abs(scale) and abs(new_shift - shift) <= 1e-12 * (
            abs(shift) + abs(scale)
        )
        scale, shift = float(new_scale), float(new_shift)
        if done:
            break
    if not (math.isfinite(scale) and math.isfinite(shift)):
        return _failed(n, f"degenerate: fit diverged (scale {scale}, shift {shift})")
    if scale <= 0:
        return _failed(n, f"non-positive scale {scale:.6g} (shift {shift:.6g})", scale, shift)
    r = scale * a + shift * b - 1.0
    inlier = np.abs(r) <= threshold
    k = int(inlier.sum())
    if k < min_points:
        return _failed(
            n, f"too few inliers: {k} of {n} within {threshold:g} < min_points {min_points}", scale, shift, k
        )
    residual = float(np.median(np.abs(r[inlier] / (1.0 + r[inlier]))))  # |Z_fit − Z| / Z = |1/(1+r) − 1|
    return ScaleFit(scale, shift, n, k, residual, True, f"ok: {k} of {n} points within {threshold:g}")


def fit_inverse_affine(pred_values, ref_depth, *, min_points=20, threshold=0.05, iterations=10, seed=0) -> ScaleFit:
    """Affine fit of a relative (inverse-depth) model: ``1/Z ≈ scale · pred + shift``, ``scale > 0``.

    Robust to gross outliers (≥ 10 %, and far more at the consensus the ground plane needs) and
    noise: a RANSAC over 64 random point pairs (drawn at once with ``seed``), each exact pair fit
    scored by MSAC (sum of squared relative residuals truncated at ``threshold``) on at most 1000
    regularly subsampled points in one matrix operation; then up to ``iterations`` steps of Huber
    IRLS weighted least squares (Huber threshold ``threshold``) on all points whose residual is
    within ``3 · threshold`` of the current solution. Residuals are relative to the reference
    inverse depth: ``r = (scale · pred + shift) · Z_ref − 1``. Not ok with fewer than
    ``min_points`` usable pairs or inliers (``|r| ≤ threshold``), with all prediction values equal
    (degenerate) or a scale ≤ 0.
    """
    _check_options(min_points, threshold, iterations, "threshold")
    p, z = _usable(pred_values, ref_depth, positive_pred=False)
    return _inverse_affine(p, 1.0 / z, int(min_points), float(threshold), int(iterations), _HYPOTHESES, int(seed))


# --------------------------------------------------------------------------- temporal filter


class ScaleFilter:
    """Temporal filter of the scale (in log space) and shift (normalised by the scale), with gating.

    ``update(fit, stamp)``: the first ok fit initialises; later ok fits whose ``log scale`` is within
    ``gate`` of the filtered value are blended in, ``x ← x + alpha · (x_fit − x)`` for
    ``x = log scale`` and ``x = shift / scale``; a fit farther away is rejected (counted in
    ``rejected``), except that 3 consecutive rejected fits that agree with each other (within
    ``gate``) re-initialise the filter at the newest (the scene really changed). Fits that are not
    ok are ignored: the last good scale is held. ``age(stamp)``: seconds since the last accepted fit
    (inf if none, 0 if the stamp went backwards); ``stale(stamp)``: ``age > max_age``; ``jitter``:
    std of the log scale of the last ``drift_window`` accepted raw fits (0 with fewer than two).
    """

    def __init__(self, *, alpha=0.3, gate=0.25, max_age=2.0, drift_window=10):
        if not (math.isfinite(alpha) and 0 < alpha <= 1):
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        if not (math.isfinite(gate) and gate > 0):
            raise ValueError(f"gate must be finite and > 0 (log units), got {gate!r}")
        if not (max_age > 0):
            raise ValueError(f"max_age must be > 0 seconds, got {max_age!r}")
        if isinstance(drift_window, bool) or int(drift_window) != drift_window or drift_window < 2:
            raise ValueError(f"drift_window must be an integer >= 2, got {drift_window!r}")
        self.alpha, self.gate, self.max_age = float(alpha), float(gate), float(max_age)
        self.drift_window = int(drift_window)
        self.reset()

    def reset(self) -> None:
        """Forget everything: no scale, no history, no rejections."""
        self._log_scale: float | None = None
        self._ratio = 0.0  # shift / scale
        self._stamp: float | None = None
        self._history: deque[float] = deque(maxlen=self.drift_window)
        self._pending: list[tuple[float, float]] = []  # consecutive rejected (log scale, ratio)
        self.rejected = 0

    def _initialise(self, log_scale: float, ratio: float, stamp: float) -> None:
        self._log_scale, self._ratio, self._stamp = log_scale, ratio, stamp
        self._history.append(log_scale)

    def update(self, fit: ScaleFit, stamp: float) -> None:
        """Feed one fit at ``stamp`` (seconds, message time); see the class docstring."""
        if not fit.ok or not (math.isfinite(fit.scale) and fit.scale > 0 and math.isfinite(fit.shift)):
            return
        x, ratio, stamp = math.log(fit.scale), fit.shift / fit.scale, float(stamp)
        if self._log_scale is None:
            self._initialise(x, ratio, stamp)
            return
        if abs(x - self._log_scale) <= self.gate:
            self._log_scale += self.alpha * (x - self._log_scale)
            self._ratio += self.alpha * (ratio - self._ratio)
            self._stamp = stamp
            self._history.append(x)
            self._pending.clear()
            return
        self.rejected += 1
        logs = [p[0] for p in self._pending] + [x]
        if max(logs) - min(logs) <= self.gate:
            self._pending.append((x, ratio))
        else:
            self._pending = [(x, ratio)]
        if len(self._pending) >= _REINIT:
            run = self._pending
            self._history.clear()
            for log_scale, _ in run[:-1]:
                self._history.append(log_scale)
            self._pending = []
            self._initialise(x, ratio, stamp)

    @property
    def scale(self) -> float | None:
        """Filtered scale, or None before the first good fit."""
        return None if self._log_scale is None else math.exp(self._log_scale)

    @property
    def shift(self) -> float | None:
        """Filtered shift (``scale × filtered shift/scale``), or None before the first good fit."""
        return None if self._log_scale is None else self._ratio * math.exp(self._log_scale)

    def age(self, stamp: float) -> float:
        """Seconds since the last accepted fit (inf if none; 0 if ``stamp`` is earlier)."""
        return math.inf if self._stamp is None else max(0.0, float(stamp) - self._stamp)

    def stale(self, stamp: float) -> bool:
        """True when the last accepted fit is older than ``max_age`` (or there is none)."""
        return self.age(stamp) > self.max_age

    @property
    def jitter(self) -> float:
        """Standard deviation of log scale over the last ``drift_window`` accepted raw fits."""
        return float(np.std(self._history)) if len(self._history) >= 2 else 0.0


# --------------------------------------------------------------------------- per-frame anchor


def _outcome(fit: ScaleFit | None, scaled: bool, rejected: bool, source: str) -> str:
    """How a fitted source treated one frame, in words a run's summary counts: ``fitted``,
    ``held (why)`` (the filtered scale of earlier frames) or ``not anchored (why)``."""
    if fit is None:
        why = f"no {SCALE_SOURCES[source].frame_input} for this frame"
    elif rejected:
        why = "its fit was rejected as an outlier of the filtered scale"
    elif not fit.ok:
        why = fit.reason
    else:
        return "fitted"
    return f"held ({why})" if scaled else f"not anchored ({why})"


def describe_outcomes(counts: dict[str, int]) -> str:
    """Frames by outcome, most frequent first: ``3 fitted, 1 held (why), 2 not anchored (why)``."""
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items(), key=lambda item: -item[1]))


class Anchor:
    """Raw prediction → metric depth, once per frame (node, bag tool, predict).

    ``source`` in ``SOURCES``, ``kind`` in ``KINDS``; see the module docstring. ``fixed_scale``
    (finite > 0) and ``fixed_shift`` (inverse depth only) for ``fixed``; ``camera_height`` (> 0,
    metres), ``camera_pitch`` and ``camera_roll`` (radians) for ``ground_plane``; ``min_points``
    for the fits; ``filter`` the temporal filter (a default :class:`ScaleFilter` if None).
    ``last_fit`` is the latest fit (None before one).
    """

    def __init__(
        self,
        source: str,
        kind: str,
        *,
        fixed_scale=1.0,
        fixed_shift=0.0,
        camera_height=0.0,
        camera_pitch=0.0,
        camera_roll=0.0,
        min_points=20,
        filter: ScaleFilter | None = None,
    ):
        if source not in SOURCES:
            raise ValueError(f"unknown scale source {source!r}; expected one of {SOURCES}")
        if kind not in KINDS:
            raise ValueError(f"unknown model output kind {kind!r}; expected one of {KINDS}")
        if source == "none" and kind == "inverse_depth":
            raise ValueError(
                f"scale_source {source!r} with model kind {kind!r}: a relative (inverse-depth) model has no "
                "metric scale: set scale_source to sparse_depth, ground_plane or fixed"
            )
        fixed_scale, fixed_shift = float(fixed_scale), float(fixed_shift)
        if not (math.isfinite(fixed_scale) and fixed_scale > 0):
            raise ValueError(f"fixed_scale must be finite and > 0, got {fixed_scale!r}")
        if not math.isfinite(fixed_shift):
            raise ValueError(f"fixed_shift must be finite, got {fixed_shift!r}")
        if source == "fixed" and kind == "depth" and fixed_shift != 0:
            raise ValueError(f"fixed_shift {fixed_shift!r} given for a metric depth model (Z = scale·pred): must be 0")
        camera_height, camera_pitch, camera_roll = float(camera_height), float(camera_pitch), float(camera_roll)
        if source == "ground_plane":
            if not (math.isfinite(camera_height) and camera_height > 0):
                raise ValueError(f"scale_source ground_plane needs camera_height > 0 metres, got {camera_height!r}")
            if not (math.isfinite(camera_pitch) and math.isfinite(camera_roll)):
                raise ValueError(f"camera_pitch and camera_roll must be finite, got {camera_pitch!r}, {camera_roll!r}")
        if isinstance(min_points, bool) or int(min_points) != min_points or min_points < 2:
            raise ValueError(f"min_points must be an integer >= 2, got {min_points!r}")
        self.source, self.kind = source, kind
        self.fixed_scale, self.fixed_shift = fixed_scale, fixed_shift
        self.camera_height, self.camera_pitch, self.camera_roll = camera_height, camera_pitch, camera_roll
        self.min_points = int(min_points)
        self.filter = ScaleFilter() if filter is None else filter
        self.last_fit: ScaleFit | None = None
        self.outcome = ""  # of the last frame, for a fitted source: see _outcome
        self.prior = floor_normal(camera_pitch, camera_roll)  # the configured floor: prior and fallback
        self.plane = PlaneFilter()
        self.floor: tuple[str, np.ndarray, str] | None = None  # this frame's plane: (how, normal, detail)
        self._grid_key: tuple | None = None
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        self._frames = 0
        self._candidates_key: tuple | None = None
        self._candidates: tuple[np.ndarray, np.ndarray] | None = None

    # ----------------------------------------------------------------- fitting

    def _fit(self, values: np.ndarray, depth: np.ndarray, ground: bool) -> ScaleFit:
        if self.kind == "depth":
            p, z = _usable(values, depth, positive_pred=True)
            return _scale_fit(p, z, self.min_points, 0.05, 10, consensus=ground)
        p, z = _usable(values, depth, positive_pred=False)
        hypotheses = _GROUND_HYPOTHESES if ground else _HYPOTHESES
        return _inverse_affine(p, 1.0 / z, self.min_points, 0.05, 10, hypotheses, 0)

    def _ground_correspondences(self, pred: np.ndarray, K: np.ndarray, normal: np.ndarray):
        """Prediction values and floor depths of a grid of pixels that see the floor of ``normal``."""
        K = np.asarray(K, dtype=np.float64)
        key = (pred.shape, K.tobytes(), self.camera_height, normal.tobytes())
        if key != self._grid_key:
            self._grid = floor_grid(K, pred.shape, self.camera_height, normal)
            self._grid_key = key
        index, depth = self._grid
        return np.asarray(pred.reshape(-1).take(index), dtype=np.float64), depth

    def _ground_fit(self, pred: np.ndarray, K: np.ndarray, stamp: float) -> ScaleFit:
        """A metric model's floor fitted from ``pred`` and the scale its distance implies; without a
        floor in this frame, or for a relative model (whose floor cannot give its pitch), the
        consensus fit to the last fitted plane (up to 2 s old) or the configured one."""
        K = np.asarray(K, dtype=np.float64)
        reason = "a relative model's floor cannot give the pitch"
        if self.kind == "depth":
            key = (pred.shape, K.tobytes())
            if key != self._candidates_key:
                self._candidates = floor_candidates(K, pred.shape, self.prior)
                self._candidates_key = key
            index, rays = self._candidates
            # From the last frame's floor, except every _FULL_SEARCH-th frame (a wrong plane is not kept).
            self._frames += 1
            start = self.plane.normal if self.plane.recent(stamp) and self._frames % _FULL_SEARCH else None
            floor = fit_floor(rays, pred.reshape(-1).take(index), prior=self.prior, min_points=self.min_points,
                              start=start)  # fmt: skip
            if floor.ok:
                self.plane.update(floor.normal, stamp)
                self.floor = ("fitted", floor.normal, f"{floor.inliers} of {floor.points} pixels")
                scale = self.camera_height / floor.a
                return ScaleFit(scale, 0.0, floor.points, floor.inliers, floor.residual, True, floor.reason)
            reason = floor.reason
        if self.plane.recent(stamp):
            normal, how = self.plane.normal, f"held ({stamp - self.plane.stamp:.1f} s old)"
        else:
            normal, how = self.prior, "configured"
        self.floor = (how, normal, reason)
        return self._fit(*self._ground_correspondences(pred, K, normal), ground=True)

    def _to_metric(self, pred: np.ndarray, scale: float, shift: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "depth":
                out = pred * np.float32(scale)
            else:
                out = pred * np.float32(scale)
                out += np.float32(shift)
                np.reciprocal(out, out=out)
            np.putmask(out, ~((out > 0) & (out < np.inf)), np.float32(np.nan))
        return out

    def apply(
        self, pred: np.ndarray, K: np.ndarray, stamp: float, sparse: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Metric depth (H, W) float32 from the raw prediction ``pred`` (H, W) at intrinsics ``K``.

        NaN where invalid (non-finite prediction, depth ≤ 0, or ``1/Z ≤ 0`` for inverse depth —
        infinitely far or behind). ``none``: ``pred`` as it is. ``fixed``: ``Z = fixed_scale · pred``
        or ``1/Z = fixed_scale · pred + fixed_shift``. ``sparse_depth`` (``sparse`` at any
        resolution, or None) and ``ground_plane`` (``sparse`` ignored): fit, update the filter and
        use the filtered scale; when there is no fit (no sparse input, fit not ok) the filtered
        scale is held. Without any scale yet: None for an inverse-depth model (never metres
        without a scale); the model's own output for a metric model.
        """
        pred = np.asarray(pred)
        if pred.ndim != 2:
            raise ValueError(f"pred must be a 2-D (H, W) image, got shape {pred.shape}")
        pred = pred.astype(np.float32, copy=False)
        if self.source == "none":
            return pred
        if self.source == "fixed":
            return self._to_metric(pred, self.fixed_scale, self.fixed_shift)
        fit, rejected = None, self.filter.rejected
        if SCALE_SOURCES[self.source].frame_input is not None:  # sparse_depth
            if sparse is not None:
                fit = self._fit(*sample_sparse(pred, sparse), ground=False)
        else:  # ground_plane
            fit = self._ground_fit(pred, K, stamp)
        if fit is not None:
            self.last_fit = fit
            self.filter.update(fit, stamp)
        scale = self.filter.scale
        self.outcome = _outcome(fit, scale is not None, self.filter.rejected > rejected, self.source)
        if scale is None:
            return pred if self.kind == "depth" else None
        shift = 0.0 if self.kind == "depth" else self.filter.shift
        return self._to_metric(pred, scale, shift)

    # ----------------------------------------------------------------- diagnostics

    def diagnostics(self, stamp: float, unpaired: str = "") -> dict[str, str]:
        """Short strings for a diagnostics message: scale, shift, fit counts, age, jitter and level.

        ``scale level`` is ``OK``, or ``WARN`` with the reason: never fitted (with ``unpaired``, why
        frames came without their input, when none ever came with it), stale (age > ``max_age``) or
        drifting (jitter > 0.05 in log scale).
        """
        fit = self.last_fit
        f = self.filter
        fitted = SCALE_SOURCES[self.source].fitted
        if self.source == "none":
            scale, shift = "1 (model)", "0"
        elif self.source == "fixed":
            scale, shift = f"{self.fixed_scale:.5g}", f"{self.fixed_shift if self.kind != 'depth' else 0.0:.5g}"
        else:
            scale = "none" if f.scale is None else f"{f.scale:.5g}"
            shift = "none" if f.shift is None else f"{0.0 if self.kind == 'depth' else f.shift:.5g}"
        age = f.age(stamp) if fitted else 0.0
        problems = []
        if fitted:
            if f.scale is None:
                why = f" ({fit.reason})" if fit is not None else f" ({unpaired or 'no input yet'})"
                problems.append("never fitted" + why)
            else:
                if f.stale(stamp):
                    problems.append(f"stale: age {age:.1f} s > {f.max_age:g} s")
                if f.jitter > _DRIFT:
                    problems.append(f"drifting: jitter {f.jitter:.3f} > {_DRIFT:g}")
        plane = {}
        if self.source == "ground_plane" and self.floor is not None:
            how, normal, detail = self.floor
            pitch, roll = (math.degrees(a) for a in pitch_roll(normal))
            plane["ground plane"] = f"{how}: pitch {pitch:.1f}° roll {roll:.1f}° ({detail})"
            if self.plane.normal is not None:
                pitch, roll = (math.degrees(a) for a in pitch_roll(self.plane.normal))
                plane["ground plane filtered"] = f"pitch {pitch:.1f}° roll {roll:.1f}°"
        return {
            **plane,
            "scale source": self.source,
            "scale": scale,
            "shift": shift,
            "scale inliers": "-" if fit is None else str(fit.inliers),
            "scale points": "-" if fit is None else str(fit.points),
            "scale residual": "-" if fit is None or not math.isfinite(fit.residual) else f"{fit.residual:.4f}",
            "scale age s": ("inf" if math.isinf(age) else f"{age:.2f}") if fitted else "-",
            "scale jitter": f"{f.jitter:.4f}" if fitted else "-",
            "scale rejected": str(f.rejected) if fitted else "0",
            "scale level": "WARN " + "; ".join(problems) if problems else "OK",
        }
