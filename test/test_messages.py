"""Message conversion against the genuine ROS 2 message definitions (rosbags typestores) and CDR."""

from __future__ import annotations

import array
import dataclasses

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.pointcloud import depth_to_points, organised_cloud, pack_rgb
from depth_estimation_ros.ros.messages import (
    MessageTypes,
    _array_of,
    camera_from_info,
    camera_info_msg,
    compressed_to_rgb,
    copy_header,
    depth_from_image,
    depth_image_msg,
    header,
    image_msg,
    image_to_array,
    image_to_rgb,
    pointcloud_msg,
)

STAMP = (1_700_000_000, 123_456_789)
FRAME = "camera_optical_frame"


@pytest.fixture(params=[Stores.ROS2_HUMBLE, Stores.ROS2_JAZZY], ids=["humble", "jazzy"], scope="module")
def store(request):
    return get_typestore(request.param)


@pytest.fixture
def types(store):
    return MessageTypes.from_typestore(store)


def round_trip(store, msg):
    """Serialise to CDR and back, as a rosbag2 file or DDS would carry it."""
    raw = store.serialize_cdr(msg, msg.__msgtype__)
    return store.deserialize_cdr(bytes(raw), msg.__msgtype__)


def raw_image(types, encoding, height, width, step, data, is_bigendian=0):
    return types.Image(
        header=header(*STAMP, FRAME, types),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
        data=np.frombuffer(bytes(data), dtype=np.uint8),
    )


def padded(rows: np.ndarray, pad: int) -> bytes:
    """(H, row bytes) uint8 rows, each followed by ``pad`` junk bytes."""
    junk = np.full((rows.shape[0], pad), 0xAB, dtype=np.uint8)
    return np.hstack([rows, junk]).tobytes()


RGB = np.array(
    [
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]],
        [[1, 2, 3], [200, 100, 50], [0, 0, 0], [255, 255, 255]],
        [[7, 77, 177], [9, 99, 199], [4, 44, 144], [5, 55, 155]],
    ],
    dtype=np.uint8,
)  # 3 rows, 4 columns


# ---------------------------------------------------------------------------------------------
# Images in


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_every_colour_encoding_decodes_to_rgb_with_padded_rows(types, encoding):
    height, width = RGB.shape[:2]
    alpha = np.full((height, width, 1), 99, dtype=np.uint8)
    layouts = {
        "rgb8": RGB,
        "bgr8": RGB[..., ::-1],
        "rgba8": np.concatenate([RGB, alpha], axis=2),
        "bgra8": np.concatenate([RGB[..., ::-1], alpha], axis=2),
        "mono8": RGB[..., 0],
    }
    pixels = np.ascontiguousarray(layouts[encoding])
    row_bytes = pixels[0].size
    msg = raw_image(types, encoding, height, width, row_bytes + 5, padded(pixels.reshape(height, -1), 5))
    rgb = image_to_rgb(msg)
    expected = np.repeat(RGB[..., :1], 3, axis=2) if encoding == "mono8" else RGB
    assert rgb.dtype == np.uint8
    assert rgb.shape == (height, width, 3)
    assert rgb.flags.c_contiguous
    assert rgb.flags.writeable
    np.testing.assert_array_equal(rgb, expected)


