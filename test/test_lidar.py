"""LiDAR point clouds as the sparse source: projection with the camera model, the z-buffer, the
returns hidden from the camera, the mounting transform, PointCloud2 decoding and the anchor fit on
generated scenes with a simulated 32- or 64-beam LiDAR 0.3 m above the camera."""

import math

import cv2
import numpy as np
import pytest

from depth_estimation_ros.core.anchoring import Anchor
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.lidar import project_points
from depth_estimation_ros.core.mounting import Mounting
from depth_estimation_ros.core.scenes import lidar_scan, render_scene

CAMERA = CameraModel.from_intrinsics(100.0, 100.0, 49.5, 39.5, 100, 80)


def test_each_pixel_keeps_its_nearest_return_and_points_out_of_view_are_dropped():
    points = np.array([
        [0.0, 0.0, 5.0], [0.0, 0.0, 2.0],  # one pixel, two returns: the nearer is kept
        [1.0, 0.5, 4.0],  # u = 49.5 + 25 = 74.5 → 75 (pixel centres at integers, halves round up)
        [0.0, 0.0, -3.0],  # behind the camera
        [9.0, 0.0, 1.0],  # beside the image
        [np.nan, 0.0, 1.0],  # a NaN return
    ])  # fmt: skip
    seen = project_points(points, CAMERA, window=1)
    finite = np.argwhere(np.isfinite(seen.depth))
    assert sorted(map(tuple, finite)) == [(40, 50), (52, 75)]
    assert seen.depth[40, 50] == 2.0
    assert seen.depth[52, 75] == 4.0
    assert (seen.points, seen.occluded) == (2, 0)


def test_points_are_projected_through_the_lens_distortion():
    camera = CameraModel(640, 480, [[500, 0, 319.5], [0, 500, 239.5], [0, 0, 1]], D=[-0.3, 0.1, 0.001, -0.002, 0.0])
    point = np.array([[1.2, -0.8, 3.0]])
    (u, v), = cv2.projectPoints(point, np.zeros(3), np.zeros(3), camera.K, camera.D)[0].reshape(-1, 2)  # fmt: skip
    (row, col), = np.argwhere(np.isfinite(project_points(point, camera).depth))  # fmt: skip
    assert (row, col) == (math.floor(v + 0.5), math.floor(u + 0.5))
    assert (row, col) != (round(239.5 - 0.8 / 3 * 500), round(319.5 + 1.2 / 3 * 500))  # not the pinhole's pixel


