import math

import numpy as np
import pytest

from depth_estimation_ros.core.metrics import METRICS, average_metrics, compute_metrics, format_table

LN2, A = math.log(2), math.log(1.25)


def test_every_metric_matches_hand_computed_values_on_a_2x2_image():
    gt = np.array([[1.0, 2.0], [4.0, 5.0]])
    pred = np.array([[1.0, 4.0], [5.0, 4.0]])
    m = compute_metrics(pred, gt, 0.1, 10.0)
    # ratios max(gt/p, p/gt): 1, 2, 1.25, 1.25; thresholds are strict, so 1.25 fails δ1
    assert m["d1"] == 0.25
    assert m["d2"] == 0.75
    assert m["d3"] == 0.75
    # gt − pred = 0, −2, −1, 1
    assert m["abs_rel"] == pytest.approx((0 + 2 / 2 + 1 / 4 + 1 / 5) / 4)  # 0.3625
    assert m["sq_rel"] == pytest.approx((0 + 4 / 2 + 1 / 4 + 1 / 5) / 4)  # 0.6125
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 4 + 1 + 1) / 4))
    # d = ln pred − ln gt = 0, ln 2, ln 1.25, −ln 1.25
    assert m["rmse_log"] == pytest.approx(math.sqrt((LN2**2 + 2 * A**2) / 4))
    assert m["log10"] == pytest.approx((math.log10(2) + 2 * math.log10(1.25)) / 4)
    assert m["silog"] == pytest.approx(100 * math.sqrt((LN2**2 + 2 * A**2) / 4 - (LN2 / 4) ** 2))
    assert set(m) == set(METRICS)
    assert all(isinstance(v, float) for v in m.values())


def test_log10_uses_base_10_not_natural_log():
    m = compute_metrics(np.array([10.0]), np.array([1.0]), 0.1, 100.0)
    assert m["log10"] == pytest.approx(1.0)
    assert m["rmse_log"] == pytest.approx(math.log(10))


def test_abs_rel_divides_by_ground_truth_not_prediction():
    assert compute_metrics(np.array([2.0]), np.array([1.0]), 0.1, 10.0)["abs_rel"] == pytest.approx(1.0)
    assert compute_metrics(np.array([1.0]), np.array([2.0]), 0.1, 10.0)["abs_rel"] == pytest.approx(0.5)
    assert compute_metrics(np.array([2.0]), np.array([1.0]), 0.1, 10.0)["sq_rel"] == pytest.approx(1.0)
    assert compute_metrics(np.array([1.0]), np.array([2.0]), 0.1, 10.0)["sq_rel"] == pytest.approx(0.5)


def test_ground_truth_validity_is_strict_and_finite_and_invalid_pixels_are_ignored():
    gt = np.array([0.1, 10.0, np.nan, np.inf, 0.0, -1.0, 2.0])  # only 2.0 is inside (0.1, 10)
    pred = np.array([50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 3.0])
    assert compute_metrics(pred, gt, 0.1, 10.0) == compute_metrics(np.array([3.0]), np.array([2.0]), 0.1, 10.0)


def test_predictions_are_clamped_to_the_depth_range_before_scoring():
    m = compute_metrics(np.array([-5.0, 0.0, 50.0]), np.array([1.0, 1.0, 8.0]), 0.5, 10.0)
    # clamped to 0.5, 0.5, 10
    assert m["abs_rel"] == pytest.approx((0.5 + 0.5 + 2 / 8) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0.25 + 4) / 3))


def test_non_finite_prediction_is_an_error_with_the_count():
    with pytest.raises(ValueError, match="2 non-finite"):
        compute_metrics(np.array([np.nan, np.inf, 1.0]), np.ones(3), 0.1, 10.0)


def test_no_valid_pixel_gives_nan_for_every_metric():
    m = compute_metrics(np.ones((2, 2)), np.zeros((2, 2)), 0.1, 10.0)
    assert set(m) == set(METRICS)
    assert all(math.isnan(v) for v in m.values())


def test_shape_mismatch_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        compute_metrics(np.ones((2, 3)), np.ones((3, 2)), 0.1, 10.0)


def test_averaging_is_per_image_then_mean_and_skips_images_without_ground_truth():
    one_pixel = compute_metrics(np.array([2.0]), np.array([1.0]), 0.1, 10.0)  # abs_rel 1
    three_pixels = compute_metrics(np.full(3, 4.0), np.full(3, 4.0), 0.1, 10.0)  # abs_rel 0
    empty = compute_metrics(np.ones(2), np.zeros(2), 0.1, 10.0)
    mean = average_metrics([one_pixel, empty, three_pixels])
    assert mean["abs_rel"] == pytest.approx(0.5)  # pixel-pooled would be 0.25
    assert mean["d1"] == pytest.approx(0.5)
    assert (mean["count"], mean["skipped"]) == (2, 1)
    nothing = average_metrics([empty])
    assert nothing["count"] == 0
    assert math.isnan(nothing["rmse"])


def test_table_lists_columns_in_the_papers_order():
    row = {**dict(zip(METRICS, [0.9, 0.98, 0.995, 0.1, 0.06, 0.4, 0.13, 0.045, 12.0], strict=True)), "count": 654}
    table = format_table({"acan": row}).splitlines()
    assert table[0] == "|  | δ1 | δ2 | δ3 | AbsRel | SqRel | RMSE | RMSElog | log10 | SILog | N |"
    assert table[2] == "| acan | 0.900 | 0.980 | 0.995 | 0.100 | 0.060 | 0.400 | 0.130 | 0.045 | 12.000 | 654 |"
