"""Messages in, messages out: the frame handling shared by the ROS node and the bag tool.

:class:`DepthPipeline` turns a sensor_msgs Image (or CompressedImage), its CameraInfo and its
scale-source input (sparse depth) into the outputs of :data:`.outputs.OUTPUTS`, each with the input
image's stamp and frame_id. A bad frame raises :class:`BadFrame` with the reason, which names the
image's stamp; the caller logs it and goes on. Which inputs belong to a frame is
:mod:`.pairing`'s rule; the node's threading lives in :mod:`.worker`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from depth_estimation_ros.core.edges import DEFAULT_ANGLE_DEG, DEFAULT_FLOOR_ANGLE_DEG, EdgeFilter
from depth_estimation_ros.core.estimator import DepthEstimator, NoMetricScale
from depth_estimation_ros.core.laserscan import DEFAULT_RANGE_MAX, DEFAULT_RANGE_MIN, DEFAULT_SCAN_HEIGHT, ScanProjector
from depth_estimation_ros.core.pointcloud import CloudPacker, PackedCloud, compact
from depth_estimation_ros.core.validation import DEFAULT_MAX_FRAME_PIXELS
from depth_estimation_ros.ros.inputs import frame_input
from depth_estimation_ros.ros.messages import (
    MessageTypes,
    camera_from_info,
    compressed_to_rgb,
    copy_header,
    frame_size,
    image_to_rgb,
    writable_view,
)
from depth_estimation_ros.ros.odometry import PoseHistory
from depth_estimation_ros.ros.outputs import FrameArrays, build_messages, enabled
from depth_estimation_ros.ros.pairing import stamp_of, stamp_text

# The options of DepthPipeline that mirror the node's parameters of the same names.
PIPELINE_OPTIONS = ("publish_raw_depth", "publish_points", "points_rgb", "points_decimation", "points_max_range",
                    "points_organized", "points_edge_filter", "edge_filter_angle", "edge_filter_floor_angle",
                    "edge_filter_depth", "publish_confidence", "publish_scan", "scan_height", "scan_range_min",
                    "scan_range_max", "scan_output_frame", "max_image_pixels", "sky_depth")  # fmt: skip


class BadFrame(ValueError):
    """A frame that cannot be processed (encoding, size, intrinsics, no CameraInfo…); skip it."""


@dataclass
class Output:
    messages: dict[str, Any]  # topic (relative) → message
    timings: dict[str, float]  # seconds per stage
    notes: list[str] = field(default_factory=list)  # non-fatal findings, e.g. CameraInfo frame mismatch
    refused_input: str = ""  # why the frame's scale-source input (sparse depth) could not be used


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
        points_organized: bool = True,
        points_edge_filter: bool = True,
        edge_filter_angle: float = DEFAULT_ANGLE_DEG,
        edge_filter_floor_angle: float = DEFAULT_FLOOR_ANGLE_DEG,
        edge_filter_depth: bool = False,
        publish_confidence: bool = True,
        publish_scan: bool = False,
        scan_height: int = DEFAULT_SCAN_HEIGHT,
        scan_range_min: float = DEFAULT_RANGE_MIN,
        scan_range_max: float = DEFAULT_RANGE_MAX,
        scan_output_frame: str = "",
        max_image_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
        sky_depth: float = 0.0,
        reuse_buffers: bool = False,
        device_path: bool | None = None,
    ):
        if points_decimation < 1:
            raise ValueError(f"points_decimation must be >= 1, got {points_decimation}")
        self.estimator, self.types = estimator, types
        self.publish_raw_depth, self.publish_points, self.points_rgb = publish_raw_depth, publish_points, points_rgb
        self.points_decimation, self.points_max_range = points_decimation, points_max_range or None
        self.points_organized, self.points_edge_filter, self.edge_filter_depth = (
            points_organized, points_edge_filter, edge_filter_depth)  # fmt: skip
        self.edge_filter_angle, self.edge_filter_floor_angle = edge_filter_angle, edge_filter_floor_angle
        self.publish_confidence = publish_confidence and estimator.info.has_confidence
        self.publish_scan, self.scan_height, self.scan_output_frame = publish_scan, scan_height, scan_output_frame
        self.scan_range_min, self.scan_range_max = scan_range_min, scan_range_max
        self.max_image_pixels, self.sky_depth = max_image_pixels, sky_depth
        self._packer = CloudPacker(points_rgb, points_decimation, self.points_max_range, points_organized)
        self._edges = EdgeFilter(edge_filter_angle, edge_filter_floor_angle)
        self._scanner = ScanProjector(scan_height, scan_range_min, scan_range_max)
        self.reuse_buffers = reuse_buffers
        self._buffers: dict[str, Any] = {}
        self.last_stamp = 0.0  # seconds: the stamp of the last frame processed (the anchor's clock)
        self.last_scan_stamp = 0.0
        anchor = estimator.anchor
        self.frame_input = frame_input(anchor.source) if anchor is not None else None  # its per-frame input
        self.poses: PoseHistory | None = None  # odometry by stamp, for temporal_fusion odometry (the caller's)
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
            from depth_estimation_ros.core.resident import DeviceFramePath

            if not hasattr(backend, "forward"):
                raise ValueError(f"the {backend.name} backend cannot run the device path (it takes no device tensors)")
            self.device_path = DeviceFramePath(backend, cuda_graph=True)

    @property
    def packer(self) -> CloudPacker:
        """The cloud packer for the current options (the node changes them live)."""
        p = self._packer
        wanted = (self.points_rgb, self.points_decimation, self.points_max_range or None, self.points_organized)
        if (p.rgb, p.decimation, p.max_range, p.organized) != wanted:
            self._packer = CloudPacker(*wanted)
        return self._packer

    @property
    def edges(self) -> EdgeFilter:
        """The flying-pixel filter for the current thresholds."""
        if (self._edges.angle_deg, self._edges.floor_angle_deg) != (
            self.edge_filter_angle,
            self.edge_filter_floor_angle,
        ):
            self._edges = EdgeFilter(self.edge_filter_angle, self.edge_filter_floor_angle)
        return self._edges

    @property
    def scanner(self) -> ScanProjector:
        """The scan projector for the current scan options."""
        s = self._scanner
        if (s.scan_height, s.range_min, s.range_max) != (self.scan_height, self.scan_range_min, self.scan_range_max):
            self._scanner = ScanProjector(self.scan_height, self.scan_range_min, self.scan_range_max)
        return self._scanner

    @property
    def filters_depth(self) -> bool:
        """Whether depth/image itself loses its flying pixels."""
        return self.points_edge_filter and self.edge_filter_depth

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(output.topic for output in enabled(self))

    def _buffer(self, topic: str, size: int):
        """The ``data`` storage of ``topic``'s next message (the last one's when reusing)."""
        storage = self._buffers.get(topic)
        if storage is None or len(storage) != size:
            storage = self.types.uint8_storage(size)
            if self.reuse_buffers:
                self._buffers[topic] = storage
        return storage

    def _add_scan(self, arrays: FrameArrays, depth, image_frame: str, notes: list[str]) -> None:
        """The scan into ``arrays``, from ``depth`` (edge-filtered when the filter is on)."""
        try:
            arrays.scan = self.scanner(depth, arrays.camera)
        except ValueError as exc:  # e.g. a scan_height taller than this camera's image: the rest goes on
            notes.append(f"depth/scan skipped: {exc}")
            return
        arrays.scan_frame = scan_frame(self.scan_output_frame, image_frame, notes)
        stamp, arrays.scan_time = self.last_stamp, 0.0
        if 0 < stamp - self.last_scan_stamp < 10:  # seconds between scans, as LaserScan.scan_time means
            arrays.scan_time = stamp - self.last_scan_stamp
        self.last_scan_stamp = stamp

    def process(self, image, camera_info, compressed: bool = False, sparse=None) -> Output:
        """Outputs for one image; ``sparse``: the scale source's input message of the image's stamp
        (a sparse_depth Image: 16UC1 mm or 32FC1 m, registered to the camera, any resolution), or None."""
        try:
            return self._process(image, camera_info, compressed, sparse)
        except BadFrame as exc:  # named by its stamp, so the log and /diagnostics blame the right frame
            raise BadFrame(f"image {stamp_text(stamp_of(image))}: {exc}") from None

    def _process(self, image, camera_info, compressed: bool, sparse) -> Output:
        start = time.perf_counter()
        if camera_info is None:
            raise BadFrame("no CameraInfo received yet for this image")
        size = frame_size(image, compressed)
        if size is not None and size[0] * size[1] > self.max_image_pixels:  # before decoding it
            raise BadFrame(f"{size[1]}x{size[0]} image ({size[0] * size[1]} pixels) is larger than "
                           f"max_image_pixels={self.max_image_pixels}: memory and time grow with the frame; "
                           "downscale it upstream (image_proc's resize) or raise the bound")  # fmt: skip
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
        sparse_depth, refused = None, ""
        if sparse is not None and self.frame_input is not None:
            try:
                sparse_depth = self.frame_input.to_array(sparse)
            except ValueError as exc:  # a bad sparse frame costs its anchoring, not the camera frame
                refused = f"its {self.frame_input.name} was refused: {exc}"
                notes.append(f"{self.frame_input.name} ignored: {exc}")
        decoded = time.perf_counter()
        out_camera = self.estimator.output_camera(camera)
        shape, pixels = (out_camera.height, out_camera.width), out_camera.width * out_camera.height
        storages = {"depth": self._buffer("depth/image", 4 * pixels)}
        if self.publish_confidence:
            storages["confidence"] = self._buffer("depth/confidence", 4 * pixels)
        views = {name: writable_view(storage, "<f4").reshape(shape) for name, storage in storages.items()}
        self.last_stamp = _seconds(stamp_of(image))
        if self.device_path is not None:
            output = self._process_on_device(image, rgb, camera, storages, views, start, decoded, notes)
            output.refused_input = refused
            return output
        try:
            pose = self.poses.at(stamp_of(image)) if self.poses is not None else None
            result = self.estimator(rgb, camera, out=views, sparse=sparse_depth, stamp=self.last_stamp, pose=pose)
        except NoMetricScale as exc:
            raise BadFrame(str(exc)) from None
        estimated = time.perf_counter()

        arrays = FrameArrays(result.depth, result.camera, storages, result.confidence)
        depth = result.depth  # what the cloud and the scan see
        if self.points_edge_filter and (self.publish_points or self.publish_scan or self.edge_filter_depth):
            depth = self.edges(depth, result.camera, out=depth if self.filters_depth else None)
        filtered = time.perf_counter()
        if self.publish_points:
            colours = None
            if self.points_rgb:  # the camera image, or the very image the network saw (letterbox included)
                colours = rgb if rgb.shape[:2] == shape else result.network_image
            storage = self._buffer("depth/points", self.packer.nbytes(out_camera))
            arrays.cloud = self.packer.pack(depth, result.camera, colours, out=storage)
        cloud_end = time.perf_counter()
        if self.publish_scan:
            self._add_scan(arrays, depth, image.header.frame_id, notes)
        if self.sky_depth and result.sky is not None:  # after the cloud and the scan: sky is never a point
            result.depth[result.sky] = self.sky_depth
        messages = build_messages(enabled(self), arrays, copy_header(image.header, self.types), self.types)
        end = time.perf_counter()
        timings = {
            "decode": decoded - start,
            **self.estimator.timings,
            "edges": filtered - estimated,
            "cloud": cloud_end - filtered,
            "messages": end - cloud_end,  # the scan included
            "total": end - start,
        }
        return Output(messages, timings, notes, refused)

    def _process_on_device(self, image, rgb, camera, storages, views, start, decoded, notes) -> Output:
        """The same outputs, computed by :class:`~.resident.DeviceFramePath` (one copy down per output)."""
        out_camera = self.estimator.output_camera(camera)
        if self.publish_points:
            storages["points"] = self._buffer("depth/points", self.packer.nbytes(out_camera))
            views["points"] = writable_view(storages["points"])
        path, estimator = self.device_path, self.estimator
        edges = self.edges if self.points_edge_filter else None
        path.configure(resize=estimator.resize, output_resolution=estimator.output_resolution,
                       min_confidence=estimator.min_confidence, points=self.publish_points, rgb=self.points_rgb,
                       decimation=self.points_decimation, max_range=self.points_max_range or None,
                       edges=edges, edges_in_depth=self.filters_depth,
                       bounds=estimator.card.plausible_depth)  # fmt: skip
        dense = path(rgb, camera, views)
        computed = time.perf_counter()
        arrays = FrameArrays(views["depth"], out_camera, storages, views.get("confidence"))
        if self.publish_points:
            sub = self.packer.cloud_camera(out_camera)
            step = self.packer.point_step
            arrays.cloud = PackedCloud(storages["points"], sub.height, sub.width, self.packer.fields, step,
                                       step * sub.width, is_dense=dense)  # fmt: skip
            if not self.points_organized:
                arrays.cloud = compact(arrays.cloud)
        if self.publish_scan:  # the scan reads a few rows: on the host, filtered here unless depth already is
            depth = views["depth"]
            if edges is not None and not self.filters_depth:
                depth = edges(depth, out_camera)
            self._add_scan(arrays, depth, image.header.frame_id, notes)
        messages = build_messages(enabled(self), arrays, copy_header(image.header, self.types), self.types)
        end = time.perf_counter()
        timings = {"decode": decoded - start, **self.device_path.timings, "messages": end - computed,
                   "total": end - start}  # fmt: skip
        return Output(messages, timings, notes)


def scan_frame(configured: str, image_frame: str, notes: list[str]) -> str:
    """depth/scan's frame_id: ``configured``, else the body frame of the image's optical frame by
    REP 103's naming (``camera_optical_frame`` → ``camera_frame``): a scan's angles turn about z up,
    an optical frame's z is the optical axis."""
    if configured:
        return configured
    if "_optical" in image_frame:
        return image_frame.replace("_optical", "", 1)
    notes.append(f"depth/scan uses the image's frame_id {image_frame!r}, which names no optical frame; set "
                 "scan_output_frame to the frame whose x is the optical axis and z up (REP 103)")  # fmt: skip
    return image_frame


def _seconds(stamp: tuple[int, int]) -> float:
    return stamp[0] + stamp[1] * 1e-9
