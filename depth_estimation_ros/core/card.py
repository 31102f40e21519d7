"""Model cards: what a depth network's output means and how its input is made.

Every model the project runs (an ACAN/MSFNet checkpoint, a transformers folder, an ONNX graph, a
TensorRT engine) carries a card, so pre- and post-processing follow the model and never a guess:

* ``output``: ``metric_depth`` (metres along the optical axis), ``relative_inverse_depth``
  (affine-invariant disparity: unknown scale and shift, as MiDaS, DPT and Depth Anything's relative
  heads) or ``canonical_inverse_depth`` (Depth Pro: metres once the focal length is known).
* ``focal_rule`` and ``focal_length``: how the camera's focal length enters (below).
* ``input``: the size rule, interpolation and padding the model was trained with (:class:`InputRule`);
  normalisation happens inside the graph and is recorded for reference.

Focal rules, with ``f`` the camera's focal length in pixels *at the network input* and ``W`` the
network input width:

* ``ratio``: a metric model trained on one camera sees an object of size S at depth Z as S·f_t/Z
  pixels, so on a camera of focal length f the same picture means depth Z·f/f_t:
  ``Z = Z_pred · f / focal_length``. ACAN and MSFNet record f_t, the focal length of their training
  camera at their input (NYU's Kinect, KITTI's camera or the generated scenes'); Metric3D's canonical
  camera and Depth Anything 3's ``f/300`` are the same rule with ``focal_length`` 300 at the input.
* ``inverse_focal`` (Depth Pro): the output c is a canonical inverse depth, ``Z = f / (W · c)``.
* ``none``: the output does not depend on the camera (or the training camera is unknown).

A card that predates these fields (an ONNX graph or engine exported before cards existed) reads as
metric depth with no focal rule: the old behaviour, which :func:`card_of` reports once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property

from depth_estimation_ros.core.graph_io import GraphIO

log = logging.getLogger(__name__)

OUTPUT_KINDS = ("metric_depth", "relative_inverse_depth", "canonical_inverse_depth")
FOCAL_RULES = ("none", "ratio", "inverse_focal")
INTERPOLATIONS = ("area", "nearest", "bilinear", "bicubic")
PADDINGS = ("none", "reflect_sqrt")  # reflect_sqrt: ZoeDepth's int(3·sqrt(side / 2)) reflect border
# The largest network input: 2048×2048 (Depth Pro's 1536×1536 fits). Memory grows with it, in
# attention quadratically: GLPN at a 24 MP frame's own size would ask for tens of GB.
MAX_NETWORK_PIXELS = 1 << 22
_warned: set[str] = set()


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model card {name} must be a positive integer, got {value!r}")
    return value


def _choice(value, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"model card {name}={value!r} must be one of {list(choices)}")
    return value


@dataclass(frozen=True)
class InputRule:
    """How a frame becomes the network input.

    ``fixed``: the network runs at exactly ``height``×``width`` (an exported graph, ACAN/MSFNet); the
    frame is stretched or letterboxed to it. Otherwise the size follows the frame (transformers'
    rules): with ``box``, each axis is scaled to the ``height``×``width`` box, with one scale for
    both when ``keep_aspect`` (the scale closer to 1, "scale as little as possible"), then each side
    is rounded to the nearest multiple of ``multiple``; without ``box`` (GLPN), the frame keeps its
    size, rounded down to a multiple. ``pad`` is applied to the frame before resizing. A size that
    follows the frame is at most ``max_pixels`` (a larger frame is scaled down to it, keeping its
    aspect): the model's memory bound, at most :data:`MAX_NETWORK_PIXELS`.

    Interpolation: ``bilinear``/``bicubic`` up-sample with that kernel and down-sample by area
    averaging (what an antialiased resize approximates); ``area`` always averages.
    """

    height: int
    width: int
    fixed: bool = True
    keep_aspect: bool = False
    multiple: int = 1
    interpolation: str = "area"
    pad: str = "none"
    box: bool = True
    align_corners: bool = False  # ZoeDepth resizes with corner pixels aligned
    max_pixels: int = MAX_NETWORK_PIXELS  # a size that follows the frame is scaled down to at most this
    letterbox: bool = False  # the model's own fit: one scale, centred, the rest filled with ``fill``
    fill: tuple = (0.0, 0.0, 0.0)  # RGB 0-255 of a letterbox's border (Metric3D: its mean colour)

    def __post_init__(self):
        for name in ("height", "width", "multiple", "max_pixels"):
            _positive_int(getattr(self, name), f"input.{name}")
        if max(self.height * self.width, self.max_pixels) > MAX_NETWORK_PIXELS:
            raise ValueError(f"model card input {self.height}x{self.width} (max_pixels {self.max_pixels}) is more "
                             f"than the {MAX_NETWORK_PIXELS} pixels a network input may have here")  # fmt: skip
        _choice(self.interpolation, INTERPOLATIONS, "input.interpolation")
        _choice(self.pad, PADDINGS, "input.pad")
        flags = (self.fixed, self.keep_aspect, self.box, self.align_corners, self.letterbox)
        if not all(isinstance(v, bool) for v in flags):
            raise ValueError("model card input.fixed, keep_aspect, box, align_corners and letterbox must be booleans")
        fill = tuple(self.fill) if isinstance(self.fill, list | tuple) else ()
        if len(fill) != 3 or not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 255
                                     for v in fill):  # fmt: skip
            raise ValueError(f"model card input.fill must be three numbers from 0 to 255, got {self.fill!r}")
        object.__setattr__(self, "fill", tuple(float(v) for v in fill))
        if self.letterbox and not self.fixed:
            raise ValueError("model card input.letterbox needs a fixed input size (input.fixed: true)")

    def padding(self, height: int, width: int) -> tuple[int, int]:
        """(pad_y, pad_x) added on each side of a ``height``×``width`` frame before resizing."""
        if self.pad == "reflect_sqrt":
            return int(math.sqrt(height / 2) * 3), int(math.sqrt(width / 2) * 3)
        return 0, 0

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The network input (h, w) for a (padded) frame of ``height``×``width``."""
        if self.fixed:
            return self.height, self.width
        m = self.multiple
        if self.box:
            sy, sx = self.height / height, self.width / width
            if self.keep_aspect:
                sy = sx = sx if abs(1 - sx) < abs(1 - sy) else sy
            size = max(m, round(sy * height / m) * m), max(m, round(sx * width / m) * m)
        else:
            size = max(m, height // m * m), max(m, width // m * m)
        if size[0] * size[1] <= self.max_pixels:
            return size
        # a larger frame is scaled down to the bound, keeping its aspect and the multiple
        s = math.sqrt(self.max_pixels / (height * width))
        return max(m, int(height * s) // m * m), max(m, int(width * s) // m * m)

    def at(self, height: int, width: int) -> InputRule:
        """This rule frozen at one size (what an exported graph runs at)."""
        return replace(self, height=height, width=width, fixed=True)


def _check_normalization(norm) -> None:
    """None, or three finite means and three stds ≥ 1e-3 (a zero std makes every depth NaN)."""
    if norm == {}:
        return
    ok = isinstance(norm, dict) and set(norm) == {"mean", "std"}
    ok = ok and all(isinstance(norm[k], list | tuple) and len(norm[k]) == 3 for k in ("mean", "std"))
    values = [*norm["mean"], *norm["std"]] if ok else []
    ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in values)
    if not ok or not all(s >= 1e-3 for s in norm["std"]):
        raise ValueError(f"model card normalization must be {{}} or three finite means and three stds ≥ 0.001, "
                         f"got {norm!r}")  # fmt: skip


# Depth that can be metres in a camera's depth image at all: 1 mm to 10 km. Nothing outside is
# published or written as metres, whatever the model, the intrinsics or the anchor made of it.
PLAUSIBLE_DEPTH_M = (1e-3, 1e4)
# How far beyond its card's range a metric model's depth may go: focal-length correction and
# anchoring legitimately move it (a narrower lens, a scale fitted to a sensor), but not by 10×.
RANGE_MARGIN = 10.0


@dataclass(frozen=True)
class ModelCard:
    """What a model computes, carried in checkpoints, ONNX metadata and engine sidecars."""

    output: str
    input: InputRule
    min_depth: float
    max_depth: float
    has_confidence: bool = False
    focal_rule: str = "none"
    focal_length: float | None = None  # px at the network input; for ``ratio``
    focal_axis: str = "fx"  # the camera's focal length the rule takes: ``fx``, or ``mean`` of fx and fy
    normalization: dict = field(default_factory=dict)
    family: str = ""
    licence: str = ""
    source: str = ""
    graph: dict = field(default_factory=dict)  # a graph not exported here: its tensors (:class:`.GraphIO`)
    prompt: str = ""  # ``depth``: the model takes the frame's metric sparse depth as its prompt (Prompt Depth Anything)

    def __post_init__(self):
        if isinstance(self.input, dict):
            object.__setattr__(self, "input", InputRule(**self.input))
        if not isinstance(self.graph, dict):
            raise ValueError(f"model card graph must be a mapping, got {self.graph!r}")
        if self.graph and self.graph_io.confidence:  # the graph's confidence is the card's
            object.__setattr__(self, "has_confidence", True)
        _choice(self.output, OUTPUT_KINDS, "output")
        _choice(self.focal_rule, FOCAL_RULES, "focal_rule")
        _choice(self.focal_axis, ("fx", "mean"), "focal_axis")
        _choice(self.prompt, ("", "depth"), "prompt")
        depths = (self.min_depth, self.max_depth)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in depths) or not 0 < depths[0] < depths[1]:
            raise ValueError(f"model card depth range must be finite with 0 < min < max, got {list(depths)}")
        if self.focal_rule == "ratio":
            f = self.focal_length
            if isinstance(f, bool) or not isinstance(f, int | float) or not math.isfinite(f) or f <= 0:
                raise ValueError(f"model card focal_rule 'ratio' needs a focal_length > 0 in pixels, got {f!r}")
        _check_normalization(self.normalization)
        if self.output == "canonical_inverse_depth" and self.focal_rule != "inverse_focal":
            raise ValueError("model card output 'canonical_inverse_depth' needs focal_rule 'inverse_focal'")

    @cached_property
    def graph_io(self) -> GraphIO | None:
        """How a graph not exported here is fed and read (None for this project's graphs)."""
        if not self.graph:
            return None
        try:
            return GraphIO(**self.graph)
        except TypeError as exc:  # an unknown key
            raise ValueError(f"model card graph: {exc}") from None

    @property
    def relative(self) -> bool:
        """True when the output has no metric scale of its own (it must be anchored)."""
        return self.output == "relative_inverse_depth"

    @property
    def camera_dependent(self) -> bool:
        """Whether the metres depend on the camera's intrinsics (a focal rule, or a graph that takes them)."""
        return self.focal_rule != "none" or (self.graph_io is not None and self.graph_io.needs_camera)

    @property
    def plausible_depth(self) -> tuple[float, float]:
        """Metres this model's output may be published as: its range widened by :data:`RANGE_MARGIN`
        (a relative model's range says nothing of metres: the global bound), within
        :data:`PLAUSIBLE_DEPTH_M`."""
        low, high = PLAUSIBLE_DEPTH_M
        if self.relative:
            return low, high
        return max(low, self.min_depth / RANGE_MARGIN), min(high, self.max_depth * RANGE_MARGIN)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "model card") -> ModelCard:
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: model card is not valid ({exc})") from None

    def describe(self) -> str:
        focal = ""
        if self.focal_rule == "ratio":
            axis = ", mean of fx and fy" if self.focal_axis == "mean" else ""
            focal = f", focal rule ratio (f_train {self.focal_length:.1f} px at the input{axis})"
        elif self.focal_rule == "inverse_focal":
            focal = ", focal rule Z = f/(W·c)"
        rule = self.input
        size = f"{rule.height}x{rule.width}"
        if not rule.fixed:
            aspect = "keep aspect, " if rule.keep_aspect else ""
            size = (
                f"{size} box, {aspect}multiple of {rule.multiple}"
                if rule.box
                else f"frame size, multiple of {rule.multiple}"
            )
        if rule.pad != "none":
            size += f", {rule.pad} padding"
        if rule.letterbox:
            size += ", letterboxed"
        extras = ""
        if (io := self.graph_io) is not None:
            named = [("takes the camera", io.intrinsics), ("point map up to a z-shift", io.points),
                     ("confidence", io.confidence), ("sky", io.sky), ("validity mask", io.mask)]  # fmt: skip
            extras = "".join(f", {what}" for what, tensor in named if tensor)
        return (f"{self.output} ({self.min_depth:g}-{self.max_depth:g} m){focal}; input {size}, "
                f"{rule.interpolation}{extras}")  # fmt: skip


def card_of(info) -> ModelCard:
    """The card of a :class:`~depth_estimation_ros.core.backends.ModelInfo`; files from before cards
    existed read as metric depth with no focal rule (today's behaviour), said once per model."""
    if info.card:
        return ModelCard.from_dict(info.card, info.name)
    if info.name not in _warned:
        _warned.add(info.name)
        log.warning(
            "%s carries no model card (written before cards existed): read as metric depth with no "
            "focal-length correction; re-export it to record its training camera",
            info.name,
        )
    return ModelCard(
        output="metric_depth",
        input=InputRule(info.input_height, info.input_width),
        min_depth=info.min_depth,
        max_depth=info.max_depth,
        has_confidence=info.has_confidence,
        normalization=dict(info.normalization),
        family=info.name,
    )
