"""Evaluation says what it scored, refuses impossible protocols and shows the network its training scale."""

import argparse
import json

import numpy as np
import pytest
import torch
from conftest import small_acan

from benchmarks.learning_check import describe
from depth_estimation_ros.commands import main
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.files import TEMP_PREFIX
from depth_estimation_ros.core.models import save_checkpoint
from training.evaluate import ScaledEstimator, evaluate, network_size, open_estimator
from training.protocol import eval_scale
from training.train import load_config

PAPER_CONFIGS = ["acan_r50_nyu", "acan_r101_nyu", "acan_r50_kitti", "acan_r101_kitti", "msfnet_nyu", "msfnet_kitti"]


class Frames:
    """Two 96x128 frames of a tilted plane with their intrinsics: the shape of a dataset sample."""

    def __len__(self):
        return 2

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        depth = np.linspace(2.0, 6.0, 96, dtype=np.float32)[:, None].repeat(128, 1)
        K = np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]])
        image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        return {"image": image, "depth": depth, "valid": depth > 0, "K": K}


def test_network_size_scales_the_frame_and_rounds_to_the_size_rule():
    assert network_size(480, 640, 0.6, 8) == (288, 384)  # ACAN-NYU: the paper's 288x384
    assert network_size(375, 1242, 0.43, 8) == (160, 536)
    assert network_size(375, 1242, 1.0, 32) == (384, 1248)  # MSFNet-KITTI: native resolution
    assert network_size(10, 10, 0.1, 32) == (32, 32)


def test_eval_scale_is_the_configs_or_the_middle_of_the_training_scales():
    assert eval_scale({"eval": {"scale": 0.6}, "data": {"augment": {"scale": [0.6, 0.75]}}}) == 0.6
    assert eval_scale({"eval": {}, "data": {"augment": {"scale": [0.4, 0.5]}}}) == pytest.approx(0.45)
    assert eval_scale({"eval": {}, "data": {"augment": {}}}) == 1.0


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_recipes_do_not_clip_gradients_and_record_their_eval_scale(name):
    config = load_config(f"config/train/{name}.yaml")
    assert not config["train"]["clip_grad"]
    assert 0 < config["eval"]["scale"] <= 1
    if name.endswith("kitti"):
        assert config["data"]["train"]["ground_truth"] == "velodyne"  # the papers' sparse projected LiDAR
    else:
        assert config["data"]["train"]["encoding"] == "densedepth"  # DenseDepth's filled 50K subset


def test_a_checkpoint_is_evaluated_at_the_scale_it_recorded(tmp_path):
    model = small_acan().eval()
    path = save_checkpoint(model, tmp_path / "m.pt", input_size=(64, 64), extra={"eval": {"scale": 0.5}})
    args = argparse.Namespace(model=str(path), backend="auto", scale="auto", dataset="nyu")
    estimator = open_estimator(args)
    assert isinstance(estimator, ScaledEstimator)
    result = evaluate(estimator, Frames(), "nyu", crop=None)
    assert result["network_input"] == "whole frame at scale 0.5 (48x64)"
    # the same frames through the model at 48x64 directly
    frame = Frames()[0]
    with torch.no_grad():
        x = torch.nn.functional.interpolate(
            torch.from_numpy(frame["image"]).permute(2, 0, 1)[None].float() / 255, size=(48, 64), mode="area"
        )
        direct = model(x)["depth"][0, 0].numpy()
    got = estimator(frame["image"], CameraModel(128, 96, frame["K"]))
    assert got.depth.shape == (96, 128)
    assert np.median(np.abs(got.depth[::2, ::2] - direct)) < 0.2
    stretch = open_estimator(argparse.Namespace(model=str(path), backend="torch", scale="stretch", dataset="nyu"))
    assert evaluate(stretch, Frames(), "nyu", crop=None)["network_input"] == "stretched to 64x64"


def test_eval_reports_dataset_split_count_crop_caps_and_ground_truth(deployed, tmp_path, capsys):
    checkpoint, _ = deployed["msfnet"]
    report = tmp_path / "eval.json"
    args = ["eval", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--count", "2"]
    assert main([*args, "--height", "64", "--width", "96", "--output-json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "synthetic synthetic indoor, seeds 1000000-1000001: N = 2, crop none, caps 0.001-10 m" in out
    assert "ground truth exact" in out
    result = json.loads(report.read_text())
    for key in ("dataset", "split", "count", "crop", "caps_m", "ground_truth", "network_input"):
        assert key in result
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dataset", "nyu", "--nyu-mat", "x.mat", "--crop", "eigen"], "crop 'eigen' is a KITTI crop; NYU crops are"),
        (["--dataset", "nyu", "--nyu-mat", "x.mat", "--ground-truth", "velodyne"], "--ground-truth velodyne does not"),
        (["--dataset", "kitti", "--kitti-split", "s.txt", "--kitti-raw", "r"], "--dataset kitti needs --kitti-gt"),
        (["--dataset", "synthetic", "--crop", "bts"], "synthetic frames have no standard crop"),
    ],
)
def test_impossible_evaluation_protocols_are_errors_with_a_clear_message(deployed, capsys, extra, message):
    checkpoint, _ = deployed["acan"]
    assert main(["eval", "--checkpoint", str(checkpoint), *extra]) == 2
    assert message in capsys.readouterr().err


def test_learning_check_describes_both_networks():
    acan = load_config("config/train/synthetic_acan.yaml")["model"]
    msfnet = load_config("config/train/synthetic_msfnet.yaml")["model"]
    assert describe(acan) == "ACAN with a resnet18 encoder and 32 bins"
    assert describe(msfnet) == "MSFNet with a resnet18 encoder (USF width 8)"
