"""Lazy public names for a layer's ``__init__`` (PEP 562): ``from depth_estimation_ros.core import
DepthEstimator`` imports the estimator then, not every module of the layer at once (so a command's
usage error does not wait for PyTorch)."""

from __future__ import annotations

import importlib
from typing import Any


def exports(package: str, table: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose public ``name`` lives in ``table[name]``
    (a module path relative to the package)."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{table[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__
