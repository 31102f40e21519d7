"""NYU Depth V2: the labeled ``.mat`` (1449 frames, official 795/654 split) and PNG pair lists.

Intrinsics are those of the 640×480 RGB camera. A dataset whose frames have another size needs
``intrinsics=`` for that size: whether such frames were resized or cropped cannot be told from
the files, so no K is guessed. The frames' white border is left in place; the evaluation crop
(``training.protocol.nyu_crop_mask``) excludes it.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from depth_estimation_ros.core.validation import input_file
from training.datasets import (
    DEPTH_ENCODINGS,
    DepthDataset,
    Sample,
    Transform,
    check_intrinsics,
    decode_depth,
    decode_rgb,
    make_sample,
    read_bytes,
)

NYU_K = np.array(
    [[518.8579011745019, 0.0, 325.58244941119034], [0.0, 519.4696111212749, 253.73616633400465], [0.0, 0.0, 1.0]]
)
NYU_SIZE = (480, 640)  # (H, W)
MAT_DEPTH_KEYS = {"filled": "depths", "raw": "rawDepths"}


def nyu_intrinsics(h: int, w: int, intrinsics: Any, source: str) -> np.ndarray:
    """``intrinsics`` if given, else the NYU K when the frame is 640×480, else an error."""
    if intrinsics is not None:
        return check_intrinsics(intrinsics, source)
    if (h, w) != NYU_SIZE:
        raise ValueError(f"{source}: frames are {w}×{h}, NYU intrinsics are for 640×480; pass intrinsics= for {w}×{h}")
    return NYU_K


def read_nyu_splits(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``trainNdxs`` / ``testNdxs`` of ``splits.mat`` (MATLAB v5 or v7.3), as 0-based indices."""
    path = input_file(path, "NYU splits file (splits.mat with trainNdxs and testNdxs)")
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                raw = {k: f[k][()] for k in ("trainNdxs", "testNdxs") if k in f}
        else:
            raw = {k: v for k, v in scipy.io.loadmat(path).items() if k in ("trainNdxs", "testNdxs")}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read as a MATLAB file ({e})") from e
    splits = {}
    for key, split in (("trainNdxs", "train"), ("testNdxs", "test")):
        if key not in raw:
            raise ValueError(f"{path}: no {key!r} variable; expected trainNdxs and testNdxs")
        ndx = np.asarray(raw[key], dtype=np.float64).ravel()
        if ndx.size == 0 or (ndx != np.round(ndx)).any() or ndx.min() < 1:
            raise ValueError(f"{path}: {key} must hold 1-based integer frame indices")
        splits[split] = ndx.astype(np.int64) - 1
    return splits


