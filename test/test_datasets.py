import pickle
import zipfile

import cv2
import h5py
import numpy as np
import pytest
import scipy.io

from training.datasets.kitti import KittiEigen
from training.datasets.nyu import NYU_K, NYUDepthV2Mat, NYUDepthV2Pairs, read_nyu_splits

H, W = 480, 640
MARK = (10, 600)  # a pixel that a transposed / reshaped read would move


def png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def rgb_png(path, rgb):
    return png(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def frame(k):
    """640×480 RGB frame k: uniform colour with a marked pixel; depth k + 1 m with the mark at 7.5 m."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 10 * k
    rgb[MARK] = (200, 100, 50)
    depth = np.full((H, W), k + 1.0, np.float32)
    depth[MARK] = 7.5
    return rgb, depth


# --------------------------------------------------------------------------- NYU labeled .mat


@pytest.fixture
def nyu_mat(tmp_path):
    """A 3-frame nyu_depth_v2_labeled.mat in the real v7.3 layout, plus a v5 splits.mat."""
    frames = [frame(k) for k in range(3)]
    images = np.stack([rgb.transpose(2, 1, 0) for rgb, _ in frames])  # (N, 3, W, H), as MATLAB stores it
    depths = np.stack([d.T for _, d in frames])  # (N, W, H)
    raw = depths.copy()
    raw[:, :5, :] = 0  # missing raw depth in columns 0–4 of each frame
    path = tmp_path / "nyu_depth_v2_labeled.mat"
    with h5py.File(path, "w") as f:
        f["images"], f["depths"], f["rawDepths"] = images, depths, raw
    scipy.io.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [3]]), "testNdxs": np.array([[2]])})
    return path


def test_nyu_mat_returns_correctly_oriented_480x640_frames_in_metres(nyu_mat):
    sample = NYUDepthV2Mat(nyu_mat, split="all")[1]
    assert sample["image"].shape == (480, 640, 3)
    assert sample["image"].dtype == np.uint8
    assert tuple(sample["image"][MARK]) == (200, 100, 50)
    assert tuple(sample["image"][0, 0]) == (10, 0, 0)
    assert sample["depth"].shape == (480, 640)
    assert sample["depth"].dtype == np.float32
    assert sample["depth"][MARK] == 7.5
    assert sample["depth"][0, 0] == 2.0
    assert sample["valid"].all()
    np.testing.assert_allclose(sample["K"], [[518.858, 0, 325.582], [0, 519.470, 253.736], [0, 0, 1]], atol=1e-3)
    assert sample["name"] == "nyu_0002"


def test_nyu_mat_splits_are_1_based_and_select_frames(nyu_mat):
    train, test = NYUDepthV2Mat(nyu_mat, split="train"), NYUDepthV2Mat(nyu_mat, split="test")
    assert (len(train), len(test), len(NYUDepthV2Mat(nyu_mat, split="all"))) == (2, 1, 3)
    assert [s["name"] for s in train] == ["nyu_0001", "nyu_0003"]
    assert train[1]["depth"][0, 0] == 3.0
    assert test[0]["name"] == "nyu_0002"
    assert test[0]["image"][0, 0, 0] == 10


def test_nyu_splits_in_v73_format_are_read_with_h5py(tmp_path):
    path = tmp_path / "splits_v73.mat"
    with h5py.File(path, "w") as f:  # v7.3 stores a MATLAB column vector as (1, n)
        f["trainNdxs"], f["testNdxs"] = np.array([[1.0, 3.0]]), np.array([[2.0]])
    splits = read_nyu_splits(path)
    np.testing.assert_array_equal(splits["train"], [0, 2])
    np.testing.assert_array_equal(splits["test"], [1])


def test_nyu_mat_raw_depth_marks_missing_pixels_invalid(nyu_mat):
    sample = NYUDepthV2Mat(nyu_mat, split="all", depth="raw")[0]
    assert not sample["valid"][:, :5].any()
    assert sample["valid"][:, 5:].all()
    assert (sample["depth"][:, :5] == 0).all()


def test_nyu_mat_can_be_pickled_for_worker_processes_after_use(nyu_mat):
    dataset = NYUDepthV2Mat(nyu_mat, split="test")
    first = dataset[0]
    clone = pickle.loads(pickle.dumps(dataset))
    np.testing.assert_array_equal(clone[0]["image"], first["image"])


def test_nyu_mat_transform_is_applied_to_the_sample(nyu_mat):
    dataset = NYUDepthV2Mat(nyu_mat, split="test", transform=lambda s: s["name"])
    assert dataset[0] == "nyu_0002"


def test_nyu_mat_errors_name_the_file(nyu_mat, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.mat"):
        NYUDepthV2Mat(tmp_path / "missing.mat")
    not_hdf5 = tmp_path / "v5.mat"
    scipy.io.savemat(not_hdf5, {"images": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"v5\.mat.*HDF5"):
        NYUDepthV2Mat(not_hdf5)
    with pytest.raises(FileNotFoundError, match=r"nosplits\.mat"):
        NYUDepthV2Mat(nyu_mat, split="train", splits_path=tmp_path / "nosplits.mat")
    zero_based = tmp_path / "zero.mat"
    scipy.io.savemat(zero_based, {"trainNdxs": np.array([[0], [1]]), "testNdxs": np.array([[2]])})
    with pytest.raises(ValueError, match=r"zero\.mat.*1-based"):
        NYUDepthV2Mat(nyu_mat, splits_path=zero_based)
    wrong_layout = tmp_path / "layout.mat"
    with h5py.File(wrong_layout, "w") as f:
        f["images"], f["depths"] = np.zeros((2, 480, 640, 3), np.uint8), np.zeros((2, 480, 640))
    with pytest.raises(ValueError, match=r"layout\.mat.*\(N, 3, W, H\)"):
        NYUDepthV2Mat(wrong_layout, split="all")


# --------------------------------------------------------------------------- NYU PNG pair lists


@pytest.fixture
def nyu_pairs(tmp_path):
    """BTS-style sync set: list lines '/scene/rgb_k.jpg /scene/sync_depth_k.png 518.8579', depth in mm."""
    lines = []
    for k in range(2):
        rgb, depth = frame(k)
        rgb_png(tmp_path / "kitchen" / f"rgb_{k}.png", rgb)
        png(tmp_path / "kitchen" / f"sync_depth_{k}.png", np.round(depth * 1000).astype(np.uint16))
        lines.append(f"/kitchen/rgb_{k}.png /kitchen/sync_depth_{k}.png 518.8579")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_nyu_pairs_mm_list_reads_rgb_and_millimetres(nyu_pairs):
    dataset = NYUDepthV2Pairs(nyu_pairs / "train.txt", nyu_pairs, encoding="mm")
    assert len(dataset) == 2
    sample = dataset[1]
    assert tuple(sample["image"][MARK]) == (200, 100, 50)  # RGB order, not cv2's BGR
    assert sample["image"][0, 0, 0] == 10
    assert sample["depth"][MARK] == pytest.approx(7.5)
    assert sample["depth"][0, 0] == pytest.approx(2.0)
    np.testing.assert_array_equal(sample["K"], NYU_K)
    assert sample["name"] == "kitchen/rgb_1.png"


def test_nyu_pairs_m256_encoding_and_zero_is_invalid(tmp_path):
    rgb, depth = frame(0)
    encoded = np.round(depth * 256).astype(np.uint16)
    encoded[:3] = 0
    rgb_png(tmp_path / "a.png", rgb)
    png(tmp_path / "a_depth.png", encoded)
    (tmp_path / "list.txt").write_text("a.png a_depth.png\n")
    sample = NYUDepthV2Pairs(tmp_path / "list.txt", encoding="m256")[0]
    assert sample["depth"][MARK] == 7.5
    assert sample["depth"][5, 5] == 1.0
    assert not sample["valid"][:3].any()
    assert sample["valid"][3:].all()


def test_nyu_pairs_read_from_the_densedepth_zip_through_its_csv(tmp_path):
    rgb, _ = frame(2)
    depth8 = np.full((H, W), 51, np.uint8)  # 51 / 255 × 10 m = 2 m
    depth8[MARK] = 255
    depth8[0, 0] = 0
    path = tmp_path / "nyu_data.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data/nyu2_train/bath_out/1.jpg", cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1])
        z.writestr("data/nyu2_train/bath_out/1.png", cv2.imencode(".png", depth8)[1])
        z.writestr("data/nyu2_train.csv", "data/nyu2_train/bath_out/1.jpg,data/nyu2_train/bath_out/1.png\n")
    dataset = NYUDepthV2Pairs.from_zip(path)
    assert len(dataset) == 1
    sample = dataset[0]
    assert tuple(sample["image"][MARK]) == (200, 100, 50)
    assert sample["depth"][5, 5] == pytest.approx(2.0)
    assert sample["depth"][MARK] == pytest.approx(10.0)
    assert not sample["valid"][0, 0]
    assert pickle.loads(pickle.dumps(dataset))[0]["name"] == "data/nyu2_train/bath_out/1.jpg"
    with pytest.raises(FileNotFoundError, match=r"nyu2_test\.csv"):
        NYUDepthV2Pairs.from_zip(path, "data/nyu2_test.csv")


def test_nyu_pairs_errors_name_the_file_and_what_was_expected(nyu_pairs, tmp_path):
    listing = nyu_pairs / "train.txt"
    with pytest.raises(FileNotFoundError, match=r"nolist\.txt"):
        NYUDepthV2Pairs(nyu_pairs / "nolist.txt", nyu_pairs)
    with pytest.raises(FileNotFoundError, match=r"no_root"):
        NYUDepthV2Pairs(listing, nyu_pairs / "no_root")
    (nyu_pairs / "kitchen" / "sync_depth_1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"sync_depth_1\.png"):
        NYUDepthV2Pairs(listing, nyu_pairs)
    png(nyu_pairs / "kitchen" / "sync_depth_1.png", np.ones((H, W), np.uint8))  # 8-bit where mm is uint16
    with pytest.raises(ValueError, match=r"sync_depth_1\.png.*uint16"):
        NYUDepthV2Pairs(listing, nyu_pairs, encoding="mm")[1]
    png(nyu_pairs / "kitchen" / "sync_depth_1.png", np.ones((H, W, 3), np.uint16))
    with pytest.raises(ValueError, match=r"sync_depth_1\.png.*3 channel"):
        NYUDepthV2Pairs(listing, nyu_pairs, encoding="mm")[1]
    png(nyu_pairs / "kitchen" / "sync_depth_1.png", np.ones((H, W - 2), np.uint16))
    with pytest.raises(ValueError, match=r"rgb_1\.png.*640×480.*depth is 638×480"):
        NYUDepthV2Pairs(listing, nyu_pairs, encoding="mm")[1]
    (nyu_pairs / "kitchen" / "rgb_0.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match=r"rgb_0\.png.*cannot decode"):
        NYUDepthV2Pairs(listing, nyu_pairs)[0]
    (tmp_path / "focal.txt").write_text("kitchen/rgb_1.png kitchen/sync_depth_1.png 582.62\n")
    with pytest.raises(ValueError, match=r"focal\.txt line 1.*582\.62"):
        NYUDepthV2Pairs(tmp_path / "focal.txt", nyu_pairs)


def test_nyu_pairs_of_another_size_need_explicit_intrinsics(tmp_path):
    rgb_png(tmp_path / "a.png", np.zeros((240, 320, 3), np.uint8))
    png(tmp_path / "d.png", np.full((240, 320), 1000, np.uint16))
    (tmp_path / "l.txt").write_text("a.png d.png\n")
    with pytest.raises(ValueError, match=r"a\.png.*320×240.*intrinsics="):
        NYUDepthV2Pairs(tmp_path / "l.txt")[0]
    K = NYU_K * [[0.5], [0.5], [1]]
    np.testing.assert_array_equal(NYUDepthV2Pairs(tmp_path / "l.txt", intrinsics=K)[0]["K"], K)


# --------------------------------------------------------------------------- KITTI Eigen

CALIB = (
    "calib_time: 09-Jan-2012 13:57:47\n"
    "corner_dist: 9.950000e-02\n"
    "S_02: 1.392000e+03 5.120000e+02\n"
    "K_02: 9.597910e+02 0.000000e+00 6.960217e+02 0.000000e+00 "
    "9.569251e+02 2.241806e+02 0.000000e+00 0.000000e+00 1.000000e+00\n"
    "S_rect_02: 1.242000e+03 3.750000e+02\n"
    "R_rect_02: 9.998817e-01 1.511453e-02 -2.841595e-03 -1.511724e-02 "
    "9.998853e-01 -9.338510e-04 2.827154e-03 9.766976e-04 9.999955e-01\n"
    "P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 "
    "1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03\n"
)
DATE, DRIVE = "2011_09_26", "2011_09_26_drive_0002_sync"
KH, KW = 375, 1242


def kitti_depth(k):
    depth = np.zeros((KH, KW), np.uint16)
    depth[200:, 100:] = int(256 * (k + 12.5))  # sparse: the top of the image has no LiDAR return
    depth[300, 1000] = 256 * 3
    return depth


@pytest.fixture
def kitti(tmp_path):
    """Raw data, annotated depth split over train/ and val/, and an Eigen split file with a None line."""
    raw, gt = tmp_path / "raw", tmp_path / "gt"
    (raw / DATE).mkdir(parents=True)
    (raw / DATE / "calib_cam_to_cam.txt").write_text(CALIB)
    lines = []
    for k, part in enumerate(("train", "val", None)):
        frame_id = f"{k:010d}"
        rgb = np.zeros((KH, KW, 3), np.uint8)
        rgb[..., 2] = 30 + k
        rgb[5, 1200] = (1, 2, 3)
        rgb_rel = f"{DATE}/{DRIVE}/image_02/data/{frame_id}.png"
        rgb_png(raw / rgb_rel, rgb)
        depth_rel = f"{DRIVE}/proj_depth/groundtruth/image_02/{frame_id}.png"
        if part is not None:
            png(gt / part / depth_rel, kitti_depth(k))
        lines.append(f"{rgb_rel} {depth_rel if part else 'None'} 721.5377")
    (tmp_path / "eigen_test.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def kitti_dataset(root, **kwargs):
    return KittiEigen(root / "eigen_test.txt", root / "raw", [root / "gt" / "train", root / "gt" / "val"], **kwargs)


def test_kitti_reads_rgb_depth_over_256_and_drive_intrinsics(kitti):
    dataset = kitti_dataset(kitti)
    assert (len(dataset), dataset.num_missing_gt) == (2, 1)
    sample = dataset[1]  # from gt/val
    assert sample["image"].shape == (375, 1242, 3)
    assert tuple(sample["image"][5, 1200]) == (1, 2, 3)
    assert sample["image"][0, 0, 2] == 31
    assert sample["depth"].dtype == np.float32
    assert sample["depth"][250, 500] == 13.5
    assert sample["depth"][300, 1000] == 3.0
    assert not sample["valid"][:200].any()
    assert sample["valid"][200:, 100:].all()
    assert (sample["depth"][~sample["valid"]] == 0).all()
    np.testing.assert_array_equal(sample["K"], [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])
    assert sample["name"] == f"{DATE}/{DRIVE}/image_02/data/0000000001.png"


def test_kitti_frames_without_ground_truth_are_skipped_or_kept_without_valid_pixels(kitti):
    kept = kitti_dataset(kitti, skip_missing_gt=False)
    assert (len(kept), kept.num_missing_gt) == (3, 1)
    assert not kept[2]["valid"].any()
    assert kept[2]["image"][0, 0, 2] == 32


def test_kitti_errors_name_the_file_and_what_was_expected(kitti):
    with pytest.raises(FileNotFoundError, match=r"nowhere"):
        KittiEigen(kitti / "eigen_test.txt", kitti / "nowhere", kitti / "gt" / "train")
    with pytest.raises(FileNotFoundError, match=r"0000000001\.png"):  # the val frame, with only train/ given
        KittiEigen(kitti / "eigen_test.txt", kitti / "raw", kitti / "gt" / "train")
    with pytest.raises(FileNotFoundError, match=r"missing_split\.txt"):
        KittiEigen(kitti / "missing_split.txt", kitti / "raw", kitti / "gt" / "train")
    calib = kitti / "raw" / DATE / "calib_cam_to_cam.txt"
    calib.write_text(CALIB.replace("7.215377e+02 0.000000e+00 6.095593e+02", "7.0e+02 0.0 6.0e+02"))
    with pytest.raises(ValueError, match=r"eigen_test\.txt line 1.*721\.5377"):
        kitti_dataset(kitti)
    calib.write_text("calib_time: 09-Jan-2012 13:57:47\n")
    with pytest.raises(ValueError, match=r"calib_cam_to_cam\.txt.*P_rect_02"):
        kitti_dataset(kitti)
    calib.write_text(CALIB)
    depth_path = kitti / "gt" / "train" / DRIVE / "proj_depth/groundtruth/image_02/0000000000.png"
    png(depth_path, (kitti_depth(0) // 256).astype(np.uint8))
    with pytest.raises(ValueError, match=r"0000000000\.png.*uint16"):
        kitti_dataset(kitti)[0]
    depth_path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"0000000000\.png.*cannot decode"):
        kitti_dataset(kitti)[0]
    png(depth_path, kitti_depth(0)[:, :1240])
    with pytest.raises(ValueError, match=r"image is 1242×375 but depth is 1240×375"):
        kitti_dataset(kitti)[0]
