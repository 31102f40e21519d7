"""Training losses of ACAN (eq. 5–7, 10–11) and MSFNet (eq. 3–7).

Every loss is masked to valid ground truth (finite and > 0) and stays finite, with finite
(zero) gradients, when a batch has no valid pixel: means are sums over valid pixels divided by
``max(count, 1)``, and invalid values are replaced before any log or division.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from depth_estimation_ros.core.ordinal import OrdinalBins

# The loss registry beside the model registry: family name → (loss, {loss argument: model attribute}).
# The attributes are what the loss takes from the network itself (its bins, its depth range).
_LOSSES: dict[str, tuple[Callable[..., dict[str, torch.Tensor]], dict[str, str]]] = {}


def register_loss(family: str, **from_model: str):
    """Function decorator: the training loss of the model family ``family``; ``from_model`` maps
    the loss's arguments to the model attributes that fill them."""

    def register(loss):
        if family in _LOSSES:
            raise ValueError(f"model family {family!r} has two losses ({_LOSSES[family][0].__name__}, {loss.__name__})")
        _LOSSES[family] = (loss, from_model)
        return loss

    return register


def loss_of(family: str) -> tuple[Callable[..., dict[str, torch.Tensor]], dict[str, str]]:
    """The loss registered for ``family`` and the arguments it takes from the model; a family
    without one is an error that names it (it must never train with another family's loss)."""
    try:
        return _LOSSES[family]
    except KeyError:
        raise ValueError(
            f"model family {family!r} has no training loss: register one in training/losses.py "
            f"(families with a loss: {sorted(_LOSSES)})"
        ) from None


def bind_loss(model, options: dict) -> Callable[[dict[str, torch.Tensor], torch.Tensor], dict[str, torch.Tensor]]:
    """``(outputs, depth) -> terms`` for ``model`` (built by ``build_model``) with the config's
    loss ``options``."""
    loss, from_model = loss_of(model.config["name"])
    bound = {argument: getattr(model, attribute) for argument, attribute in from_model.items()}
    return lambda outputs, depth: loss(outputs, depth, **bound, **options)