@pytest.mark.parametrize("big_endian", [False, True])
def test_mono16_is_scaled_from_full_16_bit_range_in_either_byte_order(types, big_endian):
    values = np.array([[0, 128, 129, 257], [32896, 65407, 65535, 1000]], dtype=np.uint16)
    wire = values.astype(">u2" if big_endian else "<u2")
    msg = raw_image(types, "mono16", 2, 4, 8 + 2, padded(wire.view(np.uint8).reshape(2, -1), 2), int(big_endian))
    np.testing.assert_array_equal(image_to_array(msg), values)
    expected = np.round(values / 257).astype(np.uint8)  # 255/65535, rounded: 65535 → 255, 32896 → 128
    np.testing.assert_array_equal(image_to_rgb(msg), np.repeat(expected[..., None], 3, axis=2))
    assert image_to_rgb(msg)[1, 2, 0] == 255


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, lambda b: array.array("B", b), memoryview],
    ids=["bytes", "bytearray", "array.array", "memoryview"],
)
def test_any_bytes_like_data_is_accepted(types, wrap):
    """rclpy hands uint8[] as array.array; other producers use bytes."""
    msg = raw_image(types, "rgb8", 3, 4, 12, RGB.tobytes())
    msg.data = wrap(RGB.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


@pytest.mark.parametrize(
    ("encoding", "height", "width", "step", "size", "match"),
    [
        ("yuv422", 3, 4, 8, 24, r"unsupported colour image encoding 'yuv422'; expected one of rgb8, bgr8"),
        ("rgb8", 3, 4, 12, 35, r"rgb8 image 4x3: data has 35 bytes, expected step × height = 12 × 3 = 36"),
        ("rgb8", 3, 4, 11, 36, r"rgb8 image 4x3: step 11 is less than width × 3 bytes = 12"),
        ("mono16", 2, 3, 5, 10, r"mono16 image 3x2: step 5 is less than width × 2 bytes = 6"),
        ("bgr8", 0, 4, 12, 0, r"bgr8 image has zero size: width 4, height 0"),
        ("mono8", 3, 0, 0, 0, r"mono8 image has zero size: width 0, height 3"),
        ("32FC1", 1, 1, 4, 4, r"unsupported colour image encoding '32FC1'"),
    ],
    ids=["unknown-encoding", "truncated", "short-step", "short-step-mono16", "zero-height", "zero-width", "depth"],
)
def test_bad_images_raise_value_error_naming_the_problem(types, encoding, height, width, step, size, match):
    msg = raw_image(types, encoding, height, width, step, bytes(size))
    with pytest.raises(ValueError, match=match):
        image_to_rgb(msg)


def test_compressed_png_and_jpeg_decode_to_rgb(types):
    rgb = np.zeros((16, 24, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, np.arange(24, dtype=np.uint8)[None, :] * 8, 40
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    for fmt, ext, tolerance in (("rgb8; png compressed bgr8", ".png", 0), ("jpeg", ".jpg", 12)):
        ok, encoded = cv2.imencode(ext, bgr)
        assert ok
        msg = types.CompressedImage(header=header(*STAMP, FRAME, types), format=fmt, data=encoded.reshape(-1))
        decoded = compressed_to_rgb(msg)
        assert decoded.shape == rgb.shape
        assert decoded.dtype == np.uint8
        assert np.abs(decoded.astype(int) - rgb).max() <= tolerance, fmt


@pytest.mark.parametrize(
    ("fmt", "data", "match"),
    [
        ("jpeg", b"not a jpeg at all", r"cannot decode compressed image \(format 'jpeg', 17 bytes\)"),
        ("png", b"", r"cannot decode compressed image \(format 'png', 0 bytes\)"),
        ("16UC1; compressedDepth png", b"\x00" * 16, r"'16UC1; compressedDepth png' is a depth transport"),
    ],
    ids=["garbage", "empty", "compressedDepth"],
)
def test_undecodable_compressed_images_raise_value_error(types, fmt, data, match):
    msg = types.CompressedImage(
        header=header(*STAMP, FRAME, types), format=fmt, data=np.frombuffer(data, dtype=np.uint8)
    )
    with pytest.raises(ValueError, match=match):
        compressed_to_rgb(msg)


# ---------------------------------------------------------------------------------------------
# Images out


def test_rgb8_image_round_trips_through_cdr(store, types):
    msg = round_trip(store, image_msg(RGB, "rgb8", header(*STAMP, FRAME, types), types))
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == ("rgb8", 3, 4, 12, 0)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


def test_32fc1_depth_round_trip_keeps_nan_and_is_little_endian(store, types):
    depth = np.array([[1.25, np.nan, 3.0], [0.5, 7.75, np.nan]], dtype=np.float32)
    msg = round_trip(store, depth_image_msg(depth, header(*STAMP, FRAME, types), types))
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == ("32FC1", 2, 3, 12, 0)
    assert bytes(msg.data) == depth.astype("<f4").tobytes()
    back = depth_from_image(msg)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, depth)  # NaN in the same places


def test_16uc1_depth_is_millimetres_with_zero_for_invalid(store, types):
    depth = np.array([[1.5, np.nan, 0.0012], [70.0, -1.0, 2.0004]], dtype=np.float32)
    msg = round_trip(store, depth_image_msg(depth, header(*STAMP, FRAME, types), types, encoding="16UC1"))
    assert (msg.encoding, msg.step, msg.is_bigendian) == ("16UC1", 6, 0)
    millimetres = np.frombuffer(bytes(msg.data), dtype="<u2").reshape(2, 3)
    np.testing.assert_array_equal(millimetres, [[1500, 0, 1], [65535, 0, 2000]])
    back = depth_from_image(msg)
    np.testing.assert_allclose(back, [[1.5, np.nan, 0.001], [65.535, np.nan, 2.0]], rtol=1e-6)


def test_big_endian_16uc1_depth_is_read(types):
    mm = np.array([[1000, 0, 2500]], dtype=np.uint16)
    msg = raw_image(types, "16UC1", 1, 3, 6, mm.astype(">u2").tobytes(), is_bigendian=1)
    np.testing.assert_array_equal(depth_from_image(msg), np.array([[1.0, np.nan, 2.5]], dtype=np.float32))


def test_confidence_image_is_32fc1(store, types):
    confidence = np.array([[0.0, 0.5], [0.25, 1.0]], dtype=np.float32)
    msg = round_trip(store, image_msg(confidence, "32FC1", header(*STAMP, FRAME, types), types))
    assert (msg.encoding, msg.step) == ("32FC1", 8)
    np.testing.assert_array_equal(image_to_array(msg), confidence)


@pytest.mark.parametrize(
    ("pixels", "encoding", "match"),
    [
        (np.zeros((2, 2), np.float64), "32FC1", r"32FC1 needs a non-empty \(H, W\) float32 array, got float64"),
        (np.zeros((2, 2), np.uint8), "rgb8", r"rgb8 needs a non-empty \(H, W, 3\) uint8 array, got uint8 \(2, 2\)"),
        (np.zeros((0, 2), np.float32), "32FC1", r"non-empty"),
        (np.zeros((2, 2), np.float32), "64FC1", r"unsupported image encoding '64FC1'"),
    ],
)
def test_publishing_an_array_that_does_not_fit_the_encoding_raises(types, pixels, encoding, match):
    with pytest.raises(ValueError, match=match):
        image_msg(pixels, encoding, header(*STAMP, FRAME, types), types)


def test_depth_encoding_other_than_32fc1_or_16uc1_is_refused(types):
    with pytest.raises(ValueError, match=r"'32FC1' \(metres\) or '16UC1' \(millimetres\), got 'mono8'"):
        depth_image_msg(np.ones((2, 2), np.float32), header(*STAMP, FRAME, types), types, encoding="mono8")


# ---------------------------------------------------------------------------------------------
# Camera info


CAMERA = CameraModel(
    640,
    480,
    [[525.0, 0, 319.5], [0, 520.0, 239.5], [0, 0, 1]],
    P=[[525.0, 0, 319.5, -30.0], [0, 520.0, 239.5, 0], [0, 0, 1, 0]],
    D=[0.1, -0.2, 0.001, 0.002, 0.03],
    frame_id=FRAME,
)


def info_msg(types, camera=CAMERA, binning=(0, 0), roi=(0, 0, 0, 0), k=None, p=None):
    x0, y0, w, h = roi
    return types.CameraInfo(
        header=header(*STAMP, camera.frame_id, types),
        height=camera.height,
        width=camera.width,
        distortion_model=camera.distortion_model,
        d=camera.D.copy(),
        k=camera.K.reshape(-1) if k is None else np.asarray(k, dtype=np.float64),
        r=camera.R.reshape(-1),
        p=camera.P.reshape(-1) if p is None else np.asarray(p, dtype=np.float64),
        binning_x=binning[0],
        binning_y=binning[1],
        roi=types.RegionOfInterest(x_offset=x0, y_offset=y0, height=h, width=w, do_rectify=False),
    )


def test_camera_info_of_a_resized_depth_image_matches_it(store, types):
    small = CAMERA.resize(320, 240)
    out_header = header(*STAMP, FRAME, types)
    depth = round_trip(store, depth_image_msg(np.ones((240, 320), np.float32), out_header, types))
    info = round_trip(store, camera_info_msg(small, out_header, types))
    assert (info.width, info.height) == (depth.width, depth.height) == (320, 240)
    np.testing.assert_allclose(info.k, [262.5, 0, 159.5, 0, 260.0, 119.5, 0, 0, 1])  # (c + 0.5)/2 − 0.5
    np.testing.assert_allclose(info.p, [262.5, 0, 159.5, -15.0, 0, 260.0, 119.5, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(info.d, CAMERA.D)
    np.testing.assert_array_equal(info.r, np.eye(3).reshape(-1))
    assert info.distortion_model == "plumb_bob"
    assert (info.binning_x, info.binning_y) == (0, 0)
    assert (info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height) == (0, 0, 0, 0)
    assert camera_from_info(info) == small


def test_camera_from_info_applies_roi_then_binning(types):
    camera = camera_from_info(info_msg(types, binning=(2, 2), roi=(100, 50, 320, 240)))
    assert camera.size == (160, 120)
    assert camera.isclose(CAMERA.crop(100, 50, 320, 240).resize(160, 120))
    # pixel-centre area mapping: c' = (c − offset + 0.5)/2 − 0.5
    assert camera.fx == pytest.approx(262.5)
    assert camera.cx == pytest.approx((319.5 - 100 + 0.5) / 2 - 0.5)
    assert camera.cy == pytest.approx((239.5 - 50 + 0.5) / 2 - 0.5)
    assert camera.P[0, 3] == pytest.approx(-15.0)  # the stereo term scales with f
    assert camera.frame_id == FRAME


def test_camera_from_info_with_binning_alone_and_uneven_size(types):
    camera = camera_from_info(info_msg(types, binning=(3, 1)))
    assert camera.size == (213, 480)
    assert camera.fx == pytest.approx(175.0)
    assert camera.fy == pytest.approx(520.0)
    assert camera.cy == pytest.approx(239.5)


def test_camera_from_info_without_projection_uses_k(types):
    camera = camera_from_info(info_msg(types, p=np.zeros(12)))
    np.testing.assert_array_equal(camera.P[:, :3], CAMERA.K)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"k": np.zeros(9), "p": np.zeros(12)}, r"CameraInfo \(frame_id 'camera_optical_frame'\): .*focal length"),
        ({"roi": (400, 0, 320, 240)}, r"CameraInfo .*roi 320x240 at \(400, 0\) does not lie inside the 640x480"),
    ],
)
def test_unusable_camera_info_raises_naming_the_camera_info(types, changes, match):
    with pytest.raises(ValueError, match=match):
        camera_from_info(info_msg(types, **changes))


