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

from depth_estimation_ros import __version__
from depth_estimation_ros.core.errors import MAX_IMAGE_SIDE
from depth_estimation_ros.core.files import staged_file
from depth_estimation_ros.core.models.registry import build_model, list_models, model_class
from depth_estimation_ros.core.validation import (
    check_weights,
    fail,
    input_file,
    integer,
    mapping,
    number,
    numbers,
    shown,
    text,
)

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
        raise ValueError("model has no config: build it with depth_estimation_ros.core.models.build_model")
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
    path = input_file(path, "checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{shown(path)} is not a readable checkpoint (truncated, corrupt or not a torch file): {exc}"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{shown(path)} is not a depth_estimation_ros checkpoint (no format={FORMAT!r} entry)")
    version = integer(state.get("format_version", 0), f"{shown(path)}: format_version", 0)
    if version > FORMAT_VERSION:
        raise ValueError(f"{shown(path)} has checkpoint format {version}; this version reads up to {FORMAT_VERSION}")
    for key in ("model", "state_dict"):
        if not isinstance(state.get(key), dict):
            raise ValueError(f"{shown(path)} lacks the {key!r} entry of a checkpoint")
    check_fields(shown(path), state)
    return state


def check_fields(source: str, state: dict) -> None:
    """Every field a loader uses, type- and range-checked (``FILE: FIELD: expected ...``), and the
    weights finite: a file's values reach torch only once they are known to make sense."""

    def where(key: str) -> str:
        return f"{source}: {key}"

    model = state["model"]
    text(model.get("name"), where("model.name"))
    check_options(source, model)
    for name, tensor in state["state_dict"].items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            fail(where(f"state_dict[{name!r}]"), "a tensor named by a string", type(tensor).__name__)
    if state.get("input_size") is not None:
        size = state["input_size"]
        if not isinstance(size, list | tuple) or len(size) != 2:
            fail(where("input_size"), f"[height, width] of 1 to {MAX_IMAGE_SIDE} pixels", size)
        for name, side in zip(("height", "width"), size, strict=True):
            integer(side, where(f"input_size {name}"), 1, MAX_IMAGE_SIDE)
    if state.get("depth_range") is not None:
        low, high = numbers(state["depth_range"], where("depth_range"), 2)
        if not 0 < low < high:
            fail(where("depth_range"), "[min, max] with 0 < min < max", state["depth_range"])
    if state.get("normalization") is not None:
        normalization = mapping(state["normalization"], where("normalization"))
        numbers(normalization.get("mean"), where("normalization.mean"), 3)
        if min(numbers(normalization.get("std"), where("normalization.std"), 3)) <= 0:
            fail(where("normalization.std"), "3 positive numbers", normalization["std"])
    if state.get("size_divisor") is not None:
        integer(state["size_divisor"], where("size_divisor"), 1, MAX_IMAGE_SIDE)
    if state.get("focal_length") is not None:
        number(state["focal_length"], where("focal_length (pixels)"), above=0)
    for key in ("extra", "version"):
        if state.get(key) is not None and not isinstance(state[key], dict if key == "extra" else str):
            fail(where(key), "a mapping" if key == "extra" else "a string", state[key])
    check_weights(source, state["state_dict"].items())


def check_options(source: str, model: dict) -> None:
    """The stored build options have the types the model's signature declares (an int for
    ``num_bins``, a finite float for ``max_depth`` …), so a wrong one is named, not a torch error."""
    import typing

    try:
        factory = model_class(model["name"])
    except ValueError:
        raise ValueError(f"{source}: model.name {model['name']!r} is not one of {list_models()}") from None
    try:
        hints = typing.get_type_hints(factory.__init__)
    except Exception:  # annotations that do not resolve: the build reports what is wrong
        return
    for key, value in model.items():
        expected = hints.get(key)
        if key not in ("name", "pretrained") and expected is not None and not _fits(value, expected):
            fail(f"{source}: model.{key}", _describe(expected), value)
    low, high = model.get("min_depth"), model.get("max_depth")
    if _fits(low, float) and _fits(high, float) and not 0 < low < high:
        fail(f"{source}: model.min_depth, max_depth", "0 < min_depth < max_depth", [low, high])


def _alternatives(annotation) -> tuple:
    import types
    import typing

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _fits(value, annotation) -> bool:
    """Whether a plain value (from a file) is of the annotated type; kinds not listed pass."""
    for kind in _alternatives(annotation):
        if kind is type(None) and value is None:
            return True
        if kind is bool and isinstance(value, bool):
            return True
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return True
        if kind is str and isinstance(value, str):
            return True
        if kind not in (type(None), bool, int, float, str):
            return True
    return False


def _describe(annotation) -> str:
    names = {type(None): "null", bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    return " or ".join(names.get(kind, getattr(kind, "__name__", str(kind))) for kind in _alternatives(annotation))


def legacy_defaults(name: str | None) -> dict[str, Any]:
    """Build options a stored config may lack because it predates them, at their old behaviour.

    ``build_model`` records every option, so a missing one means the file was written before
    the option existed (e.g. ACAN's ``align_corners`` and ``full_dilation``, whose new defaults
    follow the reference code).
    """
    from depth_estimation_ros.core.models.acan import LEGACY_DEFAULTS as ACAN_LEGACY

    return dict({"acan": ACAN_LEGACY}.get(name, {}))


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the model of a checkpoint, load its weights, and return it in eval mode."""
    return model_from_checkpoint(load_checkpoint(path), path, map_location)


def model_from_checkpoint(state: dict[str, Any], path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """:func:`load_model` of a checkpoint already read and checked by :func:`load_checkpoint` (read once
    per load: its input size and card come from the same ``state``); ``path`` names it in errors."""
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
    focal = state.get("focal_length")  # checked by load_checkpoint
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
