"""PyTorch backend: runs a checkpoint directly (CUDA with fp16 autocast when present)."""

from __future__ import annotations

import os

import numpy as np
import torch

from ..models import load_checkpoint, load_model
from .base import Backend, ModelInfo


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self,
        path: str | os.PathLike,
        device: str | None = None,
        half: bool | None = None,
        compile: bool = False,
        input_size: tuple[int, int] | None = None,
    ):
        state = load_checkpoint(path)
        size = input_size or state.get("input_size")
        if not size:
            raise ValueError(f"{path}: checkpoint records no input size; pass input_size=(H, W)")
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.half = self._device.type == "cuda" if half is None else half
        model = load_model(path, map_location=self._device)
        super().__init__(ModelInfo.from_model(model, size))
        # A bad size is a ValueError here, at load time, not on the first frame.
        model.check_input(torch.empty(1, 3, *size, device="meta"))
        self.model = torch.compile(model) if compile else model

    @property
    def device(self) -> str:
        return f"{self._device}{' fp16' if self.half else ''}"

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(self.check_batch(batch)).to(self._device, non_blocking=True)
        with torch.autocast(self._device.type, dtype=torch.float16, enabled=self.half):
            out = self.model(x)
        return {k: out[k].float().cpu().numpy() for k in self.info.outputs}
