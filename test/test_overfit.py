"""A small model must be able to fit one batch: the losses, decoding and gradients work together."""

import torch
from conftest import small_acan, small_msfnet

from training.losses import acan_loss, msfnet_loss


def synthetic_batch(b=2, h=64, w=96):
    """Images whose brightness encodes depth: a floor ramp and a box nearer than its background."""
    g = torch.Generator().manual_seed(0)
    v = torch.linspace(0, 1, h).view(1, 1, h, 1).expand(b, 1, h, w)
    depth = (8 - 6 * v).clone()
    depth[0, :, 10:30, 20:50] = 2.0
    depth[1, :, 30:50, 50:80] = 3.0
    image = (depth / 8).expand(b, 3, h, w) * torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)
    image = (image + 0.02 * torch.randn(image.shape, generator=g)).clamp(0, 1)
    return image, depth


def fit(model, loss_fn, steps):
    image, depth = synthetic_batch()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(model(image), depth)["loss"]
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        error = (model(image)["depth"] - depth).abs().mean().item()
    return losses, error


def test_small_acan_overfits_one_batch():
    model = small_acan(dropout=0.0)
    losses, error = fit(model, lambda out, d: acan_loss(out, d, model.bins), steps=40)
    assert losses[-1] < losses[0] / 4, losses
    assert error < 0.5  # metres, on depths of 2–8 m


def test_small_msfnet_overfits_one_batch():
    model = small_msfnet()
    losses, error = fit(model, lambda out, d: msfnet_loss(out, d, max_depth=10.0), steps=40)
    assert losses[-1] < losses[0] / 4, losses
    assert error < 0.5
