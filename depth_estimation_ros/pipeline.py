"""Messages in, messages out: the frame handling shared by the ROS node and the bag tool.

:class:`DepthPipeline` turns a sensor_msgs Image (or CompressedImage) and its CameraInfo into the
node's outputs: ``depth/image`` (32FC1 m, NaN invalid), ``depth/image_raw`` (16UC1 mm),
``depth/camera_info`` (describing the depth image exactly), ``depth/points`` (organised
PointCloud2) and ``depth/confidence``, each with the input image's stamp and frame_id. A bad frame
raises :class:`BadFrame` with the reason, which names the image's stamp; the caller logs it and goes on.

:class:`CameraInfoPairing` is the one rule, shared by the node and the bag tool, that gives each
image the CameraInfo of its own stamp, waiting a bounded time for it. The node's threading lives in
:mod:`.worker`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .estimator import DepthEstimator, NoMetricScale
from .messages import (
    MessageTypes,
    camera_from_info,
    camera_info_msg,
    compressed_to_rgb,
    copy_header,
    depth_from_image,
    depth_image_msg,
    image_msg,
    image_to_rgb,
    pointcloud_msg,
    writable_view,
)
from .pointcloud import CloudPacker, PackedCloud

# The options of DepthPipeline that mirror the node's parameters of the same names.
PIPELINE_OPTIONS = ("publish_raw_depth", "publish_points", "points_rgb", "points_decimation", "points_max_range",
                    "publish_confidence")  # fmt: skip
TOPICS = ("depth/image", "depth/image_raw", "depth/camera_info", "depth/points", "depth/confidence")


class BadFrame(ValueError):
    """A frame that cannot be processed (encoding, size, intrinsics, no CameraInfo…); skip it."""


def stamp_of(msg) -> tuple[int, int]:
    return int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)


@dataclass
class Output:
    messages: dict[str, Any]  # topic (relative) → message
    timings: dict[str, float]  # seconds per stage
    notes: list[str] = field(default_factory=list)  # non-fatal findings, e.g. CameraInfo frame mismatch


class DepthPipeline:
    """One frame through the estimator to output messages; options mirror the node's parameters.

    Depth and confidence are resized straight into the messages' ``data`` buffers and the cloud is
    packed straight into its own, so each output byte is written once. ``reuse_buffers`` keeps
    those buffers for the next frame instead of allocating new ones: only for a caller that is done
    with a frame's messages before the next :meth:`process` (rclpy's ``publish`` serialises the
    message before it returns, so the node is); the bag tool and tests keep messages, so it is off
    by default.

    ``device_path`` runs the whole frame as tensors on the model's device
    (:class:`~.resident.DeviceFramePath`, one CUDA graph per frame size); by default it is on where
    the model runs on a GPU and the backend takes device tensors (PyTorch, TensorRT).
    """

    def __init__(
        self,
        estimator: DepthEstimator,
        types: MessageTypes,
        *,
        publish_raw_depth: bool = False,
        publish_points: bool = True,
        points_rgb: bool = True,
        points_decimation: int = 1,
        points_max_range: float | None = None,
        publish_confidence: bool = True,
        reuse_buffers: bool = False,
        device_path: bool | None = None,
    ):
        if points_decimation < 1:
            raise ValueError(f"points_decimation must be >= 1, got {points_decimation}")
        self.estimator, self.types = estimator, types
        self.publish_raw_depth, self.publish_points, self.points_rgb = publish_raw_depth, publish_points, points_rgb
        self.points_decimation, self.points_max_range = points_decimation, points_max_range or None
        self.publish_confidence = publish_confidence and estimator.info.has_confidence
        self._packer = CloudPacker(points_rgb, points_decimation, self.points_max_range)
        self.reuse_buffers = reuse_buffers
        self._buffers: dict[str, Any] = {}
        self.last_stamp = 0.0  # seconds: the stamp of the last frame processed (the anchor's clock)
        self.device_path = None
        backend = estimator.backend
        if device_path is None:  # on wherever the model runs on a GPU and can take device tensors
            device_path = (
                estimator.plain
                and hasattr(backend, "forward")
                and str(getattr(backend, "torch_device", "cpu")).startswith("cuda")
            )
        if device_path and not estimator.plain:
            raise ValueError("the device path runs metric graphs of a fixed input size only (no anchoring, "
                             "focal rule or padding); this model needs the host path")  # fmt: skip
        if device_path:
            from .resident import DeviceFramePath

            if not hasattr(backend, "forward"):
                raise ValueError(f"the {backend.name} backend cannot run the device path (it takes no device tensors)")
            self.device_path = DeviceFramePath(backend, cuda_graph=True)

    @property
    def packer(self) -> CloudPacker:
        """The cloud packer for the current options (the node changes them live)."""
        p = self._packer
        wanted = (self.points_rgb, self.points_decimation, self.points_max_range or None)
        if (p.rgb, p.decimation, p.max_range) != wanted:
            self._packer = CloudPacker(*wanted)
        return self._packer

    @property
    def topics(self) -> tuple[str, ...]:
        enabled = {
            "depth/image": True,
            "depth/image_raw": self.publish_raw_depth,
            "depth/camera_info": True,
            "depth/points": self.publish_points,
            "depth/confidence": self.publish_confidence,
        }
        return tuple(t for t in TOPICS if enabled[t])

    def _buffer(self, topic: str, size: int):
        """The ``data`` storage of ``topic``'s next message (the last one's when reusing)."""
        storage = self._buffers.get(topic)
        if storage is None or len(storage) != size:
            storage = self.types.uint8_storage(size)
            if self.reuse_buffers:
                self._buffers[topic] = storage
        return storage

    def process(self, image, camera_info, compressed: bool = False, sparse=None) -> Output:
        """Outputs for one image; ``sparse``: a sparse_depth Image message (16UC1 mm or 32FC1 m,
        registered to the camera, any resolution) for the estimator's anchor, or None."""
        try:
            return self._process(image, camera_info, compressed, sparse)
        except BadFrame as exc:  # named by its stamp, so the log and /diagnostics blame the right frame
            raise BadFrame(f"image {stamp_text(stamp_of(image))}: {exc}") from None

    def _process(self, image, camera_info, compressed: bool, sparse) -> Output:
        start = time.perf_counter()
        if camera_info is None:
            raise BadFrame("no CameraInfo received yet for this image")
        try:
            rgb = compressed_to_rgb(image) if compressed else image_to_rgb(image)
            camera = camera_from_info(camera_info)
            camera.check_image(rgb.shape, "image")
        except ValueError as exc:
            raise BadFrame(str(exc)) from None
        notes = []
        if camera_info.header.frame_id and camera_info.header.frame_id != image.header.frame_id:
            notes.append(f"CameraInfo frame_id {camera_info.header.frame_id!r} != image frame_id "
                         f"{image.header.frame_id!r}; outputs use the image's")  # fmt: skip
        sparse_depth = None
        if sparse is not None:
            try:
                sparse_depth = depth_from_image(sparse)
            except ValueError as exc:  # a bad sparse frame costs its anchoring, not the camera frame
                notes.append(f"sparse_depth ignored: {exc}")
        decoded = time.perf_counter()
        out_camera = self.estimator.output_camera(camera)
        shape, pixels = (out_camera.height, out_camera.width), out_camera.width * out_camera.height
        storages = {"depth": self._buffer("depth/image", 4 * pixels)}
        if self.publish_confidence:
            storages["confidence"] = self._buffer("depth/confidence", 4 * pixels)
        views = {name: writable_view(storage, "<f4").reshape(shape) for name, storage in storages.items()}
        if self.device_path is not None:
            return self._process_on_device(image, rgb, camera, storages, views, start, decoded, notes)
        self.last_stamp = _seconds(stamp_of(image))
        try:
            result = self.estimator(rgb, camera, out=views, sparse=sparse_depth, stamp=self.last_stamp)
        except NoMetricScale as exc:
            raise BadFrame(str(exc)) from None
        estimated = time.perf_counter()

        header = copy_header(image.header, self.types)
        messages = {
            "depth/image": image_msg(views["depth"], "32FC1", header, self.types, storages["depth"]),
            "depth/camera_info": camera_info_msg(result.camera, header, self.types),
        }
        if self.publish_raw_depth:
            messages["depth/image_raw"] = depth_image_msg(result.depth, header, self.types, encoding="16UC1")
        if self.publish_confidence and result.confidence is not None:
            conf = storages["confidence"]
            messages["depth/confidence"] = image_msg(views["confidence"], "32FC1", header, self.types, conf)
        cloud_start = time.perf_counter()
        if self.publish_points:
            colours = None
            if self.points_rgb:  # the camera image itself when the depth has its size
                colours = rgb if rgb.shape[:2] == shape else self._network_colours(rgb, camera)
            storage = self._buffer("depth/points", self.packer.nbytes(out_camera))
            cloud = self.packer.pack(result.depth, result.camera, colours, out=storage)
            messages["depth/points"] = pointcloud_msg(cloud, header, self.types)
        end = time.perf_counter()
        timings = {
            "decode": decoded - start,
            **self.estimator.timings,
            "messages": cloud_start - estimated,
            "cloud": end - cloud_start,
            "total": end - start,
        }
        return Output(messages, timings, notes)

    def _network_colours(self, rgb: np.ndarray, camera) -> np.ndarray:
        """Colours of network-resolution depth: the very image the network saw (letterbox included)."""
        return self.estimator.network_image(rgb, camera)

    def _process_on_device(self, image, rgb, camera, storages, views, start, decoded, notes) -> Output:
        """The same outputs, computed by :class:`~.resident.DeviceFramePath` (one copy down per output)."""
        out_camera = self.estimator.output_camera(camera)
        if self.publish_points:
            storages["points"] = self._buffer("depth/points", self.packer.nbytes(out_camera))
            views["points"] = writable_view(storages["points"])
        path, estimator = self.device_path, self.estimator
        path.configure(resize=estimator.resize, output_resolution=estimator.output_resolution,
                       min_confidence=estimator.min_confidence, points=self.publish_points, rgb=self.points_rgb,
                       decimation=self.points_decimation, max_range=self.points_max_range or None)  # fmt: skip
        dense = path(rgb, camera, views)
        computed = time.perf_counter()
        header = copy_header(image.header, self.types)
        messages = {
            "depth/image": image_msg(views["depth"], "32FC1", header, self.types, storages["depth"]),
            "depth/camera_info": camera_info_msg(out_camera, header, self.types),
        }
        if self.publish_raw_depth:
            messages["depth/image_raw"] = depth_image_msg(views["depth"], header, self.types, encoding="16UC1")
        if "confidence" in views:
            conf = storages["confidence"]
            messages["depth/confidence"] = image_msg(views["confidence"], "32FC1", header, self.types, conf)
        if self.publish_points:
            sub = self.packer.cloud_camera(out_camera)
            cloud = PackedCloud(storages["points"], sub.height, sub.width, self.packer.fields,
                                self.packer.point_step, self.packer.point_step * sub.width, is_dense=dense)  # fmt: skip
            messages["depth/points"] = pointcloud_msg(cloud, header, self.types)
        end = time.perf_counter()
        timings = {"decode": decoded - start, **self.device_path.timings, "messages": end - computed,
                   "total": end - start}  # fmt: skip
        return Output(messages, timings, notes)