def test_the_mounting_places_the_cloud_in_the_optical_frame():
    """A LiDAR frame (x forward, y left, z up, as REP 103 has it) 0.3 m above the camera: in the
    optical frame (x right, y down, z forward) its point (x, y, z) is (−y, −z − 0.3, x), the rotation
    of the quaternion (0.5, −0.5, 0.5, 0.5), as tf2_echo prints the LiDAR in the optical frame."""
    mounting = Mounting.from_text("0 -0.3 0  0.5 -0.5 0.5 0.5")
    forward_2m = mounting.to_camera(np.array([[2.0, 0.0, 0.0]]))  # 2 m ahead of the LiDAR
    left_1m = mounting.to_camera(np.array([[0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(forward_2m, [[0.0, -0.3, 2.0]], atol=1e-12)
    np.testing.assert_allclose(left_1m, [[-1.0, -0.3, 0.0]], atol=1e-12)
    assert Mounting.from_text("") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("1 2 3", "seven numbers"), ("0 0 0 0 0 0 2", "unit quaternion"), ("0 0 nan 0 0 0 1", "three finite")],
)
def test_a_bad_transform_is_one_line_naming_the_parameter(text, message):
    from depth_estimation_ros.ros.parameters import validate

    with pytest.raises(ValueError, match=f"parameter sparse_points_transform: .*{message}"):
        validate({"sparse_points_transform": text}, require_model=False)


@pytest.fixture(scope="module")
def lidar_scenes():
    """Generated scenes with a LiDAR 0.3 m above the camera (64 and 32 beams) and their true depth."""
    out = []
    for kind in ("indoor", "street"):
        for seed in range(3):
            scene = render_scene(seed, 240, 320, kind)
            for beams in (64, 32):
                out.append((scene, lidar_scan(seed, kind, offset=(0.0, -0.3, 0.0), beams=beams)))
    return out


def outlier_share(depth: np.ndarray, scene: dict) -> float:
    """Share of projected returns more than 5 % from what the camera sees at their pixel."""
    seen = np.isfinite(depth) & scene["valid"]
    truth = scene["depth"][seen]
    return float(np.mean(np.abs(depth[seen] - truth) / truth > 0.05))


def anchored_abs_rel(sparse: np.ndarray, scene: dict, seed: int) -> float:
    depth = scene["depth"].astype(np.float64)
    noise = 1 + 0.03 * np.random.default_rng(seed).standard_normal(depth.shape)
    pred = np.where(scene["valid"], depth * noise / 1.7, np.nan).astype(np.float32)
    metric = Anchor("sparse_depth", "depth").apply(pred, scene["K"], 0.0, sparse)
    valid = scene["valid"]
    return float(np.mean(np.abs(metric[valid] - depth[valid]) / depth[valid]))


def test_returns_hidden_from_the_camera_are_removed_and_anchor_as_well_as_a_registered_depth_image(lidar_scenes):
    """Measured here: returns more than 5 % from what the camera sees are 0.6-7 % of the projected
    ones (background seen past foreground edges); the visibility test leaves 0.1-0.5 %. Anchored on
    what is left, the metric model is as accurate as anchored on a depth image registered to the
    camera at the same pixels."""
    mounting = Mounting((0.0, -0.3, 0.0))
    for i, (scene, points) in enumerate(lidar_scenes):
        camera = CameraModel(320, 240, scene["K"])
        raw = project_points(points, camera, mounting, window=1)  # the z-buffer alone
        seen = project_points(points, camera, mounting)
        assert seen.occluded > 0
        assert outlier_share(seen.depth, scene) < 0.5 * outlier_share(raw.depth, scene), scene["name"]
        registered = np.where(np.isfinite(seen.depth) & scene["valid"], scene["depth"], np.nan)
        assert anchored_abs_rel(seen.depth, scene, i) <= anchored_abs_rel(registered, scene, i) + 0.002


def test_points_from_cloud_reads_xyz_of_any_layout_and_refuses_a_cloud_without_them():
    from rosbags.typesys import Stores, get_typestore

    from depth_estimation_ros.ros.messages import MessageTypes, points_from_cloud

    types = MessageTypes.from_typestore(get_typestore(Stores.ROS2_JAZZY))
    xyz = np.array([[1.0, 2.0, 3.0], [-4.0, 5.5, 60.0]], np.float32)
    for bigendian in (False, True):
        # an Ouster-like point: intensity before x, a uint16 ring after z, padded to 20 bytes
        record = np.dtype([("intensity", "f4"), ("x", "f4"), ("y", "f4"), ("z", "f4"), ("ring", "u2"), ("pad", "u2")])
        record = record.newbyteorder(">" if bigendian else "<")
        rows = np.zeros(2, record)
        rows["x"], rows["y"], rows["z"], rows["intensity"], rows["ring"] = *xyz.T, 7.0, 3
        layout = (("intensity", 0, 7), ("x", 4, 7), ("y", 8, 7), ("z", 12, 7), ("ring", 16, 4))
        fields = [types.PointField(name=n, offset=o, datatype=t, count=1) for n, o, t in layout]
        cloud = types.PointCloud2(header=types.Header(stamp=types.Time(sec=1, nanosec=0), frame_id="lidar"),
                                  height=1, width=2, fields=fields, is_bigendian=bigendian, point_step=20,
                                  row_step=40, data=np.frombuffer(rows.tobytes(), np.uint8), is_dense=True)  # fmt: skip
        np.testing.assert_array_equal(points_from_cloud(cloud), xyz)
    cloud.fields = fields[:2]
    with pytest.raises(ValueError, match="needs float32 fields x, y and z"):
        points_from_cloud(cloud)


def test_the_bag_tool_anchors_to_a_recorded_lidar_cloud_through_its_transform(tmp_path, capsys):
    """A recorded sequence with a 32-beam LiDAR 0.3 m above the camera (frame 'lidar'): the bag tool
    pairs each cloud by stamp, places it with --sparse-points-transform, and the shipped ACAN's depth
    comes out within a few per cent of the truth (on its own it is 7-15 % short here)."""
    from ros_graph import read_bag, stamp

    from depth_estimation_ros.commands import main
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    write_synthetic_bag(tmp_path / "in", frames=4, height=120, width=160, seed=7, lidar_beams=32)
    argv = ["bag", "--model", "depth_estimation_ros/data/demo_acan.pt", "--input", tmp_path / "in", "--output",
            tmp_path / "out", "--no-progress", "--scale-source", "sparse_points",
            "--sparse-points-transform", "0 -0.3 0 0 0 0 1"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    truth = {stamp(m): np.frombuffer(bytes(m.data), np.float32) for m in read_bag(tmp_path / "in")["/camera/depth_gt"]}
    outputs = read_bag(tmp_path / "out")["/camera/depth/image"]
    assert len(outputs) == 4
    for msg in outputs:
        z, gt = np.frombuffer(bytes(msg.data), np.float32), truth[stamp(msg)]
        valid = np.isfinite(z) & np.isfinite(gt)
        assert abs(np.median(z[valid] / gt[valid]) - 1) < 0.05


def test_predict_anchors_a_folder_of_frames_to_their_kitti_scans(tmp_path, capsys):
    """predict --scale-source sparse_points with <stem>.bin scans (KITTI's float32 x y z intensity)
    beside the frames: each frame's depth is anchored to its own scan."""
    from depth_estimation_ros.commands import main

    frames, scans = tmp_path / "frames", tmp_path / "scans"
    frames.mkdir()
    scans.mkdir()
    truths = {}
    for seed in (4, 5):
        scene = render_scene(seed, 120, 160, "indoor")
        cv2.imwrite(str(frames / f"f{seed}.png"), scene["image"][..., ::-1])
        points = lidar_scan(seed, "indoor", beams=32)
        np.column_stack([points, np.ones(len(points), np.float32)]).astype(np.float32).tofile(scans / f"f{seed}.bin")
        truths[f"f{seed}"] = np.where(scene["valid"], scene["depth"], np.nan)
    K = render_scene(4, 120, 160, "indoor")["K"]
    argv = ["predict", "--model", "depth_estimation_ros/data/demo_acan.pt", "--input", frames, "--output",
            tmp_path / "out", "--scale-source", "sparse_points", "--sparse-points", scans,
            "--sparse-points-transform", "0 -0.3 0 0 0 0 1", "--fx", K[0, 0], "--fy", K[1, 1], "--cx", K[0, 2],
            "--cy", K[1, 2]]  # fmt: skip
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    for name, truth in truths.items():
        depth = np.load(tmp_path / "out" / f"{name}_depth.npy")
        valid = np.isfinite(depth) & np.isfinite(truth)
        assert abs(np.median(depth[valid] / truth[valid]) - 1) < 0.05
