"""Random-weight transformers depth folders of every supported family, for tests and benchmarks.

``save_layout(name, folder)`` writes what ``save_pretrained`` writes for a real model (config,
weights, preprocessor config with the family's published preprocessing), with random weights and
no download: ``tiny`` layouts (under 1 MB, milliseconds per frame) for tests, and the published
widths of Depth Anything V2 Small and Base (``small``, ``base``) for speed measurements.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
LAYOUTS = ("depth_anything_metric", "depth_anything_relative", "prompt_depth_anything", "dpt", "glpn", "zoedepth",
           "depth_pro")  # fmt: skip
# ViT-S/14 and ViT-B/14 (DINOv2) with the neck widths Depth Anything V2 publishes for them.
WIDTHS = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2, "neck": [16, 32, 32, 32],
             "fusion": 16, "head": 16},
    "small": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "neck": [48, 96, 192, 384],
              "fusion": 64, "head": 32},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "neck": [96, 192, 384, 768],
             "fusion": 128, "head": 32},
}  # fmt: skip


def _dinov2(width: dict, **extra):
    from transformers import Dinov2Config

    return Dinov2Config(
        hidden_size=width["hidden_size"],
        num_hidden_layers=width["num_hidden_layers"],
        num_attention_heads=width["num_attention_heads"],
        intermediate_size=4 * width["hidden_size"],
        patch_size=14,
        image_size=518,
        **extra,
    )


def _configs(name: str, size: str):
    """(model config, image processor) of layout ``name`` at width ``size``."""
    import transformers as tf

    width = WIDTHS[size]
    n = width["num_hidden_layers"]
    indices = [n // 4, n // 2, 3 * n // 4, n]  # four evenly spaced blocks, as Depth Anything taps them
    stages = {"out_features": [f"stage{i}" for i in indices], "reshape_hidden_states": False}
    dpt_like = {
        "reassemble_hidden_size": width["hidden_size"],
        "neck_hidden_sizes": width["neck"],
        "fusion_hidden_size": width["fusion"],
        "head_hidden_size": width["head"],
    }
    da_processor = tf.DPTImageProcessor(
        size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3, **IMAGENET
    )
    if name in ("depth_anything_metric", "depth_anything_relative"):
        metric = {"depth_estimation_type": "metric", "max_depth": 20} if name.endswith("metric") else {}
        return tf.DepthAnythingConfig(backbone_config=_dinov2(width, **stages), **dpt_like, **metric), da_processor
    if name == "prompt_depth_anything":
        return tf.PromptDepthAnythingConfig(backbone_config=_dinov2(width, **stages), **dpt_like), da_processor
    if size != "tiny":
        raise ValueError(f"layout {name!r} has only a tiny width here")
    if name == "dpt":  # DPT-Large / MiDaS 3 preprocessing: a square 384 input, mean/std 0.5
        config = tf.DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                              image_size=384, patch_size=16, neck_hidden_sizes=[16, 16, 32, 32], fusion_hidden_size=16,
                              backbone_out_indices=[0, 1, 2, 3])  # fmt: skip
        return config, tf.DPTImageProcessor(size={"height": 384, "width": 384}, resample=3)
    if name == "glpn":
        config = tf.GLPNConfig(hidden_sizes=[8, 16, 32, 64], num_attention_heads=[1, 1, 2, 2], depths=[1, 1, 1, 1],
                               decoder_hidden_size=16, max_depth=10)  # fmt: skip
        return config, tf.GLPNImageProcessor(size_divisor=32)
    if name == "zoedepth":
        beit = tf.BeitConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                             image_size=384, **stages)  # fmt: skip
        config = tf.ZoeDepthConfig(backbone_config=beit, neck_hidden_sizes=[16, 16, 32, 32], fusion_hidden_size=16,
                                   bottleneck_features=16, num_relative_features=8, bin_embedding_dim=16,
                                   num_attractors=[4, 2, 1, 1],
                                   bin_configurations=[{"n_bins": 16, "min_depth": 1e-3, "max_depth": 10.0,
                                                        "name": "nyu"}])  # fmt: skip
        processor = tf.ZoeDepthImageProcessor(size={"height": 384, "width": 512}, keep_aspect_ratio=True,
                                              ensure_multiple_of=32)  # fmt: skip
        return config, processor
    if name == "depth_pro":
        vit = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
               "patch_size": 16, "image_size": 64}  # fmt: skip
        config = tf.DepthProConfig(fusion_hidden_size=16, patch_size=64, intermediate_hook_ids=[1, 0],
                                   intermediate_feature_dims=[8, 8], scaled_images_ratios=[0.5, 1.0],
                                   scaled_images_overlap_ratios=[0.0, 0.25], scaled_images_feature_dims=[16, 16],
                                   use_fov_model=False, fov_model_config=tf.Dinov2Config(**vit),
                                   image_model_config=tf.Dinov2Config(**vit),
                                   patch_model_config=tf.Dinov2Config(**vit))  # fmt: skip
        return config, tf.DepthProImageProcessor(size={"height": 128, "width": 128})
    raise ValueError(f"unknown layout {name!r}; expected one of {LAYOUTS}")


def save_layout(name: str, folder: str | os.PathLike, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight model folder of layout ``name`` (see ``LAYOUTS``) at width ``size``.

    The last convolution's bias is set so that random weights give positive, varied outputs (a
    ReLU head of random weights is mostly zero), which keeps the folder useful in tests.
    """
    from transformers import AutoModelForDepthEstimation

    config, processor = _configs(name, size)
    torch.manual_seed(seed)
    model = AutoModelForDepthEstimation.from_config(config).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None]
    with torch.no_grad():
        convs[-1].bias.fill_(0.5)
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
