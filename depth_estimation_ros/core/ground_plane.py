"""The floor below the camera: where each pixel's ray meets it, and its plane fitted from a depth
prediction itself, so that the ground-plane scale source needs only the camera's height.

Camera coordinates: x right, y down, z forward. The floor is the plane ``n · X = h``, ``n`` the
unit 'down' vector, ``h`` the camera height. Pixel ``(u, v)`` (pixel centres) has the ray
``r = K⁻¹ (u, v, 1)``; its point on the floor is at depth ``Z = h · r_z / (n · r)``.

A configured pitch and roll give ``n`` (:func:`floor_normal`), but a robot pitches when it brakes,
accelerates or drives up a slope, and a 0.5° error moves a scale fitted from it by several per cent.
The floor's orientation is in a metric prediction (:func:`fit_floor`): its points ``X = pred · r``
on the floor lie on one plane ``n · X = a``, and since the floor is ``h`` below the camera, the
prediction's scale is ``h / a``. Walls, furniture fronts and cars are planes too, and often most of
the lower image, but vertical ones: planes more than ``max_tilt`` from the configured floor are not
considered; table tops, seats and car roofs are parallel to the floor but above it, so the floor
is the farthest such plane with enough support.

A relative model (``1/Z = s · pred + t``) cannot give its floor's pitch: on the floor ``1/Z`` is
``n · r / h``, a plane over the image (three numbers), from which four unknowns (pitch, roll,
``s``, ``t``) cannot come: the unknown shift moves the horizon (where inverse depth is zero) exactly
as the pitch does (the floor's pixels fit any pitch equally well, with another scale and shift, and
the depth they give is wrong everywhere). For it the configured plane stays: on the generated scenes
with pitch within ±6°, told 0°, a relative model's anchored depth is 19-24 % off (median), 1.4-1.9 %
when told the true pitch (``test/test_ground_plane.py``); give it the pitch, or use a metric model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GROUND_POINTS = 3000  # floor pixels sampled per frame
FLOOR_MAX = 100.0  # floor_depth: NaN beyond this many camera heights
MAX_TILT = math.radians(15.0)
# Support is weighed by a Gaussian of the tilt from the configured floor: far from it, a plane through
# the line where the far floor meets a wall (a line lies on many planes) can collect as many points
# as a floor that holds a tenth of the lower image.
PRIOR_SIGMA = math.radians(8.0)  # the floor fitted may tilt this far from the configured one
_HORIZON = math.sin(math.radians(2.0))  # candidates: rays at least this far below the configured horizon
_SUBSAMPLE = 300  # points the search over normals scores
_REFINE = 3


def floor_normal(pitch: float, roll: float) -> np.ndarray:
    """Unit 'down' vector in camera coordinates for a camera pitched up by ``pitch`` and rolled by
    ``roll`` (radians) over a level floor.

    The camera's world_from_camera rotation is ``base · Rx(pitch) · Rz(roll)`` (then a yaw about
    the world vertical, which does not move the floor), with ``base`` mapping camera z to world
    forward and camera y to world down (``depth_estimation_ros.core.scenes._camera_rotation``). World
    up in camera coordinates is the third row of that rotation, ``(−cos p sin r, −cos p cos r,
    sin p)``; 'down' is its negative.
    """
    cp, sp, cr, sr = math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    return np.array([cp * sr, cp * cr, -sp])


def pitch_roll(normal: np.ndarray) -> tuple[float, float]:
    """The pitch and roll (radians) whose :func:`floor_normal` is ``normal`` (the inverse)."""
    n = np.asarray(normal, np.float64) / np.linalg.norm(normal)
    return math.asin(-float(n[2])), math.atan2(float(n[0]), float(n[1]))


def _check_K(K) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise ValueError(f"K must be a finite 3x3 intrinsic matrix, got shape {K.shape}")
    return K


def floor_depth_at(K: np.ndarray, u: np.ndarray, v: np.ndarray, camera_height: float, normal: np.ndarray):
    """Floor depth at pixels ``(u, v)`` for the floor ``normal · X = camera_height``; NaN where the ray
    does not go down to it or meets it beyond ``FLOOR_MAX`` camera heights."""
    rays = np.linalg.inv(_check_K(K))  # ray of pixel (u, v) = K^-1 (u, v, 1)
    nr = normal @ rays  # n · ray = nr[0] u + nr[1] v + nr[2]
    down = nr[0] * u + nr[1] * v + nr[2]
    dz = rays[2, 0] * u + rays[2, 1] * v + rays[2, 2]  # the ray's z (1 for the usual K)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = camera_height * dz / down
    bad = ~(down > 0) | ~(depth > 0) | (depth > FLOOR_MAX * camera_height)
    depth[bad] = np.nan
    return depth


def floor_depth(K: np.ndarray, shape: tuple[int, int], camera_height: float, pitch: float, roll: float) -> np.ndarray:
    """Depth (metres, along the optical axis) at which each pixel's ray meets a flat floor.

    The floor lies ``camera_height`` metres below the camera: ``n · X = camera_height`` with
    ``n = (cos p · sin r, cos p · cos r, −sin p)`` from ``pitch`` (radians, positive = camera
    tilted up) and ``roll`` (radians, about the optical axis), the convention of the project's
    generated scenes. Pixel ``(u, v)`` (pixel centres) has the ray ``K⁻¹ (u, v, 1)``, so
    ``Z = camera_height · ray_z / (n · ray)``. Returns (H, W) float64, NaN where the ray does not go
    down to the floor (at or above the horizon) or the depth exceeds 100 × ``camera_height``.
    """
    H, W = (int(x) for x in shape)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    return floor_depth_at(K, u, v, float(camera_height), floor_normal(float(pitch), float(roll)))


def _grid(shape: tuple[int, int], step: float) -> tuple[np.ndarray, np.ndarray]:
    H, W = shape
    rows = np.unique(np.round(np.arange(step / 2 - 0.5, H - 0.5, step)).astype(np.int64).clip(0, H - 1))
    cols = np.unique(np.round(np.arange(step / 2 - 0.5, W - 0.5, step)).astype(np.int64).clip(0, W - 1))
    v, u = np.meshgrid(rows, cols, indexing="ij")
    return v.ravel(), u.ravel()


def _sampled(shape: tuple[int, int], share: float, keep) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A regular grid whose step is refined (three times at most) until about ``GROUND_POINTS`` of its
    pixels pass ``keep(v, u)`` → (mask, values); the grid's flat indices that pass, their mask and values.
    ``share``: the share of the image expected to pass, for the first step."""
    H, W = shape
    step = max(1.0, math.sqrt(H * W * share / GROUND_POINTS))
    for _ in range(3):
        v, u = _grid(shape, step)
        mask, values = keep(v, u)
        found = int(mask.sum())
        if found == 0:
            break
        new_step = max(1.0, step * math.sqrt(found / GROUND_POINTS))
        if abs(new_step - step) < 0.05 * step:
            break
        step = new_step
    return (v[mask] * W + u[mask]).astype(np.int64), mask, values