class NYUDepthV2Mat(DepthDataset):
    """Frames of ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 / HDF5), read lazily per item.

    ``split`` is ``"train"`` (795), ``"test"`` (654) or ``"all"`` (1449), from ``splits_path``
    (default: ``splits.mat`` beside the ``.mat``). ``depth="filled"`` gives the colourisation-filled
    ``depths``, ``"raw"`` the ``rawDepths`` (0 = missing). Names are ``nyu_<1-based index>``.
    """

    def __init__(
        self,
        mat_path: str | os.PathLike,
        split: str = "test",
        splits_path: str | os.PathLike | None = None,
        depth: str = "filled",
        transform: Transform | None = None,
        intrinsics: Any = None,
    ) -> None:
        self.mat_path = Path(mat_path)
        self.transform = transform
        if depth not in MAT_DEPTH_KEYS:
            raise ValueError(f"unknown depth {depth!r}; expected 'filled' or 'raw'")
        if split not in ("train", "test", "all"):
            raise ValueError(f"unknown split {split!r}; expected 'train', 'test' or 'all'")
        self.depth_key = MAT_DEPTH_KEYS[depth]
        input_file(self.mat_path, "NYU labeled file (nyu_depth_v2_labeled.mat)")  # a FIFO is named, never opened
        if not h5py.is_hdf5(self.mat_path):
            raise ValueError(f"{self.mat_path}: not a MATLAB v7.3 (HDF5) file; expected nyu_depth_v2_labeled.mat")
        with h5py.File(self.mat_path, "r") as f:
            for key in ("images", self.depth_key):
                if key not in f:
                    raise ValueError(f"{self.mat_path}: no {key!r} dataset; expected images, depths and rawDepths")
            images, depths = f["images"], f[self.depth_key]
            n, c, w, h = images.shape if images.ndim == 4 else (0, 0, 0, 0)
            if c != 3 or images.dtype != np.uint8 or depths.shape != (n, w, h):
                raise ValueError(
                    f"{self.mat_path}: expected images (N, 3, W, H) uint8 and {self.depth_key} (N, W, H), "
                    f"got {images.shape} {images.dtype} and {depths.shape}"
                )
        self.num_frames, self.height, self.width = n, h, w
        self.K = nyu_intrinsics(h, w, intrinsics, str(self.mat_path))
        if split == "all":
            self.indices = np.arange(n)
        else:
            splits_path = Path(splits_path) if splits_path is not None else self.mat_path.with_name("splits.mat")
            self.indices = read_nyu_splits(splits_path)[split]
            if self.indices.max() >= n:
                raise ValueError(f"{splits_path}: index {self.indices.max() + 1} exceeds the {n} frames of {mat_path}")

    def __len__(self) -> int:
        return len(self.indices)

    def camera(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """Every frame of the file has the same size and K: no frame is read."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        return self.K.copy(), (self.height, self.width)

    def _open(self) -> h5py.File:
        return h5py.File(self.mat_path, "r")

    def load(self, index: int) -> Sample:
        i = int(self.indices[index])
        f = self.handle()
        image = f["images"][i].transpose(2, 1, 0)  # MATLAB (H, W, 3, N) is stored as (N, 3, W, H)
        depth = f[self.depth_key][i].T
        return make_sample(image, depth, self.K, f"nyu_{i + 1:04d}")


class NYUDepthV2Pairs(DepthDataset):
    """RGB/depth pairs listed in a text file, from a directory or (see :meth:`from_zip`) a zip.

    List lines are ``rgb depth [focal]`` (whitespace, BTS style; a leading ``/`` is read as
    relative to ``root``) or ``rgb,depth`` (CSV, DenseDepth). A focal column must match the
    intrinsics' fx within 0.5 px. ``encoding`` picks the depth PNG format: ``"mm"`` (uint16
    millimetres), ``"m256"`` (uint16 metres × 256) or ``"densedepth"`` (uint8, value / 255 × 10 m).
    Every listed file is checked to exist on construction. Names are the RGB paths of the list.
    """

    def __init__(
        self,
        list_path: str | os.PathLike,
        root: str | os.PathLike | None = None,
        encoding: str = "mm",
        transform: Transform | None = None,
        intrinsics: Any = None,
        *,
        zip_path: str | os.PathLike | None = None,
    ) -> None:
        if encoding not in DEPTH_ENCODINGS:
            raise ValueError(f"unknown depth encoding {encoding!r}; expected one of {sorted(DEPTH_ENCODINGS)}")
        self.encoding, self.transform = encoding, transform
        self.intrinsics = None if intrinsics is None else check_intrinsics(intrinsics, "intrinsics")
        self.zip_path = Path(zip_path) if zip_path is not None else None
        members: set[str] | None = None
        if self.zip_path is not None:
            if not self.zip_path.is_file():
                raise FileNotFoundError(f"zip file not found: {self.zip_path}")
            try:
                with zipfile.ZipFile(self.zip_path) as z:
                    members = set(z.namelist())
                    if str(list_path) not in members:
                        raise FileNotFoundError(f"{self.zip_path}: no member {list_path!r} (the pair list)")
                    text = z.read(str(list_path)).decode("utf-8")
            except zipfile.BadZipFile as e:
                raise ValueError(f"{self.zip_path}: not a readable zip file ({e})") from e
            self.list_source = f"{self.zip_path}:{list_path}"
            self.root = None
        else:
            list_path = Path(list_path)
            self.root = Path(root) if root is not None else list_path.parent
            if not self.root.is_dir():
                raise FileNotFoundError(f"dataset root not found: {self.root}")
            text = read_bytes(list_path).decode("utf-8")
            self.list_source = str(list_path)
        self.pairs = self._parse(text)
        missing = [p for pair in self.pairs for p in pair if not self._exists(p, members)]
        if missing:
            raise FileNotFoundError(
                f"{self.list_source}: {len(missing)} listed file(s) missing, first {self._where(missing[0])}"
            )

    @classmethod
    def from_zip(
        cls,
        zip_path: str | os.PathLike,
        csv_name: str = "data/nyu2_train.csv",
        encoding: str = "densedepth",
        transform: Transform | None = None,
        intrinsics: Any = None,
    ) -> NYUDepthV2Pairs:
        """Pairs read straight from the DenseDepth ``nyu_data.zip`` through a CSV member.

        Its training PNGs are 8-bit (``"densedepth"``); its ``data/nyu2_test.csv`` PNGs are uint16
        millimetres (``encoding="mm"``).
        """
        return cls(csv_name, encoding=encoding, transform=transform, intrinsics=intrinsics, zip_path=zip_path)

    def _parse(self, text: str) -> list[tuple[str, str]]:
        pairs = []
        lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        for n, line in lines:
            fields = next(csv.reader(io.StringIO(line))) if "," in line else line.split()
            fields = [f.strip() for f in fields]
            if len(fields) not in (2, 3):
                raise ValueError(f"{self.list_source} line {n}: expected 'rgb depth [focal]' or 'rgb,depth': {line!r}")
            if len(fields) == 3:
                fx = (self.intrinsics if self.intrinsics is not None else NYU_K)[0, 0]
                try:
                    focal = float(fields[2])
                except ValueError:
                    focal = float("nan")
                if not abs(focal - fx) <= 0.5:
                    raise ValueError(f"{self.list_source} line {n}: focal {fields[2]} does not match fx = {fx:.4f}")
            pairs.append((fields[0].lstrip("/"), fields[1].lstrip("/")))
        if not pairs:
            raise ValueError(f"{self.list_source}: no pairs listed")
        return pairs

    def _exists(self, rel: str, members: set[str] | None) -> bool:
        return rel in members if members is not None else (self.root / rel).is_file()

    def _where(self, rel: str) -> str:
        return f"{self.zip_path}:{rel}" if self.zip_path is not None else str(self.root / rel)

    def _open(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.zip_path)

    def _read(self, rel: str) -> bytes:
        return self.handle().read(rel) if self.zip_path is not None else read_bytes(self.root / rel)

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> Sample:
        rgb, depth = self.pairs[index]
        image = decode_rgb(self._read(rgb), self._where(rgb))
        depth_m = decode_depth(self._read(depth), self._where(depth), self.encoding)
        K = nyu_intrinsics(*image.shape[:2], self.intrinsics, self._where(rgb))
        return make_sample(image, depth_m, K, rgb)
