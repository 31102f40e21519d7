"""The registry of depth networks (timm's pattern): ``@register_model("name")`` on a network's
class in its own module, ``build_model(name, **options)`` to build one, ``model_class(name)`` for
its signature (checkpoint validation and training configs read it)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

from depth_estimation_ros.core.models.base import DepthNet

_REGISTRY: dict[str, type[DepthNet]] = {}
Net = TypeVar("Net", bound=type[DepthNet])


def register_model(name: str) -> Callable[[Net], Net]:
    """Class decorator: make the network buildable as ``name`` (one name, one class)."""

    def register(cls: Net) -> Net:
        if _REGISTRY.get(name, cls) is not cls:
            raise ValueError(f"model {name!r} is registered twice ({_REGISTRY[name].__name__}, {cls.__name__})")
        _REGISTRY[name] = cls
        return cls

    return register


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_class(name: str) -> type[DepthNet]:
    """The class registered as ``name``; an unknown name is a ``ValueError`` naming the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}: expected one of {list_models()}") from None


def build_model(name: str, **kwargs) -> DepthNet:
    """Build a depth network by name (``acan`` or ``msfnet``) with keyword options.

    ``model.config`` records every option, defaults included (so a checkpoint does not depend on
    later changes of defaults), except ``pretrained``: a checkpoint carries the trained weights.
    """
    factory = model_class(name)
    try:
        options = inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad options for model {name!r}: {exc}") from None
    options.apply_defaults()
    model = factory(**kwargs)
    model.config = {"name": name, **{k: v for k, v in options.arguments.items() if k != "pretrained"}}
    return model
