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

import math
import os
import time
from collections import Counter
from dataclasses import dataclass, replace

import cv2
import numpy as np

from depth_estimation_ros.core.anchoring import Anchor
from depth_estimation_ros.core.backends import Backend, open_backend
from depth_estimation_ros.core.backends.base import network_input
from depth_estimation_ros.core.camera import CameraModel, Letterbox
from depth_estimation_ros.core.card import InputRule, ModelCard
from depth_estimation_ros.core.card_files import load_card
from depth_estimation_ros.core.files import IMAGE_SUFFIXES
from depth_estimation_ros.core.fusion import MODES as FUSION_MODES
from depth_estimation_ros.core.fusion import DepthFusion
from depth_estimation_ros.core.lidar import Projection, project_points
from depth_estimation_ros.core.mounting import Mounting
from depth_estimation_ros.core.prompt import depth_prompt

__all__ = [
    "IMAGE_SUFFIXES",
    "DepthEstimator",
    "DepthResult",
    "Geometry",
    "NoMetricScale",
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
    network_image: np.ndarray | None = None  # (h, w, 3) uint8: the RGB the network saw (colours for its resolution)
    sky: np.ndarray | None = None  # (H, W) bool: where the model saw sky (NaN in depth), for a model with a sky map


def check_rgb(image: np.ndarray) -> np.ndarray:
    """Accept (H, W, 3) uint8 RGB only; the error says what was given."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    return image


def _interpolation(rule: InputRule | None, source: tuple[int, int], target: tuple[int, int]) -> int:
    """The OpenCV flag for a resize: area averaging down, the card's kernel up (see :class:`InputRule`)."""
    kind = rule.interpolation if rule is not None else "area"
    if kind == "nearest":
        return cv2.INTER_NEAREST
    if kind == "area" or target[0] * target[1] <= source[0] * source[1]:
        return cv2.INTER_AREA
    return cv2.INTER_CUBIC if kind == "bicubic" else cv2.INTER_LINEAR


@dataclass(frozen=True)
class Geometry:
    """How a frame maps onto the network input: padding, then stretch or letterbox to ``size``."""

    size: tuple[int, int]  # network input (h, w)
    camera: CameraModel  # the network input's camera
    box: Letterbox | None  # where the frame sits in a letterboxed input
    pad: tuple[int, int]  # (pad_y, pad_x) added on each side of the frame first


def network_geometry(
    camera: CameraModel, size: tuple[int, int] | None, resize: str = "stretch", rule: InputRule | None = None
) -> Geometry:
    """The network input's size and camera for frames of ``camera`` (see :func:`network_image`)."""
    pad = rule.padding(camera.height, camera.width) if rule is not None else (0, 0)
    if pad != (0, 0):
        camera = camera.crop(-pad[1], -pad[0], camera.width + 2 * pad[1], camera.height + 2 * pad[0])
    h, w = size if size is not None else rule.network_size(camera.height, camera.width)
    if resize == "stretch" and not (rule is not None and rule.letterbox):  # a card's own letterbox wins
        corners = rule is not None and rule.align_corners
        return Geometry((h, w), camera.resize_corners(w, h) if corners else camera.resize(w, h), None, pad)
    net_camera, box = camera.letterbox(w, h)
    return Geometry((h, w), net_camera, box, pad)


def network_image(
    image: np.ndarray,
    camera: CameraModel,
    size: tuple[int, int] | None,
    resize: str = "stretch",
    rule: InputRule | None = None,
) -> tuple[np.ndarray, CameraModel, Letterbox | None]:
    """The uint8 RGB image the network sees (h, w, 3), its camera, and the letterbox (if any).

    ``rule`` (a model card's input rule) adds its padding first and picks the interpolation; with
    ``size`` None the rule also picks the size from the (padded) frame. The camera follows each step.
    """
    check_rgb(image)
    camera.check_image(image.shape)
    g = network_geometry(camera, size, resize, rule)
    (py, px), (h, w) = g.pad, g.size
    if g.pad != (0, 0):
        image = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REFLECT_101)
    flag = _interpolation(rule, image.shape[:2], (h, w))
    if g.box is None:
        if rule is not None and rule.align_corners:
            sx, sy = (w - 1) / max(image.shape[1] - 1, 1), (h - 1) / max(image.shape[0] - 1, 1)
            kernel = cv2.INTER_CUBIC if rule.interpolation == "bicubic" else cv2.INTER_LINEAR
            affine = np.array([[sx, 0, 0], [0, sy, 0]], dtype=np.float64)
            image = cv2.warpAffine(image, affine, (w, h), flags=kernel, borderMode=cv2.BORDER_REPLICATE)
        elif image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=flag)
        return image, g.camera, None
    box = g.box
    canvas = np.empty((h, w, 3), dtype=np.uint8)
    canvas[:] = np.round(rule.fill) if rule is not None else 0
    inner = cv2.resize(image, (box.inner_width, box.inner_height), interpolation=flag)
    canvas[box.pad_y : box.pad_y + box.inner_height, box.pad_x : box.pad_x + box.inner_width] = inner
    return canvas, g.camera, box


