"""Depth networks: a small registry, ``build_model``, and checkpoints that rebuild themselves."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from .acan import ACAN
from .base import DepthNet
from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .msfnet import MSFNet

_MODELS: dict[str, Callable[..., DepthNet]] = {"acan": ACAN, "msfnet": MSFNet}


def list_models() -> list[str]:
    return sorted(_MODELS)


def build_model(name: str, **kwargs) -> DepthNet:
    """Build a depth network by name (``acan`` or ``msfnet``) with keyword options.

    ``model.config`` records every option, defaults included (so a checkpoint does not depend on
    later changes of defaults), except ``pretrained``: a checkpoint carries the trained weights.
    """
    try:
        factory = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}: expected one of {list_models()}") from None
    try:
        options = inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad options for model {name!r}: {exc}") from None
    options.apply_defaults()
    model = factory(**kwargs)
    model.config = {"name": name, **{k: v for k, v in options.arguments.items() if k != "pretrained"}}
    return model


__all__ = [
    "ACAN",
    "DepthNet",
    "MSFNet",
    "build_model",
    "list_models",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
