"""Messages in, messages out: the frame handling shared by the ROS node and the bag tool.

:class:`DepthPipeline` turns a sensor_msgs Image (or CompressedImage) and its CameraInfo into the
node's outputs: ``depth/image`` (32FC1 m, NaN invalid), ``depth/image_raw`` (16UC1 mm),
``depth/camera_info`` (describing the depth image exactly), ``depth/points`` (organised
PointCloud2) and ``depth/confidence``, each with the input image's stamp and frame_id. A bad frame
raises :class:`BadFrame` with the reason; the caller logs it and goes on.

:class:`CameraInfoPairing` pairs each image with the CameraInfo of the same stamp, else the latest.
:class:`LatestFrameSlot` is the one-slot handoff between the subscription callback and the
inference thread: a new frame replaces an unprocessed one (counted as dropped), so output is never
stale and memory stays bounded. :class:`PipelineStats` feeds /diagnostics.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .estimator import DepthEstimator
from .messages import (
    MessageTypes,
    camera_from_info,
    camera_info_msg,
    compressed_to_rgb,
    copy_header,
    depth_image_msg,
    image_msg,
    image_to_rgb,
    pointcloud_msg,
)
from .pointcloud import organised_cloud

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
    """One frame through the estimator to output messages; options mirror the node's parameters."""

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
    ):
        if points_decimation < 1:
            raise ValueError(f"points_decimation must be >= 1, got {points_decimation}")
        self.estimator, self.types = estimator, types
        self.publish_raw_depth, self.publish_points, self.points_rgb = publish_raw_depth, publish_points, points_rgb
        self.points_decimation, self.points_max_range = points_decimation, points_max_range or None
        self.publish_confidence = publish_confidence and estimator.info.has_confidence

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

    def process(self, image, camera_info, compressed: bool = False) -> Output:
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
        decoded = time.perf_counter()
        result = self.estimator(rgb, camera)
        estimated = time.perf_counter()

        header = copy_header(image.header, self.types)
        messages = {
            "depth/image": depth_image_msg(result.depth, header, self.types),
            "depth/camera_info": camera_info_msg(result.camera, header, self.types),
        }
        if self.publish_raw_depth:
            messages["depth/image_raw"] = depth_image_msg(result.depth, header, self.types, encoding="16UC1")
        if self.publish_confidence and result.confidence is not None:
            messages["depth/confidence"] = image_msg(result.confidence, "32FC1", header, self.types)
        cloud_start = time.perf_counter()
        if self.publish_points:
            colours = None
            if self.points_rgb:
                colours = rgb if rgb.shape[:2] == result.depth.shape else cv2.resize(rgb, result.camera.size)
            cloud = organised_cloud(result.depth, result.camera, colours, self.points_decimation, self.points_max_range)
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


class CameraInfoPairing:
    """Keeps recent CameraInfo messages; an image gets the one with its stamp, else the latest."""

    def __init__(self, keep: int = 30):
        self.recent: OrderedDict[tuple[int, int], Any] = OrderedDict()
        self.keep = keep
        self.latest = None

    def add(self, info) -> None:
        self.recent[stamp_of(info)] = info
        self.recent.move_to_end(stamp_of(info))
        while len(self.recent) > self.keep:
            self.recent.popitem(last=False)
        self.latest = info

    def match(self, image) -> tuple[Any, bool]:
        """(CameraInfo or None, whether its stamp equals the image's)."""
        exact = self.recent.get(stamp_of(image))
        return (exact, True) if exact is not None else (self.latest, False)


class LatestFrameSlot:
    """One-slot handoff: ``put`` never blocks and replaces an unprocessed item; ``take`` waits."""

    def __init__(self):
        self._item = None
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item) -> bool:
        """Offer the newest item; returns True if it replaced (dropped) an unprocessed one."""
        with self._ready:
            replaced = self._item is not None
            self.dropped += replaced
            self._item = item
            self._ready.notify()
            return replaced

    def take(self, timeout: float | None = None):
        """The newest item (None on timeout or after close); the slot is empty afterwards."""
        with self._ready:
            self._ready.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


class FrameWorker:
    """The inference thread: takes the newest (image, CameraInfo) from the slot, runs the pipeline,
    hands the output to ``publish``; bad frames go to ``on_bad_frame`` and the loop goes on."""

    def __init__(self, pipeline: DepthPipeline, publish, on_bad_frame=None, compressed: bool = False):
        self.pipeline, self.publish, self.compressed = pipeline, publish, compressed
        self.on_bad_frame = on_bad_frame or (lambda reason: None)
        self.slot = LatestFrameSlot()
        self.stats = PipelineStats()
        self._thread: threading.Thread | None = None

    def offer(self, image, camera_info) -> None:
        """Called from the subscription callback: never blocks."""
        self.stats.on_received()
        self.slot.put((image, camera_info))

    def start(self) -> None:
        self.slot = LatestFrameSlot()
        self._thread = threading.Thread(target=self._run, name="depth-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.slot.close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            item = self.slot.take()
            if item is None:  # closed
                return
            try:
                output = self.pipeline.process(*item, compressed=self.compressed)
            except BadFrame as exc:
                self.stats.on_bad_frame(str(exc))
                self.on_bad_frame(str(exc))
                continue
            self.publish(output)
            self.stats.on_published(output.timings)


class PipelineStats:
    """Rates and latencies over a sliding window, as key/value pairs for diagnostic_msgs."""

    def __init__(self, window: float = 5.0):
        self.window = window
        self.received: deque[float] = deque()
        self.published: deque[float] = deque()
        self.latency: dict[str, deque[tuple[float, float]]] = {}
        self.bad_frames = 0
        self.last_error = ""

    def _trim(self, times: deque, now: float) -> None:
        while times and times[0] < now - self.window:
            times.popleft()

    def on_received(self, now: float | None = None) -> None:
        self.received.append(time.monotonic() if now is None else now)

    def on_published(self, timings: dict[str, float], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.published.append(now)
        for stage, seconds in timings.items():
            self.latency.setdefault(stage, deque()).append((now, seconds))

    def on_bad_frame(self, reason: str) -> None:
        self.bad_frames += 1
        self.last_error = reason

    def summary(self, dropped: int, now: float | None = None) -> dict[str, str]:
        now = time.monotonic() if now is None else now
        for times in (self.received, self.published):
            self._trim(times, now)
        values = {
            "input rate (Hz)": f"{len(self.received) / self.window:.2f}",
            "output rate (Hz)": f"{len(self.published) / self.window:.2f}",
            "dropped frames": str(dropped),
            "bad frames": str(self.bad_frames),
        }
        for stage, samples in self.latency.items():
            while samples and samples[0][0] < now - self.window:
                samples.popleft()
            if samples:
                values[f"{stage} latency (ms)"] = f"{1000 * float(np.mean([s for _, s in samples])):.1f}"
        if self.last_error:
            values["last bad frame"] = self.last_error
        return values
