"""Depth → LaserScan with depthimage_to_laserscan's semantics, against hand-computed scans."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.laserscan import ScanProjector, depth_to_scan

FX, CX, CY, W, H = 500.0, 319.5, 239.5, 640, 480
CAMERA = CameraModel.from_intrinsics(FX, FX, CX, CY, W, H)


def bearings(scan) -> np.ndarray:
    return scan.angle_min + scan.angle_increment * np.arange(len(scan.ranges))


def test_the_scan_spans_the_edge_columns_bearings_one_reading_per_column():
    scan = depth_to_scan(np.full((H, W), 3.0, np.float32), CAMERA)
    assert len(scan.ranges) == W
    assert scan.angle_max == pytest.approx(math.atan(CX / FX))  # the left edge, to the camera's left
    assert scan.angle_min == pytest.approx(-math.atan((W - 1 - CX) / FX))
    assert scan.angle_increment == pytest.approx((scan.angle_max - scan.angle_min) / (W - 1))
    assert (scan.range_min, scan.range_max) == (0.45, 10.0)  # depthimage_to_laserscan's defaults


def test_a_wall_facing_the_camera_reads_its_distance_over_the_cosine_of_every_bearing():
    scan = depth_to_scan(np.full((H, W), 3.0, np.float32), CAMERA)
    # every bin has a reading (none left empty), within half a pixel's bearing of the bin's
    np.testing.assert_allclose(scan.ranges, 3.0 / np.cos(bearings(scan)), rtol=2e-3)


def test_a_box_in_the_band_is_the_nearest_range_of_its_bearings():
    depth = np.full((H, W), 4.0, np.float32)
    depth[200:240, 200:300] = 1.5  # covers the centre row 239 (band of 1), not row 240
    scan = depth_to_scan(depth, CAMERA)
    theta = bearings(scan)
    # the box spans columns 200…299: bearings from −atan((299 − cx)/f) to −atan((200 − cx)/f)
    inside = (theta > -math.atan((299 - CX) / FX) + 0.002) & (theta < -math.atan((200 - CX) / FX) - 0.002)
    outside = (theta < -math.atan((299 - CX) / FX) - 0.002) | (theta > -math.atan((200 - CX) / FX) + 0.002)
    np.testing.assert_allclose(scan.ranges[inside], 1.5 / np.cos(theta[inside]), rtol=2e-3)
    np.testing.assert_allclose(scan.ranges[outside], 4.0 / np.cos(theta[outside]), rtol=2e-3)


def test_a_taller_band_takes_the_nearest_of_its_rows():
    depth = np.full((H, W), 4.0, np.float32)
    depth[235, :] = 2.0  # in a band of 10 rows (234…243) but not in a band of 1 (row 239)
    assert np.nanmax(depth_to_scan(depth, CAMERA, scan_height=10).ranges) < 2.0 / math.cos(0.6) + 1e-3
    assert np.nanmin(depth_to_scan(depth, CAMERA, scan_height=1).ranges) >= 4.0


def test_readings_outside_the_range_limits_and_invalid_pixels_are_nan():
    depth = np.full((H, W), 12.0, np.float32)  # beyond range_max 10
    depth[:, :100] = 0.3  # nearer than range_min 0.45
    depth[:, 500:] = np.nan
    depth[:, 300:310] = 5.0
    scan = depth_to_scan(depth, CAMERA)
    valid = np.isfinite(scan.ranges)
    assert valid.any()
    np.testing.assert_allclose(scan.ranges[valid], 5.0 / np.cos(bearings(scan)[valid]), rtol=2e-3)
    assert valid.sum() <= 12  # only the bearings of columns 300…309


def assert_scan_matches_depth(scan, depth: np.ndarray, fx: float, cx: float, cy: float, scan_height: int) -> None:
    """Each column's band pixels land in the bin of their bearing: the reading there is the nearest
    range among them (and any other column of that bin), in range; a bin without a column takes the
    column whose bearing is nearest its own. Written one column at a time, as the reference."""
    first = int(cy - scan_height / 2)
    band = depth[first : first + scan_height].astype(np.float64)
    x = (np.arange(depth.shape[1]) - cx) / fx
    ranges = band * np.sqrt(1 + x**2)
    ranges[~((ranges >= scan.range_min) & (ranges <= scan.range_max))] = np.inf  # NaN too
    bins = np.rint((-np.arctan(x) - scan.angle_min) / scan.angle_increment).astype(int)
    expected = np.full(depth.shape[1], np.inf)
    for u in range(depth.shape[1]):
        expected[bins[u]] = min(expected[bins[u]], ranges[:, u].min())
    for k in np.flatnonzero(np.bincount(bins, minlength=len(expected)) == 0):
        expected[k] = ranges[:, np.argmin(np.abs(-np.arctan(x) - (scan.angle_min + k * scan.angle_increment)))].min()
    expected[np.isinf(expected)] = np.nan
    np.testing.assert_allclose(np.asarray(scan.ranges, np.float64), expected, rtol=1e-5)  # NaN where NaN


def test_the_scan_matches_the_depth_image_column_by_column():
    depth = np.random.default_rng(3).uniform(0.3, 11, (H, W)).astype(np.float32)
    depth[::9, ::4] = np.nan
    scan = ScanProjector(scan_height=6)(depth, CAMERA)
    assert_scan_matches_depth(scan, depth, FX, CX, CY, 6)
    x = (np.arange(W) - CX) / FX
    bins = np.rint((-np.arctan(x) - scan.angle_min) / scan.angle_increment).astype(int)
    assert len(set(bins)) < W  # the case of empty bins arises: bearings are not linear in columns


def test_bearings_come_from_the_undistorted_rays():
    D = np.array([-0.25, 0.08, 0.0, 0.0, 0.0])
    camera = CameraModel(W, H, CAMERA.K, D=D)
    # a box whose left edge is at a true bearing of 10°: render the distorted image's depth
    pixels = np.stack(np.meshgrid(np.arange(W, dtype=np.float64), [CY]), -1).reshape(-1, 1, 2)
    rays = cv2.undistortPoints(pixels, camera.K, D).reshape(-1, 2)
    bearing = -np.arctan(rays[:, 0])
    depth = np.full((H, W), 6.0, np.float32)
    depth[:, bearing < math.radians(10)] = 2.0
    scan = depth_to_scan(depth, camera)
    assert scan.angle_max == pytest.approx(bearing[0], abs=1e-9)  # not atan(cx/fx)
    assert abs(scan.angle_max - math.atan(CX / FX)) > 0.01
    theta = bearings(scan)
    near = scan.ranges < 4
    assert theta[near].max() == pytest.approx(math.radians(10), abs=2 * scan.angle_increment)


def test_a_band_taller_than_the_image_is_refused_with_the_rows():
    with pytest.raises(ValueError, match="scan_height 600 rows is too large"):
        depth_to_scan(np.ones((H, W), np.float32), CAMERA, scan_height=600)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"range_min": 5.0, "range_max": 5.0}, "range_min and range_max must satisfy"),
        ({"scan_height": 0}, "scan_height"),
    ],
)
def test_bad_scan_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        ScanProjector(**options)
