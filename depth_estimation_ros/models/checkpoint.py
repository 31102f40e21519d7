"""Checkpoint files: weights plus everything needed to rebuild the model from the file alone.

A checkpoint is a ``torch.save`` dict of plain types and tensors, so it loads with
``weights_only=True`` (no arbitrary unpickling):

    format: "depth_estimation_ros.checkpoint", format_version: 1,
    model: {"name": ..., **build_model kwargs}, state_dict: {...},
    depth_range: [min, max], input_size: [H, W] or None, normalization: {"mean", "std"},
    size_divisor: int, focal_length: px of the training camera at the network input (or None),
    version: package version, extra: {...}  (training state, metrics…)

A checkpoint without ``focal_length`` (written before it was recorded) loads with none: its
output is used as is, with no focal-length correction (the model card says so).

Files are written atomically (a uniquely named temporary, then rename) with the permissions the
umask allows, so a crash never leaves a half-written checkpoint under the final name.

A checkpoint is untrusted data: loading never downloads (a stored ``pretrained`` is ignored) and
builds the model on the meta device first, so a file whose options describe more (or other)
tensors than it holds is refused before any memory is allocated for them.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..files import staged_file

log = logging.getLogger(__name__)
_WITHOUT_FOCAL: set[str] = set()  # checkpoints already reported as lacking a focal length

FORMAT = "depth_estimation_ros.checkpoint"
FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: str | os.PathLike, overwrite: bool = True) -> None:
    with staged_file(path, overwrite) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(
    model,
    path: str | os.PathLike,
    *,
    input_size: tuple[int, int] | None = None,
    extra: dict | None = None,
    focal_length: float | None = None,
) -> Path:
    """Write ``model`` (built by ``build_model``) with its config to ``path``.

    ``focal_length``: the training camera's focal length in pixels at the network input (default:
    the model's own ``focal_length``, if set)."""
    focal_length = focal_length if focal_length is not None else getattr(model, "focal_length", None)
    if focal_length is not None and not (math.isfinite(focal_length) and focal_length > 0):
        raise ValueError(f"focal_length must be a positive number of pixels, got {focal_length!r}")
    if not getattr(model, "config", None):
        raise ValueError("model has no config: build it with depth_estimation_ros.models.build_model")
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": __version__,
        "model": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "depth_range": [model.min_depth, model.max_depth],
        "input_size": list(input_size) if input_size else None,
        "normalization": model.normalization,
        "size_divisor": model.size_divisor,
        "focal_length": None if focal_length is None else float(focal_length),
        "extra": extra or {},
    }
    atomic_torch_save(state, path)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint dict; errors name the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path} is not a readable checkpoint (truncated, corrupt or not a torch file): {exc}"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a depth_estimation_ros checkpoint (no format={FORMAT!r} entry)")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {state['format_version']}; this version reads up to {FORMAT_VERSION}"
        )
    for key in ("model", "state_dict"):
        if not isinstance(state.get(key), dict):
            raise ValueError(f"{path} lacks the {key!r} entry of a checkpoint")
    return state


def legacy_defaults(name: str | None) -> dict[str, Any]:
    """Build options a stored config may lack because it predates them, at their old behaviour.

    ``build_model`` records every option, so a missing one means the file was written before
    the option existed (e.g. ACAN's ``align_corners`` and ``full_dilation``, whose new defaults
    follow the reference code).
    """
    from .acan import LEGACY_DEFAULTS as ACAN_LEGACY

    return dict({"acan": ACAN_LEGACY}.get(name, {}))


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the model of a checkpoint, load its weights, and return it in eval mode."""
    from . import build_model  # the registry imports this module

    state = load_checkpoint(path)
    config = dict(state["model"])
    name = config.pop("name", None)
    config.pop("pretrained", None)  # the checkpoint holds the weights: never fetch any
    # Options added after a checkpoint was written take the value that reproduces its model.
    config = {**legacy_defaults(name), **config}
    try:
        with torch.device("meta"):  # options only: nothing allocated yet
            skeleton = build_model(name, **config)
    except Exception as exc:
        raise ValueError(f"{path}: cannot rebuild model {name!r} with {config}: {exc}") from exc
    check_shapes(path, name, skeleton.state_dict(), state["state_dict"])
    model = build_model(name, **config)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match model {name!r}: {exc}") from exc
    focal = state.get("focal_length")
    if focal is not None and (isinstance(focal, bool) or not isinstance(focal, int | float) or not focal > 0):
        raise ValueError(f"{path}: focal_length must be a positive number of pixels, got {focal!r}")
    model.focal_length = None if focal is None else float(focal)
    if focal is None and str(path) not in _WITHOUT_FOCAL:
        _WITHOUT_FOCAL.add(str(path))
        log.warning("%s records no training focal length (written before it was recorded): its depth is used as "
                    "is, without focal-length correction", path)  # fmt: skip
    return model.to(map_location).eval()


def check_shapes(path, name: str, expected: dict, stored: dict) -> None:
    """The model's tensors (names and shapes) must be exactly those stored in the file."""
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong = [
        f"{k} {tuple(getattr(stored[k], 'shape', ()))} in the file, {tuple(expected[k].shape)} in the model"
        for k in expected
        if k in stored and (not isinstance(stored[k], torch.Tensor) or stored[k].shape != expected[k].shape)
    ]
    if missing or unexpected or wrong:
        problems = [f"{len(missing)} missing (e.g. {missing[:2]})"] if missing else []
        problems += [f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"] if unexpected else []
        problems += [f"{len(wrong)} of another shape (e.g. {wrong[0]})"] if wrong else []
        raise ValueError(f"{path}: weights do not match model {name!r}: {'; '.join(problems)}")
