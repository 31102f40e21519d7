import math

import numpy as np
import pytest
import torch

from depth_estimation_ros.core.metrics import compute_metrics
from training.protocol import (
    eigen_crop_mask,
    evaluate_image,
    flip_tta,
    garg_crop_mask,
    nyu_crop_mask,
    resize_prediction,
    resolve_crop,
)


def box(h, w, top, bottom, left, right):
    mask = np.zeros((h, w), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def test_nyu_bts_crop_is_rows_45_to_471_and_cols_41_to_601_at_480x640():
    mask = nyu_crop_mask(480, 640)
    np.testing.assert_array_equal(mask, box(480, 640, 45, 471, 41, 601))
    assert mask.sum() == 426 * 560


def test_nyu_densedepth_crop_is_rows_20_to_460_and_cols_24_to_616():
    np.testing.assert_array_equal(nyu_crop_mask(480, 640, "densedepth"), box(480, 640, 20, 460, 24, 616))


def test_nyu_crop_scales_with_the_image_size():
    full = nyu_crop_mask(480, 640)
    np.testing.assert_array_equal(nyu_crop_mask(240, 320), full[::2, ::2])
    with pytest.raises(ValueError, match="crop style"):
        nyu_crop_mask(480, 640, "eigen")


def test_garg_crop_uses_the_fractions_of_each_image_size():
    # 0.40810811·375 = 153.04, 0.99189189·375 = 371.96, 0.03594771·1242 = 44.65, 0.96405229·1242 = 1197.35
    np.testing.assert_array_equal(garg_crop_mask(375, 1242), box(375, 1242, 153, 371, 44, 1197))
    np.testing.assert_array_equal(garg_crop_mask(370, 1224), box(370, 1224, 151, 366, 43, 1180))
    # Eigen crop: 0.3324324·375 = 124.66, 0.91351351·375 = 342.57
    np.testing.assert_array_equal(eigen_crop_mask(375, 1242), box(375, 1242, 124, 342, 44, 1197))


def test_resize_prediction_is_bilinear_to_the_ground_truth_shape():
    pred = np.array([[0.0, 1.0], [0.0, 1.0]])
    out = resize_prediction(pred, (2, 4))
    np.testing.assert_allclose(out, [[0, 0.25, 0.75, 1]] * 2)
    assert resize_prediction(np.full((1, 1, 6, 8), 3.0), (12, 16)).shape == (12, 16)
    np.testing.assert_array_equal(resize_prediction(pred, (2, 2)), pred)


def test_flip_tta_averages_with_the_mirrored_prediction_flipped_back():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    ramp = np.arange(6, dtype=np.float64)

    def predict(img):  # not flip-symmetric: depends on the column index
        return img[:, :, 0].astype(np.float64) + ramp

    np.testing.assert_allclose(flip_tta(predict, image), image[:, :, 0] + 2.5)

    batch = torch.from_numpy(image).permute(2, 0, 1)[None].double()

    def predict_torch(x):  # (B, 3, H, W) -> (B, 1, H, W)
        return x[:, :1] * 2 + torch.arange(6, dtype=x.dtype)

    np.testing.assert_allclose(flip_tta(predict_torch, batch)[0, 0].numpy(), image[:, :, 0] * 2.0 + 2.5)


def test_caps_are_10_m_for_nyu_and_80_m_for_kitti():
    gt = np.array([[2.0, 12.0], [10.0, 50.0]])
    pred = np.array([[2.0, 20.0], [9.0, 60.0]])
    nyu = evaluate_image(pred, gt, "nyu", crop=None)
    assert nyu == compute_metrics(np.array([2.0]), np.array([2.0]), 1e-3, 10.0)  # 12, 10, 50 m masked
    kitti = evaluate_image(pred, gt, "kitti", crop=None)
    assert kitti["abs_rel"] == pytest.approx((0 + 8 / 12 + 1 / 10 + 10 / 50) / 4)
    clamped = evaluate_image(np.full((2, 2), 15.0), np.full((2, 2), 5.0), "nyu", crop=None)
    assert clamped["abs_rel"] == pytest.approx(1.0)  # 15 m clamped to 10 m


def test_evaluate_image_masks_outside_the_crop_and_resizes_the_prediction():
    gt = np.full((480, 640), 3.0)
    pred = np.full((240, 320), 3.0, dtype=np.float32)
    pred[:8] = 9.0  # rows 0–16 at full size (row 16 blended): outside both NYU crops (from row 20)
    assert evaluate_image(pred, gt, "nyu")["abs_rel"] == pytest.approx(0.0)
    assert evaluate_image(pred, gt, "nyu", crop=None)["abs_rel"] > 0.05
    assert evaluate_image(pred, gt, "nyu", crop="densedepth")["abs_rel"] == pytest.approx(0.0)
    assert math.isnan(evaluate_image(pred, np.zeros((480, 640)), "nyu")["rmse"])
    with pytest.raises(ValueError, match="unknown dataset"):
        evaluate_image(pred, gt, "scannet")


@pytest.mark.parametrize(
    ("dataset", "crop", "message"),
    [
        ("nyu", "eigen", "crop 'eigen' is a KITTI crop; NYU crops are bts, densedepth, default or none"),
        ("nyu", "garg", "crop 'garg' is a KITTI crop"),
        ("kitti", "bts", "crop 'bts' is a NYU crop; KITTI crops are eigen, garg, default or none"),
        ("kitti", "middle", "crop 'middle' is not a crop"),
    ],
)
def test_a_crop_of_the_other_dataset_is_an_error_not_a_silent_kitti_crop_on_nyu(dataset, crop, message):
    gt = np.full((48, 64), 3.0)
    with pytest.raises(ValueError, match=message):
        evaluate_image(gt, gt, dataset, crop=crop)


def test_crop_names_resolve_per_dataset():
    assert resolve_crop("nyu", "default") == "bts"
    assert resolve_crop("kitti", "default") == "garg"
    assert resolve_crop("kitti", "eigen") == "eigen"
    assert resolve_crop("nyu", "none") is None
    assert resolve_crop("nyu", None) is None
