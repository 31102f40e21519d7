"""Inference backends behind one interface, chosen by name or automatically.

``open_backend(path, "auto")`` picks by model file: a TensorRT engine runs on TensorRT; an ONNX
graph runs on TensorRT (through the engine cache) when TensorRT and a GPU are present, else on ONNX
Runtime; a checkpoint runs on PyTorch.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from .base import Backend, DependencyError, ModelInfo

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
FORMATS = {".pt": "checkpoint", ".pth": "checkpoint", ".onnx": "onnx", ".engine": "engine", ".plan": "engine"}


def detect_format(path: str | os.PathLike) -> str:
    """``checkpoint``, ``onnx`` or ``engine``, by suffix, else by content."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix.lower() in FORMATS:
        return FORMATS[path.suffix.lower()]
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(b"PK\x03\x04"):  # torch.save's zip container
        return "checkpoint"
    if b"ftrt" in head[:8] or Path(f"{path}.json").is_file():
        return "engine"
    if head[:1] == b"\x08":  # protobuf field 1 (ir_version), as every ONNX file starts
        return "onnx"
    raise ValueError(
        f"{path}: unknown model format; expected a checkpoint (.pt), ONNX graph (.onnx) or engine (.engine)"
    )


def tensorrt_usable() -> bool:
    if importlib.util.find_spec("tensorrt") is None:
        return False
    import torch

    return torch.cuda.is_available()


def open_backend(path: str | os.PathLike, backend: str = "auto", **options) -> Backend:
    """Open ``path`` on ``backend``; options go to the backend (e.g. ``threads``, ``device``).

    ``precision`` (default fp16) is used only when TensorRT builds an engine from an ONNX graph.
    """
    precision = options.pop("precision", "fp16")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: expected one of {BACKENDS}")
    kind = detect_format(path)
    if backend == "auto":
        backend = {"engine": "tensorrt", "checkpoint": "torch"}.get(kind) or (
            "tensorrt" if tensorrt_usable() else "onnxruntime"
        )
        log.info("backend auto: %s for %s", backend, path)
    accepted = {"torch": ("checkpoint",), "onnxruntime": ("onnx",), "tensorrt": ("engine", "onnx")}[backend]
    if kind not in accepted:
        raise ValueError(f"{path} is a {kind}; the {backend} backend runs {' or '.join(accepted)} files")
    if backend == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(path, **options)
    if backend == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, **options)
    from .tensorrt_backend import EngineCache, TensorRTBackend

    if kind == "onnx":
        path = EngineCache().engine_for(path, precision)
    return TensorRTBackend(path, **options)


__all__ = ["BACKENDS", "Backend", "DependencyError", "ModelInfo", "detect_format", "open_backend"]
