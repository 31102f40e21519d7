"""Old module paths, kept for a deprecation period (as timm kept ``timm.models.layers``).

Until 0.2 the package was flat (``depth_estimation_ros.camera``, ``depth_estimation_ros.models`` …)
and deployment steps lived in ``training``. Importing an old path still works: it is the module at
its new home (the same object, so monkeypatching and ``isinstance`` agree), with one
``DeprecationWarning`` naming the new path. One table, a meta path finder that reads it, nothing
else: no file stands at an old path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

_D = "depth_estimation_ros"
MOVED = {
    **{f"{_D}.{name}": f"{_D}.core.{name}" for name in (
        "anchoring", "backends", "camera", "card", "errors", "estimator", "files", "metrics", "models",
        "ordinal", "pointcloud", "resident", "validation", "visualize")},
    **{f"{_D}.{name}": f"{_D}.ros.{name}" for name in (
        "bag", "graph", "messages", "node", "parameters", "pipeline", "player", "recorder", "worker")},
    f"{_D}.cli": f"{_D}.commands",
    f"{_D}.demo": f"{_D}.commands.demo",
    f"{_D}.predict": f"{_D}.commands.predict",
    **{f"{_D}.{name}": f"benchmarks.{name}" for name in ("bench", "bench_pretrained", "ros_bench")},
    "training.export": f"{_D}.deploy.export",
    "training.quantize": f"{_D}.deploy.quantize",
    "training.synthetic_bag": f"{_D}.ros.synthetic_bag",
    "training.learning_check": "benchmarks.learning_check",
}  # fmt: skip


def new_home(name: str) -> str | None:
    """The current path of the old module ``name`` (a moved package's submodules included)."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        new = new_home(name)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=False)

    def create_module(self, spec):
        new = new_home(spec.name)
        warnings.warn(f"{spec.name} moved to {new}; the old path goes in 0.3", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._own = module.__spec__  # the import system overwrites __spec__ of what we return
        return module

    def exec_module(self, module):
        module.__spec__ = self._own


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
