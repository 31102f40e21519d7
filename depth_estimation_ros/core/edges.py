"""Flying pixels: the points a depth network puts between an object and what lies behind it.

A network sees a depth step through its receptive field and at its own resolution, so it predicts
a ramp across the object's silhouette; back-projected, the ramp is a veil of points floating in
free space, phantom obstacles for a costmap. On a real surface two neighbouring pixels' points lie
across the viewing ray; on a veil they lie almost along it. The test (PCL's shadow/veil-point idea,
written on neighbour segments instead of normals): for neighbours ``a``, ``b`` with points
``Pa = za·ra`` and ``Pb = zb·rb`` (``r`` the pixels' rays), the angle β between the segment
``Pb − Pa`` and the ray ``ra`` has

    sin²β = |(Pb − Pa) × ra|² / (|Pb − Pa|²·|ra|²) = zb²·|rb × ra|²/|ra|² / |Pb − Pa|²,
    |Pb − Pa|² = zb²|rb|² − 2·za·zb·(ra·rb) + za²|ra|²,

so per frame the test needs only ``za``, ``zb`` and four constants of the camera per neighbour
pair (cached): a handful of array operations, no square root, no trigonometry.

A pixel is flying when, along the rows or along the columns, *both* of its segments are seen at
less than the threshold angle and its depth lies strictly between its two neighbours' (the inside
of a ramp); then a ramp's last pixels, joined to a flying pixel by a grazing segment, are flying
too. A true edge pixel next to a sharp step (one grazing segment, to a pixel that is not flying)
and a thin object (a pole one pixel wide: a local minimum, not a ramp) are kept. Pixels next to
an invalid one are never flagged by that segment (NaN compares false).

Two thresholds: along rows, where the veils of left and right silhouettes run, 8°; along columns
5°, because floors and roads are seen at grazing angles along columns too: a floor at distance
``d`` below a camera at height ``h`` meets the ray at ``asin(h/d)`` and is lost beyond
``d = h/sin(5°)`` (11 m at 1 m height, 17 m at 1.5 m). docs/benchmarks.md has the measurement
that chose them (``python -m benchmarks.navigation``).
"""

from __future__ import annotations

import math

import numpy as np

from depth_estimation_ros.core.camera import CameraModel

DEFAULT_ANGLE_DEG, DEFAULT_FLOOR_ANGLE_DEG = 8.0, 5.0


def _pair_constants(ra: tuple[np.ndarray, ...], rb: tuple[np.ndarray, ...], angle_deg: float) -> tuple[np.ndarray, ...]:
    """For rays ``ra``, ``rb`` (x, y, z planes) the coefficients (float32) of the frame's test
    ``zb²·|rb × ra|²/|ra|² < sin²θ·|Pb − Pa|²`` divided by za², a quadratic in ``r = zb/za``:
    ``(sin²θ·|rb|² − |rb × ra|²/|ra|²)·r² − sin²θ·2·ra·rb·r + sin²θ·|ra|² > 0``."""
    ax, ay, az = ra
    bx, by, bz = rb
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    aa = ax * ax + ay * ay + az * az
    bb = bx * bx + by * by + bz * bz
    ab = ax * bx + ay * by + az * bz
    sin2 = math.sin(math.radians(angle_deg)) ** 2
    constants = (sin2 * bb - (cx * cx + cy * cy + cz * cz) / aa, sin2 * 2 * ab, sin2 * aa)
    return tuple(np.ascontiguousarray(c, dtype=np.float32) for c in constants)