def preprocess(
    image: np.ndarray,
    camera: CameraModel,
    size: tuple[int, int] | None,
    resize: str = "stretch",
    rule: InputRule | None = None,
) -> tuple[np.ndarray, CameraModel, Letterbox | None]:
    """Network input (1, 3, h, w), the camera of that input, and the letterbox to undo (if any)."""
    pixels, net_camera, box = network_image(image, camera, size, resize, rule)
    return network_input(pixels, pixels.shape[:2]), net_camera, box


def postprocess(
    outputs: dict[str, np.ndarray],
    camera: CameraModel,
    net_camera: CameraModel,
    box: Letterbox | None = None,
    output_resolution: str = "camera",
    min_confidence: float = 0.0,
    out: dict[str, np.ndarray] | None = None,
    pad: tuple[int, int] = (0, 0),
) -> DepthResult:
    """Backend outputs → depth (and confidence) at the camera's or the network's resolution.

    ``out``: float32 arrays of the output size to write ``depth`` / ``confidence`` into (e.g.
    views of message buffers); the result then holds those arrays. ``pad``: the (pad_y, pad_x)
    border the input rule added around the frame, cut off again here.
    """
    depth = outputs["depth"][0, 0].astype(np.float32, copy=False)
    confidence = outputs["confidence"][0, 0].astype(np.float32, copy=False) if "confidence" in outputs else None
    if min_confidence > 0 and confidence is not None:
        depth = np.where(confidence >= min_confidence, depth, np.float32(np.nan))
    holes = min_confidence > 0
    if "invalid" in outputs:  # sky, or outside a graph's validity mask: never metres, never points
        depth = np.where(outputs["invalid"][0, 0] > 0.5, np.float32(np.nan), depth)
        holes = True
    out = out or {}
    maps = {"depth": depth} if confidence is None else {"depth": depth, "confidence": confidence}
    if "sky" in outputs:
        maps["sky"] = outputs["sky"][0, 0].astype(np.float32, copy=False)
    if output_resolution == "network":
        for name, values in maps.items():
            if name in out:
                np.copyto(out[name], values)
                maps[name] = out[name]
        return DepthResult(maps["depth"], maps.get("confidence"), net_camera, sky=_mask(maps.get("sky")))
    if box is not None:  # drop the letterbox padding first
        y, x = box.pad_y, box.pad_x
        maps = {k: m[y : y + box.inner_height, x : x + box.inner_width] for k, m in maps.items()}
    # Nearest keeps NaN holes from bleeding; bilinear would smear depth across them.
    mode = cv2.INTER_NEAREST if holes else cv2.INTER_LINEAR
    (py, px), (height, width) = pad, (camera.height, camera.width)
    for name, values in maps.items():
        dst = out.get(name)
        if dst is not None and dst.shape != (height, width):
            raise ValueError(f"out[{name!r}] is {dst.shape}, expected {(height, width)}")
        if pad != (0, 0):  # up-sample to the padded frame, keep the frame
            padded = cv2.resize(values, (width + 2 * px, height + 2 * py), interpolation=mode)
            values = padded[py : py + height, px : px + width]
            if dst is None:
                maps[name] = np.ascontiguousarray(values)
            else:
                np.copyto(dst, values)
                maps[name] = dst
            continue
        maps[name] = cv2.resize(values, camera.size, dst=dst, interpolation=mode)
        if dst is not None and maps[name].ctypes.data != dst.ctypes.data:  # OpenCV did not write in place
            np.copyto(dst, maps[name])
            maps[name] = dst
    return DepthResult(maps["depth"], maps.get("confidence"), camera, sky=_mask(maps.get("sky")))


