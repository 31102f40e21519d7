"""A foreign graph's tensors, mapped onto the project's contract by its model card.

Graphs exported here take ``image`` (RGB in [0, 1], normalised inside) and return ``depth`` (and
``confidence`` in [0, 1]) at the input size. Graphs exported by others (Depth Anything 3, Metric3D,
MoGe, UniDepth) name their tensors otherwise, want their pixels in another order, range or
normalisation, may take the camera's intrinsics, and return more than depth: a sky map, a validity
mask, a confidence of their own convention. :class:`GraphIO` (a card's ``graph`` section) says
which tensor is which, and :func:`feeds` / :func:`outputs` translate, so the rest of the road (the
card's output kind and focal rule, anchoring, the cloud) is the same for every model.

Sky and invalid pixels come back as one ``invalid`` map: the estimator makes them NaN, never metres
and never points.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from depth_estimation_ros.core.pointmap import depth_from_points

CHANNELS = ("rgb", "bgr")
# The camera at the network input: K (B, 3, 3), (fx, fy, cx, cy) (B, 4), or unit rays (B, 3, H, W)
# through the pixel centres, K⁻¹·(u + 0.5, v + 0.5, 1) normalised (UniDepth's ``rays``).
INTRINSICS_LAYOUTS = ("matrix", "fx_fy_cx_cy", "rays")
# confidence → [0, 1], higher = more trustworthy: ``identity`` (already so), ``sigmoid`` (a logit),
# ``exp_neg`` (an uncertainty u ≥ 0: exp(−u)), ``inverse`` (an uncertainty u ≥ 0: 1 / (1 + u)),
# ``one_minus`` (an uncertainty in [0, 1]: 1 − u), ``reciprocal`` (a confidence c ≥ 1, as 1 + exp(x)
# heads output: 1 − 1/c)
CONFIDENCE_MAPS = ("identity", "sigmoid", "exp_neg", "inverse", "one_minus", "reciprocal")
# a sky or validity map: a ``score`` compared with the threshold as it is (a probability, DA3's ReLU
# sky score), or a ``logit`` (its sigmoid is compared)
MAP_KINDS = ("score", "logit")


def _name(value, field_name: str, optional: bool = True) -> str:
    if not isinstance(value, str) or (not value and not optional):
        raise ValueError(f"model card graph.{field_name} must be a tensor name, got {value!r}")
    return value


def _choice(value, choices: tuple[str, ...], field_name: str) -> None:
    if value not in choices:
        raise ValueError(f"model card graph.{field_name}={value!r} must be one of {list(choices)}")


@dataclass(frozen=True)
class GraphIO:
    """Which tensor is which in a graph not exported here, and its conventions (a card's ``graph``)."""

    image: str  # the image input: (1, 3, H, W) float
    channels: str = "rgb"
    value_range: float = 1.0  # pixels in [0, value_range] before the card's normalisation (1 or 255)
    intrinsics: str = ""  # an input taking the camera's K at the network input, if the graph has one
    intrinsics_layout: str = "matrix"
    depth: str = "depth"  # what the card's ``output`` kind describes: (1, 1, h, w), (1, h, w) or (h, w)
    depth_channel: int = 0  # of a (1, C, h, w) output: 2 takes z from a point map (x, y, z)
    points: str = ""  # instead of depth: a point map known up to a z-shift (MoGe), solved with the camera
    points_layout: str = "hwc"  # (1, h, w, 3) or (1, 3, h, w)
    metric_scale: str = ""  # with points: the map's scale, one number (MoGe-2)
    predicted_intrinsics: str = ""  # the camera the network infers, K (1, 3, 3) at its input (UniDepth)
    confidence: str = ""
    confidence_map: str = "identity"
    sky: str = ""  # sky pixels are never depth
    sky_kind: str = "score"
    mask: str = ""  # a validity mask: where it says invalid, no depth
    mask_kind: str = "score"
    threshold: float = 0.5  # a sky score at or above it is sky; a mask score above it is valid

    def __post_init__(self):
        _name(self.image, "image", optional=False)
        for field_name in (
            "depth",
            "intrinsics",
            "confidence",
            "sky",
            "mask",
            "points",
            "metric_scale",
            "predicted_intrinsics",
        ):
            _name(getattr(self, field_name), field_name)
        if bool(self.depth) == bool(self.points):
            raise ValueError("model card graph: name the depth output or the points output (depth: '' with points)")
        if self.points and not self.metric_scale:
            raise ValueError("model card graph.points needs metric_scale (a map without a scale is not wired yet)")
        _choice(self.points_layout, ("hwc", "chw"), "points_layout")
        _choice(self.channels, CHANNELS, "channels")
        _choice(self.intrinsics_layout, INTRINSICS_LAYOUTS, "intrinsics_layout")
        _choice(self.confidence_map, CONFIDENCE_MAPS, "confidence_map")
        _choice(self.sky_kind, MAP_KINDS, "sky_kind")
        _choice(self.mask_kind, MAP_KINDS, "mask_kind")
        if self.value_range not in (1, 1.0, 255, 255.0) or isinstance(self.value_range, bool):
            raise ValueError(f"model card graph.value_range must be 1 or 255, got {self.value_range!r}")
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int | float)
            or not 0 < self.threshold < 1
        ):
            raise ValueError(f"model card graph.threshold must be in (0, 1), got {self.threshold!r}")
        if isinstance(self.depth_channel, bool) or not isinstance(self.depth_channel, int) or self.depth_channel < 0:
            raise ValueError(f"model card graph.depth_channel must be an integer ≥ 0, got {self.depth_channel!r}")
        names, outputs = self.input_names, self.output_names
        if len(set(names)) != len(names) or len(set(outputs)) != len(outputs):
            raise ValueError(f"model card graph: a tensor is named twice (inputs {names}, outputs {outputs})")

    @property
    def input_names(self) -> list[str]:
        return [n for n in (self.image, self.intrinsics) if n]

    @property
    def output_names(self) -> list[str]:
        named = (self.depth, self.points, self.metric_scale, self.confidence, self.sky, self.mask,
                 self.predicted_intrinsics)  # fmt: skip
        return [n for n in named if n]

    @property
    def needs_camera(self) -> bool:
        """Whether the camera's K goes in (an intrinsics input) or is needed to read the outputs (points)."""
        return bool(self.intrinsics or self.points)