class EdgeFilter:
    """Flags (and removes) flying pixels of metric depth; constants cached per camera.

    Args:
        angle_deg: the threshold along rows, where silhouettes' veils are (left and right edges).
        floor_angle_deg: the threshold along columns, where floors and roads are seen at grazing
            angles too (a floor at distance d below a camera at height h meets the ray at asin(h/d)).
    """

    def __init__(self, angle_deg: float = DEFAULT_ANGLE_DEG, floor_angle_deg: float = DEFAULT_FLOOR_ANGLE_DEG):
        for name, value in (("angle_deg", angle_deg), ("floor_angle_deg", floor_angle_deg)):
            if not 0 < value < 90:
                raise ValueError(f"edge filter {name} must be in (0, 90) degrees, got {value}")
        self.angle_deg, self.floor_angle_deg = float(angle_deg), float(floor_angle_deg)
        self._camera: CameraModel | None = None
        self._constants: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]] | None = None

    def constants(self, camera: CameraModel) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """The camera's per-pair constants along rows and along columns (cached), for :func:`flag`."""
        if self._camera is None or not (camera.size == self._camera.size and np.array_equal(camera.P, self._camera.P)):
            ru, rv = (r.astype(np.float64) for r in camera.ray_grid())
            x, y = np.broadcast_arrays(ru, rv)
            z = np.ones_like(x)
            rows = _pair_constants((x[:, :-1], y[:, :-1], z[:, :-1]), (x[:, 1:], y[:, 1:], z[:, 1:]), self.angle_deg)
            cols = _pair_constants((x[:-1], y[:-1], z[:-1]), (x[1:], y[1:], z[1:]), self.floor_angle_deg)
            self._camera, self._constants = camera, (rows, cols)
        assert self._constants is not None
        return self._constants

    def mask(self, depth: np.ndarray, camera: CameraModel) -> np.ndarray:
        """(H, W) bool: True where ``depth`` (metres, NaN invalid) has a flying pixel."""
        camera.check_image(depth.shape, "depth image")
        flying = np.zeros(depth.shape, bool)
        with np.errstate(divide="ignore", invalid="ignore"):  # NaN: never grazing; 0: along the ray
            flag(np.asarray(depth, dtype=np.float32), *self.constants(camera), flying)
        return flying

    def __call__(self, depth: np.ndarray, camera: CameraModel, out: np.ndarray | None = None) -> np.ndarray:
        """``depth`` with NaN at its flying pixels, written to ``out`` (may be ``depth`` itself)."""
        flying = self.mask(depth, camera)
        if out is None:
            out = np.array(depth, dtype=np.float32)
        elif out is not depth:
            np.copyto(out, depth)
        out[flying] = np.nan
        return out


def flag(z, rows: tuple, cols: tuple, flying) -> None:
    """Set ``flying`` (H, W bool, False on entry) where depth ``z`` (H, W) has flying pixels, with
    :meth:`EdgeFilter.constants` ``rows`` and ``cols``. Plain array arithmetic and slicing: numpy
    arrays, or torch tensors on any device (the device path)."""
    segments = [(axis, *_grazing(z, axis, constants)) for axis, constants in ((1, rows), (0, cols))]
    for axis, grazing, rises in segments:
        before, after = _sides(axis)
        ramp = rises[before] == rises[after]  # the pixel lies between its neighbours (a grazing step is never 0)
        ramp &= grazing[before]
        ramp &= grazing[after]
        flying[_inner(axis)] |= ramp
    # a ramp's last pixels: a grazing segment joins them to a flying pixel
    core = flying & True  # a copy, for numpy and torch alike
    for axis, grazing, _ in segments:
        first, second = _sides(axis)
        flying[first] |= grazing & core[second]
        flying[second] |= grazing & core[first]


def _sides(axis: int) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Index of the first and of the second element of each neighbour pair along ``axis``."""
    return (np.s_[:, :-1], np.s_[:, 1:]) if axis == 1 else (np.s_[:-1], np.s_[1:])


def _inner(axis: int) -> tuple[slice, ...]:
    """The pixels with a neighbour on both sides along ``axis``."""
    return np.s_[:, 1:-1] if axis == 1 else np.s_[1:-1]


def _grazing(z: np.ndarray, axis: int, constants: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per neighbour pair along ``axis``: whether its segment meets the ray within the angle, and
    whether the depth rises along it."""
    first, second = _sides(axis)
    quadratic, linear, constant = constants
    r = z[second] / z[first]
    graze = quadratic * r  # Horner: (q·r − l)·r + c
    graze -= linear
    graze *= r
    graze += constant
    return graze > 0, r > 1