class RecentByStamp:
    """The last ``keep`` messages received, by (stamp, frame_id)."""

    def __init__(self, keep: int, max_age: float = 0.0):
        self.recent: OrderedDict[tuple, Any] = OrderedDict()
        self.keep, self.max_age = keep, max_age

    def add(self, msg) -> None:
        key = (*stamp_of(msg), msg.header.frame_id)
        self.recent[key] = msg
        self.recent.move_to_end(key)
        while len(self.recent) > self.keep:
            self.recent.popitem(last=False)

    def clear(self) -> None:
        self.recent.clear()


@dataclass(frozen=True, eq=False)  # compared by identity: messages hold arrays
class Decision:
    """The pairing's verdict on one image: its CameraInfo (and sparse depth), or why it has none."""

    image: Any
    camera_info: Any = None  # None: a bad frame, ``reason`` says why
    sparse: Any = None
    tag: Any = None  # what the caller passed with the image (the bag tool: its log time)
    reason: str = ""


@dataclass(frozen=True, eq=False)
class _Waiting:
    image: Any
    deadline: float
    tag: Any


class CameraInfoPairing:
    """The one rule by which the node and the bag tool give an image its CameraInfo.

    An image's CameraInfo is one of its frame_id (or of none) whose stamp is within ``tolerance``
    seconds of the image's (0: the same stamp); the nearest, should several have arrived. No
    "latest one" stands in for it: a CameraInfo of another frame never describes an image (unless
    ``tolerance`` is wide enough to reach one). An image whose CameraInfo has not arrived waits for
    it, ``wait`` seconds at most by the caller's clock (the node: arrival on the steady clock; the
    bag tool: log time), and at most ``max_pending`` images wait (a newer one pushes out the
    oldest). An image whose CameraInfo did not come in time is a bad frame, with a reason naming
    its stamp.

    Every call returns the decisions it made: :meth:`image` (paired at once, or nothing while it
    waits), :meth:`camera_info` (releases the waiting images it describes, in stamp order),
    :meth:`expire` (the waits that are over) and :meth:`close` (ends every wait). With ``sparse``
    (a :class:`SparseDepthPairing`), each paired image also gets its sparse depth, chosen when it
    is paired. Every call holds a lock: any executor thread may call it.
    """

    def __init__(self, tolerance: float = 0.0, wait: float = 0.1, *, keep: int = 30, max_pending: int = 8,
                 sparse: SparseDepthPairing | None = None):  # fmt: skip
        self.tolerance, self.wait, self.max_pending, self.sparse = tolerance, wait, max_pending, sparse
        self.infos = RecentByStamp(keep)
        self.waiting: list[_Waiting] = []
        self._lock = threading.Lock()

    def image(self, image, now: float, tag=None) -> list[Decision]:
        with self._lock:
            decisions = self._expire(now)
            candidates = [info for info in self.infos.recent.values() if self._describes(info, image)]
            if candidates:
                nearest = min(candidates, key=lambda info: abs(_ns(info) - _ns(image)))
                return [*decisions, self._paired(image, nearest, tag)]
            if self.wait <= 0:
                return [*decisions, self._missing(_Waiting(image, now, tag), "had arrived (camera_info_wait is 0)")]
            self.waiting.append(_Waiting(image, now + self.wait, tag))
            if len(self.waiting) > self.max_pending:  # bounded: the oldest gives way
                decisions.append(self._missing(self.waiting.pop(0), f"arrived before {self.max_pending} newer "
                                                                    "images were waiting too"))  # fmt: skip
            return decisions

    def camera_info(self, info, now: float) -> list[Decision]:
        with self._lock:
            decisions = self._expire(now)
            self.infos.add(info)
            # Only this CameraInfo can be new to the waiting images: any other was there before them.
            released = [w for w in self.waiting if self._describes(info, w.image)]
            self.waiting = [w for w in self.waiting if w not in released]
            return decisions + [self._paired(w.image, info, w.tag) for w in _by_stamp(released)]

    def add_sparse(self, msg) -> None:
        with self._lock:
            self.sparse.add(msg)

    def expire(self, now: float) -> list[Decision]:
        with self._lock:
            return self._expire(now)

    def close(self, how: str = "arrived before the input ended") -> list[Decision]:
        """Ends every wait: the waiting images are bad frames."""
        with self._lock:
            waiting, self.waiting = self.waiting, []
            return [self._missing(w, how) for w in _by_stamp(waiting)]

    def clear(self) -> None:
        """Forgets every CameraInfo and sparse depth, and drops the waiting images uncounted."""
        with self._lock:
            self.infos.clear()
            self.waiting = []
            if self.sparse is not None:
                self.sparse.clear()

    def _describes(self, info, image) -> bool:
        return _same_frame(info, image) and abs(_ns(info) - _ns(image)) <= round(self.tolerance * 1e9)

    def _expire(self, now: float) -> list[Decision]:
        over = [w for w in self.waiting if now > w.deadline]  # one logged at the deadline is in time
        self.waiting = [w for w in self.waiting if w not in over]
        return [self._missing(w, f"arrived within {self.wait:g} s") for w in _by_stamp(over)]

    def _paired(self, image, info, tag) -> Decision:
        sparse = self.sparse.match(image) if self.sparse is not None else None
        return Decision(image, info, sparse, tag)

    def _missing(self, waiting: _Waiting, how: str) -> Decision:
        image = waiting.image
        within = f" (within {self.tolerance:g} s)" if self.tolerance else ""
        reason = (f"image {stamp_text(stamp_of(image))}: no CameraInfo of its stamp{within} and frame "
                  f"{image.header.frame_id!r} {how}")  # fmt: skip
        if self.infos.recent:  # what did come, so the log shows a clock offset or a frame_id mix-up
            seen = min(self.infos.recent.values(), key=lambda info: abs(_ns(info) - _ns(image)))
            offset, frame = (_ns(seen) - _ns(image)) * 1e-9, seen.header.frame_id
            reason += f"; the nearest had stamp {stamp_text(stamp_of(seen))} ({offset:+.6f} s), frame {frame!r}"
        return Decision(image, tag=waiting.tag, reason=reason)


