"""The focal length of the training camera at the network input, as training records it in checkpoints."""

import logging
import math

import numpy as np
import pytest
import torch
import yaml
from conftest import small_acan
from test_datasets import CALIB, DATE, DRIVE, KH, KW, kitti_depth, png, rgb_png
from test_training import TINY
from torch.utils.data import Dataset

import training.train as train_module
from depth_estimation_ros.core.models import load_checkpoint, load_model, save_checkpoint
from training.datasets.kitti import KittiEigen
from training.datasets.synthetic import DEFAULT_FOV_DEG, SyntheticDataset
from training.release import release
from training.train import Trainer, build_datasets, load_config, sample_camera, training_focal_length


def fov_focal(width: int, fov_deg: float = DEFAULT_FOV_DEG["indoor"]) -> float:
    """fx of a pinhole camera ``width`` pixels wide with horizontal field of view ``fov_deg``."""
    return (width / 2) / math.tan(math.radians(fov_deg) / 2)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "output": str(tmp_path / "run")}))
    return path


def test_training_records_the_generated_scenes_focal_length_and_release_keeps_it(config, tmp_path):
    # TINY renders 64×96 frames and crops 64×96 inputs at the native scale: fx is the scenes' own at W = 96
    expected = fov_focal(96)
    trainer = Trainer(load_config(config, ["train.epochs=1"]))
    assert all(trainer.train_set[i]["K"][0, 0].item() == pytest.approx(expected) for i in range(3))
    trainer.fit()
    for name in ("last.pt", "best.pt"):
        state = load_checkpoint(tmp_path / "run" / name)
        assert state["focal_length"] == pytest.approx(expected, rel=1e-12)
        assert state["extra"]["training"]["focal_length"] == state["focal_length"]
    assert load_model(tmp_path / "run" / "best.pt").focal_length == pytest.approx(expected, rel=1e-12)

    released = release(tmp_path / "run" / "best.pt", tmp_path / "release.pt")
    assert load_checkpoint(released)["focal_length"] == pytest.approx(expected, rel=1e-12)
    assert load_model(released).focal_length == pytest.approx(expected, rel=1e-12)


def test_the_configs_focal_length_wins_and_is_checked(config, tmp_path):
    Trainer(load_config(config, ["train.epochs=1", "data.focal_length=123.5"])).fit()
    assert load_checkpoint(tmp_path / "run" / "last.pt")["focal_length"] == 123.5
    for bad in ("-1", "0", "true", "wide"):
        with pytest.raises(ValueError, match=r"data\.focal_length is .*: expected the training camera's focal length"):
            load_config(config, [f"data.focal_length={bad}"])
    assert load_config(config, ["data.focal_length=null"])["data"]["focal_length"] is None
    with pytest.raises(ValueError, match=r"eval\.scale is -1: expected a positive image scale"):
        load_config(config, ["eval.scale=-1"])  # rules of keys whose default is null apply too


def test_resume_keeps_the_recorded_focal_length(config, tmp_path, monkeypatch, caplog):
    loaded = load_config(config)
    Trainer(loaded).fit(stop_after=1)
    first = load_checkpoint(tmp_path / "run" / "last.pt")["focal_length"]
    assert first == pytest.approx(fov_focal(96))
    # the data now gives another camera: the resumed run keeps the one it started with, and says so
    monkeypatch.setattr(train_module, "training_focal_length", lambda config, dataset: 50.0)
    with caplog.at_level(logging.WARNING, logger="training"):
        Trainer(loaded, resume="auto").fit()
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert (state["extra"]["training"]["epoch"], state["focal_length"]) == (2, first)
    assert "keeping" in caplog.text


def test_a_run_started_before_focal_lengths_were_recorded_resumes_and_records_one(config, tmp_path):
    loaded = load_config(config)
    Trainer(loaded).fit(stop_after=1)
    path = tmp_path / "run" / "last.pt"
    old = torch.load(path, weights_only=True)
    old["focal_length"] = None
    del old["extra"]["training"]["focal_length"]
    del old["extra"]["training"]["config"]["data"]["focal_length"]  # the key did not exist then
    torch.save(old, path)
    trainer = Trainer(loaded, resume="auto")  # not refused as a changed config
    assert trainer.focal_length == pytest.approx(fov_focal(96))


def scaled_config(config, *overrides):
    """Frames rendered at 80×120, cropped to 64×96 inputs."""
    return load_config(config, ["data.train.height=80", "data.train.width=120", *overrides])


