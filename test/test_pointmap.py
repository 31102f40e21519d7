"""Point maps up to a z-shift (MoGe) made metric with the camera: the shift that puts every point back
on its own pixel's ray."""

import numpy as np
import pytest

from depth_estimation_ros.core.pointmap import depth_from_points, recover_shift

K = np.array([[300.0, 0, 160.0], [0, 310.0, 120.0], [0, 0, 1]])


def affine_map(depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """What MoGe predicts for a scene of this depth: its points divided by ``scale``, z less ``shift``."""
    v, u = np.mgrid[: depth.shape[0], : depth.shape[1]].astype(np.float64)
    a, b = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    return np.stack([depth * a / scale, depth * b / scale, depth / scale - shift], -1)


def test_one_pixel_by_hand():
    """A 5x5 camera (f = 10, c = 2): pixel (u 4, v 2) has ray (0.2, 0); its point (0.5, 0, 1.7) is on it
    when t = 0.2·0.5 / 0.04 − 1.7 = 0.8."""
    small = np.array([[10.0, 0, 2.0], [0, 10.0, 2.0], [0, 0, 1]])
    points = np.full((5, 5, 3), np.nan)
    points[2, 4] = (0.5, 0.0, 1.7)
    valid = np.zeros((5, 5), bool)
    valid[2, 4] = True
    assert recover_shift(points, valid, small) == pytest.approx(0.8)
    assert depth_from_points(points, valid, small, scale=2.0)[2, 4] == pytest.approx(2 * (1.7 + 0.8))


def test_the_shift_and_scale_give_back_the_scenes_metres_despite_stray_points():
    v = np.arange(240, dtype=np.float64)[:, None]
    depth = np.broadcast_to(2.0 + 0.02 * v, (240, 320)).copy()  # a floor-like ramp, 2-6.8 m
    points = affine_map(depth, scale=2.5, shift=0.8)
    valid = np.ones((240, 320), bool)
    valid[:10] = False
    rng = np.random.default_rng(0)
    stray = rng.random((240, 320)) < 0.2  # a fifth of the pixels smeared by the network
    points[stray] += rng.normal(0, 0.5, (int(stray.sum()), 3))
    assert recover_shift(points, valid, K) == pytest.approx(0.8, abs=2e-3)
    metres = depth_from_points(affine_map(depth, 2.5, 0.8), valid, K, scale=2.5)
    assert np.isnan(metres[:10]).all()
    assert np.allclose(metres[10:], depth[10:], rtol=1e-5)


def test_no_usable_pixel_gives_no_metres():
    points = affine_map(np.full((240, 320), 3.0), 1.0, 0.5)
    assert np.isnan(depth_from_points(points, np.zeros((240, 320), bool), K)).all()
