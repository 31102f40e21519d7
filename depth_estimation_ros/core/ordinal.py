"""Ordinal depth: log-spaced bins, ordinal probabilities, hard/soft decoding and confidence.

ACAN (Chen et al.) casts depth estimation as ordinal regression over ``K`` log-spaced bins
(paper eq. 8–9) and decodes with hard or soft inference (eq. 12–13).

The paper's eq. 8 (labels, with ``K``) and eq. 9 (thresholds, with ``K - 1``) do not line up,
and the reference code rounds labels yet decodes at bin midpoints (a half-bin bias). Here one
definition serves encoding and decoding:

* ``K + 1`` edges ``e_i = exp(ln d_min + i·Δ)``, ``Δ = (ln d_max − ln d_min) / K``, so bin ``l``
  is ``[e_l, e_{l+1})`` and ``l* = ⌊(ln d − ln d_min) / Δ⌋`` is eq. 8 exactly.
* The decoded value of bin ``l`` is its midpoint ``c_l = (e_l + e_{l+1}) / 2`` (the form of
  eq. 12 with ``t ≡ e``). Every depth decodes to within half a bin, and the error has zero mean
  over a bin. Because the edges are log-uniform, ``c_l = d_min·(1 + e^Δ)/2 · e^{lΔ}``: decoding
  is element-wise arithmetic, with no gather, which exports cleanly to ONNX/TensorRT.
* Valid depths below ``d_min`` or above ``d_max`` fall in the end bins (they stay in the loss).
* ``P_k = P(l > k)`` for ``k = 0 … K−1``; ``P_{K−1}`` is always trained towards 0 because
  ``l ≤ K − 1``. It is kept so the classifier has the paper's 2K channels.

All methods take and return ``torch.Tensor``; ``encode`` also accepts numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


class OrdinalBins:
    """Log-spaced ordinal bins between ``d_min`` and ``d_max`` metres (ACAN eq. 8–9).

    Args:
        d_min: nearest depth in metres (> 0).
        d_max: farthest depth in metres (> ``d_min``).
        num_bins: number of bins ``K`` (≥ 2); the classifier has ``2K`` channels.
    """

    def __init__(self, d_min: float, d_max: float, num_bins: int):
        d_min, d_max = float(d_min), float(d_max)
        if not (math.isfinite(d_min) and d_min > 0):
            raise ValueError(f"d_min must be a finite depth > 0 m, got {d_min!r}")
        if not (math.isfinite(d_max) and d_max > d_min):
            raise ValueError(f"d_max must be finite and greater than d_min={d_min}, got {d_max!r}")
        if isinstance(num_bins, bool) or int(num_bins) != num_bins or num_bins < 2:
            raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}")
        self.d_min, self.d_max, self.num_bins = d_min, d_max, int(num_bins)
        self.log_min = math.log(d_min)
        self.step = (math.log(d_max) - self.log_min) / self.num_bins  # Δ, width of a bin in ln(m)
        # c_l = centre_scale · exp(l·Δ)
        self.centre_scale = d_min * (1.0 + math.exp(self.step)) / 2.0

    def __repr__(self) -> str:
        return f"OrdinalBins(d_min={self.d_min}, d_max={self.d_max}, num_bins={self.num_bins})"

    @property
    def edges(self) -> torch.Tensor:
        """The ``K + 1`` bin edges in metres, ``e_0 = d_min`` … ``e_K = d_max``."""
        i = torch.arange(self.num_bins + 1, dtype=torch.float64)
        return torch.exp(self.log_min + i * self.step)

    @property
    def centres(self) -> torch.Tensor:
        """The decoded depth of each bin, ``c_l = (e_l + e_{l+1}) / 2``."""
        e = self.edges
        return (e[:-1] + e[1:]) / 2

    def encode(self, depth: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Ordinal labels (int64, same shape) of metric depth; −1 where depth is invalid.

        Invalid means 0, negative, NaN or ±inf. Valid depths outside ``[d_min, d_max]`` are
        clamped into the end bins.
        """
        depth = torch.as_tensor(depth)
        if not depth.is_floating_point():
            depth = depth.double()
        valid = torch.isfinite(depth) & (depth > 0)
        safe = torch.where(valid, depth, torch.ones_like(depth))
        label = torch.floor((torch.log(safe.double()) - self.log_min) / self.step)
        label = label.clamp(0, self.num_bins - 1).long()
        return torch.where(valid, label, torch.full_like(label, -1))

    def ideal_probabilities(self, labels: torch.Tensor) -> torch.Tensor:
        """Perfect ordinal probabilities for labels (B, H, W): ``P_k = [l > k]``, shape (B, K, H, W).

        Invalid labels (−1) give all zeros.
        """
        k = torch.arange(self.num_bins, device=labels.device).view(1, -1, 1, 1)
        return (labels.unsqueeze(1) > k).float()

    @staticmethod
    def pair_logits(logits: torch.Tensor) -> torch.Tensor:
        """Ordinal log-odds ``z_k = y_{2k+1} − y_{2k}`` from 2K-channel classifier logits."""
        if logits.dim() != 4 or logits.shape[1] % 2:
            raise ValueError(f"expected logits of shape (B, 2K, H, W), got {tuple(logits.shape)}")
        return logits[:, 1::2] - logits[:, 0::2]

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``P_k = e^{y_{2k+1}} / (e^{y_{2k}} + e^{y_{2k+1}}) = P(l > k)``, shape (B, K, H, W)."""
        if logits.shape[1] != 2 * self.num_bins:
            raise ValueError(
                f"expected {2 * self.num_bins} logit channels for {self.num_bins} bins, got {logits.shape[1]}"
            )
        return torch.sigmoid(self.pair_logits(logits))

    def check_probabilities(self, probs: torch.Tensor) -> None:
        """Ordinal probabilities must be (B, K, H, W): K+1 or 2K channels are someone else's tensor."""
        if probs.dim() != 4 or probs.shape[1] != self.num_bins:
            raise ValueError(
                f"expected ordinal probabilities of shape (B, {self.num_bins}, H, W) for {self.num_bins} bins, "
                f"got {tuple(probs.shape)}"
            )

    def depth_of_label(self, label: torch.Tensor) -> torch.Tensor:
        """Bin centre ``c_l`` in metres for (possibly fractional) label positions."""
        return self.centre_scale * torch.exp(label * self.step)

    def decode_hard(self, probs: torch.Tensor) -> torch.Tensor:
        """Hard inference (eq. 12): ``l = Σ_k [P_k ≥ 0.5]``, depth ``c_l``; shape (B, 1, H, W)."""
        self.check_probabilities(probs)
        label = (probs >= 0.5).to(probs.dtype).sum(dim=1, keepdim=True)
        return self.depth_of_label(label.clamp(max=self.num_bins - 1))

    def decode_soft(self, probs: torch.Tensor) -> torch.Tensor:
        """Soft inference (eq. 13): linear interpolation between neighbouring bin centres.

        ``s = Σ_k P_k``, ``l = ⌊s⌋``, ``D = s − l``, ``d = (1 − D)·c_l + D·c_{l+1}``. ``s`` is
        clamped to ``[0, K − 1]`` so ``c_{l+1}`` always exists; at ``s = K − 1`` it gives
        ``c_{K−1}``, so the curve is continuous at the far end.
        """
        self.check_probabilities(probs)
        s = probs.sum(dim=1, keepdim=True).clamp(0, self.num_bins - 1)
        low = torch.floor(s).clamp(max=self.num_bins - 2)
        frac = s - low
        return (1 - frac) * self.depth_of_label(low) + frac * self.depth_of_label(low + 1)

    def confidence(self, probs: torch.Tensor) -> torch.Tensor:
        """Probability that the depth lies within one bin of the estimate, in [0, 1].

        The ordinal probabilities imply a label distribution ``q_l = P_{l−1} − P_l`` (with
        ``P_{−1} = 1``; the left-over ``P_{K−1}`` is a last "beyond" entry). Confidence is the
        mass of ``q`` within one bin of the estimated position ``s = Σ_k P_k``. A sharp fall of
        P from 1 to 0 puts all mass next to ``s`` (confidence 1); a slow or split fall spreads
        it (confidence → 0). Non-monotone P gives negative differences, which are clipped, and
        the distribution is renormalised. Shape (B, 1, H, W).
        """
        self.check_probabilities(probs)
        ones = torch.ones_like(probs[:, :1])
        mass = F.relu(torch.cat([ones, probs], 1) - torch.cat([probs, torch.zeros_like(ones)], 1))
        position = probs.sum(dim=1, keepdim=True)
        index = torch.arange(self.num_bins + 1, device=probs.device, dtype=probs.dtype).view(1, -1, 1, 1)
        near = ((index - position).abs() <= 1).to(probs.dtype)
        # mass sums to >= 1 (telescoping sum of the positive parts), so the division is safe.
        return ((mass * near).sum(1, keepdim=True) / mass.sum(1, keepdim=True)).clamp(0, 1)
