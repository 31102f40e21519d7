"""``depth-estimation predict``: depth for an image, a folder of images or a video file.

Per frame it writes ``<name>_depth.png`` (16-bit millimetres, 0 = invalid, REP 118's 16UC1),
``<name>_depth.npy`` (float32 metres, NaN = invalid), ``<name>_confidence.npy`` (when the model has
one), ``<name>_preview.png`` (input | colourised depth) and ``<name>.ply`` (coloured point cloud).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .camera import CameraModel
from .estimator import IMAGE_SUFFIXES, DepthEstimator, DepthResult
from .messages import depth_to_millimetres
from .pointcloud import depth_to_points, write_ply
from .visualize import colorize, side_by_side

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def frames(source: str | os.PathLike) -> tuple[int, Iterator[tuple[str, np.ndarray]]]:
    """(frame count, iterator of (name, RGB)) for an image, a folder of images or a video."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {source}")
        return len(files), ((p.stem, read_rgb(p)) for p in files)
    if not source.is_file():
        raise FileNotFoundError(f"input not found: {source}")
    if source.suffix.lower() in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(str(source))
        if not capture.isOpened():
            raise ValueError(f"cannot open video {source}")

        def video():
            index = 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield f"{source.stem}_{index:06d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                index += 1
            capture.release()

        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), video()
    return 1, iter([(source.stem, read_rgb(source))])


def assumed_camera(width: int, height: int) -> CameraModel:
    """A 53° horizontal field of view, centred: used only when no intrinsics are given."""
    return CameraModel.from_intrinsics(width, width, (width - 1) / 2, (height - 1) / 2, width, height)


def write_outputs(out_dir: Path, name: str, rgb: np.ndarray, result: DepthResult, max_range: float | None) -> None:
    cv2.imwrite(str(out_dir / f"{name}_depth.png"), depth_to_millimetres(result.depth))
    np.save(out_dir / f"{name}_depth.npy", result.depth)
    if result.confidence is not None:
        np.save(out_dir / f"{name}_confidence.npy", result.confidence)
    if rgb.shape[:2] != result.depth.shape:
        rgb = cv2.resize(rgb, result.camera.size, interpolation=cv2.INTER_AREA)
    preview = side_by_side(rgb, colorize(result.depth))
    cv2.imwrite(str(out_dir / f"{name}_preview.png"), cv2.cvtColor(preview, cv2.COLOR_RGB2BGR))
    write_ply(out_dir / f"{name}.ply", depth_to_points(result.depth, result.camera, max_range), rgb)


def predict(
    estimator: DepthEstimator,
    source: str | os.PathLike,
    output: str | os.PathLike,
    camera: CameraModel | None = None,
    max_range: float | None = None,
) -> int:
    """Run ``estimator`` on every frame of ``source``; returns the number of frames written."""
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    total, items = frames(source)
    count = 0
    for name, rgb in tqdm(items, total=total, unit="frame", disable=total <= 1):
        frame_camera = camera
        if frame_camera is None:
            frame_camera = assumed_camera(rgb.shape[1], rgb.shape[0])
            if count == 0:
                log.warning("no camera intrinsics given: point clouds assume %s", frame_camera.K.tolist())
        write_outputs(out_dir, name, rgb, estimator(rgb, frame_camera), max_range)
        count += 1
    return count
