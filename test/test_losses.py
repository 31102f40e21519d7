import numpy as np
import pytest
import torch

from depth_estimation_ros.core.ordinal import OrdinalBins
from training.losses import (
    acan_loss,
    attention_loss,
    attention_target,
    batch_loss,
    batch_weights,
    gradient_loss,
    msfnet_loss,
    ordinal_loss,
    per_image_l1,
    ssim_loss,
    ssim_map,
)

BINS = OrdinalBins(0.5, 10.0, 32)


def scene(b=2, h=32, w=48, seed=0):
    """Depth maps with a ramp, a box, and some invalid pixels (0 and NaN)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.linspace(0, 1, h).view(h, 1).expand(h, w)
    depth = (1 + 6 * v).expand(b, 1, h, w).clone()
    depth[:, :, 5:15, 10:25] = 2.0 + torch.rand(b, 1, 1, 1, generator=g)
    depth[:, :, 0, :5] = 0.0
    depth[:, :, 1, :5] = float("nan")
    return depth


def ideal_logits(depth, bins, margin=12.0, shift=0):
    labels = (bins.encode(depth).squeeze(1) + shift).clamp(0, bins.num_bins - 1)
    z = margin * (2 * bins.ideal_probabilities(labels) - 1)  # log-odds ±margin
    logits = torch.zeros(depth.shape[0], 2 * bins.num_bins, *depth.shape[-2:])
    logits[:, 1::2] = z
    return logits


def test_ordinal_loss_is_minimal_for_a_perfect_prediction_and_grows_with_the_error():
    depth = scene()
    losses = [ordinal_loss(ideal_logits(depth, BINS, shift=s), depth, BINS).item() for s in (0, 1, 4, 12)]
    assert losses[0] < 1e-3
    assert losses == sorted(losses)
    assert losses[1] > 1.0


def test_ordinal_loss_keeps_valid_depths_beyond_the_range():
    depth = torch.full((1, 1, 4, 4), 50.0)  # beyond d_max: must land in the last bin, not be dropped
    near = ideal_logits(torch.full_like(depth, 0.6), BINS)
    far = ideal_logits(depth, BINS)
    assert ordinal_loss(near, depth, BINS) > 10 * ordinal_loss(far, depth, BINS)


def test_attention_target_rows_sum_to_one_and_ignore_invalid_pixels():
    depth = scene(b=1, h=16, w=16)
    depth[:, :, 8:, 8:] = 0.0  # a whole invalid quadrant
    target, valid = attention_target(depth, (4, 4))
    assert target.shape == (1, 16, 16)
    rows = target.sum(-1)[0]
    assert torch.allclose(rows[valid[0]], torch.ones(int(valid.sum())))
    assert (rows[~valid[0]] == 0).all()
    assert (target[0][:, ~valid[0]] == 0).all()  # invalid columns get no weight
    # What the invalid pixels hold (0, NaN, inf) does not matter.
    other = depth.clone()
    other[:, :, 8:, 8:] = float("nan")
    assert torch.equal(attention_target(other, (4, 4))[0], target)
    # Closer depths attract more attention: row of a near cell prefers near cells.
    near_row = target[0, 0]
    assert near_row[1] > near_row[12 - 4]


def test_attention_loss_is_minimal_at_the_target_and_grows_with_the_error():
    depth = scene(b=2, h=32, w=32)
    target, _ = attention_target(depth, (4, 4))
    uniform = torch.full_like(target, 1 / 16)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    losses = [
        attention_loss(torch.softmax(torch.log(target.clamp_min(1e-12)) + a * noise, -1), depth, (4, 4))
        for a in (0.0, 0.5, 2.0)
    ]
    assert losses[0] < 1e-6
    assert losses[0] < losses[1] < losses[2]
    assert attention_loss(uniform, depth, (4, 4)) > losses[0]


def test_batch_loss_gives_harder_samples_larger_weights():
    depth = scene(b=3)
    pred = depth.nan_to_num(0.0).clone()
    pred[1] += 0.2
    pred[2] += 1.0
    weights = batch_weights(per_image_l1(pred, depth))
    assert weights[0] < weights[1] < weights[2]
    assert weights.mean().item() == pytest.approx(1.0)
    assert batch_loss(depth.nan_to_num(0.0), depth).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    "loss",
    [
        lambda p, d: batch_loss(p, d),
        lambda p, d: gradient_loss(p, d),
        lambda p, d: ssim_loss(p, d, data_range=10.0),
    ],
)
def test_msfnet_losses_are_minimal_for_a_perfect_prediction_and_grow_with_the_error(loss):
    depth = scene()
    perfect = depth.nan_to_num(0.0)
    noise = torch.randn(depth.shape, generator=torch.Generator().manual_seed(0))
    values = [loss(perfect + a * noise, depth).item() for a in (0.0, 0.05, 0.3, 1.0)]
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert values == sorted(values)
    assert values[1] > 0


def test_ssim_of_identical_maps_is_one_and_of_unrelated_maps_is_low():
    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ssim_map(x, x, 1.0), torch.ones(1, 1, 22, 22), atol=1e-5)
    assert ssim_map(x, y, 1.0).mean() < 0.2


def test_ssim_map_is_a_valid_convolution_matching_a_direct_gaussian_window_sum():
    """DenseDepth's SSIM (tf.image.ssim): 11x11 Gaussian σ 1.5, no padding; map[i, j] is centred at (i+5, j+5)."""
    x = torch.rand(1, 1, 20, 24, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y = (x + 0.3 * torch.rand(1, 1, 20, 24, generator=torch.Generator().manual_seed(3), dtype=torch.float64)) * 2
    result = ssim_map(x, y, data_range=3.0)
    assert result.shape == (1, 1, 10, 14)
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    i, j = 3, 7  # window rows 3..13, cols 7..17
    a, b = x[0, 0, i : i + 11, j : j + 11].numpy(), y[0, 0, i : i + 11, j : j + 11].numpy()
    mu_a, mu_b = (window * a).sum(), (window * b).sum()
    var_a, var_b = (window * a * a).sum() - mu_a**2, (window * b * b).sum() - mu_b**2
    cov = (window * a * b).sum() - mu_a * mu_b
    c1, c2 = (0.01 * 3.0) ** 2, (0.03 * 3.0) ** 2
    expected = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    assert result[0, 0, i, j].item() == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_map(x[..., :10, :], y[..., :10, :], 1.0)


def test_losses_ignore_what_invalid_pixels_hold():
    depth = scene()
    pred = depth.nan_to_num(0.0) + 0.1
    pred2 = pred.clone()
    invalid = ~(torch.isfinite(depth) & (depth > 0))
    pred2[invalid] = 99.0  # whatever the network says where there is no ground truth
    for loss in (batch_loss, gradient_loss):
        assert loss(pred, depth).item() == pytest.approx(loss(pred2, depth).item())


def acan_outputs(b, h, w, k, requires_grad=True):
    logits = torch.randn(b, 2 * k, h, w, requires_grad=requires_grad)
    n = (h // 8) * (w // 8)
    attn_logits = torch.randn(b, n, n, requires_grad=requires_grad)
    return {"logits": logits, "attention": torch.softmax(attn_logits, -1)}, (logits, attn_logits)


def msfnet_outputs(b, h, w):
    half = torch.rand(b, 1, h // 2, w // 2, requires_grad=True)
    aux = [torch.rand(b, 1, h // 2, w // 2, requires_grad=True) for _ in range(2)]
    return {"depth_half": half, "aux": aux}, (half, *aux)


@pytest.mark.parametrize("fill", [0.0, float("nan"), float("inf"), -1.0])
def test_losses_are_finite_with_finite_gradients_when_no_pixel_is_valid(fill):
    depth = torch.full((2, 1, 32, 48), fill)
    outputs, leaves = acan_outputs(2, 32, 48, BINS.num_bins)
    terms = acan_loss(outputs, depth, BINS)
    m_outputs, m_leaves = msfnet_outputs(2, 32, 48)
    m_terms = msfnet_loss(m_outputs, depth, max_depth=10.0)
    total = terms["loss"] + m_terms["loss"]
    total.backward()
    assert all(torch.isfinite(t) for t in (*terms.values(), *m_terms.values()))
    assert all(torch.isfinite(leaf.grad).all() for leaf in (*leaves, *m_leaves))


def test_acan_loss_combines_its_terms_with_configurable_weights():
    depth = scene(h=32, w=48)
    outputs, _ = acan_outputs(2, 32, 48, BINS.num_bins, requires_grad=False)
    terms = acan_loss(outputs, depth, BINS, alpha_att=0.3, alpha_ord=2.0)
    assert terms["loss"].item() == pytest.approx(0.3 * terms["attention"].item() + 2.0 * terms["ordinal"].item())
    with pytest.raises(ValueError, match="grid"):
        acan_loss(outputs, depth, BINS, stride=4)
