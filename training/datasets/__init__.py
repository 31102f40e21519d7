"""Dataset loaders for NYU Depth V2 (:mod:`.nyu`) and KITTI Eigen (:mod:`.kitti`).

Every dataset is a ``torch.utils.data.Dataset`` whose items are numpy dicts (a *sample*):

- ``image``: (H, W, 3) uint8 RGB
- ``depth``: (H, W) float32 metres; 0 or NaN where there is no measurement, never a fake value
- ``valid``: (H, W) bool, finite and > 0
- ``K``: (3, 3) float64 pinhole intrinsics of this image size
- ``name``: str, unique within the dataset

``camera(index)`` gives a sample's ``(K, (H, W))``, without reading its pixels where the dataset
can (the training loop reads the training camera's focal length from it).

An optional ``transform`` is applied to the sample dict. A missing, unreadable or malformed file
raises ``FileNotFoundError`` / ``ValueError`` naming the file and what was expected; nothing is
skipped or replaced silently. This module holds the decoding shared by the loaders.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

Sample = dict[str, Any]
Transform = Callable[[Sample], Any]

# Depth PNG encodings: stored dtype and metres per unit. 0 means no measurement in all of them.
DEPTH_ENCODINGS: dict[str, tuple[type, float]] = {
    "mm": (np.uint16, 1e-3),  # NYU "sync" set, NYU test PNGs
    "m256": (np.uint16, 1 / 256),  # metres × 256: KITTI annotated depth, some NYU sets
    "densedepth": (np.uint8, 10 / 255),  # DenseDepth 50 K training set: value / 255 × 10 m
}


def read_bytes(path: str | os.PathLike) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    return path.read_bytes()


def _decode(data: bytes, name: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None:
        raise ValueError(f"{name}: cannot decode as an image (empty, truncated or not an image file)")
    return image


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB from encoded PNG/JPEG bytes; anything but 8-bit 3-channel is an error."""
    image = _decode(data, name)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise ValueError(
            f"{name}: expected an 8-bit 3-channel colour image, got {image.dtype} with {channels} channel(s)"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_depth(data: bytes, name: str, encoding: str) -> np.ndarray:
    """(H, W) float32 metres from an encoded single-channel depth PNG (0 stays 0 = invalid)."""
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"unknown depth encoding {encoding!r}; expected one of {sorted(DEPTH_ENCODINGS)}")
    dtype, scale = DEPTH_ENCODINGS[encoding]
    raw = _decode(data, name)
    if raw.dtype != dtype or raw.ndim != 2:
        channels = 1 if raw.ndim == 2 else raw.shape[2]
        raise ValueError(
            f"{name}: expected a single-channel {np.dtype(dtype).name} depth PNG (encoding {encoding!r}), "
            f"got {raw.dtype} with {channels} channel(s)"
        )
    return raw.astype(np.float32) * np.float32(scale)


def make_sample(image: np.ndarray, depth: np.ndarray, K: np.ndarray, name: str) -> Sample:
    """Assemble a sample, checking that image and depth have the same size."""
    if image.shape[:2] != depth.shape:
        raise ValueError(
            f"{name}: image is {image.shape[1]}×{image.shape[0]} but depth is {depth.shape[1]}×{depth.shape[0]}; "
            "expected the same size"
        )
    depth = np.ascontiguousarray(depth, dtype=np.float32)
    return {
        "image": np.ascontiguousarray(image, dtype=np.uint8),
        "depth": depth,
        "valid": np.isfinite(depth) & (depth > 0),
        "K": np.asarray(K, dtype=np.float64).copy(),
        "name": name,
    }


def check_intrinsics(K: Any, source: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise ValueError(f"{source}: expected 3×3 finite intrinsics, got shape {K.shape}")
    return K


class DepthDataset(Dataset):
    """Base: ``load(index)`` builds a sample; ``__getitem__`` applies the optional transform.

    Open file handles (HDF5, zip) are kept in ``_handle`` and reopened in each worker process.
    """

    transform: Transform | None = None
    _handle: Any = None
    _handle_pid: int | None = None

    def load(self, index: int) -> Sample:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        sample = self.load(index % len(self))
        return self.transform(sample) if self.transform is not None else sample

    def camera(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """``(K, (H, W))`` of sample ``index`` as :meth:`load` returns it (before any transform).

        This default loads the sample; datasets that know their cameras without reading the
        pixels (calibration, a fixed frame size) answer without loading it.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        sample = self.load(index % len(self))
        return np.asarray(sample["K"], dtype=np.float64), tuple(sample["depth"].shape[:2])

    def _open(self) -> Any:
        raise NotImplementedError

    def handle(self) -> Any:
        if self._handle is None or self._handle_pid != os.getpid():
            self._handle, self._handle_pid = self._open(), os.getpid()
        return self._handle

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_handle_pid": None}
