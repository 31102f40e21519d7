"""ROS 2 messages ↔ numpy arrays and camera models, without rclpy.

Every function works on message objects of either kind: rclpy's generated classes (in the node)
and rosbags' dataclasses (in the bag tool and the tests). Messages are built through a
:class:`MessageTypes` factory, made with :meth:`MessageTypes.from_typestore` (rosbags) or
:meth:`MessageTypes.from_rclpy`. Both kinds share attribute names and take every field as a keyword.

Inputs: any bytes-like ``data`` (numpy uint8 array, ``array.array``, ``bytes``) is read without a
per-pixel loop. Outputs: ``uint8[]`` and ``float64[]`` fields are numpy arrays, passed through the
factory's ``uint8_sequence`` / ``float64_sequence`` (identity for rosbags, ``array.array`` for
rclpy, whose generated setters accept only that or a Python sequence); the fixed-size ``k``, ``r``,
``p`` are float64 numpy arrays, which both accept. Scalars are plain ``int``/``bool``/``str``, as
rclpy's setters assert.

Headers: outputs carry the header given to them, which the node and bag tool copy from the INPUT
image (:func:`copy_header`); nothing here reads a clock.

Encodings read (:func:`image_to_rgb`): rgb8, bgr8, rgba8, bgra8, mono8, mono16 (grey is repeated into
three channels). mono16 is scaled by the fixed factor 255/65535 (rounded), the full 16-bit range to
the full 8-bit range: the same intensity gives the same network input on every frame, which a
per-frame min/max stretch would not (a 12-bit camera in a 16-bit container comes out dark; publish
it as mono8 or scale it upstream). Depth (:func:`depth_from_image`): 32FC1 metres,
16UC1 (or mono16) millimetres with 0 invalid. Published: 32FC1 metres with NaN invalid, 16UC1
millimetres with 0 invalid (REP 118), always little endian with ``step = width × bytes per pixel``.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.laserscan import Scan
from depth_estimation_ros.core.pointcloud import FLOAT32, PackedCloud
from depth_estimation_ros.core.validation import image_size


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """Metres (NaN invalid) → uint16 millimetres (0 invalid, saturated at 65.535 m)."""
    valid = np.isfinite(depth) & (depth > 0)
    # in float64: a float32 product would round x.5 mm cases before np.round does
    mm = np.round(np.where(valid, depth, 0).astype(np.float64) * 1000)
    return np.clip(mm, 0, 65535).astype(np.uint16)


# encoding → (dtype, channels) for every encoding read or written here
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16")
DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")


def _identity(values: np.ndarray) -> np.ndarray:
    return values


def _array_of(typecode: str) -> Callable[[np.ndarray], array.array]:
    """numpy → ``array.array(typecode)`` with one copy (rclpy's type for unbounded sequences);
    an ``array.array`` of that type is passed through as it is."""
    dtype = np.dtype(typecode)

    def wrap(values: np.ndarray) -> array.array:
        if isinstance(values, array.array) and values.typecode == typecode:
            return values
        out = array.array(typecode)
        out.frombytes(np.ascontiguousarray(values, dtype=dtype).reshape(-1).view(np.uint8))
        return out

    return wrap


def _numpy_bytes(size: int) -> np.ndarray:
    return np.empty(size, np.uint8)


def _array_bytes(size: int) -> array.array:
    return array.array("B", bytes(1)) * size


def writable_view(storage, dtype: np.dtype | str = np.uint8) -> np.ndarray:
    """A flat numpy view of a ``uint8_storage`` buffer, to fill in place."""
    return np.frombuffer(storage, np.uint8).view(dtype)


@dataclass(frozen=True)
class MessageTypes:
    """The message classes outputs are built from, and how sequence fields want their values."""

    Time: Callable[..., Any]
    Header: Callable[..., Any]
    Image: Callable[..., Any]
    CompressedImage: Callable[..., Any]
    CameraInfo: Callable[..., Any]
    RegionOfInterest: Callable[..., Any]
    PointCloud2: Callable[..., Any]
    PointField: Callable[..., Any]
    LaserScan: Callable[..., Any]
    uint8_sequence: Callable[[np.ndarray], Any] = _identity  # a flat uint8 array → a uint8[] field
    float64_sequence: Callable[[np.ndarray], Any] = _identity  # a flat float64 array → a float64[] field
    float32_sequence: Callable[[np.ndarray], Any] = _identity  # a flat float32 array → a float32[] field
    uint8_storage: Callable[[int], Any] = _numpy_bytes  # n bytes a uint8[] field takes without a copy
    rclpy: bool = False  # rclpy's classes: see _with_data

    @classmethod
    def from_typestore(cls, store) -> MessageTypes:
        """rosbags dataclasses from a typestore (``rosbags.typesys.get_typestore(Stores.ROS2_JAZZY)``)."""
        types = store.types
        return cls(
            Time=types["builtin_interfaces/msg/Time"],
            Header=types["std_msgs/msg/Header"],
            Image=types["sensor_msgs/msg/Image"],
            CompressedImage=types["sensor_msgs/msg/CompressedImage"],
            CameraInfo=types["sensor_msgs/msg/CameraInfo"],
            RegionOfInterest=types["sensor_msgs/msg/RegionOfInterest"],
            PointCloud2=types["sensor_msgs/msg/PointCloud2"],
            PointField=types["sensor_msgs/msg/PointField"],
            LaserScan=types["sensor_msgs/msg/LaserScan"],
        )

    @classmethod
    def from_rclpy(cls) -> MessageTypes:
        """rclpy's generated classes (needs a sourced ROS 2 installation)."""
        from builtin_interfaces.msg import Time
        from sensor_msgs.msg import (
            CameraInfo,
            CompressedImage,
            Image,
            LaserScan,
            PointCloud2,
            PointField,
            RegionOfInterest,
        )
        from std_msgs.msg import Header

        return cls(
            Time=Time,
            Header=Header,
            Image=Image,
            CompressedImage=CompressedImage,
            CameraInfo=CameraInfo,
            RegionOfInterest=RegionOfInterest,
            PointCloud2=PointCloud2,
            PointField=PointField,
            LaserScan=LaserScan,
            uint8_sequence=_array_of("B"),
            float64_sequence=_array_of("d"),
            float32_sequence=_array_of("f"),
            uint8_storage=_array_bytes,
            rclpy=True,
        )


def _with_data(cls, types: MessageTypes, data, **fields):
    """A message whose ``data`` field is ``data`` itself, not a copy of it.

    rclpy's generated constructors copy a ``data`` argument (``array.array('B', data)``), and so
    does the unchecked setter; the checked setter keeps an ``array.array('B')`` as it is.
    """
    if not types.rclpy:
        return cls(data=data, **fields)
    msg = cls(check_fields=True, **fields)
    msg.data = data
    return msg


# ---------------------------------------------------------------------------------------------
# Headers


def header(stamp_sec: int, stamp_nanosec: int, frame_id: str, types: MessageTypes):
    """A std_msgs/Header with this stamp and frame_id."""
    sec, nanosec = int(stamp_sec), int(stamp_nanosec)
    if not (-(2**31) <= sec < 2**31 and 0 <= nanosec < 1_000_000_000):
        raise ValueError(f"stamp must have sec in int32 and nanosec in [0, 1e9), got sec={sec}, nanosec={nanosec}")
    return types.Header(stamp=types.Time(sec=sec, nanosec=nanosec), frame_id=str(frame_id))


def copy_header(source, types: MessageTypes):
    """A new header with the stamp and frame_id of ``source`` (the input image's header)."""
    return header(source.stamp.sec, source.stamp.nanosec, source.frame_id, types)


# ---------------------------------------------------------------------------------------------
# Images in


def _buffer(data) -> np.ndarray:
    """Any bytes-like ``data`` field as a flat uint8 array (a view where possible)."""
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except (TypeError, ValueError):  # not a contiguous buffer (e.g. a list of ints)
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_to_array(msg) -> np.ndarray:
    """sensor_msgs/Image → (H, W) or (H, W, C) array of the encoding's type, native byte order.

    Honours ``step`` (row padding) and ``is_bigendian``. The array is a new, writable copy.
    """
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f"{encoding} image has zero size: width {width}, height {height}")
    pixel_bytes = channels * dtype.itemsize
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ValueError(
            f"{encoding} image {width}x{height}: step {step} is less than width × {pixel_bytes} bytes = {row_bytes}"
        )
    data = _buffer(msg.data)
    if data.size < step * height:
        raise ValueError(
            f"{encoding} image {width}x{height}: data has {data.size} bytes, expected step × height = "
            f"{step} × {height} = {step * height}"
        )
    rows = np.empty((height, row_bytes), np.uint8)
    rows[...] = data[: step * height].reshape(height, step)[:, :row_bytes]  # the one copy
    wire = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = rows.view(wire).astype(dtype.newbyteorder("="), copy=False)
    return pixels.reshape(height, width) if channels == 1 else pixels.reshape(height, width, channels)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image → (H, W, 3) uint8 RGB (encodings: see the module docstring)."""
    if msg.encoding not in COLOUR_ENCODINGS:
        raise ValueError(
            f"unsupported colour image encoding {msg.encoding!r}; expected one of {', '.join(COLOUR_ENCODINGS)}"
        )
    pixels = image_to_array(msg)
    encoding = msg.encoding
    if encoding == "rgb8":
        return pixels
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[..., :3])
    if encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pixels[..., 2::-1])
    if encoding == "mono16":  # fixed full-range scale 255/65535, rounded
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return _grey_to_rgb(pixels)


def frame_size(msg, compressed: bool) -> tuple[int, int] | None:
    """(height, width) of an Image, or of a CompressedImage from its file header (None where the
    header does not tell), before anything is decoded."""
    if not compressed:
        return msg.height, msg.width
    size = image_size(bytes(msg.data))
    return None if size is None else (size[1], size[0])


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG, PNG, … as OpenCV decodes them) → (H, W, 3) uint8 RGB.

    The decoded file is what counts: image_transport always compresses colour as BGR, so the
    ``format`` prefix (e.g. ``"rgb8; jpeg compressed bgr8"``) needs no channel swap of its own.
    """
    form = msg.format
    if "compresseddepth" in form.lower():
        raise ValueError(f"compressed image format {form!r} is a depth transport, not a colour image")
    data = _buffer(msg.data)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ValueError(f"cannot decode compressed image (format {form!r}, {data.size} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def depth_from_image(msg) -> np.ndarray:
    """Depth image → (H, W) float32 metres: 32FC1 as is, 16UC1 (or mono16) mm / 1000 with 0 → NaN."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ValueError(
            f"unsupported depth image encoding {msg.encoding!r}; expected one of {', '.join(DEPTH_ENCODINGS)}"
        )
    pixels = image_to_array(msg)
    if msg.encoding == "32FC1":
        return pixels
    depth = pixels.astype(np.float32) / np.float32(1000)
    depth[pixels == 0] = np.nan
    return depth


# ---------------------------------------------------------------------------------------------
# Camera info


def camera_from_info(msg) -> CameraModel:
    """sensor_msgs/CameraInfo → the :class:`CameraModel` of the image published with it.

    ROI and binning are applied as the CameraInfo definition says (K, P, width and height describe
    the full sensor; the image is the ROI, then binned): crop at the ROI, then an exact area
    downscale by 1/binning (pixel-centre convention, ``c' = (c + 0.5)/b − 0.5``; image_geometry
    uses ``c/b``, a quarter pixel away for b = 2). An all-zero P (uncalibrated projection) falls
    back to ``[K | 0]``. Every number must be finite and the focal lengths of K and P positive:
    a ValueError says which one is not.
    """
    frame_id = msg.header.frame_id
    where = f"CameraInfo (frame_id {frame_id!r})"
    p = np.asarray(msg.p, dtype=np.float64)
    try:
        camera = CameraModel(
            width=int(msg.width),
            height=int(msg.height),
            K=np.asarray(msg.k, dtype=np.float64),
            P=None if p.size == 12 and not p.any() else p,
            D=np.asarray(msg.d, dtype=np.float64),
            distortion_model=msg.distortion_model or "plumb_bob",
            R=np.asarray(msg.r, dtype=np.float64),
            frame_id=frame_id,
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc} (is the camera calibrated?)") from None
    roi = msg.roi
    x0, y0, roi_w, roi_h = int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)
    if roi_w or roi_h:
        if roi_w == 0 or roi_h == 0 or x0 + roi_w > camera.width or y0 + roi_h > camera.height:
            raise ValueError(
                f"{where}: roi {roi_w}x{roi_h} at ({x0}, {y0}) does not lie inside the {camera.width}x{camera.height} "
                "sensor"
            )
        camera = camera.crop(x0, y0, roi_w, roi_h)
    bx, by = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    if bx > 1 or by > 1:
        width, height = camera.width // bx, camera.height // by
        if width == 0 or height == 0:
            raise ValueError(f"{where}: binning {bx}x{by} leaves nothing of a {camera.width}x{camera.height} image")
        camera = camera.crop(0, 0, width * bx, height * by).resize(width, height)
    return camera


def camera_info_msg(camera: CameraModel, header, types: MessageTypes):
    """sensor_msgs/CameraInfo describing exactly the image ``camera`` describes.

    Stamp and frame_id come from ``header`` (the published image's), binning 0 and an empty ROI.
    """
    return types.CameraInfo(
        header=header,
        height=camera.height,
        width=camera.width,
        distortion_model=camera.distortion_model,
        d=types.float64_sequence(np.array(camera.D, dtype=np.float64).reshape(-1)),
        k=np.array(camera.K, dtype=np.float64).reshape(9),
        r=np.array(camera.R, dtype=np.float64).reshape(9),
        p=np.array(camera.P, dtype=np.float64).reshape(12),
        binning_x=0,
        binning_y=0,
        roi=types.RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


# ---------------------------------------------------------------------------------------------
# Images out


def image_msg(pixels: np.ndarray, encoding: str, header, types: MessageTypes, storage=None):
    """(H, W) or (H, W, C) array → sensor_msgs/Image, little endian, unpadded rows.

    The array's dtype and channels must be the encoding's (e.g. float32 (H, W) for 32FC1). With
    rosbags types, ``data`` may be a view of ``pixels``: do not write to it while the message lives.
    ``storage``: the ``types.uint8_storage`` buffer that ``pixels`` is a view of (see
    :func:`writable_view`); it becomes ``data`` without a copy.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    pixels = np.asarray(pixels)
    shape_ok = pixels.ndim == 2 if channels == 1 else pixels.ndim == 3 and pixels.shape[2] == channels
    if pixels.dtype != dtype or not shape_ok or 0 in pixels.shape:
        expected = "(H, W)" if channels == 1 else f"(H, W, {channels})"
        raise ValueError(f"{encoding} needs a non-empty {expected} {dtype} array, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    if storage is not None:
        if not np.shares_memory(writable_view(storage), pixels) or pixels.nbytes != len(writable_view(storage)):
            raise ValueError("storage must be the buffer the pixels are a view of")
        data = storage
    else:
        flat = np.ascontiguousarray(pixels, dtype=dtype.newbyteorder("<")).reshape(-1).view(np.uint8)
        data = types.uint8_sequence(flat)
    return _with_data(
        types.Image,
        types,
        data,
        header=header,
        height=int(height),
        width=int(width),
        encoding=encoding,
        is_bigendian=0,
        step=int(width * channels * dtype.itemsize),
    )


def depth_image_msg(depth: np.ndarray, header, types: MessageTypes, encoding: str = "32FC1"):
    """(H, W) metres, NaN invalid → 32FC1 metres (NaN kept) or 16UC1 millimetres (0 invalid)."""
    depth = np.asarray(depth)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"depth must be an (H, W) float array in metres, got {depth.dtype} {depth.shape}")
    if encoding == "32FC1":
        return image_msg(depth.astype(np.float32, copy=False), "32FC1", header, types)
    if encoding == "16UC1":
        return image_msg(depth_to_millimetres(depth), "16UC1", header, types)
    raise ValueError(f"depth encoding must be '32FC1' (metres) or '16UC1' (millimetres), got {encoding!r}")


# ---------------------------------------------------------------------------------------------
# Point clouds


def pointcloud_msg(cloud: PackedCloud, header, types: MessageTypes):
    """:class:`PackedCloud` → sensor_msgs/PointCloud2 with its fields, steps and bytes unchanged.

    A cloud packed into a ``types.uint8_storage`` buffer keeps it as ``data`` (no copy).
    """
    size = np.frombuffer(cloud.data, np.uint8).size
    if size != cloud.row_step * cloud.height:
        raise ValueError(f"cloud data has {size} bytes, expected row_step × height = {cloud.row_step} × {cloud.height}")
    fields = [
        types.PointField(name=f.name, offset=int(f.offset), datatype=int(f.datatype), count=int(f.count))
        for f in cloud.fields
    ]
    return _with_data(
        types.PointCloud2,
        types,
        types.uint8_sequence(cloud.data),
        header=header,
        height=int(cloud.height),
        width=int(cloud.width),
        fields=fields,
        is_bigendian=bool(cloud.is_bigendian),
        point_step=int(cloud.point_step),
        row_step=int(cloud.row_step),
        is_dense=bool(cloud.is_dense),
    )


def points_from_cloud(msg) -> np.ndarray:
    """sensor_msgs/PointCloud2 → (N, 3) float32 x, y, z (any other fields ignored; NaN points are
    dropped later). Honours ``point_step``, ``row_step`` and ``is_bigendian``; x, y and z must be
    FLOAT32 fields within a point."""
    fields = {f.name: f for f in msg.fields}
    height, width, point_step, row_step = int(msg.height), int(msg.width), int(msg.point_step), int(msg.row_step)
    for axis in "xyz":
        f = fields.get(axis)
        if f is None or f.datatype != FLOAT32 or not 0 <= f.offset <= point_step - 4:
            have = ", ".join(f"{n} (type {g.datatype} at {g.offset})" for n, g in fields.items()) or "none"
            raise ValueError(f"PointCloud2 needs float32 fields x, y and z within its point_step {point_step}; "
                             f"fields: {have}")  # fmt: skip
    if width * point_step > row_step:
        raise ValueError(f"PointCloud2 row_step {row_step} is less than width × point_step = {width} × {point_step}")
    data = _buffer(msg.data)
    if data.size < row_step * height:
        raise ValueError(f"PointCloud2 data has {data.size} bytes, expected row_step × height = {row_step} × {height}")
    rows = data[: row_step * height].reshape(height, row_step)[:, : width * point_step].reshape(-1, point_step)
    wire = np.dtype(">f4" if msg.is_bigendian else "<f4")
    return np.stack([rows[:, fields[a].offset : fields[a].offset + 4].copy().view(wire)[:, 0] for a in "xyz"],
                    1).astype(np.float32)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Laser scans


def laserscan_msg(scan: Scan, header, types: MessageTypes, scan_time: float = 0.0):
    """:class:`~depth_estimation_ros.core.laserscan.Scan` → sensor_msgs/LaserScan (no intensities).

    ``header``: the depth image's stamp, with the frame the scan's angles turn about.
    """
    return types.LaserScan(
        header=header,
        angle_min=float(scan.angle_min),
        angle_max=float(scan.angle_max),
        angle_increment=float(scan.angle_increment),
        time_increment=0.0,
        scan_time=float(scan_time),
        range_min=float(scan.range_min),
        range_max=float(scan.range_max),
        ranges=types.float32_sequence(np.asarray(scan.ranges, np.float32)),
        intensities=types.float32_sequence(np.zeros(0, np.float32)),
    )
