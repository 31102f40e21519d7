"""Anchoring raw network output to metric depth (depth_estimation_ros.core.anchoring) on generated scenes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depth_estimation_ros.core.anchoring import (
    Anchor,
    ScaleFilter,
    ScaleFit,
    fit_depth_scale,
    fit_inverse_affine,
    sample_sparse,
)
from depth_estimation_ros.core.ground_plane import floor_depth
from depth_estimation_ros.core.metrics import compute_metrics
from depth_estimation_ros.core.scenes import FLOOR, render_scene

A, B = 0.37, 0.05  # the unknown affine of the relative model: pred = (1/Z − B) / A, so 1/Z = A·pred + B


def abs_rel(depth: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """AbsRel (metrics.compute_metrics) over ``mask``; anchored NaN pixels would fail it, so require none there."""
    assert np.isfinite(depth[mask]).all()
    return compute_metrics(depth[mask], gt[mask], 1e-3, 1e3)["abs_rel"]


def relative_prediction(depth: np.ndarray, rng: np.random.Generator, outliers: float = 0.1):
    """A relative inverse-depth prediction of the true depth: 2 % multiplicative noise, gross outliers.

    Returns the prediction (float32) and the outlier mask. Outliers are uniform in the clean range.
    """
    clean = (1.0 / depth - B) / A
    assert clean.min() > 0  # B below the smallest inverse depth (1/10 m): the prediction stays positive
    pred = clean * (1 + 0.02 * rng.standard_normal(depth.shape))
    out = rng.random(depth.shape) < outliers
    pred[out] = rng.uniform(clean.min(), clean.max(), int(out.sum()))
    return pred.astype(np.float32), out


def sparse_from(depth: np.ndarray, rng: np.random.Generator, share: float = 0.005, noise: float = 0.01) -> np.ndarray:
    """Sparse depth: the true depth with ``noise`` relative noise at ``share`` of the pixels, 0 elsewhere."""
    pick = rng.random(depth.shape) < share
    sparse = np.zeros(depth.shape, np.float32)
    sparse[pick] = depth[pick] * (1 + noise * rng.standard_normal(int(pick.sum())))
    return sparse


def inverse_metric(pred: np.ndarray, scale: float, shift: float) -> np.ndarray:
    return (1.0 / (scale * pred.astype(np.float64) + shift)).astype(np.float32)


@pytest.fixture(scope="module")
def scene():
    return render_scene(1, height=240, width=320, kind="indoor")


def good_fit(scale: float, shift: float = 0.0) -> ScaleFit:
    return ScaleFit(scale, shift, 100, 90, 0.01, True, "ok")


# --------------------------------------------------------------------------- 1: relative model + sparse depth


def test_relative_prediction_with_outliers_is_anchored_metric_by_sparse_depth(scene):
    """Measured: AbsRel 0.0119 over non-outlier pixels, 0.057 over all pixels (the 10 % outlier pixels
    alone contribute ~0.046 whatever the fit; 2 % pixel noise alone gives ~0.013), from 382 sparse points.
    Wrong anchorings on the same frame (non-outlier pixels): median scale only (Z = median(Z_ref·pred) / pred,
    no shift) 0.136, unanchored (1/Z = pred) 0.49."""
    depth, K = scene["depth"], scene["K"]
    rng = np.random.default_rng(0)
    pred, out = relative_prediction(depth, rng)
    sparse = sparse_from(depth, rng)

    metric = Anchor("sparse_depth", "inverse_depth").apply(pred, K, 0.0, sparse)

    assert metric.dtype == np.float32
    assert metric.shape == depth.shape
    valid = scene["valid"]
    assert abs_rel(metric, depth, valid & ~out) < 0.03
    assert abs_rel(metric, depth, valid) < 0.08
    values, ref = sample_sparse(pred, sparse)
    median_scale = np.median(ref * values) / pred.astype(np.float64)
    assert abs_rel(median_scale, depth, valid & ~out) > 0.1  # a scale-only fit cannot meet the bound
    assert abs_rel(1.0 / pred.astype(np.float64), depth, valid & ~out) > 0.3  # nor can no anchoring


def test_inverse_affine_fit_recovers_scale_and_shift_despite_outliers():
    rng = np.random.default_rng(3)
    z = rng.uniform(0.5, 10.0, 2000)
    pred = (1 / z - B) / A * (1 + 0.01 * rng.standard_normal(z.size))
    bad = rng.random(z.size) < 0.3
    pred[bad] = rng.uniform(pred.min(), pred.max(), int(bad.sum()))
    fit = fit_inverse_affine(pred, z)
    assert fit.ok, fit.reason
    assert fit.points == 2000
    assert fit.scale == pytest.approx(A, rel=0.01)
    assert fit.shift == pytest.approx(B, abs=0.002)
    assert 0.6 * 2000 < fit.inliers < 0.75 * 2000
    assert fit.residual < 0.01


def test_inverse_affine_fit_reports_degenerate_and_non_positive_scale():
    z = np.linspace(1.0, 5.0, 100)
    flat = fit_inverse_affine(np.full(100, 0.7), z)
    assert not flat.ok
    assert "degenerate" in flat.reason
    inverted = fit_inverse_affine(-1.0 / z, z)  # 1/Z = −pred: the scale would be negative
    assert not inverted.ok
    assert "non-positive scale" in inverted.reason


# --------------------------------------------------------------------------- 2: stable over a sequence


def test_filtered_scale_is_stable_over_a_panning_sequence():
    """20 frames, pan −10…10°, new noise/outliers/sparse subset each frame (120×160, ~96 sparse points).

    Measured: std of log filtered scale 0.0032 (raw fits 0.0075; ~101 points per frame); bound 0.02."""
    rng = np.random.default_rng(1)
    anchor = Anchor("sparse_depth", "inverse_depth")
    log_scales = []
    for i, pan in enumerate(np.linspace(-10, 10, 20)):
        frame = render_scene(4, height=120, width=160, kind="indoor", pan_deg=float(pan))
        pred, out = relative_prediction(frame["depth"], rng)
        metric = anchor.apply(pred, frame["K"], 0.1 * i, sparse_from(frame["depth"], rng))
        assert anchor.last_fit.ok, anchor.last_fit.reason
        assert abs_rel(metric, frame["depth"], ~out) < 0.04
        log_scales.append(math.log(anchor.filter.scale))
    assert np.std(log_scales) < 0.02
    assert anchor.filter.scale == pytest.approx(A, rel=0.02)
    assert anchor.filter.shift == pytest.approx(B, rel=0.1)
    assert anchor.filter.jitter < 0.02
    assert anchor.filter.rejected == 0
    assert anchor.diagnostics(1.9)["scale level"] == "OK"


# --------------------------------------------------------------------------- 3: holes, too few points


def test_sparse_with_80_percent_holes_still_fits(scene):
    depth = scene["depth"]
    rng = np.random.default_rng(2)
    pred, out = relative_prediction(depth, rng)
    sparse = sparse_from(depth, rng, share=0.02)
    samples = np.flatnonzero(sparse)
    holes = rng.permutation(samples)[: int(0.8 * samples.size)]
    sparse.ravel()[holes[::2]] = np.nan
    sparse.ravel()[holes[1::2]] = 0.0
    anchor = Anchor("sparse_depth", "inverse_depth")
    metric = anchor.apply(pred, scene["K"], 0.0, sparse)
    assert anchor.last_fit.ok
    assert anchor.last_fit.points == samples.size - holes.size
    assert abs_rel(metric, depth, ~out) < 0.03


def test_too_few_points_fails_the_fit_and_the_filter_holds_the_last_good_scale(scene):
    depth, K = scene["depth"], scene["K"]
    rng = np.random.default_rng(3)
    anchor = Anchor("sparse_depth", "inverse_depth", min_points=20)
    pred, _ = relative_prediction(depth, rng)
    anchor.apply(pred, K, 0.0, sparse_from(depth, rng))
    held = anchor.filter.scale, anchor.filter.shift

    few = np.zeros_like(depth)
    few.ravel()[rng.choice(depth.size, 12, replace=False)] = 3.0  # 12 points (and wildly wrong)
    pred2, _ = relative_prediction(depth, rng)
    metric = anchor.apply(pred2, K, 0.1, few)

    assert not anchor.last_fit.ok
    assert anchor.last_fit.reason == "too few points: 12 < min_points 20"
    assert (anchor.filter.scale, anchor.filter.shift) == held
    np.testing.assert_allclose(metric, inverse_metric(pred2, *held), rtol=1e-5)
    assert fit_depth_scale(np.ones(5), np.ones(5)).reason == "too few points: 5 < min_points 20"


# --------------------------------------------------------------------------- 4: sensor that stops


def test_sensor_that_stops_holds_the_scale_and_warns_stale(scene):
    depth, K = scene["depth"], scene["K"]
    rng = np.random.default_rng(4)
    anchor = Anchor("sparse_depth", "inverse_depth")
    for i in range(3):
        pred, _ = relative_prediction(depth, rng)
        anchor.apply(pred, K, 0.1 * i, sparse_from(depth, rng))
    held = anchor.filter.scale, anchor.filter.shift
    assert anchor.diagnostics(0.2)["scale level"] == "OK"
    for stamp in (3.2, 6.2):
        pred, out = relative_prediction(depth, rng)
        metric = anchor.apply(pred, K, stamp, None)
        np.testing.assert_allclose(metric, inverse_metric(pred, *held), rtol=1e-5)
        assert abs_rel(metric, depth, ~out) < 0.03
    diagnostics = anchor.diagnostics(6.2)
    assert diagnostics["scale level"].startswith("WARN")
    assert "stale" in diagnostics["scale level"]
    assert diagnostics["scale age s"] == "6.00"
    assert anchor.filter.stale(6.2)
    assert not anchor.filter.stale(0.3)


def test_diagnostics_report_every_key_and_warn_before_any_fit():
    anchor = Anchor("sparse_depth", "inverse_depth")
    diagnostics = anchor.diagnostics(0.0)
    assert set(diagnostics) == {
        "scale source",
        "scale",
        "shift",
        "scale inliers",
        "scale points",
        "scale residual",
        "scale age s",
        "scale jitter",
        "scale rejected",
        "scale level",
    }
    assert all(isinstance(v, str) for v in diagnostics.values())
    assert diagnostics["scale level"].startswith("WARN never fitted")
    assert diagnostics["scale age s"] == "inf"


def test_jittery_fits_warn_drifting():
    scale_filter = ScaleFilter(drift_window=10)
    for i in range(10):
        scale_filter.update(good_fit(math.exp(0.1 * (-1) ** i)), 0.1 * i)
    assert scale_filter.jitter == pytest.approx(0.1)
    anchor = Anchor("sparse_depth", "depth", filter=scale_filter)
    assert "drifting" in anchor.diagnostics(1.0)["scale level"]


# --------------------------------------------------------------------------- 5: sparse at another resolution


def test_sample_sparse_maps_sparse_pixels_to_the_nearest_prediction_pixel_centre():
    pred = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)  # value = flat index v·6 + u
    half = np.array([[1.0, 0.0, 2.0], [np.nan, 4.0, 5.0]], np.float32)  # 2×3: u = 2·u_s + 0.5 → 2·u_s + 1
    values, depth = sample_sparse(pred, half)
    np.testing.assert_array_equal(values, [1 * 6 + 1, 1 * 6 + 5, 3 * 6 + 3, 3 * 6 + 5])
    np.testing.assert_array_equal(depth, [1.0, 2.0, 4.0, 5.0])

    double = np.zeros((8, 12), np.uint16)  # u = (u_s + 0.5) / 2 − 0.5: 0 → −0.25 → 0, 3 → 1.25 → 1, 11 → 5.25 → 5
    double[0, 0], double[3, 3], double[7, 11] = 1500, 2500, 65000
    values, depth = sample_sparse(pred, double)
    np.testing.assert_array_equal(values, [0, 1 * 6 + 1, 3 * 6 + 5])
    np.testing.assert_allclose(depth, [1.5, 2.5, 65.0])  # uint16 millimetres → metres


@pytest.mark.parametrize(("factor", "points"), [(0.25, 1200), (2.0, 400)])
def test_sparse_sensor_at_another_resolution_anchors_as_accurately(scene, factor, points):
    depth, K = scene["depth"], scene["K"]
    h, w = int(depth.shape[0] * factor), int(depth.shape[1] * factor)
    sensor = render_scene(1, height=h, width=w, kind="indoor")  # the same camera at the sensor's pixel centres
    rng = np.random.default_rng(5)
    sparse = np.zeros((h, w), np.float32)
    pick = rng.choice(h * w, points, replace=False)
    sparse.ravel()[pick] = sensor["depth"].ravel()[pick] * (1 + 0.01 * rng.standard_normal(points))
    pred, out = relative_prediction(depth, rng)
    anchor = Anchor("sparse_depth", "inverse_depth")
    metric = anchor.apply(pred, K, 0.0, sparse)
    assert anchor.last_fit.ok
    assert anchor.last_fit.points == points
    assert abs_rel(metric, depth, ~out) < 0.03


# --------------------------------------------------------------------------- 6: never metres without a scale


def test_relative_model_with_source_none_is_rejected():
    expected = r"'none'.*'inverse_depth'.*no metric scale: set scale_source to sparse_depth, ground_plane or fixed"
    with pytest.raises(ValueError, match=expected):
        Anchor("none", "inverse_depth")


def test_relative_model_before_any_fit_returns_none(scene):
    depth, K = scene["depth"], scene["K"]
    pred, _ = relative_prediction(depth, np.random.default_rng(6))
    anchor = Anchor("sparse_depth", "inverse_depth")
    assert anchor.apply(pred, K, 0.0, None) is None
    assert anchor.apply(pred, K, 0.1, np.zeros_like(depth)) is None  # no valid sparse point: fit not ok
    assert anchor.filter.scale is None
    assert not anchor.last_fit.ok


def test_metric_model_returns_its_own_output_without_a_scale(scene):
    pred = scene["depth"].copy()
    pred[0, 0] = np.nan
    assert Anchor("none", "depth").apply(pred, scene["K"], 0.0) is pred
    np.testing.assert_array_equal(Anchor("sparse_depth", "depth").apply(pred, scene["K"], 0.0, None), pred)


# --------------------------------------------------------------------------- 7: metric model with a wrong scale


def test_metric_model_with_wrong_scale_is_recovered_by_sparse_depth(scene):
    depth = scene["depth"]
    rng = np.random.default_rng(7)
    pred = (1.3 * depth * (1 + 0.02 * rng.standard_normal(depth.shape))).astype(np.float32)
    out = rng.random(depth.shape) < 0.1
    pred[out] = rng.uniform(pred.min(), pred.max(), int(out.sum()))
    sparse = sparse_from(depth, rng)
    fit = fit_depth_scale(*sample_sparse(pred, sparse))
    assert fit.ok
    assert fit.shift == 0.0
    assert fit.scale == pytest.approx(1 / 1.3, rel=0.01)
    assert 0.8 * fit.points < fit.inliers < fit.points
    anchor = Anchor("sparse_depth", "depth")
    metric = anchor.apply(pred, scene["K"], 0.0, sparse)
    assert abs_rel(metric, depth, ~out) < 0.03


# --------------------------------------------------------------------------- 8: outlier gating


def test_one_wild_frame_is_rejected_and_a_lasting_change_reinitialises(scene):
    depth, K = scene["depth"], scene["K"]
    rng = np.random.default_rng(8)
    anchor = Anchor("sparse_depth", "inverse_depth")

    def frame(stamp: float, sparse_gain: float) -> None:
        pred, _ = relative_prediction(depth, rng)
        anchor.apply(pred, K, stamp, sparse_from(depth, rng) * np.float32(sparse_gain))
        assert anchor.last_fit.ok

    for i in range(3):
        frame(0.1 * i, 1.0)
    before = anchor.filter.scale
    frame(0.3, 3.0)  # a wildly wrong sensor scale: rejected
    assert anchor.filter.rejected == 1
    assert anchor.filter.scale == before
    assert anchor.diagnostics(0.3)["scale rejected"] == "1"
    frame(0.4, 1.0)
    assert anchor.filter.scale == pytest.approx(A, rel=0.02)

    for i, stamp in enumerate((0.5, 0.6, 0.7)):  # the scene really changed: depth ×1.5 from now on
        frame(stamp, 1.5)
        if i < 2:
            assert anchor.filter.scale == pytest.approx(A, rel=0.02)
    assert anchor.filter.rejected == 4
    assert anchor.filter.scale == pytest.approx(A / 1.5, rel=0.02)
    assert anchor.filter.age(0.7) == 0.0


def test_inconsistent_rejections_do_not_reinitialise():
    scale_filter = ScaleFilter(gate=0.25)
    scale_filter.update(good_fit(1.0), 0.0)
    for stamp, scale in ((0.1, 2.0), (0.2, 0.5), (0.3, 2.0), (0.4, 0.5)):
        scale_filter.update(good_fit(scale), stamp)
    assert scale_filter.scale == 1.0
    assert scale_filter.rejected == 4
    scale_filter.update(ScaleFit(math.nan, math.nan, 3, 0, math.nan, False, "too few points"), 0.5)
    assert scale_filter.scale == 1.0
    assert scale_filter.age(0.5) == 0.5
    scale_filter.reset()
    assert scale_filter.scale is None
    assert scale_filter.age(1.0) == math.inf
    assert scale_filter.rejected == 0


# --------------------------------------------------------------------------- 9: ground plane


@pytest.fixture(scope="module")
def floor_scene():
    sample = render_scene(0, height=240, width=320, kind="indoor", layers=True)
    meta = sample["meta"]
    geometry = {
        "camera_height": meta["camera_height"],
        "camera_pitch": math.radians(meta["pitch_deg"]),
        "camera_roll": math.radians(meta["roll_deg"]),
    }
    return sample, geometry


@pytest.mark.parametrize("seed", [0, 29])  # pitch −12.3°, roll +1.8°; pitch +4.3° (up), roll −2.2°
def test_floor_depth_matches_the_true_floor_and_its_plane(seed):
    sample = render_scene(seed, height=240, width=320, kind="indoor", layers=True)
    meta = sample["meta"]
    g = {"camera_height": meta["camera_height"], "camera_pitch": math.radians(meta["pitch_deg"])}
    g["camera_roll"] = math.radians(meta["roll_deg"])
    depth, K = sample["depth"], sample["K"]
    floor = floor_depth(K, depth.shape, g["camera_height"], g["camera_pitch"], g["camera_roll"])
    on_floor = sample["layers"]["surface"] == FLOOR
    assert np.isfinite(floor[on_floor]).all()
    assert np.median(np.abs(floor[on_floor] - depth[on_floor]) / depth[on_floor]) < 1e-3
    assert np.isnan(floor[0]).all()  # the top row looks above the horizon
    v, u = np.mgrid[0 : depth.shape[0], 0 : depth.shape[1]]
    seen = np.isfinite(floor)
    points = np.stack([(u - K[0, 2]) / K[0, 0] * floor, (v - K[1, 2]) / K[1, 1] * floor, floor, np.ones_like(floor)])
    plane = np.tensordot(sample["meta"]["floor_plane"], points, 1)
    assert np.abs(plane[seen]).max() < 1e-9
    assert np.nanmax(floor) <= 100 * g["camera_height"]


def test_floor_depth_sign_convention_pitch_up_and_roll():
    K = np.array([[100.0, 0, 49.5], [0, 100.0, 49.5], [0, 0, 1]])
    level = floor_depth(K, (100, 100), 1.0, 0.0, 0.0)
    assert np.isnan(level[:50]).all()
    assert np.isfinite(level[51:]).all()
    assert np.isnan(level[50]).all()  # half a pixel below the horizon: Z = 200 m > 100 × camera_height
    assert level[99, 50] == pytest.approx(100.0 / 49.5)  # y = h: Z = h·f / (v − cy)
    up = floor_depth(K, (100, 100), 1.0, math.radians(5), 0.0)
    assert np.isfinite(up).sum() < np.isfinite(level).sum()  # tilted up: the horizon moves down
    rolled = floor_depth(K, (100, 100), 1.0, 0.0, math.radians(10))
    # positive roll (the generator's convention, checked against its floor_plane above): 'down' gains +x, so the
    # horizon (tilted by ±tan 10° · 49.5 ≈ 8.7 px at the edges) is lower on the left than on the right
    assert np.isnan(rolled[55, 0])
    assert np.isfinite(rolled[55, 99])
    assert np.isfinite(rolled[:, 0]).sum() < np.isfinite(rolled[:, 99]).sum()


def test_ground_plane_anchors_a_relative_model(floor_scene):
    """Measured on this scene: AbsRel 0.0141 over non-outlier pixels, 0.049 over all valid pixels (the
    prediction's 10 % outlier pixels contribute ~0.036 of it; 2 % pixel noise alone gives ~0.013), with
    1123 of 3032 grid points inliers. 39 % of the ground grid sees the floor; a plain least-squares affine
    fit to all grid points is thrown by the walls and furniture to AbsRel ~7.5, so the bounds (about 3× and
    1.6× the measured values) show the floor consensus was found."""
    sample, g = floor_scene
    depth = sample["depth"]
    pred, out = relative_prediction(depth, np.random.default_rng(9))
    anchor = Anchor("ground_plane", "inverse_depth", **g)
    metric = anchor.apply(pred, sample["K"], 0.0)
    fit = anchor.last_fit
    assert fit.ok
    assert 2500 < fit.points < 3500
    assert 0.3 * fit.points < fit.inliers < 0.5 * fit.points  # walls and furniture rejected
    assert abs_rel(metric, depth, sample["valid"] & ~out) < 0.04
    assert abs_rel(metric, depth, sample["valid"]) < 0.08


def test_ground_plane_recovers_a_metric_models_scale(floor_scene):
    """Measured: scale error 0.4 % (a Huber fit from the median, without consensus, is 44 % off here)."""
    sample, g = floor_scene
    depth = sample["depth"]
    rng = np.random.default_rng(10)
    pred = (1.2 * depth * (1 + 0.02 * rng.standard_normal(depth.shape))).astype(np.float32)
    out = rng.random(depth.shape) < 0.1
    pred[out] = rng.uniform(pred.min(), pred.max(), int(out.sum()))
    anchor = Anchor("ground_plane", "depth", **g)
    metric = anchor.apply(pred, sample["K"], 0.0)
    assert anchor.last_fit.ok
    assert anchor.last_fit.scale * 1.2 == pytest.approx(1.0, abs=0.02)
    assert abs_rel(metric, depth, ~out) < 0.03


# --------------------------------------------------------------------------- 10: bad inputs


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("lidar", "depth"), {}, "'lidar'.*none.*fixed.*sparse_depth.*ground_plane"),
        (("fixed", "disparity"), {}, "'disparity'.*depth.*inverse_depth"),
        (("fixed", "depth"), {"fixed_scale": 0.0}, "fixed_scale.*0.0"),
        (("fixed", "inverse_depth"), {"fixed_scale": math.nan}, "fixed_scale.*nan"),
        (("fixed", "depth"), {"fixed_scale": -2.0}, "fixed_scale.*-2.0"),
        (("ground_plane", "depth"), {}, "camera_height.*0.0"),
        (("ground_plane", "inverse_depth"), {"camera_height": -1.2}, "camera_height.*-1.2"),
        (("fixed", "depth"), {"fixed_shift": 0.1}, "fixed_shift.*0.1"),
    ],
)
def test_bad_configuration_is_a_value_error_naming_the_value(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Anchor(*args, **kwargs)


# --------------------------------------------------------------------------- 11: fixed source


def test_fixed_source_applies_the_exact_formula():
    pred = np.array([[0.5, 2.0], [np.nan, -1.0]], np.float32)
    K = np.eye(3)
    depth = Anchor("fixed", "depth", fixed_scale=2.5).apply(pred, K, 0.0)
    np.testing.assert_array_equal(depth, np.array([[1.25, 5.0], [np.nan, np.nan]], np.float32))
    inverse = Anchor("fixed", "inverse_depth", fixed_scale=0.4, fixed_shift=0.2).apply(pred, K, 0.0)
    # 1/Z = 0.4·pred + 0.2: 0.4 → 2.5 m, 1.0 → 1 m; −0.2 (behind) → NaN
    np.testing.assert_allclose(inverse, np.array([[2.5, 1.0], [np.nan, np.nan]], np.float32), rtol=1e-6)
    assert inverse.dtype == np.float32
    exact = Anchor("fixed", "inverse_depth", fixed_scale=0.5, fixed_shift=-0.25).apply(np.array([[0.5]]), K, 0.0)
    assert np.isnan(exact).all()  # 1/Z = 0: infinitely far


def test_the_estimator_anchors_a_relative_model_to_the_ground_plane_from_node_parameters(floor_scene):
    """The node's parameters (camera_height in m, camera_pitch and camera_roll in degrees) through
    DepthEstimator: the same scene as above, the true relative inverse depth as the model's output."""
    from conftest import relative_oracle

    from depth_estimation_ros.core.camera import CameraModel
    from depth_estimation_ros.core.estimator import DepthEstimator

    sample, _ = floor_scene
    meta, K = sample["meta"], sample["K"]
    h, w = sample["depth"].shape
    estimator = DepthEstimator(
        relative_oracle([(sample["image"], sample["depth"])]),
        scale_source="ground_plane",
        camera_height=meta["camera_height"],
        camera_pitch=meta["pitch_deg"],
        camera_roll=meta["roll_deg"],
    )
    camera = CameraModel.from_intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], w, h)
    depth = estimator(sample["image"], camera).depth
    assert abs_rel(depth, sample["depth"], sample["valid"]) < 0.01  # exact inverse depth: only the fit's error
