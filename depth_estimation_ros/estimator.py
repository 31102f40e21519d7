"""One road from a camera frame to metric depth: pre-process → backend → post-process.

The node, the bag tool and ``depth-estimation predict`` all use :class:`DepthEstimator`; none has
pre- or post-processing of its own.

* Pre-process: the RGB image is resized (``stretch``) or letterboxed to the network input; the
  camera model follows exactly.
* Backend: TensorRT, ONNX Runtime or PyTorch, all returning metres (and confidence).
* Post-process: back to the camera resolution (default) or kept at network resolution, with the
  camera model that describes the returned image. Invalid depth is NaN.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import cv2
import numpy as np

from .backends import Backend, open_backend
from .backends.base import network_input
from .camera import CameraModel, Letterbox
from .files import IMAGE_SUFFIXES

__all__ = [
    "IMAGE_SUFFIXES",
    "DepthEstimator",
    "DepthResult",
    "network_image",
    "network_input",
    "postprocess",
    "preprocess",
]
RESIZE_MODES = ("stretch", "letterbox")


@dataclass
class DepthResult:
    depth: np.ndarray  # (H, W) float32 metres, NaN invalid
    confidence: np.ndarray | None  # (H, W) float32 in [0, 1], or None
    camera: CameraModel  # describes depth and confidence exactly


def check_rgb(image: np.ndarray) -> np.ndarray:
    """Accept (H, W, 3) uint8 RGB only; the error says what was given."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    return image


def network_image(
    image: np.ndarray, camera: CameraModel, size: tuple[int, int], resize: str = "stretch"
) -> tuple[np.ndarray, CameraModel, Letterbox | None]:
    """The uint8 RGB image the network sees (h, w, 3), its camera, and the letterbox (if any)."""
    check_rgb(image)
    camera.check_image(image.shape)
    h, w = size
    if resize == "stretch":
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        return image, camera.resize(w, h), None
    net_camera, box = camera.letterbox(w, h)
    canvas = np.zeros((h, w, 3), dtype=np.uint8)
    inner = cv2.resize(image, (box.inner_width, box.inner_height), interpolation=cv2.INTER_AREA)
    canvas[box.pad_y : box.pad_y + box.inner_height, box.pad_x : box.pad_x + box.inner_width] = inner
    return canvas, net_camera, box


def preprocess(
    image: np.ndarray, camera: CameraModel, size: tuple[int, int], resize: str = "stretch"
) -> tuple[np.ndarray, CameraModel, Letterbox | None]:
    """Network input (1, 3, h, w), the camera of that input, and the letterbox to undo (if any)."""
    pixels, net_camera, box = network_image(image, camera, size, resize)
    return network_input(pixels, size), net_camera, box


def postprocess(
    outputs: dict[str, np.ndarray],
    camera: CameraModel,
    net_camera: CameraModel,
    box: Letterbox | None = None,
    output_resolution: str = "camera",
    min_confidence: float = 0.0,
    out: dict[str, np.ndarray] | None = None,
) -> DepthResult:
    """Backend outputs → depth (and confidence) at the camera's or the network's resolution.

    ``out``: float32 arrays of the output size to write ``depth`` / ``confidence`` into (e.g.
    views of message buffers); the result then holds those arrays.
    """
    depth = outputs["depth"][0, 0].astype(np.float32, copy=False)
    confidence = outputs["confidence"][0, 0].astype(np.float32, copy=False) if "confidence" in outputs else None
    if min_confidence > 0 and confidence is not None:
        depth = np.where(confidence >= min_confidence, depth, np.float32(np.nan))
    out = out or {}
    maps = {"depth": depth} if confidence is None else {"depth": depth, "confidence": confidence}
    if output_resolution == "network":
        for name, values in maps.items():
            if name in out:
                np.copyto(out[name], values)
                maps[name] = out[name]
        return DepthResult(maps["depth"], maps.get("confidence"), net_camera)
    if box is not None:  # drop the letterbox padding first
        y, x = box.pad_y, box.pad_x
        maps = {k: m[y : y + box.inner_height, x : x + box.inner_width] for k, m in maps.items()}
    # Nearest keeps NaN holes from bleeding; bilinear would smear depth across them.
    mode = cv2.INTER_NEAREST if min_confidence > 0 else cv2.INTER_LINEAR
    for name, values in maps.items():
        dst = out.get(name)
        if dst is not None and dst.shape != (camera.height, camera.width):
            raise ValueError(f"out[{name!r}] is {dst.shape}, expected {(camera.height, camera.width)}")
        maps[name] = cv2.resize(values, camera.size, dst=dst, interpolation=mode)
        if dst is not None and maps[name].ctypes.data != dst.ctypes.data:  # OpenCV did not write in place
            np.copyto(dst, maps[name])
            maps[name] = dst
    return DepthResult(maps["depth"], maps.get("confidence"), camera)


class DepthEstimator:
    """Metric depth (and confidence) for RGB frames, with the camera model that describes them.

    Args:
        model: a checkpoint (.pt), ONNX graph (.onnx) or TensorRT engine (.engine), or an open
            :class:`Backend`.
        backend: ``auto``, ``tensorrt``, ``onnxruntime`` or ``torch``.
        resize: ``stretch`` (each axis scaled to the network input) or ``letterbox`` (one scale,
            padded; keeps the aspect ratio).
        output_resolution: ``camera`` (default: depth at the input image's size) or ``network``.
        min_confidence: depth whose confidence is below this becomes NaN (0 keeps everything).
    """

    def __init__(
        self,
        model: str | os.PathLike | Backend,
        backend: str = "auto",
        resize: str = "stretch",
        output_resolution: str = "camera",
        min_confidence: float = 0.0,
        **backend_options,
    ):
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        if output_resolution not in ("camera", "network"):
            raise ValueError(f"output_resolution must be 'camera' or 'network', got {output_resolution!r}")
        if not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.backend = model if isinstance(model, Backend) else open_backend(model, backend, **backend_options)
        self.info = self.backend.info
        self.resize, self.output_resolution, self.min_confidence = resize, output_resolution, min_confidence
        self.timings: dict[str, float] = {}  # seconds per stage of the last call

    @property
    def input_size(self) -> tuple[int, int]:
        return self.info.input_height, self.info.input_width

    def output_camera(self, camera: CameraModel) -> CameraModel:
        """The camera of the depth returned for images of ``camera``."""
        if self.output_resolution == "camera":
            return camera
        h, w = self.input_size
        return camera.resize(w, h) if self.resize == "stretch" else camera.letterbox(w, h)[0]

    def __call__(self, image: np.ndarray, camera: CameraModel, out: dict[str, np.ndarray] | None = None) -> DepthResult:
        """Depth for one RGB frame; ``out`` as in :func:`postprocess` (arrays of the output camera's size)."""
        start = time.perf_counter()
        batch, net_camera, box = preprocess(image, camera, self.input_size, self.resize)
        ran = time.perf_counter()
        outputs = self.backend(batch)
        done = time.perf_counter()
        result = postprocess(outputs, camera, net_camera, box, self.output_resolution, self.min_confidence, out)
        self.timings = {"preprocess": ran - start, "inference": done - ran, "postprocess": time.perf_counter() - done}
        return result
