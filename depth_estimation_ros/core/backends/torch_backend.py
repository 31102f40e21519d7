"""PyTorch backend: runs a checkpoint directly, in the fastest precision the device has.

``dtype="auto"`` picks float16 on CUDA; on CPUs with native bf16 arithmetic (AVX-512 BF16 or AMX) it
times one frame in float32 and in bfloat16 at load and keeps the faster (bf16 is 1.2-2.8× faster for
ResNet-like encoders but can be slower for depthwise convolutions, e.g. EfficientNet, on CPUs
without AMX: see docs/benchmarks.md); elsewhere float32. Reduced precision runs under autocast (convolutions and matrix
products in 16 bits, reductions and the ordinal/bin decoding in float32) with the weights and
activations in channels_last, the layout oneDNN and cuDNN are fastest with.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from depth_estimation_ros.core.backends.base import Backend, ModelInfo
from depth_estimation_ros.core.models import load_checkpoint, model_from_checkpoint
from depth_estimation_ros.core.models.transformers_depth import is_transformers_folder, load_transformers_model

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic on this CPU (AVX-512 BF16 or AMX tiles)."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()) or bool(
        getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )


def auto_candidates(device: torch.device) -> tuple[str, ...]:
    """The precisions ``dtype="auto"`` chooses between on ``device`` (timed when more than one)."""
    if device.type == "cuda":
        return ("float16",)
    return ("float32", "bfloat16") if device.type == "cpu" and cpu_has_bf16() else ("float32",)


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self,
        path: str | os.PathLike,
        device: str | None = None,
        dtype: str = "auto",
        compile: bool = False,
        input_size: tuple[int, int] | None = None,
        kind: str | None = None,
    ):
        """``kind``: the path's format as :func:`~.detect_format` found it (``open_backend`` passes it)."""
        if dtype != "auto" and dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {tuple(DTYPES)}, got {dtype!r}")
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if kind == "transformers" or (kind is None and (is_transformers_folder(path) or not Path(path).exists())):
            # Any input size: the card's rule picks it per frame; its box is the size timed here.
            model = load_transformers_model(path, map_location=self._device)
            rule = model.card().input
            size = input_size or (rule.height, rule.width)
            info = ModelInfo.from_model(model, size)
            info = replace(info, card=model.card().to_dict(), dynamic=not rule.fixed)
        else:
            state = load_checkpoint(path)
            size = input_size or state.get("input_size")
            if not size:
                raise ValueError(f"{path}: checkpoint records no input size; pass input_size=(H, W)")
            model = model_from_checkpoint(state, path, map_location=self._device)
            info = ModelInfo.from_model(model, size)
        super().__init__(info)
        # A bad size is a ValueError here, at load time, not on the first frame.
        model.check_input(torch.empty(1, 3, *size, device="meta"))
        self.model = model
        self.measured_ms: dict[str, float] = {}  # what dtype="auto" timed, per precision
        candidates = auto_candidates(self._device) if dtype == "auto" else (dtype,)
        if len(candidates) > 1:
            for candidate in candidates:
                self.measured_ms[candidate] = self._time_one_frame(candidate)
            candidates = (min(self.measured_ms, key=self.measured_ms.get),)
        self._use(candidates[0])
        if compile:
            self.model = torch.compile(self.model)

    def _use(self, dtype: str) -> None:
        self.dtype = dtype
        layout = torch.channels_last if self.reduced else torch.contiguous_format
        self.model = self.model.to(memory_format=layout)

    def _time_one_frame(self, dtype: str) -> float:
        """Milliseconds of one frame in ``dtype`` after a warm-up frame."""
        self._use(dtype)
        x = torch.zeros(self.info.batch, 3, self.info.input_height, self.info.input_width, device=self._device)
        self.forward(x)
        start = time.perf_counter()
        self.forward(x)
        return 1000 * (time.perf_counter() - start)

    @property
    def reduced(self) -> bool:
        return self.dtype != "float32"

    @property
    def device(self) -> str:
        return f"{self._device}{'' if not self.reduced else ' ' + self.dtype}"

    @property
    def torch_device(self) -> torch.device:
        return self._device

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, prompt: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """(batch, 3, H, W) float32 on this device → float32 outputs on this device; ``prompt``: the
        metric depth prompt of a model that takes one."""
        if self.reduced:
            x = x.contiguous(memory_format=torch.channels_last)
        extra = {"prompt": prompt} if prompt is not None else {}
        with torch.autocast(self._device.type, dtype=DTYPES[self.dtype], enabled=self.reduced):
            out = self.model(x, **extra)
        return {k: out[k].float() for k in self.info.outputs}

    def __call__(self, batch: np.ndarray, prompt: np.ndarray | None = None) -> dict[str, np.ndarray]:
        x = torch.from_numpy(self.check_batch(batch)).to(self._device, non_blocking=True)
        p = None if prompt is None else torch.from_numpy(prompt).to(self._device, non_blocking=True)
        return {k: v.cpu().numpy() for k, v in self.forward(x, p).items()}
