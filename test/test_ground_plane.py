"""The ground-plane scale source with only the camera height: the floor's plane fitted from a metric
prediction on generated scenes whose pitch and roll the anchor is not told (it is told 0°)."""

import math

import numpy as np
import pytest

from depth_estimation_ros.core.anchoring import Anchor
from depth_estimation_ros.core.ground_plane import floor_normal, pitch_roll
from depth_estimation_ros.core.scenes import render_scene

SCALE = 1.7  # the metric model's unknown scale: pred = depth / SCALE
A, B = 0.37, 0.05  # a relative model's unknown affine: pred = (1/Z − B) / A


def tilted_scenes(kind: str, count: int) -> list[dict]:
    """Generated scenes with pitch within ±6° and roll within ±4° (a sloped floor is the same
    plane seen from the camera), the first ``count`` of the seeds."""
    scenes, seed = [], 0
    while len(scenes) < count:
        scene = render_scene(seed, 240, 320, kind)
        seed += 1
        meta = scene["meta"]
        if abs(meta["pitch_deg"]) <= 6 and abs(meta["roll_deg"]) <= 4:
            scenes.append(scene)
    return scenes


@pytest.fixture(scope="module")
def scenes():
    return {"indoor": tilted_scenes("indoor", 12), "street": tilted_scenes("street", 8)}


def noisy(scene: dict, seed: int) -> np.ndarray:
    depth = scene["depth"].astype(np.float64)
    noise = 1 + 0.02 * np.random.default_rng(seed).standard_normal(depth.shape)
    return np.where(scene["valid"], depth * noise, np.nan)


def scale_errors(scene: dict, seed: int) -> tuple[float, float, Anchor]:
    """|scale error| of the fitted floor and of today's fit to the configured (level) floor."""
    pred = (noisy(scene, seed) / SCALE).astype(np.float32)
    anchor = Anchor("ground_plane", "depth", camera_height=scene["meta"]["camera_height"])
    fitted = anchor._ground_fit(pred, scene["K"], 0.0)
    level = anchor._fit(*anchor._ground_correspondences(pred, scene["K"], anchor.prior), ground=True)
    return abs(fitted.scale / SCALE - 1), abs(level.scale / SCALE - 1), anchor


def test_a_metric_models_floor_is_fitted_where_a_configured_level_floor_is_several_per_cent_off(scenes):
    """Measured here (2 % depth noise): fitted, indoor median 0.8 % and 90 % of scenes within 6 %
    (the misses have a tenth of the lower image on the floor), street within 0.3 %; the configured
    level floor, median 18 % indoor and 11 % street, as today's source gave."""
    errors = {kind: np.array([scale_errors(s, i)[:2] for i, s in enumerate(group)]) for kind, group in scenes.items()}
    indoor, street = errors["indoor"], errors["street"]
    assert np.median(indoor[:, 0]) < 0.015
    assert np.percentile(indoor[:, 0], 75) < 0.03
    assert street[:, 0].max() < 0.01
    both = np.concatenate([indoor, street])
    assert np.mean(both[:, 0] < 0.03) >= 0.8  # the bound: four scenes in five within 3 %
    assert np.mean(both[:, 1] < 0.03) <= 0.1  # which the configured level floor cannot meet
    assert np.median(both[:, 1]) > 0.05


def test_the_fitted_floor_has_the_scenes_pitch_and_roll_and_diagnostics_say_so(scenes):
    scene = scenes["street"][2]
    meta = scene["meta"]
    _, _, anchor = scale_errors(scene, 0)
    pitch, roll = (math.degrees(a) for a in pitch_roll(anchor.floor[1]))
    assert abs(pitch - meta["pitch_deg"]) < 0.2
    assert abs(roll - meta["roll_deg"]) < 0.2
    values = anchor.diagnostics(0.0)
    assert values["ground plane"].startswith(f"fitted: pitch {pitch:.1f}° roll {roll:.1f}° (")
    assert values["ground plane filtered"] == f"pitch {pitch:.1f}° roll {roll:.1f}°"


def test_a_frame_without_a_floor_holds_the_last_plane_for_two_seconds_then_the_configured_one(scenes):
    scene = scenes["street"][0]
    pred = (noisy(scene, 1) / SCALE).astype(np.float32)
    anchor = Anchor("ground_plane", "depth", camera_height=scene["meta"]["camera_height"])
    anchor.apply(pred, scene["K"], 10.0)
    fitted = anchor.floor[1]
    wall = np.full_like(pred, np.nan)  # a frame whose lower half sees nothing usable (a lens cap)
    anchor.apply(wall, scene["K"], 11.0)
    how, normal, reason = anchor.floor
    assert how == "held (1.0 s old)"
    np.testing.assert_allclose(normal, fitted)
    assert "too few floor candidates" in reason
    anchor.apply(wall, scene["K"], 12.5)
    assert anchor.floor[0] == "configured"
    np.testing.assert_allclose(anchor.floor[1], floor_normal(0.0, 0.0))
    assert anchor.diagnostics(12.5)["ground plane"].startswith("configured: pitch 0.0° roll 0.0° (too few floor")


def test_a_relative_model_keeps_the_configured_plane_whose_pitch_it_needs(scenes):
    """A relative model's floor cannot give its pitch (module docstring of core.ground_plane): told
    0°, its anchored depth is far off on these scenes; told the scene's pitch and roll, within 2 %."""
    told_level, told_truth = [], []
    for i, scene in enumerate(scenes["street"]):
        meta, depth = scene["meta"], noisy(scene, i)
        pred = ((1 / depth - B) / A).astype(np.float32)
        for told, pitch, roll in ((told_level, 0.0, 0.0), (told_truth, meta["pitch_deg"], meta["roll_deg"])):
            anchor = Anchor("ground_plane", "inverse_depth", camera_height=meta["camera_height"],
                            camera_pitch=math.radians(pitch), camera_roll=math.radians(roll))  # fmt: skip
            metric = anchor.apply(pred, scene["K"], 0.0)
            valid = scene["valid"] & np.isfinite(metric)
            truth = scene["depth"][valid]
            told.append(np.median(np.abs(metric[valid] - truth) / truth))
        assert anchor.floor[0] == "configured"
    assert np.median(told_truth) < 0.02
    assert np.median(told_level) > 0.1