def _mask(plane: np.ndarray | None) -> np.ndarray | None:
    return None if plane is None else plane > 0.5


def drop_implausible(depth: np.ndarray, bounds: tuple[float, float]) -> int:
    """Set depth outside ``bounds`` (metres) to NaN, in place; returns how many finite values that was."""
    low, high = bounds
    outside = ~((depth >= low) & (depth <= high))  # NaN too, already invalid
    outside &= np.isfinite(depth)
    count = int(np.count_nonzero(outside))
    if count:
        depth[outside] = np.nan
    return count


class NoMetricScale(ValueError):
    """A relative model's frame before any metric scale is known: nothing is published as metres."""


def to_metres(depth: np.ndarray, card: ModelCard, net_camera: CameraModel, focal_correction: bool) -> None:
    """The model's raw output → metres, in place, by the card's focal rule (see :mod:`.card`).

    ``inverse_focal``: Z = f / (W · c); ``ratio`` (when ``focal_correction``): Z · f / f_train, with
    f and W the camera's focal length (fx, or the mean of fx and fy where the card's ``focal_axis``
    says so) and width at the network input. Relative inverse depth is left as it is: it has no
    scale until anchored.
    """
    f = (net_camera.fx + net_camera.fy) / 2 if card.focal_axis == "mean" else net_camera.fx
    if card.focal_rule == "inverse_focal":
        np.maximum(depth, np.float32(1e-4), out=depth)  # canonical inverse depth: > 0, as Depth Pro clamps it
        np.divide(np.float32(f / net_camera.width), depth, out=depth)
    elif card.focal_rule == "ratio" and focal_correction:
        depth *= np.float32(f / card.focal_length)