# ---------------------------------------------------------------------------------------------
# Point clouds


def cloud_points(msg) -> tuple[np.ndarray, np.ndarray]:
    """Organised (H, W, 3) xyz and the (H, W) field record array, decoded from the message bytes."""
    dtype = np.dtype(
        {
            "names": [f.name for f in msg.fields],
            "formats": ["<f4"] * len(msg.fields),
            "offsets": [f.offset for f in msg.fields],
            "itemsize": msg.point_step,
        }
    )
    records = np.frombuffer(bytes(msg.data), dtype=dtype).reshape(msg.height, msg.width)
    return np.stack([records["x"], records["y"], records["z"]], axis=-1), records


@pytest.mark.parametrize("coloured", [False, True], ids=["xyz", "xyzrgb"])
def test_pointcloud_layout_and_cdr_round_trip(store, types, coloured):
    camera = CameraModel.from_intrinsics(100.0, 90.0, 2.0, 1.0, 5, 3)
    depth = np.linspace(0.5, 4.0, 15, dtype=np.float32).reshape(3, 5)
    depth[1, 2] = np.nan
    depth[0, 4] = 0.0
    rgb = np.arange(45, dtype=np.uint8).reshape(3, 5, 3) * 5 if coloured else None
    cloud = organised_cloud(depth, camera, rgb)
    msg = round_trip(store, pointcloud_msg(cloud, header(*STAMP, FRAME, types), types))

    names = ["x", "y", "z", "rgb"] if coloured else ["x", "y", "z"]
    assert [f.name for f in msg.fields] == names
    assert [f.offset for f in msg.fields] == [0, 4, 8, 16][: len(names)]
    assert all(f.datatype == 7 and f.count == 1 for f in msg.fields)
    point_step = 32 if coloured else 16
    assert (msg.height, msg.width) == (3, 5)  # organised, rows × columns, not transposed
    assert (msg.point_step, msg.row_step) == (point_step, 5 * point_step)
    assert msg.is_dense is False
    assert msg.is_bigendian is False
    assert len(msg.data) == msg.row_step * msg.height

    xyz, records = cloud_points(msg)
    np.testing.assert_array_equal(xyz, depth_to_points(depth, camera))
    assert np.isnan(xyz[1, 2]).all()
    assert np.isnan(xyz[0, 4]).all()
    if coloured:
        np.testing.assert_array_equal(records["rgb"].view(np.uint32), pack_rgb(rgb).view(np.uint32))