def floor_grid(K: np.ndarray, shape: tuple[int, int], camera_height: float, normal: np.ndarray):
    """Flat pixel indices of a regular grid of about ``GROUND_POINTS`` pixels that see the floor
    ``normal · X = camera_height``, and their floor depth."""

    def on_floor(v, u):
        depth = floor_depth_at(K, u.astype(np.float64), v.astype(np.float64), camera_height, normal)
        return np.isfinite(depth), depth

    index, mask, depth = _sampled(shape, 0.25, on_floor)
    return index, depth[mask]


def floor_candidates(K: np.ndarray, shape: tuple[int, int], prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A regular grid of about ``GROUND_POINTS`` pixels below the configured horizon (``prior`` the
    configured 'down'): flat indices and their rays ``K⁻¹ (u, v, 1)`` (N, 3). Pixels that see walls,
    furniture or the sky are among them: :func:`fit_floor` sorts them out."""
    inv = np.linalg.inv(_check_K(K))

    def below_horizon(v, u):
        rays = np.stack([u, v, np.ones_like(u)], 1).astype(np.float64) @ inv.T
        return rays @ prior > _HORIZON * np.linalg.norm(rays, axis=1), rays

    index, mask, rays = _sampled(shape, 0.5, below_horizon)
    return index, rays[mask]


@dataclass(frozen=True)
class FloorFit:
    """A floor plane fitted from a metric prediction: ``normal · X = a`` in the prediction's units,
    so the prediction's scale is ``camera_height / a``. ``points``: usable candidates; ``inliers``:
    those within the threshold; ``residual``: median relative depth error of the inliers. ``ok``
    False with ``reason`` when no floor was found."""

    normal: np.ndarray
    a: float
    points: int
    inliers: int
    residual: float
    ok: bool
    reason: str


def _failed(points: int, reason: str) -> FloorFit:
    return FloorFit(np.full(3, np.nan), math.nan, points, 0, math.nan, False, reason)


def _tilted(prior: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Unit normals (K, 3): ``prior`` pitched and rolled further by the given angles (radians)."""
    p0, r0 = pitch_roll(prior)
    p, r = p0 + pitch, r0 + roll
    return np.stack([np.cos(p) * np.sin(r), np.cos(p) * np.cos(r), -np.sin(p)], 1)


def _support(log_a: np.ndarray, width: float) -> np.ndarray:
    """Per row of ``log_a`` (K, m; NaN for points that cannot be on the plane): about the largest
    number of values within ``width`` of each other, counted as the fullest pair of neighbouring
    ``width / 2`` bins (one bincount for all rows; NaN goes to a last bin, never counted)."""
    finite = np.isfinite(log_a)
    low = log_a.min(where=finite, initial=np.inf)
    high = log_a.max(where=finite, initial=-np.inf)
    if not low <= high:
        return np.zeros(len(log_a), np.int64)
    bins = int((high - low) / (width / 2)) + 2
    index = np.nan_to_num((log_a - low) * (2 / width), nan=bins - 1).astype(np.intp)
    index += np.arange(len(log_a))[:, None] * bins
    counts = np.bincount(index.ravel(), minlength=len(log_a) * bins).reshape(-1, bins)
    counts[:, -1] = 0
    return (counts[:, :-1] + counts[:, 1:]).max(1)


def _distances(normals: np.ndarray, rays: np.ndarray, q: np.ndarray) -> np.ndarray:
    """log of each point's plane distance ``a = (n · r) / q`` under each normal (K, m); NaN where the
    ray does not go down to the plane."""
    nr = normals @ rays.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(nr > 0, np.log(nr / q), np.nan)


def _floor_distance(log_a: np.ndarray, width: float, min_support: int) -> float:
    """Of the clusters of plane distances along one normal, the floor's: table tops, seats and car
    roofs are planes parallel to the floor above it (nearer the camera), and may hold more of the
    image; of the windows holding a third of the best one's points, the farthest."""
    values = np.sort(log_a[np.isfinite(log_a)])
    counts = np.searchsorted(values, values + width, side="right") - np.arange(values.size)
    enough = np.flatnonzero(counts >= max(min_support, counts.max() // 3))
    start = values[enough[-1]]
    return float(np.median(values[(values >= start) & (values <= start + width)]))


def fit_floor(
    rays: np.ndarray,
    pred: np.ndarray,
    *,
    prior: np.ndarray,
    max_tilt: float = MAX_TILT,
    threshold: float = 0.05,
    min_points: int = 20,
    start: np.ndarray | None = None,
) -> FloorFit:
    """The floor plane in a metric prediction ``pred`` at the pixels of ``rays`` (N, 3, ``r_z = 1``),
    within ``max_tilt`` of the unit 'down' vector ``prior`` (see the module docstring).

    Each point's distance to a plane of normal ``n`` through the camera's height is
    ``a = (n · r) · pred``; under the floor's normal the floor's points share one distance, so the
    search is over normals: a grid within ``max_tilt`` (4° apart, then 1° around the best; or 1° apart
    within 3° of ``start``, the last frame's floor, when the caller has one), each
    scored by the largest number of points within a ``threshold``-wide window of one distance (in
    log, the relative error), on a subsample, weighed by a Gaussian of its tilt (``PRIOR_SIGMA``).
    The floor is then the farthest well-supported distance along the best normal
    (:func:`_floor_distance`), and the plane is refined by least squares on its points
    (``1/pred = c · r`` with ``c = n / a``, each row relative to its value)."""
    pred = np.asarray(pred, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        usable = np.isfinite(pred) & (pred > 0)
    q, rays = 1.0 / pred[usable], rays[usable]
    n = q.size
    if n < min_points:
        return _failed(n, f"too few floor candidates: {n} < min_points {min_points}")
    m = min(n, _SUBSAMPLE)
    sub = (np.arange(m) * n) // m
    width = threshold  # ±2.5 %: the floor along its own normal is sharp, a near-miss normal smears it
    stages = ((math.radians(4.0), max_tilt), (math.radians(1.0), math.radians(2.0)))
    best = np.zeros(2)
    if start is not None:  # the last frame's floor: a robot tilts little in a frame's time
        pitch0, roll0 = pitch_roll(prior)
        best = np.array(pitch_roll(start)) - (pitch0, roll0)
        stages = ((math.radians(1.0), math.radians(3.0)),)
    for step, reach in stages:
        k = np.arange(-math.floor(reach / step), math.floor(reach / step) + 1) * step
        pitch, roll = (a.ravel() for a in np.meshgrid(k + best[0], k + best[1], indexing="ij"))
        keep = np.hypot(pitch, roll) <= max_tilt + 1e-9
        pitch, roll = pitch[keep], roll[keep]
        support = _support(_distances(_tilted(prior, pitch, roll), rays[sub], q[sub]), width)
        score = support * np.exp(-(pitch**2 + roll**2) / (2 * PRIOR_SIGMA**2))
        best = np.array([pitch[score.argmax()], roll[score.argmax()]])
    normal = _tilted(prior, best[:1], best[1:])[0]
    log_a = _distances(normal[None], rays, q)[0]
    if np.isfinite(log_a).sum() < min_points:
        return _failed(n, f"no floor: fewer than {min_points} candidates below the fitted horizon")
    centre = _floor_distance(log_a, width, min_points)
    for _ in range(_REFINE):  # least squares on the floor's points, each row relative to its q
        near = np.abs(log_a - centre) <= threshold
        if near.sum() < min_points:
            break
        c = np.linalg.lstsq(rays[near] * (1 / q[near])[:, None], np.ones(int(near.sum())), rcond=None)[0]
        if not (np.isfinite(c).all() and c @ prior > math.cos(max_tilt) * np.linalg.norm(c)):
            break
        normal, centre = c / np.linalg.norm(c), -math.log(np.linalg.norm(c))
        log_a = _distances(normal[None], rays, q)[0]
    r = np.expm1(centre - log_a)  # (a q)/(n · r) − 1: the relative depth error of each point
    inlier = np.abs(r) <= threshold
    count = int(inlier.sum())
    if count < min_points:
        return _failed(n, f"no floor: {count} of {n} candidates within {threshold:g} < min_points {min_points}")
    residual = float(np.median(np.abs(r[inlier] / (1.0 + r[inlier]))))
    return FloorFit(normal, math.exp(centre), n, count, residual, True,
                    f"ok: {count} of {n} candidates on the floor")  # fmt: skip


class PlaneFilter:
    """The floor's normal over time: an exponential moving average of the fitted normals (``alpha``),
    with the time of the last fit, so a recent plane can stand in for a frame without one."""

    def __init__(self, alpha: float = 0.3, max_age: float = 2.0):
        self.alpha, self.max_age = alpha, max_age
        self.normal: np.ndarray | None = None
        self.stamp = -math.inf

    def update(self, normal: np.ndarray, stamp: float) -> None:
        if self.normal is None:
            self.normal = np.asarray(normal, np.float64).copy()
        else:
            mixed = (1 - self.alpha) * self.normal + self.alpha * normal
            self.normal = mixed / np.linalg.norm(mixed)
        self.stamp = stamp

    def recent(self, stamp: float) -> bool:
        return self.normal is not None and stamp - self.stamp <= self.max_age
