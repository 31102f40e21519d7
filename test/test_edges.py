"""The flying-pixel filter: veils between an object and its background go, surfaces stay."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.edges import EdgeFilter, flag
from depth_estimation_ros.core.pointcloud import depth_to_points
from depth_estimation_ros.core.scenes import render_scene

CAMERA = CameraModel.from_intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)


def box_in_front_of_wall(wall: float = 4.0, box: float = 2.0) -> np.ndarray:
    depth = np.full((480, 640), wall, np.float32)
    depth[150:330, 250:400] = box
    return depth


def ramp(depth: np.ndarray, width: int) -> np.ndarray:
    """What a network makes of a step: smoothed over ``width`` pixels (a box filter, so the
    plateaus stay exact away from the edge)."""
    return cv2.blur(depth, (width, width), borderType=cv2.BORDER_REPLICATE)


def test_a_sharp_step_loses_no_pixel():
    assert not EdgeFilter().mask(box_in_front_of_wall(), CAMERA).any()


def test_a_smoothed_step_loses_its_ramp_and_keeps_both_surfaces():
    sharp = box_in_front_of_wall()
    smooth = ramp(sharp, 7)
    flying = EdgeFilter().mask(smooth, CAMERA)
    between = (smooth > 2.05) & (smooth < 3.95)  # neither the box nor the wall
    assert flying[between].mean() > 0.97
    on_a_surface = (np.abs(smooth - sharp) < 1e-4) & ~cv2.dilate(between.astype(np.uint8), np.ones((3, 3))).astype(bool)
    assert not flying[on_a_surface].any()


def test_a_pole_one_pixel_wide_is_kept():
    depth = np.full((480, 640), 5.0, np.float32)
    depth[:, 300] = 1.0  # a local minimum along its rows, not a ramp
    assert not EdgeFilter().mask(depth, CAMERA)[:, 300].any()


def floor(camera_height: float) -> np.ndarray:
    """Depth of a flat floor ``camera_height`` below a level camera (NaN above the horizon)."""
    v = np.arange(480, dtype=np.float64)[:, None] - CAMERA.cy
    with np.errstate(divide="ignore"):
        z = np.where(v > 0, camera_height * CAMERA.fy / v, np.nan)
    return np.broadcast_to(z, (480, 640)).astype(np.float32)


def test_a_floor_is_kept_up_to_the_documented_distance():
    """A floor meets the ray at asin(h/d): kept nearer than h/sin(floor angle), dropped beyond."""
    edge_filter, height = EdgeFilter(), 1.0
    depth = floor(height)
    flying = edge_filter.mask(depth, CAMERA)
    limit = height / math.sin(math.radians(edge_filter.floor_angle_deg))  # ≈ 11.5 m
    ru, rv = CAMERA.ray_grid()
    distance = depth * np.sqrt(1 + ru**2 + rv**2)
    assert not flying[distance < 0.9 * limit].any()
    assert flying[(distance > 1.1 * limit) & (distance < 100)].all()


def test_invalid_pixels_stay_invalid_and_never_flag_their_neighbours():
    depth = box_in_front_of_wall()
    depth[::7, ::5] = np.nan
    filtered = EdgeFilter()(depth, CAMERA)
    assert np.isnan(filtered[::7, ::5]).all()
    np.testing.assert_array_equal(filtered, depth)  # NaN where NaN, every other pixel kept


def test_filtering_in_place_writes_the_given_buffer():
    depth = ramp(box_in_front_of_wall(), 7)
    expected = EdgeFilter()(depth, CAMERA)
    out = EdgeFilter()(depth, CAMERA, out=depth)
    assert out is depth
    np.testing.assert_array_equal(depth, expected)


def test_the_torch_filter_flags_exactly_the_numpy_pixels():
    depth = ramp(box_in_front_of_wall(), 5)
    edge_filter = EdgeFilter()
    rows, cols = edge_filter.constants(CAMERA)
    flying = torch.zeros(depth.shape, dtype=torch.bool)
    flag(torch.from_numpy(depth), tuple(map(torch.from_numpy, rows)), tuple(map(torch.from_numpy, cols)), flying)
    np.testing.assert_array_equal(flying.numpy(), edge_filter.mask(depth, CAMERA))


@pytest.mark.parametrize("angle", [0.0, 90.0, -3.0])
def test_a_threshold_outside_0_to_90_degrees_is_refused(angle):
    with pytest.raises(ValueError, match="edge filter angle_deg must be in"):
        EdgeFilter(angle)


def test_most_phantom_points_of_a_smoothed_scene_go_and_few_good_ones(tmp_path):
    """The measurement of benchmarks/navigation.py on one generated room: the true depth low-passed
    at a network's resolution and upsampled, as a network predicts across edges."""
    sample = render_scene(5001, 480, 640, "indoor")
    camera = CameraModel(640, 480, sample["K"])
    truth = cKDTree(depth_to_points(sample["depth"], camera).reshape(-1, 3))
    small = cv2.GaussianBlur(cv2.resize(sample["depth"], (256, 192), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    predicted = cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR)
    points = depth_to_points(predicted, camera).reshape(-1, 3)
    distance, _ = truth.query(points)
    phantom = distance > 0.05 + 0.02 * np.linalg.norm(points, axis=1)
    flying = EdgeFilter().mask(predicted, camera).ravel()
    assert phantom.mean() > 0.01  # the scene has veils to remove
    assert flying[phantom].mean() >= 0.9
    assert flying[~phantom].mean() <= 0.05