def test_dense_cloud_is_marked_dense(store, types):
    camera = CameraModel.from_intrinsics(100.0, 100.0, 1.0, 1.0, 2, 2)
    msg = round_trip(store, pointcloud_msg(organised_cloud(np.ones((2, 2)), camera), header(0, 0, FRAME, types), types))
    assert msg.is_dense is True


def test_decimated_cloud_stays_organised(store, types):
    camera = CameraModel.from_intrinsics(100.0, 100.0, 3.0, 2.0, 7, 5)
    depth = np.full((5, 7), 2.0, np.float32)
    cloud = organised_cloud(depth, camera, decimation=2)
    msg = round_trip(store, pointcloud_msg(cloud, header(*STAMP, FRAME, types), types))
    assert (msg.height, msg.width, msg.row_step) == (3, 4, 64)
    xyz, _ = cloud_points(msg)
    np.testing.assert_allclose(xyz, depth_to_points(depth, camera)[::2, ::2], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Headers and the contract with rclpy


def published_messages(types, input_header):
    """One of every message the node publishes, all with a header copied from the input image."""
    camera = CameraModel.from_intrinsics(50.0, 50.0, 1.5, 1.0, 4, 3, frame_id="ignored")
    depth = np.full((3, 4), 2.0, np.float32)
    depth[0, 0] = np.nan
    return [
        depth_image_msg(depth, copy_header(input_header, types), types),
        depth_image_msg(depth, copy_header(input_header, types), types, encoding="16UC1"),
        image_msg(np.full((3, 4), 0.5, np.float32), "32FC1", copy_header(input_header, types), types),
        image_msg(RGB, "rgb8", copy_header(input_header, types), types),
        camera_info_msg(camera, copy_header(input_header, types), types),
        pointcloud_msg(organised_cloud(depth, camera, RGB), copy_header(input_header, types), types),
    ]


def test_input_stamp_and_frame_id_reach_every_output(store, types):
    source = raw_image(types, "rgb8", 3, 4, 12, RGB.tobytes())
    source = round_trip(store, source)
    for msg in published_messages(types, source.header):
        back = round_trip(store, msg)
        assert (back.header.stamp.sec, back.header.stamp.nanosec) == STAMP, msg.__msgtype__
        assert back.header.frame_id == FRAME, msg.__msgtype__
        assert back.header is not source.header


def test_header_rejects_out_of_range_stamps(types):
    with pytest.raises(ValueError, match=r"nanosec=1000000000"):
        header(1, 1_000_000_000, FRAME, types)
    with pytest.raises(ValueError, match=r"sec=2147483648"):
        header(2**31, 0, FRAME, types)


def _check_field_types(msg, where: str) -> None:
    for field in dataclasses.fields(msg):
        value, kind, name = getattr(msg, field.name), str(field.type), f"{where}.{field.name}"
        if kind.startswith("ClassVar"):  # __msgtype__ and constants
            continue
        if kind in ("int", "bool", "str", "float"):
            assert type(value).__name__ == kind, f"{name} is {type(value).__name__}, rclpy asserts {kind}"
        elif kind.startswith("np.ndarray"):
            assert isinstance(value, np.ndarray), name
            assert value.dtype == (np.uint8 if "uint8" in kind else np.float64), f"{name}: {value.dtype}"
        elif kind.startswith("list["):
            for item in value:
                _check_field_types(item, name)
        else:
            _check_field_types(value, name)


def test_published_fields_have_the_exact_types_rclpy_setters_assert(types):
    """rclpy rejects numpy integers in int fields and ints in bool fields; rosbags would not notice."""
    for msg in published_messages(types, header(*STAMP, FRAME, types)):
        _check_field_types(msg, msg.__msgtype__)
    info = published_messages(types, header(*STAMP, FRAME, types))[4]
    assert (info.k.size, info.r.size, info.p.size) == (9, 9, 12)  # rclpy's fixed-size float64 arrays


def test_rclpy_sequence_wrappers_copy_into_array_array():
    data = np.arange(10, dtype=np.uint8)
    as_bytes = _array_of("B")(data)
    assert isinstance(as_bytes, array.array)
    assert as_bytes.typecode == "B"
    assert as_bytes.tobytes() == data.tobytes()
    data[0] = 99
    assert as_bytes[0] == 0  # a copy, not a view
    as_doubles = _array_of("d")(np.array([0.1, -0.2, 3.0]))
    assert as_doubles.typecode == "d"
    assert list(as_doubles) == [0.1, -0.2, 3.0]


# ---------------------------------------------------------------------------------------------
# An independent CDR decoder


def test_independent_decoder_reads_what_is_published(store, types):
    """mcap-ros2-support decodes the serialised messages from the message definition text alone."""
    from mcap_ros2._dynamic import generate_dynamic

    for msg in published_messages(types, header(*STAMP, FRAME, types)):
        msgtype = msg.__msgtype__
        definition, _ = store.generate_msgdef(msgtype, ros_version=2)
        decoded = generate_dynamic(msgtype, definition)[msgtype](bytes(store.serialize_cdr(msg, msgtype)))
        assert (decoded.header.stamp.sec, decoded.header.stamp.nanosec, decoded.header.frame_id) == (*STAMP, FRAME)
        assert (decoded.height, decoded.width) == (msg.height, msg.width)
        if msgtype == "sensor_msgs/msg/CameraInfo":
            np.testing.assert_array_equal(decoded.k, msg.k)
            np.testing.assert_array_equal(decoded.p, msg.p)
            np.testing.assert_array_equal(decoded.d, msg.d)
            assert decoded.distortion_model == msg.distortion_model
            continue
        assert bytes(decoded.data) == msg.data.tobytes()
        if msgtype == "sensor_msgs/msg/Image":
            assert (decoded.encoding, decoded.step, decoded.is_bigendian) == (msg.encoding, msg.step, 0)
        else:
            assert [(f.name, f.offset, f.datatype, f.count) for f in decoded.fields] == [
                (f.name, f.offset, f.datatype, f.count) for f in msg.fields
            ]
            assert (decoded.point_step, decoded.row_step, decoded.is_dense) == (32, 128, False)


def test_messages_built_the_rclpy_way_read_back(types):
    """With array.array sequences (the from_rclpy factory's choice) the readers still work."""
    rclpy_like = dataclasses.replace(types, uint8_sequence=_array_of("B"), float64_sequence=_array_of("d"))
    depth = np.array([[1.0, np.nan]], dtype=np.float32)
    msg = depth_image_msg(depth, header(*STAMP, FRAME, rclpy_like), rclpy_like)
    assert isinstance(msg.data, array.array)
    np.testing.assert_array_equal(depth_from_image(msg), depth)
    info = camera_info_msg(CAMERA, header(*STAMP, FRAME, rclpy_like), rclpy_like)
    assert isinstance(info.d, array.array)
    assert camera_from_info(info) == CAMERA
