import numpy as np
import pytest

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.pointcloud import CloudPacker, depth_to_points, organised_cloud, write_ply


@pytest.fixture
def camera():
    return CameraModel.from_intrinsics(100.0, 200.0, 1.0, 0.5, 3, 2)


def test_back_projection_matches_hand_computed_points(camera):
    depth = np.array([[1.0, 2.0, 4.0], [0.5, 3.0, 1.0]], dtype=np.float32)
    points = depth_to_points(depth, camera)
    assert points.shape == (2, 3, 3)
    assert points.dtype == np.float32
    # x = (u − cx)·z/fx, y = (v − cy)·z/fy, with u, v integer pixel indices
    assert points[0, 0] == pytest.approx([(0 - 1) * 1 / 100, (0 - 0.5) * 1 / 200, 1.0])
    assert points[0, 2] == pytest.approx([(2 - 1) * 4 / 100, (0 - 0.5) * 4 / 200, 4.0])
    assert points[1, 1] == pytest.approx([0.0, (1 - 0.5) * 3 / 200, 3.0])
    assert np.allclose(depth_to_points(depth, camera.K), points)  # a plain K works too


def test_invalid_depth_gives_nan_points(camera):
    depth = np.array([[0.0, np.nan, np.inf], [-1.0, 2.0, 50.0]], dtype=np.float32)
    points = depth_to_points(depth, camera, max_range=10.0)
    valid = ~np.isnan(points).any(-1)
    assert valid.tolist() == [[False, False, False], [False, True, False]]
    assert np.isnan(points[~valid]).all()


def test_max_range_is_euclidean_distance_not_depth():
    camera = CameraModel.from_intrinsics(1.0, 1.0, 0.0, 0.0, 2, 1)
    depth = np.array([[5.0, 5.0]], dtype=np.float32)  # pixel 1 is 45° off axis: distance 5·√2
    points = depth_to_points(depth, camera, max_range=6.0)
    assert not np.isnan(points[0, 0]).any()
    assert np.isnan(points[0, 1]).all()


def decode(cloud):
    floats = np.frombuffer(cloud.data.tobytes(), dtype="<f4").reshape(cloud.height, cloud.width, -1)
    return floats


def test_xyz_layout_is_depth_image_procs(camera):
    depth = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    points = depth_to_points(depth, camera)
    cloud = organised_cloud(depth, camera)
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1),
    ]  # fmt: skip
    assert (cloud.point_step, cloud.row_step, cloud.height, cloud.width) == (16, 48, 2, 3)
    assert cloud.data.dtype == np.uint8
    assert cloud.data.size == cloud.row_step * cloud.height
    assert not cloud.is_bigendian
    assert np.array_equal(decode(cloud)[..., :3], points)
    assert (decode(cloud)[..., 3] == 0).all()  # padding is zero, not leftover memory


def test_xyzrgb_packs_colour_bits_as_pcl_does():
    camera = CameraModel.from_intrinsics(1.0, 1.0, 0.0, 0.0, 2, 1)
    depth = np.array([[1.0, np.nan]], dtype=np.float32)
    rgb = np.array([[[255, 128, 1], [0, 0, 0]]], dtype=np.uint8)
    cloud = organised_cloud(depth, camera, rgb)
    assert [(f.name, f.offset) for f in cloud.fields][-1] == ("rgb", 16)
    assert (cloud.point_step, cloud.row_step) == (32, 64)
    assert not cloud.is_dense  # organised with NaN points
    words = np.frombuffer(cloud.data.tobytes(), dtype="<u4").reshape(1, 2, 8)
    assert words[0, 0, 4] == 0x00FF8001
    assert np.isnan(decode(cloud)[0, 1, :3]).all()


def test_decimated_cloud_stays_organised_and_matches_the_full_cloud():
    camera = CameraModel.from_intrinsics(500, 500, 319.5, 239.5, 640, 480)
    depth = np.random.default_rng(0).uniform(0.5, 5, (480, 640)).astype(np.float32)
    rgb = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    full = decode(organised_cloud(depth, camera, rgb))
    sub = organised_cloud(depth, camera, rgb, decimation=3)
    assert (sub.height, sub.width) == (160, 214)
    assert np.allclose(decode(sub), full[::3, ::3], equal_nan=True)


def test_packing_into_a_used_buffer_writes_every_byte_and_follows_a_new_camera():
    rng = np.random.default_rng(2)
    depth = rng.uniform(0.5, 5, (48, 64)).astype(np.float32)
    depth[3, 4] = np.nan
    rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    packer = CloudPacker(rgb=True, max_range=4.0)
    for camera in (
        CameraModel.from_intrinsics(50, 50, 31.5, 23.5, 64, 48),
        CameraModel.from_intrinsics(80, 60, 20, 30, 64, 48),
    ):
        buffer = np.full(packer.nbytes(camera), 0xAB, np.uint8)  # stale bytes from an earlier frame
        cloud = packer.pack(depth, camera, rgb, out=buffer)
        assert cloud.data is buffer
        assert np.array_equal(buffer, organised_cloud(depth, camera, rgb, max_range=4.0).data)
        np.testing.assert_array_equal(decode(cloud)[..., :3], depth_to_points(depth, camera, max_range=4.0))
        words = buffer.view("<u4").reshape(48, 64, 8)
        assert (words[..., [3, 5, 6, 7]] == 0).all()
        assert (words[..., 4] >> 24 == 0).all()


def test_a_buffer_of_the_wrong_size_is_rejected_with_both_sizes():
    camera = CameraModel.from_intrinsics(50, 50, 31.5, 23.5, 64, 48)
    with pytest.raises(ValueError, match=r"has 100 bytes, expected 49152 \(64x48 points\)"):
        CloudPacker(rgb=False).pack(np.ones((48, 64), np.float32), camera, out=np.empty(100, np.uint8))


def test_clouds_reject_sizes_that_disagree_with_the_camera():
    camera = CameraModel.from_intrinsics(500, 500, 319.5, 239.5, 640, 480)
    with pytest.raises(ValueError, match="depth image is 320x240"):
        organised_cloud(np.ones((240, 320), np.float32), camera)
    with pytest.raises(ValueError, match="colour image is 320x240"):
        organised_cloud(np.ones((480, 640), np.float32), camera, np.zeros((240, 320, 3), np.uint8))


def read_ply(path):
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode().splitlines()
    count = int(next(line for line in header if line.startswith("element vertex")).split()[-1])
    names = [line.split()[-1] for line in header if line.startswith("property")]
    types = {"float": "<f4", "uchar": "u1"}
    dtype = [(line.split()[-1], types[line.split()[1]]) for line in header if line.startswith("property")]
    assert header[1] == "format binary_little_endian 1.0"
    return names, np.frombuffer(data[end:], dtype=dtype, count=count)


def test_ply_holds_the_finite_coloured_points(tmp_path):
    points = np.array([[[0, 0, 1], [np.nan, np.nan, np.nan]], [[1, 2, 3], [4, 5, 6]]], dtype=np.float32)
    rgb = np.array([[[10, 20, 30], [0, 0, 0]], [[40, 50, 60], [70, 80, 90]]], dtype=np.uint8)
    names, vertices = read_ply(write_ply(tmp_path / "cloud.ply", points, rgb))
    assert names == ["x", "y", "z", "red", "green", "blue"]
    assert len(vertices) == 3
    assert vertices["z"].tolist() == [1, 3, 6]
    assert vertices["green"].tolist() == [20, 50, 80]
