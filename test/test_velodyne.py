"""KITTI ground truth from raw Velodyne scans: real-format files written here, projection checked by hand."""

import cv2
import numpy as np
import pytest

from training.datasets.kitti import KittiEigen
from training.datasets.velodyne import project_velodyne, read_velodyne, velodyne_depth

DATE, DRIVE = "2011_09_26", "2011_09_26_drive_0002_sync"
H, W = 375, 1242
# Velodyne (x forward, y left, z up) to camera 0 (x right, y down, z forward), then a 0.1/-0.2/-0.3 m shift.
VELO_TO_CAM = (
    "calib_time: 15-Mar-2012 11:37:16\nR: 0 -1 0 0 0 -1 1 0 0\nT: 0.1 -0.2 -0.3\ndelta_f: 0.000000e+00 0.000000e+00\n"
)
# R_rect_00: a rotation about x (cos 0.96, sin 0.28) so that leaving it out would move every point.
CAM_TO_CAM = (
    "calib_time: 09-Jan-2012 13:57:47\n"
    "R_rect_00: 1 0 0 0 0.96 0.28 0 -0.28 0.96\n"
    "S_rect_02: 1.242000e+03 3.750000e+02\n"
    "P_rect_02: 700 0 600 45 0 700 180 0.2 0 0 1 0.003\n"
)


def write_scan(path, points):
    path.parent.mkdir(parents=True, exist_ok=True)
    records = np.column_stack([np.asarray(points, np.float32), np.full(len(points), 0.5, np.float32)])
    records.astype(np.float32).tofile(path)
    return path


@pytest.fixture
def raw(tmp_path):
    (tmp_path / DATE).mkdir()
    (tmp_path / DATE / "calib_velo_to_cam.txt").write_text(VELO_TO_CAM)
    (tmp_path / DATE / "calib_cam_to_cam.txt").write_text(CAM_TO_CAM)
    return tmp_path


def test_a_point_lands_on_the_pixel_and_depth_computed_by_hand(raw):
    scan = write_scan(raw / "scan.bin", [(10.0, 1.0, 0.5)])
    # camera: (-y + 0.1, -z - 0.2, x - 0.3) = (-0.9, -0.7, 9.7)
    # rectified: (-0.9, 0.96·-0.7 + 0.28·9.7, -0.28·-0.7 + 0.96·9.7) = (-0.9, 2.044, 9.508)
    # P: u·z = 700·-0.9 + 600·9.508 + 45 = 5119.8, v·z = 700·2.044 + 180·9.508 + 0.2 = 3142.44,
    #    z = 9.508 + 0.003 = 9.511 → u = 538.30, v = 330.40 → rounded, minus 1 (1-based devkit): (537, 329)
    depth = velodyne_depth(scan, raw / DATE)
    assert depth.shape == (H, W)
    assert depth.dtype == np.float32
    assert np.count_nonzero(depth) == 1
    assert depth[329, 537] == pytest.approx(9.511, abs=1e-5)


def test_the_nearest_point_wins_a_pixel_and_points_behind_or_outside_are_dropped():
    # velodyne → camera axes, no shift; f = 100, principal point (50, 40), image 80×100
    velo_to_image = np.array([[100.0, 0, 50, 0], [0, 100, 40, 0], [0, 0, 1, 0]]) @ np.array(
        [[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]]
    )
    points = np.array(
        [
            [10.0, 0, 0, 1],  # on the optical axis, far
            [5.0, 0, 0, 1],  # same pixel, nearer: kept
            [7.0, 0, 0, 1],  # same pixel again
            [-5.0, 0, 0, 1],  # behind the scanner: dropped (would project onto the same pixel)
            [5.0, -100.0, 0, 1],  # far to the right: outside the image
            [4.0, 0.4, 0.2, 1],  # u = -0.4·100/4 + 50 = 40, v = -0.2·100/4 + 40 = 35 → (39, 34)
        ]
    )
    depth = project_velodyne(points, velo_to_image, (80, 100))
    assert depth[39, 49] == 5.0
    assert depth[34, 39] == 4.0
    assert np.count_nonzero(depth) == 2
    shuffled = project_velodyne(points[::-1], velo_to_image, (80, 100))
    np.testing.assert_array_equal(shuffled, depth)  # independent of the order of the points


def test_a_scan_that_is_not_whole_records_is_an_error(raw):
    bad = raw / "bad.bin"
    np.zeros(6, np.float32).tofile(bad)
    with pytest.raises(ValueError, match=r"bad\.bin: 6 float32 values"):
        read_velodyne(bad)
    with pytest.raises(FileNotFoundError, match=r"nope\.bin"):
        read_velodyne(raw / "nope.bin")
    (raw / DATE / "calib_velo_to_cam.txt").write_text("R: 1 0 0\n")
    with pytest.raises(ValueError, match=r"calib_velo_to_cam\.txt: expected a 'R:' line with 9 numbers"):
        velodyne_depth(write_scan(raw / "ok.bin", [(1.0, 0, 0)]), raw / DATE)


def test_the_eigen_split_scores_all_frames_against_velodyne_ground_truth(raw):
    lines = []
    for k in range(3):
        frame = f"{k:010d}"
        rgb = np.full((H, W, 3), 40 + k, np.uint8)
        path = raw / DATE / DRIVE / "image_02" / "data" / f"{frame}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rgb)
        write_scan(raw / DATE / DRIVE / "velodyne_points" / "data" / f"{frame}.bin", [(10.0 + k, 1.0, 0.5)])
        lines.append(f"{DATE}/{DRIVE} {k} l")  # Monodepth2's test_files.txt style
    lines[2] = f"{DATE}/{DRIVE}/image_02/data/0000000002.png None 700"  # BTS style, no annotated depth
    split = raw / "eigen_test_files.txt"
    split.write_text("\n".join(lines) + "\n")
    dataset = KittiEigen(split, raw, ground_truth="velodyne")
    assert (len(dataset), dataset.num_missing_gt) == (3, 0)  # the frame without annotation is scored too
    sample = dataset[0]
    assert sample["valid"].sum() == 1
    assert sample["depth"][329, 537] == pytest.approx(9.511, abs=1e-5)
    assert dataset[2]["valid"].sum() == 1
    np.testing.assert_array_equal(sample["K"], [[700, 0, 600], [0, 700, 180], [0, 0, 1]])
    (raw / DATE / DRIVE / "velodyne_points" / "data" / "0000000001.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"line 2: Velodyne scan not found: .*0000000001\.bin"):
        KittiEigen(split, raw, ground_truth="velodyne")
    with pytest.raises(ValueError, match="needs gt_root"):
        KittiEigen(split, raw)