def intrinsics_tensor(io: GraphIO, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The camera's K (at the network input of ``size`` (h, w)) in the layout the graph takes, float32
    with a batch axis."""
    if io.intrinsics_layout == "matrix":
        return np.asarray(K, np.float32).reshape(1, 3, 3)
    if io.intrinsics_layout == "fx_fy_cx_cy":
        return np.array([[K[0, 0], K[1, 1], K[0, 2], K[1, 2]]], np.float32)
    return _rays(np.asarray(K, np.float64).tobytes(), tuple(size))


@functools.lru_cache(maxsize=4)  # one camera and size per stream: computed once, not per frame
def _rays(K_bytes: bytes, size: tuple[int, int]) -> np.ndarray:
    """Unit rays K⁻¹·(u + 0.5, v + 0.5, 1), (1, 3, h, w) float32 (read-only: shared between frames)."""
    K = np.frombuffer(K_bytes, np.float64).reshape(3, 3)
    v, u = np.mgrid[: size[0], : size[1]].astype(np.float64) + 0.5
    rays = np.einsum("ij,jhw->ihw", np.linalg.inv(K), np.stack([u, v, np.ones_like(u)]))
    rays = (rays / np.linalg.norm(rays, axis=0, keepdims=True)).astype(np.float32)[None]
    rays.flags.writeable = False
    return rays


def feeds(io: GraphIO, batch: np.ndarray, normalization: dict, K: np.ndarray | None = None,
          dtype=np.float32) -> dict[str, np.ndarray]:  # fmt: skip
    """The graph's inputs for ``batch`` (1, 3, H, W) RGB in [0, 1]; ``K``: the network input's camera
    matrix, for a graph that takes it."""
    pixels = batch[:, ::-1] if io.channels == "bgr" else batch
    if normalization:  # mean and std in [0, 1] units, whatever range the graph's pixels are in
        mean = np.asarray(normalization["mean"], np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(normalization["std"], np.float32).reshape(1, 3, 1, 1)
        pixels = (pixels - mean) / std
    elif io.value_range != 1:
        pixels = pixels * np.float32(io.value_range)
    out = {io.image: np.ascontiguousarray(pixels, dtype=dtype)}
    if io.intrinsics:
        if K is None:
            raise ValueError(f"the graph takes the camera's intrinsics ({io.intrinsics}); none were given")
        out[io.intrinsics] = intrinsics_tensor(io, K, batch.shape[2:]).astype(dtype)
    return out


def _plane(values: np.ndarray, name: str, size: tuple[int, int], nearest: bool = False, channel: int = 0) -> np.ndarray:
    """A graph output as one (h, w) float32 plane at the network input size ``size``; of a (1, C, h, w)
    output, ``channel``."""
    plane = np.asarray(values)
    if plane.ndim == 4 and plane.shape[0] == 1 and channel < plane.shape[1]:
        plane = plane[0, channel]
    while plane.ndim > 2 and plane.shape[0] == 1:
        plane = plane[0]
    if plane.ndim != 2:
        raise ValueError(f"graph output {name} has shape {list(np.shape(values))}; expected one plane per image")
    plane = plane.astype(np.float32, copy=False)
    if plane.shape != size:
        mode = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        plane = cv2.resize(plane, (size[1], size[0]), interpolation=mode)
    return plane


def _probability(values: np.ndarray, kind: str) -> np.ndarray:
    return 1 / (1 + np.exp(-values)) if kind == "logit" else values


def confidence(io: GraphIO, values: np.ndarray) -> np.ndarray:
    """The graph's confidence in [0, 1], higher = more trustworthy (see :data:`CONFIDENCE_MAPS`)."""
    mapped = {
        "identity": lambda c: c,
        "sigmoid": lambda c: _probability(c, "logit"),
        "exp_neg": lambda c: np.exp(-np.maximum(c, 0)),
        "inverse": lambda c: 1 / (1 + np.maximum(c, 0)),
        "one_minus": lambda c: 1 - c,
        "reciprocal": lambda c: 1 - 1 / np.maximum(c, 1),
    }[io.confidence_map](values)
    return np.clip(mapped, 0, 1).astype(np.float32, copy=False)


def _points(io: GraphIO, values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (1, h, w, 3) or (1, 3, h, w) point map as (h, w, 3) float32 at ``size``."""
    points = np.asarray(values, np.float32)
    points = points[0] if points.ndim == 4 and points.shape[0] == 1 else points
    points = np.moveaxis(points, 0, -1) if io.points_layout == "chw" and points.ndim == 3 else points
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"graph output {io.points} has shape {list(np.shape(values))}; expected a point map "
                         f"({io.points_layout})")  # fmt: skip
    if points.shape[:2] != size:
        points = cv2.resize(points, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return points


def outputs(io: GraphIO, raw: dict[str, np.ndarray], size: tuple[int, int],
            K: np.ndarray | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """The graph's outputs in the project's contract, each (1, 1, h, w) at the network input size:
    ``depth`` (what the card's output kind says), ``confidence`` in [0, 1], ``invalid`` (1 where the
    sky or the validity mask rules the pixel out) and ``sky`` (1 on sky); and ``intrinsics``, the (3, 3) K the network
    infers at its input, where it says one. ``K``: the network input's camera matrix, which a point
    map known up to a z-shift needs."""
    valid = np.ones(size, bool)
    if io.mask:
        valid = _probability(_plane(raw[io.mask], io.mask, size, nearest=True), io.mask_kind) > io.threshold
    if io.points:
        if K is None:
            raise ValueError(f"the graph's point map ({io.points}) needs the camera's intrinsics; none were given")
        scale = float(np.asarray(raw[io.metric_scale]).reshape(-1)[0])
        depth = depth_from_points(_points(io, raw[io.points], size), valid, K, scale)
    else:
        depth = _plane(raw[io.depth], io.depth, size, channel=io.depth_channel)
    result = {"depth": depth}
    if io.confidence:
        result["confidence"] = confidence(io, _plane(raw[io.confidence], io.confidence, size))
    invalid = ~valid
    if io.sky:
        sky = _probability(_plane(raw[io.sky], io.sky, size, nearest=True), io.sky_kind) >= io.threshold
        result["sky"] = sky.astype(np.float32)
        invalid |= sky
    if io.sky or io.mask:
        result["invalid"] = invalid.astype(np.float32)
    planes = {name: plane[None, None] for name, plane in result.items()}
    if io.predicted_intrinsics:  # (3, 3), not a plane
        planes["intrinsics"] = np.asarray(raw[io.predicted_intrinsics], np.float64).reshape(-1)[:9].reshape(3, 3)
    return planes
