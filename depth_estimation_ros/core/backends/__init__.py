"""Inference backends behind one interface, chosen by name or automatically.

``open_backend(path, "auto")`` picks by model file: a TensorRT engine runs on TensorRT; an ONNX
graph runs on TensorRT (through the engine cache) when TensorRT and a GPU are present, else on ONNX
Runtime, or on OpenVINO where it is installed, faster on the CPU and agrees with ONNX Runtime
(:mod:`.selection`); a checkpoint runs on PyTorch.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from depth_estimation_ros.core.backends.base import Backend, DependencyError, ModelInfo
from depth_estimation_ros.core.card import ModelCard
from depth_estimation_ros.core.files import is_hub_id
from depth_estimation_ros.core.validation import input_file

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "openvino", "torch")
FORMATS = {".pt": "checkpoint", ".pth": "checkpoint", ".onnx": "onnx", ".engine": "engine", ".plan": "engine"}


def detect_format(path: str | os.PathLike) -> str:
    """``checkpoint``, ``onnx``, ``engine`` (by suffix, else by content) or ``transformers`` (a model
    folder, or a Hub id in the local cache)."""
    path = Path(path)
    if path.is_dir() or (not path.exists() and path.suffix.lower() not in FORMATS and is_hub_id(str(path))):
        from depth_estimation_ros.core.models.transformers_depth import resolve

        resolve(path)  # a folder without config.json, or an id not in the cache, is an error naming it
        return "transformers"
    input_file(path, "model file")  # a FIFO or device is named, never opened
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

    ``precision`` (default ``auto``): what an engine built by TensorRT from an ONNX graph is expected
    to be; the graph's own precision decides (strongly typed networks), another value only warns.
    """
    precision = options.pop("precision", "auto")
    precision = None if precision == "auto" else precision
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: expected one of {BACKENDS}")
    kind = detect_format(path)
    card = options.pop("card", None)
    if card is not None:
        check_card_target(path, kind, backend)
        options["card"] = card
    if backend != "auto":
        return _open(path, kind, backend, precision, options)
    backend = {"engine": "tensorrt", "checkpoint": "torch", "transformers": "torch"}.get(kind) or (
        "tensorrt" if tensorrt_usable() else "onnxruntime"
    )
    log.info("backend auto: %s for %s", backend, path)
    chosen = _open(path, kind, backend, precision, options)
    if chosen.device != "cpu" or kind != "onnx" or importlib.util.find_spec("openvino") is None:
        return chosen
    # A graph on the CPU: OpenVINO as well, and the faster of the two that agrees with ONNX Runtime.
    from depth_estimation_ros.core.backends.selection import fastest

    try:
        other = _open(path, kind, "openvino", precision, options)
    except ValueError as exc:  # an operator OpenVINO lacks: ONNX Runtime runs it
        log.warning("backend auto: %s", exc)
        return chosen
    return fastest([chosen, other])


def _open(path, kind: str, backend: str, precision: str | None, options: dict) -> Backend:
    accepted = {"torch": ("checkpoint", "transformers"), "onnxruntime": ("onnx",), "openvino": ("onnx",),
                "tensorrt": ("engine", "onnx")}[backend]  # fmt: skip
    if kind not in accepted:
        raise ValueError(f"{path} is a {kind}; the {backend} backend runs {' or '.join(accepted)} files")
    if backend == "torch":
        from depth_estimation_ros.core.backends.torch_backend import TorchBackend

        return TorchBackend(path, kind=kind, **options)
    if backend == "onnxruntime":
        from depth_estimation_ros.core.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, **options)
    if backend == "openvino":
        from depth_estimation_ros.core.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(path, **{k: v for k, v in options.items() if k != "providers"})
    from depth_estimation_ros.core.backends.tensorrt_backend import EngineCache, TensorRTBackend

    if kind == "onnx":
        path = EngineCache().engine_for(path, precision, card=options.get("card"))
    return TensorRTBackend(path, **options)


def check_card_target(path, kind: str, backend: str) -> None:
    """A card describes an ONNX graph exported elsewhere (or a TensorRT engine built from one); it
    runs on ONNX Runtime or TensorRT."""
    if kind not in ("onnx", "engine"):
        raise ValueError(f"a model card describes an ONNX graph exported elsewhere; {path} is a {kind}")
    if backend == "torch":
        raise ValueError("a card-described graph runs on onnxruntime, openvino or tensorrt, not torch")


def model_info(path: str | os.PathLike, kind: str | None = None, card: ModelCard | None = None) -> ModelInfo:
    """What a model file or folder computes (its :class:`ModelInfo` and card), without running it;
    ``kind``: its :func:`detect_format`, when the caller has it; ``card``: the card of a graph
    exported elsewhere."""
    kind = kind or detect_format(path)
    if card is not None:
        check_card_target(path, kind, "auto")
        return ModelInfo.from_card(card)
    if kind == "onnx":
        from depth_estimation_ros.core.backends.onnxruntime_backend import read_onnx_info

        return read_onnx_info(path)
    if kind == "engine":
        from depth_estimation_ros.core.backends.tensorrt_backend import read_sidecar

        return read_sidecar(path)[1]
    if kind == "transformers":
        from depth_estimation_ros.core.models.transformers_depth import card_from_folder, resolve

        return ModelInfo.from_card(card_from_folder(resolve(path)))
    from depth_estimation_ros.core.models import load_checkpoint, model_from_checkpoint

    state = load_checkpoint(path)
    return ModelInfo.from_model(model_from_checkpoint(state, path), state.get("input_size") or (0, 0))


def describe_model(path: str | os.PathLike, card: ModelCard | None = None) -> dict:
    """One row for ``depth-estimation models PATH``: format, name and the model card."""
    kind = detect_format(path)
    info = model_info(path, kind, card)
    card = info.model_card
    return {"model": str(path), "format": kind, "name": info.name, "summary": card.describe(),
            "card": card.to_dict()}  # fmt: skip


__all__ = [
    "BACKENDS",
    "Backend",
    "DependencyError",
    "ModelInfo",
    "describe_model",
    "detect_format",
    "model_info",
    "open_backend",
]
