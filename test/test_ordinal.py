import math

import numpy as np
import pytest
import torch

from depth_estimation_ros.core.ordinal import OrdinalBins


@pytest.fixture
def bins():
    return OrdinalBins(0.72, 10.0, 80)


def as_map(values):
    """(N,) values → (1, 1, 1, N) so they pass through the (B, K, H, W) API."""
    return torch.as_tensor(values, dtype=torch.float64).view(1, 1, 1, -1)


@pytest.mark.parametrize(
    ("d_min", "d_max", "k"),
    [(0.0, 10, 80), (-1, 10, 80), (5, 5, 80), (10, 1, 80), (0.5, 10, 1), (0.5, 10, 2.5), (math.nan, 10, 80)],
)
def test_invalid_bin_parameters_are_rejected(d_min, d_max, k):
    with pytest.raises(ValueError, match=r"d_min|d_max|num_bins"):
        OrdinalBins(d_min, d_max, k)


def test_encode_marks_invalid_depth_and_clamps_valid_depth_into_end_bins(bins):
    depth = np.array([0.0, -1.0, np.nan, np.inf, -np.inf, 0.1, 0.72, 9.999, 10.0, 500.0])
    labels = bins.encode(depth)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [-1, -1, -1, -1, -1, 0, 0, 79, 79, 79]


def test_edges_are_log_uniform_and_labels_follow_eq_8(bins):
    edges = bins.edges
    assert edges[0] == pytest.approx(0.72)
    assert edges[-1] == pytest.approx(10.0)
    ratios = edges[1:] / edges[:-1]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios))
    inside = (edges[:-1] + edges[1:]) / 2
    assert bins.encode(inside).tolist() == list(range(80))


def test_hard_round_trip_is_within_half_a_bin_and_unbiased(bins):
    # A dense sweep of depths in linear space across the whole range.
    depth = torch.linspace(0.72, 10.0, 200_001, dtype=torch.float64)[:-1]
    labels = bins.encode(depth)
    decoded = bins.decode_hard(bins.ideal_probabilities(labels.view(1, 1, -1)).double()).flatten()
    width = (bins.edges[1:] - bins.edges[:-1])[labels]
    error = (decoded - depth) / width  # in bins
    assert error.abs().max() <= 0.5 + 1e-9
    # The reference code's half-bin offset would give a mean near ±0.5 here.
    assert abs(error.mean()) < 0.01


def test_soft_and_hard_decoding_agree_on_ideal_probabilities(bins):
    labels = torch.arange(80).view(1, 1, -1)
    probs = bins.ideal_probabilities(labels).double()
    assert torch.allclose(bins.decode_soft(probs), bins.decode_hard(probs))
    assert torch.allclose(bins.decode_hard(probs).flatten(), bins.centres)


def test_soft_decoding_is_continuous_where_hard_decoding_steps(bins):
    # P_k = clamp(s − k, 0, 1) has Σ_k P_k = s: sweep s finely over [0, K − 1].
    s = torch.linspace(0, 79, 7901, dtype=torch.float64)
    probs = (s.view(1, 1, 1, -1) - torch.arange(80, dtype=torch.float64).view(1, -1, 1, 1)).clamp(0, 1)
    soft = bins.decode_soft(probs).flatten()
    hard = bins.decode_hard(probs).flatten()
    soft_steps, hard_steps = soft.diff(), hard.diff()
    assert (soft_steps > 0).all()  # strictly increasing
    largest_bin_step = (bins.centres[-1] - bins.centres[-2]).item()
    assert soft_steps.max() < 0.02 * largest_bin_step  # no jumps at 0.01-label resolution
    assert hard_steps.max() > 0.9 * (bins.centres[1] - bins.centres[0]).item()  # staircase
    assert soft[0] == pytest.approx(bins.centres[0].item())
    assert soft[-1] == pytest.approx(bins.centres[-1].item())


def test_probabilities_come_from_channel_pairs(bins):
    torch.manual_seed(0)
    logits = torch.randn(2, 160, 3, 4)
    probs = bins.probabilities(logits)
    assert probs.shape == (2, 80, 3, 4)
    k = 7
    pair = torch.softmax(logits[:, 2 * k : 2 * k + 2], dim=1)[:, 1]
    assert torch.allclose(probs[:, k], pair, atol=1e-6)
    with pytest.raises(ValueError, match="160 logit channels"):
        bins.probabilities(torch.randn(1, 158, 2, 2))


def test_confidence_is_high_for_a_sharp_fall_and_low_for_a_vague_one(bins):
    sharp = bins.ideal_probabilities(torch.full((1, 1, 1), 30)).double()
    vague = torch.full((1, 80, 1, 1), 0.5, dtype=torch.float64)
    k = torch.arange(80, dtype=torch.float64).view(1, -1, 1, 1)
    gradual = torch.sigmoid((30 - k) / 4)  # falls over ~10 bins
    c_sharp, c_gradual, c_vague = (bins.confidence(p).item() for p in (sharp, gradual, vague))
    assert c_sharp == pytest.approx(1.0)
    assert 0.05 < c_gradual < 0.5
    assert c_vague < 0.05
    noisy = torch.rand(4, 80, 5, 5, generator=torch.Generator().manual_seed(1))  # non-monotone
    c = bins.confidence(noisy)
    assert c.shape == (4, 1, 5, 5)
    assert (c >= 0).all()
    assert (c <= 1).all()


@pytest.mark.parametrize("channels", [15, 17, 32])
def test_decoding_rejects_a_channel_count_other_than_k(channels):
    bins = OrdinalBins(0.5, 10.0, 16)
    probs = torch.rand(1, channels, 4, 4)
    for method in (bins.decode_hard, bins.decode_soft, bins.confidence):
        with pytest.raises(ValueError, match=rf"\(B, 16, H, W\) for 16 bins, got \(1, {channels}, 4, 4\)"):
            method(probs)
