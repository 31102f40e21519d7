"""Generated scenes as a training dataset: ``SyntheticDataset(length, kind, seed=s)`` item ``i`` is
the frame :func:`depth_estimation_ros.core.scenes.render_scene` renders for seed ``s + i``.

Disjoint seed ranges give disjoint splits, e.g. train ``seed=0, length=10_000``, validation
``seed=1_000_000, length=500``, test ``seed=2_000_000, length=500``. The renderer, its kinds and
depth ranges live in the core (the demo and int8 calibration use them without training).
"""

from __future__ import annotations

import numpy as np

from depth_estimation_ros.core.scenes import DEFAULT_FOV_DEG, KINDS, intrinsics, render_scene
from training.datasets import DepthDataset, Sample, Transform


class SyntheticDataset(DepthDataset):
    """``length`` rendered frames of ``kind``; item ``i`` is ``render_scene(seed + i, ...)``.

    Disjoint seed ranges give disjoint, reproducible splits (train ``seed=0``, validation
    ``seed=1_000_000``, test ``seed=2_000_000``, say). Rendering is on the fly (no cache).
    """

    def __init__(
        self,
        length: int,
        kind: str = "indoor",
        height: int = 256,
        width: int = 352,
        seed: int = 0,
        transform: Transform | None = None,
        *,
        fov_deg: float | None = None,
        noise: float = 0.01,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        if length < 0 or seed < 0:
            raise ValueError(f"length and seed must be non-negative, got length={length}, seed={seed}")
        self.length, self.kind, self.height, self.width, self.seed = int(length), kind, height, width, int(seed)
        self.fov_deg, self.noise, self.transform = fov_deg, noise, transform

    def __len__(self) -> int:
        return self.length

    def load(self, index: int) -> Sample:
        return render_scene(self.seed + index, self.height, self.width, self.kind, self.fov_deg, noise=self.noise)

    def camera(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """The K of every frame (``render_scene``'s, from the field of view), without rendering."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        fov = DEFAULT_FOV_DEG[self.kind] if self.fov_deg is None else float(self.fov_deg)
        return intrinsics(self.height, self.width, fov), (self.height, self.width)
