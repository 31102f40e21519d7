"""Joint RGB-D augmentation keeps image, depth, validity and intrinsics consistent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.augment import (
    Augment,
    Compose,
    color_jitter,
    crop,
    hflip,
    permute_channels,
    random_crop,
    rotate,
    scale,
    to_tensors,
)

NORMAL = np.array([0.3, -0.4, -0.87]) / np.linalg.norm([0.3, -0.4, -0.87])  # a slanted wall about 4 m ahead
OFFSET = 4.0


def plane_sample(h=96, w=128, fx=100.0, fy=100.0, cx=70.3, cy=41.6, normal=NORMAL, offset=OFFSET):
    """Depth of the plane ``normal·X + offset = 0`` (0 where the ray misses it or it is beyond 50 m)."""
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u, dtype=float)], -1)
    with np.errstate(divide="ignore"):
        z = -offset / (rays @ normal)
    valid = (z > 0) & (z < 50)
    rng = np.random.default_rng(0)
    return {
        "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "depth": np.where(valid, z, 0).astype(np.float32),
        "valid": valid,
        "K": np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]),
        "name": "plane",
    }


def points(sample):
    """Back-projected valid pixels (N, 3) and their pixel coordinates."""
    K, depth, valid = sample["K"], sample["depth"].astype(np.float64), sample["valid"]
    v, u = np.nonzero(valid)
    z = depth[v, u]
    return np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], -1)


def relative_residual(sample, normal=NORMAL, offset=OFFSET):
    """|normal·X + offset| / z for every valid pixel."""
    X = points(sample)
    return np.abs(X @ normal + offset) / X[:, 2]


def half_pixel_bound(sample, normal, fx, fy):
    """Relative plane residual of a depth sample displaced by up to half a source pixel in u and v."""
    return 0.5 * (abs(normal[0]) / fx + abs(normal[1]) / fy) * (1 + 1e-3) + 1e-6


def roll(angle_deg):
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def test_the_plane_fixture_is_exact():
    sample = plane_sample()
    assert sample["valid"].mean() > 0.9
    assert relative_residual(sample).max() < 1e-6


def test_crop_keeps_the_back_projected_points():
    sample = plane_sample()
    out = crop(sample, 10, 23, 50, 60)
    assert out["depth"].shape == (50, 60)
    assert out["image"].shape == (50, 60, 3)
    assert out["K"][0, 2] == pytest.approx(70.3 - 23)
    assert out["K"][1, 2] == pytest.approx(41.6 - 10)
    assert relative_residual(out).max() < 1e-6
    np.testing.assert_array_equal(out["image"], sample["image"][10:60, 23:83])
    with pytest.raises(ValueError, match="does not fit"):
        crop(sample, 90, 0, 10, 10)


def test_random_crop_has_the_requested_size_and_stays_exact():
    out = random_crop(plane_sample(), (64, 64), np.random.default_rng(1))
    assert out["depth"].shape == (64, 64)
    assert relative_residual(out).max() < 1e-6


def test_flip_mirrors_the_scene_exactly_and_twice_is_identity():
    sample = plane_sample()
    once = hflip(sample)
    assert once["K"][0, 2] == pytest.approx(127 - 70.3)
    mirrored = NORMAL * np.array([-1, 1, 1])
    assert relative_residual(once, mirrored).max() < 1e-6
    twice = hflip(once)
    for key in ("image", "depth", "valid", "K"):
        np.testing.assert_array_equal(twice[key], sample[key])


def test_scale_by_one_third_is_exact_in_the_pixel_centre_convention():
    sample = plane_sample(h=96, w=129)
    out = scale(sample, 1 / 3)
    assert out["depth"].shape == (32, 43)
    assert out["K"][0, 0] == pytest.approx(100 / 3)
    assert out["K"][0, 2] == pytest.approx((70.3 + 0.5) / 3 - 0.5)
    assert relative_residual(out).max() < 1e-6
    np.testing.assert_array_equal(out["depth"], sample["depth"][1::3, 1::3])  # target centres = source centres


@pytest.mark.parametrize("factor", [0.55, 0.8, 1.37, 2.0])
def test_scale_keeps_points_on_the_plane_within_half_a_source_pixel(factor):
    sample = plane_sample()
    out = scale(sample, factor)
    assert out["depth"].shape == (round(96 * factor), round(128 * factor))
    assert out["image"].shape[:2] == out["depth"].shape
    assert relative_residual(out).max() <= half_pixel_bound(sample, NORMAL, 100.0, 100.0)
    # on average much better than the bound: the convention has no systematic half-pixel shift
    assert relative_residual(out).mean() < 0.35 * half_pixel_bound(sample, NORMAL, 100.0, 100.0)


def test_eigen_scale_variant_divides_depth_and_keeps_the_focal_length():
    sample = plane_sample()
    exact, eigen = scale(sample, 1.5), scale(sample, 1.5, keep_focal=True)
    np.testing.assert_array_equal(eigen["valid"], exact["valid"])
    np.testing.assert_allclose(eigen["depth"], exact["depth"] / 1.5, rtol=1e-6)
    assert eigen["K"][0, 0] == 100.0
    assert eigen["K"][1, 1] == 100.0
    np.testing.assert_allclose(eigen["K"][:2, 2], exact["K"][:2, 2])


def test_nearest_resizing_never_creates_depth_values_or_blends_with_invalid():
    rng = np.random.default_rng(3)
    sample = plane_sample()
    depth = rng.uniform(0.5, 10, sample["depth"].shape).astype(np.float32)
    valid = rng.random(depth.shape) > 0.3
    sample = {**sample, "depth": np.where(valid, depth, 0).astype(np.float32), "valid": valid}
    source_values = set(sample["depth"][valid].tolist())
    for factor in (0.37, 0.5, 0.9, 1.3, 2.7):
        out = scale(sample, factor)
        assert set(out["depth"][out["valid"]].tolist()) <= source_values
        np.testing.assert_array_equal(out["valid"], out["depth"] > 0)
    out = rotate(sample, 13.0)
    assert set(out["depth"][out["valid"]].tolist()) <= source_values
    np.testing.assert_array_equal(out["valid"], out["depth"] > 0)


@pytest.mark.parametrize(("angle", "fy"), [(7.0, 100.0), (-12.0, 100.0), (9.0, 130.0)])
def test_rotation_is_a_camera_roll_about_the_principal_point(angle, fy):
    sample = plane_sample(fy=fy)
    out = rotate(sample, angle)
    np.testing.assert_array_equal(out["K"], sample["K"])
    rolled = roll(angle) @ NORMAL  # back-projected points are the originals rotated by the roll
    assert relative_residual(out, rolled).max() <= half_pixel_bound(sample, rolled, 100.0, fy) * math.sqrt(2)
    # the wrong sense of rotation does not fit
    assert relative_residual(out, roll(-angle) @ NORMAL).max() > 10 * half_pixel_bound(sample, rolled, 100.0, fy)


def test_rotation_by_a_right_angle_about_an_integer_principal_point_is_exact():
    sample = plane_sample(h=96, w=96, cx=48.0, cy=50.0)
    out = rotate(sample, 90.0)
    assert out["valid"].sum() > 0.2 * out["valid"].size
    assert relative_residual(out, roll(90.0) @ NORMAL).max() < 1e-6


def test_rotation_leaves_invalid_black_borders():
    sample = plane_sample()
    sample = {
        **sample,
        "image": np.full_like(sample["image"], 200),
        "depth": np.full(sample["depth"].shape, 2.0, np.float32),
        "valid": np.ones(sample["depth"].shape, bool),
    }
    out = rotate(sample, 10.0)
    for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert not out["valid"][corner]
        assert out["depth"][corner] == 0
        assert (out["image"][corner] == 0).all()
    assert out["valid"][48, 64]
    assert out["depth"][48, 64] == 2.0
    assert (out["image"][48, 64] == 200).all()
    assert 0.02 < (~out["valid"]).mean() < 0.3


def test_colour_ops_change_only_the_image():
    sample = plane_sample()
    for out in (
        color_jitter(sample, brightness=1.2, contrast=0.8, saturation=1.3, hue_deg=20.0, gamma=0.9),
        permute_channels(sample, [2, 0, 1]),
        Augment(flip=0.0, brightness=0.3, contrast=0.3, saturation=0.3, hue_deg=10.0, gamma=0.2, channel_shuffle=1.0)(
            sample
        ),
    ):
        assert out["depth"] is sample["depth"]
        assert out["valid"] is sample["valid"]
        assert out["K"] is sample["K"]
        assert out["image"].dtype == np.uint8
        assert out["image"].shape == sample["image"].shape
        assert not np.array_equal(out["image"], sample["image"])
    np.testing.assert_array_equal(permute_channels(sample, [2, 0, 1])["image"], sample["image"][..., [2, 0, 1]])
    neutral = color_jitter(sample)["image"].astype(int)
    assert np.abs(neutral - sample["image"]).max() <= 1


def test_colour_jitter_factors_act_as_named():
    grey = {"image": np.full((4, 4, 3), 100, np.uint8)}
    assert color_jitter(grey, brightness=1.5)["image"][0, 0, 0] == 150
    assert color_jitter(grey, saturation=0.0, hue_deg=90.0)["image"][0, 0, 0] == 100  # grey has no hue or saturation
    red = {"image": np.tile(np.array([200, 50, 50], np.uint8), (4, 4, 1))}
    desaturated = color_jitter(red, saturation=0.0)["image"][0, 0].astype(int)
    assert desaturated.max() - desaturated.min() <= 1
    assert color_jitter(red, gamma=2.0)["image"][0, 0, 0] == round(255 * (200 / 255) ** 2)


def test_inputs_are_left_untouched():
    sample = plane_sample()
    copy = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sample.items()}
    augment = Augment(size=(64, 96), scale=(0.9, 1.3), rotate_deg=5, flip=1.0, brightness=0.2, channel_shuffle=1.0)
    augment(sample)
    for op in (hflip, lambda s: scale(s, 1.3), lambda s: rotate(s, 5.0), lambda s: crop(s, 1, 2, 30, 40)):
        op(sample)
    for key, value in copy.items():
        np.testing.assert_array_equal(sample[key], value)


def test_augment_is_deterministic_from_its_seed_and_crops_to_size():
    sample = plane_sample()
    options = {"size": (64, 96), "scale": (0.8, 1.4), "rotate_deg": 5.0, "flip": 0.5, "brightness": 0.2}
    runs = [Augment(seed=seed, **options)(sample) for seed in (4, 4, 5)]
    for key in ("image", "depth", "valid", "K"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    assert not np.array_equal(runs[0]["image"], runs[2]["image"])
    augment = Augment(seed=0, **options)
    for _ in range(5):
        out = augment(sample)
        assert out["depth"].shape == (64, 96)
        assert out["image"].shape == (64, 96, 3)
        np.testing.assert_array_equal(out["valid"], out["depth"] > 0)
    # a scale below what the crop needs is raised: the scaled image still covers the crop
    small = Augment(size=(96, 128), scale=(0.5, 0.6), flip=0.0, seed=0)(sample)
    assert small["depth"].shape == (96, 128)
    augment.reseed(4)
    np.testing.assert_array_equal(augment(sample)["depth"], runs[0]["depth"])


def test_augmented_geometry_stays_a_plane():
    """Scale, crop and flip without rotation: the flipped plane, to within half a pixel."""
    sample = plane_sample()
    augment = Augment(size=(64, 96), scale=(1.1, 1.4), flip=1.0, seed=2)
    out = augment(sample)
    mirrored = NORMAL * np.array([-1, 1, 1])
    assert relative_residual(out, mirrored).max() <= half_pixel_bound(sample, mirrored, 100.0, 100.0)


def test_to_tensors_dtypes_and_shapes():
    sample = plane_sample()
    sample["depth"][0, 0], sample["valid"][0, 0] = np.nan, True  # a non-finite depth is invalid
    out = Compose([Augment(size=(64, 96), flip=1.0, seed=0), to_tensors])(sample)
    assert out["image"].shape == (3, 64, 96)
    assert out["image"].dtype == torch.float32
    assert 0.0 <= out["image"].min() <= out["image"].max() <= 1.0
    assert out["depth"].shape == (1, 64, 96)
    assert out["depth"].dtype == torch.float32
    assert out["valid"].shape == (1, 64, 96)
    assert out["valid"].dtype == torch.bool
    assert out["K"].shape == (3, 3)
    assert out["K"].dtype == torch.float32
    assert out["name"] == "plane"
    assert torch.isfinite(out["depth"]).all()
    assert (out["depth"][~out["valid"]] == 0).all()
    assert (out["depth"][out["valid"]] > 0).all()
    tensors = to_tensors(sample)
    assert not tensors["valid"][0, 0, 0]
    assert tensors["depth"][0, 0, 0] == 0