class DepthEstimator:
    """Metric depth (and confidence) for RGB frames, with the camera model that describes them.

    Args:
        model: a checkpoint (.pt), ONNX graph (.onnx), TensorRT engine (.engine), a transformers
            model folder (or a Hub id in the local cache), or an open :class:`Backend`.
        backend: ``auto``, ``tensorrt``, ``onnxruntime`` or ``torch``.
        resize: ``stretch`` (each axis scaled to the network input) or ``letterbox`` (one scale,
            padded; keeps the aspect ratio).
        output_resolution: ``camera`` (default: depth at the input image's size) or ``network``.
        min_confidence: depth whose confidence is below this becomes NaN (0 keeps everything).
        focal_correction: apply the card's ``ratio`` focal rule (default: where the card has one);
            ``auto``/``on``/``off`` as the node's parameter are accepted too.
        scale_source: where metric scale comes from (:class:`~.anchoring.Anchor`): ``none`` (the
            model's own; refused for relative models), ``fixed``, ``sparse_depth`` (per-frame
            ``sparse`` depth) or ``ground_plane``; with ``fixed_scale``, ``fixed_shift``,
            ``camera_height`` (m), ``camera_pitch`` and ``camera_roll`` (degrees) as its options;
            ``sparse_points`` (per-frame LiDAR points as ``sparse``, (N, 3+)), with
            ``sparse_points_transform`` (``"x y z qx qy qz qw"`` of the cloud's frame in the camera's
            optical frame; empty: the cloud is in it).
        temporal_fusion: ``none``, ``odometry`` (each call's ``pose``, the odometry's body in the world,
            with ``camera_mounting``, ``"x y z qx qy qz qw"`` of the camera's optical frame in that
            body; empty: the odometry is the camera's) or ``static`` (a fixed camera):
            :class:`~.fusion.DepthFusion` of the metric depth over frames.
        card: the model card of an ONNX graph exported elsewhere: a built-in card's name, a YAML card
            file (:mod:`.card_files`) or a :class:`ModelCard`; None or empty: the model's own.
    """

    def __init__(
        self,
        model: str | os.PathLike | Backend,
        backend: str = "auto",
        resize: str = "stretch",
        output_resolution: str = "camera",
        min_confidence: float = 0.0,
        focal_correction: bool | str | None = None,
        scale_source: str = "none",
        fixed_scale: float = 1.0,
        fixed_shift: float = 0.0,
        camera_height: float = 0.0,
        camera_pitch: float = 0.0,
        camera_roll: float = 0.0,
        sparse_points_transform: str = "",
        temporal_fusion: str = "none",
        camera_mounting: str = "",
        card: str | ModelCard | None = None,
        **backend_options,
    ):
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        if output_resolution not in ("camera", "network"):
            raise ValueError(f"output_resolution must be 'camera' or 'network', got {output_resolution!r}")
        if not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if isinstance(card, str):
            card = load_card(card) if card else None
        if card is not None:
            backend_options["card"] = card
        self.backend = model if isinstance(model, Backend) else open_backend(model, backend, **backend_options)
        self.info = self.backend.info
        self.card = self.info.model_card
        # A model that takes a depth prompt gets the frame's sparse depth, and its output is then metres
        # (anchoring on top fits that metric depth); without sparse depth it is the card's relative model.
        self.prompted = self.card.prompt == "depth" and scale_source == "sparse_depth"
        if self.prompted:
            self.card = replace(self.card, output="metric_depth")
        if self.card.relative and scale_source == "none":
            raise ValueError(
                f"{self.info.name} is a relative model ({self.card.output}): it has no metric scale of its own; "
                "set scale_source to sparse_depth, ground_plane or fixed"
            )
        self.anchor: Anchor | None = None
        if scale_source != "none":  # an unknown source is refused by Anchor, naming it
            self.anchor = Anchor(
                scale_source, "inverse_depth" if self.card.relative else "depth", fixed_scale=fixed_scale,
                fixed_shift=fixed_shift, camera_height=camera_height, camera_pitch=math.radians(camera_pitch),
                camera_roll=math.radians(camera_roll),
            )  # fmt: skip
        focal_correction = {"auto": None, "on": True, "off": False}.get(focal_correction, focal_correction)
        self.focal_correction = self.card.focal_rule == "ratio" if focal_correction is None else focal_correction
        self.resize, self.output_resolution, self.min_confidence = resize, output_resolution, min_confidence
        self.timings: dict[str, float] = {}  # seconds per stage of the last call
        self.implausible = 0  # pixels so far outside the card's plausible metres, made NaN
        self.anchoring: Counter[str] = Counter()  # frames so far by what a fitted scale source did
        self.predicted_intrinsics: tuple[np.ndarray, np.ndarray] | None = None  # (model's K, camera's K) at the input
        self.mounting = Mounting.from_text(sparse_points_transform)
        if temporal_fusion not in FUSION_MODES:
            raise ValueError(f"temporal_fusion must be one of {FUSION_MODES}, got {temporal_fusion!r}")
        self.fusion_mode = temporal_fusion
        self.fusion = DepthFusion() if temporal_fusion != "none" else None
        self.body_from_camera = (Mounting.from_text(camera_mounting) or Mounting()).matrix
        self.projection: Projection | None = None  # the last frame's LiDAR points in the camera

    @property
    def input_size(self) -> tuple[int, int]:
        """The network input size (for models whose rule follows the frame: the rule's box)."""
        return self.info.input_height, self.info.input_width

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """The network input size, or None where the card's rule picks it per frame."""
        return None if self.info.dynamic else self.input_size

    @property
    def plain(self) -> bool:
        """Metres straight from the graph at a fixed size: what the GPU device path runs."""
        return (
            not self.info.dynamic
            and self.card.graph_io is None  # a graph exported elsewhere is fed and read by its card, on the host
            and self.card.input.pad == "none"
            and self.anchor is None
            and (self.card.focal_rule == "none" or (self.card.focal_rule == "ratio" and not self.focal_correction))
        )

    def geometry(self, camera: CameraModel) -> Geometry:
        """How frames of ``camera`` map onto the network input."""
        return network_geometry(camera, self.fixed_size, self.resize, self.card.input)

    def output_camera(self, camera: CameraModel) -> CameraModel:
        """The camera of the depth returned for images of ``camera``."""
        return camera if self.output_resolution == "camera" else self.geometry(camera).camera

    def __call__(
        self,
        image: np.ndarray,
        camera: CameraModel,
        out: dict[str, np.ndarray] | None = None,
        sparse: np.ndarray | None = None,
        stamp: float = 0.0,
        pose: np.ndarray | None = None,
    ) -> DepthResult:
        """Depth for one RGB frame; ``out`` as in :func:`postprocess` (arrays of the output camera's size).

        ``sparse``: metric depth registered to the camera (any resolution, NaN/0 holes) for a
        ``sparse_depth`` anchor, LiDAR points (N, 3+) for ``sparse_points``; ``stamp``: the frame's
        time in seconds (the anchor's filter clock); ``pose``: the odometry's body in the world (4×4)
        at the frame's stamp, for ``temporal_fusion`` ``odometry`` (None: no pose, the fusion resets).
        Raises :class:`NoMetricScale` for a relative model before its first scale.
        """
        start = time.perf_counter()
        pixels, net_camera, box = network_image(image, camera, self.fixed_size, self.resize, self.card.input)
        batch = network_input(pixels, pixels.shape[:2])
        ran = time.perf_counter()
        io = self.card.graph_io
        extra: dict[str, np.ndarray] = {}
        if io is not None and io.needs_camera:
            extra["K"] = net_camera.K
        if self.prompted:  # Prompt Depth Anything: the frame's own sparse depth, made a dense prompt
            prompt = depth_prompt(sparse) if sparse is not None else None
            if prompt is None:
                why = "no sparse depth for this frame" if sparse is None else "too few sparse depth readings"
                raise NoMetricScale(f"no depth prompt ({why}); {self.info.name} needs one per frame")
            extra["prompt"] = prompt
        outputs = self.backend(batch, **extra)
        if "intrinsics" in outputs:  # the camera the network infers, beside the one it was given
            self.predicted_intrinsics = (outputs["intrinsics"], net_camera.K)
        done = time.perf_counter()
        pad = self.card.input.padding(camera.height, camera.width)
        result = postprocess(outputs, camera, net_camera, box, self.output_resolution, self.min_confidence, out, pad)
        result.network_image = pixels
        to_metres(result.depth, self.card, net_camera, self.focal_correction)
        if self.anchor is not None:
            if self.anchor.source == "sparse_points" and sparse is not None:
                self.projection = project_points(sparse, result.camera, self.mounting)
                sparse = self.projection.depth
            metric = self.anchor.apply(result.depth, result.camera.K, stamp, sparse)
            if metric is None:
                fit = self.anchor.last_fit
                why = fit.reason if fit is not None else "no sparse depth received yet"
                self.anchoring[self.anchor.outcome] += 1
                raise NoMetricScale(f"no metric scale yet (scale_source {self.anchor.source}): {why}")
            if metric is not result.depth:
                np.copyto(result.depth, metric)
            if self.anchor.outcome:
                self.anchoring[self.anchor.outcome] += 1
        self.implausible += drop_implausible(result.depth, self.card.plausible_depth)
        if self.fusion is not None:
            camera_pose = np.eye(4) if self.fusion_mode == "static" else None
            if pose is not None and self.fusion_mode == "odometry":
                camera_pose = np.asarray(pose, np.float64) @ self.body_from_camera
            np.copyto(result.depth, self.fusion(result.depth, result.camera, camera_pose))
        self.timings = {"preprocess": ran - start, "inference": done - ran, "postprocess": time.perf_counter() - done}
        return result
