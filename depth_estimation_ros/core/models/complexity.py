"""Parameter and multiply–accumulate counts of a model at a given input size."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: torch.nn.Module, height: int, width: int) -> int:
    """MACs of one eval-mode forward pass on a (1, 3, height, width) input.

    PyTorch's flop counter counts convolutions and matrix products (including the N×N
    attention of ACAN) at two FLOPs per multiply–accumulate; element-wise work is not counted.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, height, width, device=device))
    model.train(was_training)
    return counter.get_total_flops() // 2
