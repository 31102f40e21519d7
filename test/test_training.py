import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from depth_estimation_ros.core.models import load_checkpoint, load_model
from training.train import NonFiniteLossError, Trainer, load_config, main

TINY = {
    "model": {"name": "acan", "backbone": "resnet18", "num_bins": 16, "key_channels": 16, "value_channels": 32,
              "pool_channels": 16, "fuse_channels": 16, "min_depth": 0.5, "max_depth": 10.0, "dropout": 0.1},
    "data": {"name": "synthetic", "train": {"length": 16, "kind": "indoor", "height": 64, "width": 96, "seed": 0},
             "val": {"length": 4, "kind": "indoor", "height": 64, "width": 96, "seed": 500000},
             "input_size": [64, 96], "augment": {"flip": 0.5, "brightness": 0.1}, "workers": 0},
    "optim": {"name": "sgd", "lr": 1e-3, "head_lr_mult": 10.0, "schedule": "poly"},
    "train": {"epochs": 2, "batch_size": 4, "log_every": 1},
}  # fmt: skip


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "output": str(tmp_path / "run")}))
    return path


def weights(path):
    return load_checkpoint(path)["state_dict"]


def test_two_epochs_equal_one_epoch_then_resume(config, tmp_path):
    Trainer(load_config(config, [f"output={tmp_path / 'straight'}"])).fit()
    crashed = load_config(config, [f"output={tmp_path / 'resumed'}"])
    Trainer(crashed).fit(stop_after=1)  # as if the run died after epoch 1
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["extra"]["training"]["epoch"] == 1
    Trainer(crashed, resume="auto").fit()
    straight, resumed = weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "resumed" / "last.pt")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    state = load_checkpoint(tmp_path / "resumed" / "last.pt")["extra"]["training"]
    assert (state["epoch"], state["step"]) == (2, 8)  # 16 samples / batch 4 × 2 epochs


def test_checkpoints_rebuild_the_model_and_record_validation(config, tmp_path):
    Trainer(load_config(config, ["train.epochs=1"])).fit()
    run = tmp_path / "run"
    state = load_checkpoint(run / "last.pt")
    assert state["input_size"] == [64, 96]
    assert set(state["extra"]["metrics"]) >= {"d1", "abs_rel", "rmse", "count"}
    assert state["extra"]["metrics"]["count"] == 4  # the val section, not the training data
    assert load_model(run / "best.pt").config["backbone"] == "resnet18"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 1
    assert any((run / "tensorboard").iterdir())


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(config, tmp_path):
    trainer = Trainer(load_config(config))
    trainer.fit(stop_after=1)
    good = weights(tmp_path / "run" / "last.pt")
    trainer.loss_fn = lambda outputs, depth: {"loss": outputs["depth"].sum() * float("nan")}
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, step 5.*last\.pt is intact"):
        trainer.fit()
    after = weights(tmp_path / "run" / "last.pt")
    assert all(torch.equal(good[k], after[k]) for k in good)


def test_config_overrides_and_bad_configs(config, tmp_path):
    loaded = load_config(config, ["optim.lr=0.05", "train.amp=false", "data.augment.scale=[1.0, 1.2]"])
    assert loaded["optim"]["lr"] == 0.05
    assert loaded["train"]["amp"] is False
    assert loaded["data"]["augment"]["scale"] == [1.0, 1.2]
    assert loaded["optim"]["momentum"] == 0.9  # defaults fill what the file leaves out
    with pytest.raises(ValueError, match="--set expects key=value"):
        load_config(config, ["optim.lr"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("modle: {name: acan}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown section\(s\) \['modle'\]; valid sections: model, data"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_without_a_val_section_a_fixed_part_of_the_training_set_is_held_out(config):
    from training.train import build_datasets

    loaded = load_config(config, ["data.val=null", "data.val_fraction=0.25"])
    train, val = build_datasets(loaded)
    assert (len(train), len(val)) == (12, 4)
    assert not set(train.dataset.indices) & set(val.dataset.indices)
    again = build_datasets(loaded)
    assert again[1].dataset.indices == val.dataset.indices  # the same held-out frames every run


def test_train_command_runs_from_the_cli(config, tmp_path):
    assert main(["--config", str(config), "--set", "train.epochs=1", "--set", f"output={tmp_path / 'cli'}"]) == 0
    assert (tmp_path / "cli" / "last.pt").is_file()


def test_two_process_gloo_ddp_shards_the_data_and_keeps_replicas_identical(config, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "training.train", "--config", str(config), "--set", f"output={tmp_path / 'ddp'}"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas identical across 2 processes" in result.stderr
    state = load_checkpoint(tmp_path / "ddp" / "last.pt")["extra"]["training"]
    assert state["step"] == 4  # each process saw 8 of the 16 samples: 2 steps of 4 per epoch
