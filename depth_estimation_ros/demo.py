"""``depth-estimation demo``: run both networks on a generated image and say what happened.

No download, no dataset: the models are randomly initialised (their depth is therefore not
meaningful yet), and the picture is a generated gradient-and-checkerboard scene.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .models import build_model
from .models.complexity import count_parameters

DEMO_MODELS = (
    ("acan", {"backbone": "resnet50"}),
    ("msfnet", {"backbone": "legacy_senet154"}),
)


def generated_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An RGB uint8 test picture: a vertical colour gradient with a checkerboard floor and noise."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([0.4 + 0.3 * v / height, 0.6 + 0.2 * v / height, np.full_like(v, 0.9)], -1)
    floor = v > height / 2
    rows = (height / 2) / np.maximum(v - height / 2, 1)  # perspective: squares shrink towards the horizon
    board = ((np.floor(rows * 4) + np.floor((u - width / 2) * rows / 40)) % 2).astype(np.float32)
    image = np.where(floor[..., None], (0.3 + 0.5 * board)[..., None], sky)
    image = image + rng.normal(0, 0.02, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def run(height: int = 256, width: int = 352, threads: int | None = None) -> list[dict]:
    if threads:
        torch.set_num_threads(threads)
    image = generated_image(height, width)
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    print(f"generated a {width}x{height} RGB image; networks are randomly initialised (no download)")
    results = []
    for name, kwargs in DEMO_MODELS:
        start = time.perf_counter()
        model = build_model(name, **kwargs).eval()
        built = time.perf_counter() - start
        with torch.inference_mode():
            start = time.perf_counter()
            out = model(batch)
            elapsed = time.perf_counter() - start
        depth = out["depth"]
        row = {
            "model": name,
            **kwargs,
            "parameters_M": count_parameters(model) / 1e6,
            "depth_shape": list(depth.shape),
            "depth_min_m": float(depth.min()),
            "depth_max_m": float(depth.max()),
            "confidence": "confidence" in out,
            "build_s": built,
            "forward_s": elapsed,
        }
        results.append(row)
        conf = (
            f", confidence in [{float(out['confidence'].min()):.2f}, {float(out['confidence'].max()):.2f}]"
            if "confidence" in out
            else ", no confidence output"
        )
        print(
            f"{name:7s} ({kwargs['backbone']}, {row['parameters_M']:.1f} M parameters): depth {tuple(depth.shape)} "
            f"in [{row['depth_min_m']:.2f}, {row['depth_max_m']:.2f}] m{conf}; forward {elapsed:.2f} s on "
            f"{torch.get_num_threads()} CPU threads"
        )
    return results