class SparseDepthPairing(RecentByStamp):
    """Keeps recent sparse_depth images and finds the one nearest an image by stamp, within
    ``max_age`` seconds either side and of the image's frame_id (or none)."""

    def __init__(self, keep: int = 10, max_age: float = 0.5):
        super().__init__(keep, max_age)

    def match(self, image):
        """The sparse depth message for ``image``, or None."""
        candidates = [(abs(_ns(msg) - _ns(image)), msg) for msg in self.recent.values() if _same_frame(msg, image)]
        if not candidates:
            return None
        gap, msg = min(candidates, key=lambda c: c[0])
        return msg if gap <= round(self.max_age * 1e9) else None


def stamp_text(stamp: tuple[int, int]) -> str:
    return f"{stamp[0]}.{stamp[1]:09d}"


def _by_stamp(waiting: list[_Waiting]) -> list[_Waiting]:
    return sorted(waiting, key=lambda w: _ns(w.image))


def _ns(msg) -> int:
    sec, nanosec = stamp_of(msg)
    return sec * 1_000_000_000 + nanosec


def _same_frame(info, image) -> bool:
    return not info.header.frame_id or info.header.frame_id == image.header.frame_id


def _seconds(stamp: tuple[int, int]) -> float:
    return stamp[0] + stamp[1] * 1e-9
