"""Training is reproducible: one config, seed and thread count give byte-identical checkpoints on the
CPU, whatever the output folder, the working directory or the interpreter's hash seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from reliability import ROOT, TINY


def train_in_a_process(config: Path, output: Path, cwd: Path, hash_seed: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": hash_seed}
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "training.train", "--config", str(config), "--set",
                           f"output={output}"], cwd=cwd, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_two_runs_differing_only_in_their_output_folder_write_identical_checkpoints(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "epochs": 2}}))
    first, second = tmp_path / "a", tmp_path / "a much longer" / "and deeper" / "output folder"
    train_in_a_process(config, first, tmp_path / "here", "1")
    train_in_a_process(config, second, tmp_path / "there" / "else", "2")
    for name in ("last.pt", "best.pt"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    weights = torch.load(first / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    # the folders' own config.yaml still says where each run was written
    assert yaml.safe_load((second / "config.yaml").read_text())["output"] == str(second)