def valid_mask(depth: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(depth) & (depth > 0)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def resize_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of (B, 1, H, W) ground truth: never blends valid and invalid pixels."""
    return depth if tuple(depth.shape[-2:]) == tuple(size) else F.interpolate(depth, size=size, mode="nearest")


# --------------------------------------------------------------------------- ACAN


def ordinal_loss(logits: torch.Tensor, depth: torch.Tensor, bins: OrdinalBins) -> torch.Tensor:
    """Ordinal loss (eq. 10–11): ``−Σ_{k<l*} ln P_k − Σ_{k≥l*} ln(1 − P_k)``, mean over valid pixels.

    ``logits`` (B, 2K, H, W) from the classifier; ``depth`` (B, 1, H, W) metres, 0/NaN invalid.
    Log-probabilities come from ``logsigmoid`` of the pair log-odds, which is exact and stable.
    """
    labels = bins.encode(resize_depth(depth, logits.shape[-2:])).squeeze(1)  # (B, H, W), −1 invalid
    z = OrdinalBins.pair_logits(logits)  # P_k = σ(z_k)
    above = bins.ideal_probabilities(labels).to(z.dtype)  # [l* > k]
    per_pixel = -(above * F.logsigmoid(z) + (1 - above) * F.logsigmoid(-z)).sum(1)
    return masked_mean(per_pixel, labels >= 0)


def pool_log_depth(depth: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean log depth of the valid pixels in each cell of a ``size`` grid, and which cells have any.

    Works for dense (NYU) and sparse (KITTI LiDAR) ground truth alike: a cell is valid when at
    least one of its pixels is.
    """
    valid = valid_mask(depth)
    log_depth = torch.where(valid, torch.log(torch.where(valid, depth, torch.ones_like(depth))), 0.0)
    total = F.adaptive_avg_pool2d(log_depth * valid, size)
    count = F.adaptive_avg_pool2d(valid.to(depth.dtype), size)
    return total / count.clamp(min=1e-12), count > 0


def attention_target(depth: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Target attention (eq. 6): ``w*_ij = softmax_j(−|ln d_i − ln d_j|)`` over valid j.

    Returns the target (B, N, N), rows of valid cells summing to 1 and zero columns for invalid
    cells, and the valid-row mask (B, N).
    """
    log_depth, valid = pool_log_depth(depth, size)
    log_depth, valid = log_depth.flatten(1), valid.flatten(1)
    scores = -(log_depth[:, :, None] - log_depth[:, None, :]).abs()
    scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
    # A row with no valid column (empty image) would be all −inf: give it zeros instead of NaN.
    target = torch.softmax(scores.masked_fill(~valid[:, :, None], 0.0), dim=-1)
    target = target * valid[:, None, :] * valid[:, :, None]
    return target, valid


def attention_loss(attention: torch.Tensor, depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Attention loss (eq. 7): ``KL(W* ‖ W)`` per valid row, averaged over valid rows.

    ``attention`` is the model's W (B, N, N) at the feature grid ``size`` (h, w), N = h·w.
    Invalid pixels contribute neither rows nor columns (their target entries are 0).
    """
    target, valid = attention_target(depth.float(), size)
    log_ratio = torch.log(target.clamp(min=1e-12)) - torch.log(attention.float().clamp(min=1e-12))
    per_row = (target * log_ratio).sum(-1)
    return masked_mean(per_row, valid)


@register_loss("acan", bins="bins")
def acan_loss(
    outputs: dict[str, torch.Tensor],
    depth: torch.Tensor,
    bins: OrdinalBins,
    *,
    alpha_att: float = 0.1,
    alpha_ord: float = 1.0,
    stride: int = 8,
) -> dict[str, torch.Tensor]:
    """``L = α_att·L_att + α_ord·L_ord`` (eq. 5), with the terms.

    The paper's "α_att and α_ord = 0.1" is read as α_att = 0.1, α_ord = 1; both are arguments.
    The attention map lives on the encoder grid, ``stride`` (8) times coarser than the logits.
    """
    h, w = outputs["logits"].shape[-2:]
    size = (h // stride, w // stride)
    if size[0] * size[1] != outputs["attention"].shape[-1]:
        raise ValueError(
            f"attention of {outputs['attention'].shape[-1]} positions is not the {size} grid "
            f"of {h}x{w} logits at stride {stride}"
        )
    ord_term = ordinal_loss(outputs["logits"], depth, bins)
    att_term = attention_loss(outputs["attention"], depth, size)
    return {"loss": alpha_att * att_term + alpha_ord * ord_term, "ordinal": ord_term, "attention": att_term}


# --------------------------------------------------------------------------- MSFNet


def batch_loss(pred: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Batch-loss (eq. 4), read as weighting *samples* of the batch.

    Taken literally, eq. 4's weights ``w_i = e^{|y_i − ŷ_i|} / Σ_j e^{|y_j − ŷ_j|}`` sum to one over
    all pixels and their term vanishes beside the plain L1. The abstract says the loss favours the
    harder samples in a batch, so here ``w_b = B · softmax_b(L1_b)`` over the per-image mean L1
    errors, detached (a weighting, not a path for gradients), averaging 1 over the batch:
    ``L = mean_b(w_b · L1_b) + mean_b(L1_b)``.
    """
    per_image = per_image_l1(pred, depth)
    weights = batch_weights(per_image)
    return (weights * per_image).mean() + per_image.mean()


def per_image_l1(pred: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    depth = resize_depth(depth, pred.shape[-2:])
    mask = valid_mask(depth).to(pred.dtype)
    error = (pred - torch.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0)).abs() * mask
    return error.flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1)


def batch_weights(per_image: torch.Tensor) -> torch.Tensor:
    """Sample weights of the batch-loss: larger for larger errors, mean 1, no gradient."""
    return per_image.numel() * torch.softmax(per_image.detach(), dim=0)


def gradient_loss(pred: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Gradient loss (eq. 5): mean of |∂x(y − ŷ)| + |∂y(y − ŷ)| where both pixels are valid."""
    depth = resize_depth(depth, pred.shape[-2:])
    valid = valid_mask(depth)
    diff = pred - torch.where(valid, depth, torch.zeros_like(depth))
    gx = (diff[..., :, 1:] - diff[..., :, :-1]).abs()
    gy = (diff[..., 1:, :] - diff[..., :-1, :]).abs()
    mx = valid[..., :, 1:] & valid[..., :, :-1]
    my = valid[..., 1:, :] & valid[..., :-1, :]
    return masked_mean(gx, mx) + masked_mean(gy, my)


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Per-pixel SSIM of single-channel maps as DenseDepth computes it (``tf.image.ssim``).

    11×11 Gaussian window (σ 1.5), k1 0.01, k2 0.03, *valid* convolution: the map covers only
    the window centres whose window lies inside the image, (H − window + 1) × (W − window + 1).
    """
    if min(x.shape[-2:]) < window:
        raise ValueError(f"SSIM needs maps of at least {window}x{window} pixels, got {tuple(x.shape[-2:])}")
    w = _gaussian_window(window, sigma, x.dtype, x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim_loss(pred: torch.Tensor, depth: torch.Tensor, data_range: float, window: int = 11) -> torch.Tensor:
    """SSIM loss (eq. 6): ``(1 − SSIM) / 2`` clipped to [0, 1], averaged over valid window centres.

    As in DenseDepth the SSIM map is a valid convolution, so a border of ``window // 2`` pixels
    is never a window centre. Invalid ground-truth pixels take the (detached) prediction's value,
    so windows that overlap them compare only what is known; ``data_range`` is the depth range in
    metres. With dense ground truth this equals DenseDepth's loss (its per-pixel terms are in
    [0, 1], so clipping the mean or each pixel is the same).
    """
    depth = resize_depth(depth, pred.shape[-2:])
    valid = valid_mask(depth)
    filled = torch.where(valid, depth, pred.detach())
    loss = ((1 - ssim_map(pred, filled, data_range, window)) / 2).clamp(0, 1)
    r = window // 2
    return masked_mean(loss, valid[..., r:-r, r:-r])


def auxiliary_loss(aux: list[torch.Tensor], depth: torch.Tensor) -> torch.Tensor:
    """Auxiliary loss (eq. 7): L1 of each auxiliary output against ground truth, summed."""
    return sum(per_image_l1(a, depth).mean() for a in aux)


@register_loss("msfnet", max_depth="max_depth")
def msfnet_loss(
    outputs: dict[str, torch.Tensor],
    depth: torch.Tensor,
    *,
    max_depth: float,
    batch_weight: float = 0.1,
    aux_weight: float = 0.1,
) -> dict[str, torch.Tensor]:
    """``L = λ·L_batch + L_grad + L_SSIM + μ·L_aux`` (eq. 3), at the network's half resolution.

    λ = μ = 0.1 for NYU and 1 for KITTI in the paper. Ground truth is resized (nearest) to the
    prediction. Returns the total and its terms.
    """
    pred = outputs["depth_half"]
    terms = {
        "batch": batch_loss(pred, depth),
        "gradient": gradient_loss(pred, depth),
        "ssim": ssim_loss(pred, depth, data_range=max_depth),
        "aux": auxiliary_loss(outputs["aux"], depth),
    }
    total = batch_weight * terms["batch"] + terms["gradient"] + terms["ssim"] + aux_weight * terms["aux"]
    return {"loss": total, **terms}
