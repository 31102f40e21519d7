"""Metric depth → a planar laser scan, with depthimage_to_laserscan's semantics.

What its users expect (parameters ``scan_height``, ``range_min``, ``range_max``):

* the scan reads a band of ``scan_height`` rows starting at ``int(cy − scan_height/2)``, around
  the optical centre row;
* a pixel's range is measured in the camera's x–z plane, ``r = z·sqrt(1 + x²)`` with ``x = X/Z``
  its ray; its bearing is ``θ = −atan(x)`` (positive to the camera's left, as a laser's angles
  turn counter-clockwise about an up axis);
* ``angle_max`` and ``angle_min`` are the bearings of the band's left and right edge pixels on the
  centre row, ``angle_increment = (angle_max − angle_min)/(W − 1)``: one reading per column;
* each reading is the nearest range in ``[range_min, range_max]`` among the band's pixels of that
  bearing, NaN where there is none.

Rays come from the camera model with its distortion removed (:meth:`CameraModel.rectified_rays`),
for every pixel of the band, not only for the edges. Two deliberate differences, both in the
user's favour: a pixel goes to the *nearest* bin (depthimage_to_laserscan truncates, which shifts
bearings by up to one increment), and a bin no pixel lands in (bearings are not linear in columns,
so near the centre about one bin in nine gets no pixel) takes the nearest range of the column whose
bearing is closest, instead of staying empty: an obstacle in front of the robot never hides in a
gap. All per-pixel work is vectorised; per-camera geometry is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_estimation_ros.core.camera import CameraModel

# depthimage_to_laserscan's defaults
DEFAULT_SCAN_HEIGHT, DEFAULT_RANGE_MIN, DEFAULT_RANGE_MAX = 1, 0.45, 10.0


@dataclass(frozen=True)
class Scan:
    """The contents of a sensor_msgs/LaserScan (angles in radians, ranges in metres, NaN: none)."""

    ranges: np.ndarray  # (W,) float32, index 0 at angle_min (the image's right edge)
    angle_min: float
    angle_max: float
    angle_increment: float
    range_min: float
    range_max: float


@dataclass(frozen=True)
class _Geometry:
    rows: slice  # the band
    order: np.ndarray  # band pixels (flat) sorted by bin
    starts: np.ndarray  # where each occupied bin's run begins in ``order``
    occupied: np.ndarray  # the bins some pixel lands in
    empty: np.ndarray  # the other bins …
    nearest_column: np.ndarray  # … and the column whose bearing is closest to each
    factor: np.ndarray  # (rows, W) float32: range = depth·factor
    angle_min: float
    angle_max: float
    angle_increment: float


class ScanProjector:
    """Depth images of a camera → :class:`Scan`; geometry cached until the camera changes."""

    def __init__(
        self,
        scan_height: int = DEFAULT_SCAN_HEIGHT,
        range_min: float = DEFAULT_RANGE_MIN,
        range_max: float = DEFAULT_RANGE_MAX,
    ):
        if isinstance(scan_height, bool) or not isinstance(scan_height, (int, np.integer)) or scan_height < 1:
            raise ValueError(f"scan_height must be a positive number of rows, got {scan_height!r}")
        if not 0 <= range_min < range_max:
            raise ValueError(f"range_min and range_max must satisfy 0 <= min < max, got {range_min}, {range_max}")
        self.scan_height, self.range_min, self.range_max = int(scan_height), float(range_min), float(range_max)
        self._camera: CameraModel | None = None
        self._geometry: _Geometry | None = None

    def _geometry_for(self, camera: CameraModel) -> _Geometry:
        cached = self._camera
        if cached is not None and cached.isclose(camera, 0.0) and cached.distortion_model == camera.distortion_model:
            assert self._geometry is not None
            return self._geometry
        width, height, cy = camera.width, camera.height, camera.cy
        half = self.scan_height / 2
        if half > cy or half > height - cy:
            raise ValueError(f"scan_height {self.scan_height} rows is too large for the image: the band around "
                             f"the optical centre row cy={cy:.1f} must fit in {height} rows")  # fmt: skip
        first = int(cy - half)
        rows = slice(first, first + self.scan_height)
        u = np.arange(width, dtype=np.float64)
        x, _ = camera.rectified_rays(u[None, :], np.arange(rows.start, rows.stop, dtype=np.float64)[:, None])
        bearing = -np.arctan(x)
        centre_x, _ = camera.rectified_rays(u, np.full(width, cy))
        centre = -np.arctan(centre_x)
        angle_max, angle_min = float(centre[0]), float(centre[-1])
        increment = (angle_max - angle_min) / max(width - 1, 1)
        bins = np.rint((bearing - angle_min) / increment).astype(np.int64).ravel()
        inside = np.flatnonzero((bins >= 0) & (bins < width))
        order = inside[np.argsort(bins[inside], kind="stable")]
        occupied, starts = np.unique(bins[order], return_index=True)
        empty = np.setdiff1d(np.arange(width), occupied)
        # the column whose centre-row bearing is closest to each empty bin's (bearings fall with u)
        wanted = angle_min + empty * increment
        right = np.clip(np.searchsorted(-centre, -wanted), 1, width - 1)
        nearest = np.where(np.abs(centre[right] - wanted) < np.abs(centre[right - 1] - wanted), right, right - 1)
        geometry = _Geometry(rows, order, starts, occupied, empty, nearest,
                             np.sqrt(1 + x * x).astype(np.float32), angle_min, angle_max, increment)  # fmt: skip
        self._camera, self._geometry = camera, geometry
        return geometry

    def __call__(self, depth: np.ndarray, camera: CameraModel) -> Scan:
        """The scan of ``depth`` (H, W) metres along the optical axis, NaN invalid, for ``camera``."""
        camera.check_image(depth.shape, "depth image")
        g = self._geometry_for(camera)
        ranges = np.asarray(depth[g.rows], dtype=np.float32) * g.factor
        usable = (ranges >= self.range_min) & (ranges <= self.range_max)  # False for NaN
        ranges = np.where(usable, ranges, np.float32(np.inf))
        scan = np.full(camera.width, np.inf, np.float32)
        if g.order.size:
            scan[g.occupied] = np.minimum.reduceat(ranges.ravel()[g.order], g.starts)
        if g.empty.size:
            scan[g.empty] = ranges[:, g.nearest_column].min(axis=0)
        scan[np.isinf(scan)] = np.nan
        return Scan(scan, g.angle_min, g.angle_max, g.angle_increment, self.range_min, self.range_max)


def depth_to_scan(depth: np.ndarray, camera: CameraModel, **options) -> Scan:
    """One-off :class:`ScanProjector` call (options: ``scan_height``, ``range_min``, ``range_max``)."""
    return ScanProjector(**options)(np.asarray(depth), camera)
