"""KITTI Eigen split with either ground truth: the annotated depth maps or projected Velodyne scans.

Split lines are ``rgb_relpath depth_relpath focal`` (BTS style), e.g.
``2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png
2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000069.png 721.5377``, or
``<date>/<drive> <frame> l`` (Monodepth2's ``eigen/test_files.txt``). RGB is read from
``raw_root / rgb_relpath``.

``ground_truth="annotated"`` (default): depth from ``gt_root / depth_relpath`` (uint16 PNG,
metres × 256, 0 = no measurement), the 2017 annotated release. It is split into ``train/`` and
``val/`` folders: pass both as ``gt_root=[.../train, .../val]`` and each file is looked up in turn.
A depth path of ``None`` marks a frame without annotated ground truth: the Eigen test list has 697
frames of which 652 have it. Such frames are skipped by default and counted in
``num_missing_gt``; with ``skip_missing_gt=False`` they are kept with no valid pixel (all-zero
depth), score NaN and ``average_metrics`` leaves them out, so a table stays a 652-frame table.

``ground_truth="velodyne"``: depth projected from the raw scan
``<date>/<drive>/velodyne_points/data/<frame>.bin`` with the drive's calibration
(:mod:`training.datasets.velodyne`), as Eigen et al. and Monodepth2 compute it. Every listed
frame has one, so the Eigen test list gives all 697 frames: the ground truth of the ACAN and
MSFNet papers' KITTI tables.

K is the left 3×3 of ``P_rect_02`` in ``<raw_root>/<date>/calib_cam_to_cam.txt``, read once per
date; a focal column must match its fx, and the image size must match ``S_rect_02``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depth_estimation_ros.core.validation import input_file
from training.datasets import (
    DepthDataset,
    Sample,
    Transform,
    decode_depth,
    decode_rgb,
    make_sample,
    read_bytes,
)
from training.datasets.velodyne import read_kitti_calib

PathLike = str | os.PathLike
GROUND_TRUTHS = ("annotated", "velodyne")


def kitti_camera(calib_path: PathLike, camera: str = "02") -> tuple[np.ndarray, tuple[int, int] | None]:
    """K (left 3×3 of ``P_rect_<camera>``) and the rectified size (H, W) from ``S_rect_<camera>``."""
    calib = read_kitti_calib(calib_path)
    P = calib.get(f"P_rect_{camera}")
    if P is None or P.size != 12:
        raise ValueError(f"{calib_path}: expected a 'P_rect_{camera}:' line with 12 numbers")
    S = calib.get(f"S_rect_{camera}")
    size = (round(S[1]), round(S[0])) if S is not None and S.size == 2 else None
    return P.reshape(3, 4)[:, :3].copy(), size


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def parse_split_line(fields: list[str], where: str) -> tuple[str, str | None, str | None]:
    """(rgb relpath, depth relpath or None, focal or None) of one BTS- or Monodepth2-style line."""
    if len(fields) == 3 and fields[2] in ("l", "r") and fields[1].isdigit():
        if fields[2] == "r":
            raise ValueError(f"{where}: right-camera frames ('r') are not supported; the Eigen split uses 'l'")
        return f"{fields[0].strip('/')}/image_02/data/{int(fields[1]):010d}.png", None, None
    if len(fields) not in (2, 3) or len(Path(fields[0]).parts) < 2:
        raise ValueError(
            f"{where}: expected '<date>/<drive>/image_02/data/<frame>.png depth_relpath focal' "
            "or '<date>/<drive> <frame> l'"
        )
    depth = fields[1].lstrip("/")
    return fields[0].lstrip("/"), None if depth == "None" else depth, fields[2] if len(fields) == 3 else None


class KittiEigen(DepthDataset):
    """Left-camera (``image_02``) frames of an Eigen split file with annotated or Velodyne depth."""

    def __init__(
        self,
        split_file: PathLike,
        raw_root: PathLike,
        gt_root: PathLike | Sequence[PathLike] | None = None,
        transform: Transform | None = None,
        skip_missing_gt: bool = True,
        ground_truth: str = "annotated",
    ) -> None:
        if ground_truth not in GROUND_TRUTHS:
            raise ValueError(f"unknown KITTI ground truth {ground_truth!r}; expected one of {GROUND_TRUTHS}")
        if ground_truth == "annotated" and gt_root is None:
            raise ValueError("annotated KITTI ground truth needs gt_root (the data_depth_annotated folders)")
        self.transform = transform
        self.ground_truth = ground_truth
        self.raw_root = Path(raw_root)
        gt_roots = [] if gt_root is None else [gt_root] if isinstance(gt_root, (str, os.PathLike)) else list(gt_root)
        self.gt_roots = [Path(r) for r in gt_roots] if ground_truth == "annotated" else []
        for root in (self.raw_root, *self.gt_roots):
            if not root.is_dir():
                raise FileNotFoundError(f"KITTI root directory not found: {root}")
        text = read_bytes(input_file(split_file, "KITTI split file")).decode("utf-8")

        self.samples: list[tuple[str, Path, Path | None]] = []  # (rgb relpath, rgb path, depth or scan path)
        self.cameras: dict[str, tuple[np.ndarray, tuple[int, int] | None]] = {}
        self.projections: dict[str, tuple[np.ndarray, tuple[int, int]]] = {}
        self.num_missing_gt = 0
        for n, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            where = f"{split_file} line {n}"
            rgb_rel, depth_rel, focal = parse_split_line(fields, where)
            if ground_truth == "annotated" and depth_rel is None:
                self.num_missing_gt += 1
                if skip_missing_gt:
                    continue
            rgb_path = self.raw_root / rgb_rel
            if not rgb_path.is_file():
                raise FileNotFoundError(f"{where}: RGB frame not found: {rgb_path}")
            date = Path(rgb_rel).parts[0]
            if date not in self.cameras:
                self.cameras[date] = kitti_camera(self.raw_root / date / "calib_cam_to_cam.txt")
            fx = self.cameras[date][0][0, 0]
            if focal is not None and not abs(_number(focal) - fx) <= 1e-3 * fx:
                raise ValueError(f"{where}: focal {focal} does not match fx = {fx} of P_rect_02 for {date}")
            self.samples.append((rgb_rel, rgb_path, self._ground_truth_path(rgb_rel, depth_rel, where)))
        if not self.samples:
            raise ValueError(f"{split_file}: no frames with ground truth listed")

    def _ground_truth_path(self, rgb_rel: str, depth_rel: str | None, where: str) -> Path | None:
        if self.ground_truth == "velodyne":
            date, drive, *_ = Path(rgb_rel).parts
            scan = self.raw_root / date / drive / "velodyne_points" / "data" / (Path(rgb_rel).stem + ".bin")
            if not scan.is_file():
                raise FileNotFoundError(f"{where}: Velodyne scan not found: {scan}")
            if date not in self.projections:
                from training.datasets.velodyne import velodyne_to_image

                calib = self.raw_root / date
                self.projections[date] = velodyne_to_image(
                    calib / "calib_cam_to_cam.txt", calib / "calib_velo_to_cam.txt"
                )
            return scan
        if depth_rel is None:
            return None
        candidates = [root / depth_rel for root in self.gt_roots]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{where}: depth map not found: {', '.join(map(str, candidates))}")
        return path

    def __len__(self) -> int:
        return len(self.samples)

    def camera(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """The drive date's ``P_rect_02`` K and ``S_rect_02`` size, without reading the frame
        (which is read when the calibration gives no size)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        K, size = self.cameras[Path(self.samples[index][0]).parts[0]]
        return (K.copy(), size) if size is not None else super().camera(index)

    def load(self, index: int) -> Sample:
        rgb_rel, rgb_path, depth_path = self.samples[index]
        image = decode_rgb(read_bytes(rgb_path), str(rgb_path))
        date = Path(rgb_rel).parts[0]
        K, size = self.cameras[date]
        if size is not None and image.shape[:2] != size:
            raise ValueError(
                f"{rgb_path}: image is {image.shape[1]}×{image.shape[0]} but S_rect_02 says {size[1]}×{size[0]}"
            )
        if self.ground_truth == "velodyne":
            from training.datasets.velodyne import project_velodyne, read_velodyne

            depth = project_velodyne(read_velodyne(depth_path), self.projections[date][0], image.shape[:2])
        elif depth_path is None:
            depth = np.zeros(image.shape[:2], dtype=np.float32)
        else:
            depth = decode_depth(read_bytes(depth_path), str(depth_path), "m256")
        return make_sample(image, depth, K, rgb_rel)