@pytest.mark.parametrize(
    ("overrides", "scale"),
    [
        (["data.augment.scale=[0.9, 0.9]"], 0.9),  # scaled as training scales it
        (["data.augment.scale=[0.8, 1.0]"], 0.9),  # the random draw pinned to the middle of the range
        (["data.augment.scale=[0.8, 1.0]", "eval.scale=0.85"], 0.85),  # the recipe's own scale
        (["data.augment.scale=[0.8, 1.0]", "eval.scale=2.0"], 1.0),  # kept within the range trained on
        (["data.augment.scale=[0.8, 1.0]", "data.augment.keep_focal=true"], 1.0),  # Eigen's: fx kept
        (["data.augment.scale=[0.5, 0.5]"], 0.8),  # raised to cover the 64-row input, as in training
        ([], 1.0),  # no scale augmentation: native-scale crops
    ],
)
def test_the_focal_length_follows_the_training_pipelines_geometry(config, overrides, scale):
    loaded = scaled_config(config, *overrides)
    train, _ = build_datasets(loaded)
    focal = training_focal_length(loaded, train.dataset)
    assert focal == pytest.approx(fov_focal(120) * scale, rel=1e-9)
    if loaded["data"]["augment"].get("scale") in ([0.9, 0.9], [0.5, 0.5]):  # then every sample has that fx
        assert train[0]["K"][0, 0].item() == pytest.approx(focal, rel=1e-6)


class Cameras(Dataset):
    """Samples of given cameras, answered by ``camera`` without pixels (or by loading, if ``load``)."""

    def __init__(self, cameras, load=False, with_k=True):
        self.cameras, self.with_k = cameras, with_k
        if not load:
            self.camera = lambda index: self.cameras[index]

    def __len__(self):
        return len(self.cameras)

    def __getitem__(self, index):
        K, (h, w) = self.cameras[index]
        sample = {"image": np.zeros((h, w, 3), np.uint8), "depth": np.ones((h, w), np.float32)}
        return {**sample, "K": K} if self.with_k else sample


def camera(fx, h=64, w=96):
    return np.array([[fx, 0, (w - 1) / 2], [0, fx, (h - 1) / 2], [0, 0, 1.0]]), (h, w)


def test_mixed_cameras_give_the_median_and_samples_without_k_give_none(config):
    loaded = load_config(config)
    cameras = [camera(100.0), camera(100.0), camera(300.0), camera(100.0), camera(300.0)]
    assert training_focal_length(loaded, Cameras(cameras)) == 100.0
    assert training_focal_length(loaded, Cameras(cameras, load=True)) == 100.0  # read from the samples' K
    assert sample_camera(Cameras(cameras, load=True, with_k=False), 0) is None
    assert training_focal_length(loaded, Cameras(cameras, load=True, with_k=False)) is None


def test_dataset_cameras_are_those_of_their_samples(tmp_path):
    synthetic = SyntheticDataset(2, kind="street", height=40, width=56, seed=3)
    for index in range(2):
        K, size = synthetic.camera(index)
        sample = synthetic[index]
        np.testing.assert_array_equal(K, sample["K"])
        assert size == sample["depth"].shape
    np.testing.assert_allclose(synthetic.camera(0)[0][0, 0], fov_focal(56, DEFAULT_FOV_DEG["street"]))

    raw, gt = tmp_path / "raw", tmp_path / "gt"
    (raw / DATE).mkdir(parents=True)
    (raw / DATE / "calib_cam_to_cam.txt").write_text(CALIB)
    rgb_rel, depth_rel = f"{DATE}/{DRIVE}/image_02/data/0000000000.png", f"{DRIVE}/proj_depth/0000000000.png"
    rgb_png(raw / rgb_rel, np.zeros((KH, KW, 3), np.uint8))
    png(gt / depth_rel, kitti_depth(0))
    (tmp_path / "split.txt").write_text(f"{rgb_rel} {depth_rel} 721.5377\n")
    kitti = KittiEigen(tmp_path / "split.txt", raw, gt)
    K, size = kitti.camera(0)
    np.testing.assert_array_equal(K, kitti[0]["K"])
    assert size == kitti[0]["depth"].shape == (KH, KW)
    with pytest.raises(IndexError):
        kitti.camera(1)


def test_release_keeps_the_focal_length_or_its_absence(tmp_path):
    with_focal = save_checkpoint(small_acan(), tmp_path / "a.pt", input_size=(64, 96), focal_length=321.25)
    assert load_checkpoint(release(with_focal, tmp_path / "a_release.pt"))["focal_length"] == 321.25
    without = save_checkpoint(small_acan(), tmp_path / "b.pt", input_size=(64, 96))
    assert load_checkpoint(release(without, tmp_path / "b_release.pt", half=False))["focal_length"] is None
