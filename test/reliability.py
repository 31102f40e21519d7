"""The bad-input suite's machinery: the registry of cases (one per row of docs/reliability.md),
the context a case runs in, and the helpers cases share. Cases live in ``test_reliability*.py``.

Every command is driven as a user would (``main(argv)`` in-process; a few as real processes to prove
exit statuses and that no traceback is printed), against hostile files made here: truncated,
corrupted, symlinked, a malicious pickle, a full disk (a small tmpfs, when one can be mounted).
Each case checks the exit status, the one-line ``error:`` message and that nothing was lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from depth_estimation_ros.commands import main
from depth_estimation_ros.core.files import STAGING_MARK, TEMP_PREFIX

ROOT = Path(__file__).parents[1]
CASES: dict[str, tuple[str, str, str, object, str]] = {}  # id → (command, input, outcome, check, module)


def case(case_id: str, command: str, given: str, outcome: str):
    """Register a check as one row of the reliability table."""

    def register(check):
        assert case_id not in CASES, case_id
        CASES[case_id] = (command, given, outcome, check, check.__module__)
        return check

    return register


class Context:
    """What a case needs: a scratch folder, the small deployed models, and ``run(argv)``."""

    def __init__(self, request, tmp_path: Path, capsys):
        self.request, self.tmp, self.capsys = request, tmp_path, capsys

    @property
    def deployed(self):
        return self.request.getfixturevalue("deployed")

    def fixture(self, name: str):
        return self.request.getfixturevalue(name)

    def run(self, *argv) -> tuple[int, str, str]:
        """``depth-estimation ARGV`` in-process: (exit status, stdout, stderr); never a traceback."""
        self.capsys.readouterr()
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse's usage errors
            status = exit_.code
        out, err = self.capsys.readouterr()
        assert "Traceback" not in err, err
        return status, out, err

    def fails(self, status: int, *argv) -> str:
        """Run, expect ``status`` and one ``error:`` line; return that line."""
        code, _, err = self.run(*argv)
        assert code == status, (code, err)
        lines = [line for line in err.splitlines() if "error:" in line]
        assert len(lines) == 1, err
        return lines[0]


DEAD_PID = 4194305  # above Linux's largest pid (2**22): never a live process


def temporaries(folder: Path) -> list[str]:
    """This project's temporaries in ``folder``: what a finished or failed run must not leave."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def plant_temporary(folder: Path, name: str, pid: int, staging: bool = False) -> Path:
    """A temporary of ``name`` as a run of ``pid`` leaves it: a file, or a marked staging folder."""
    path = folder / f"{TEMP_PREFIX}.{pid}.{pid % 16**8:08x}.{name}"
    if staging:
        path.mkdir(parents=True)
        (path / STAGING_MARK).write_text(f"{pid}\n")
        (path / name).write_bytes(b"half an output")
    else:
        path.write_bytes(b"half an output")
    return path


def hashes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def images(folder: Path, names=("a.png", "b.png"), size=(48, 64)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        assert cv2.imwrite(str(folder / name), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return folder


TINY = {
    "model": {"name": "acan", "backbone": "resnet18", "num_bins": 8, "key_channels": 8, "value_channels": 16,
              "pool_channels": 8, "fuse_channels": 8, "min_depth": 0.5, "max_depth": 10.0},
    "data": {"name": "synthetic", "train": {"length": 8, "kind": "indoor", "height": 32, "width": 48, "seed": 0},
             "val": {"length": 2, "kind": "indoor", "height": 32, "width": 48, "seed": 500000},
             "input_size": [32, 48], "workers": 0},
    "optim": {"name": "sgd", "lr": 1e-3},
    "train": {"epochs": 1, "batch_size": 4, "amp": False},
}  # fmt: skip


def tiny_config(folder: Path, **sections) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **sections, "output": str(folder / "run")}))
    return path


def predict_args(ctx, source: Path, out: Path, *extra):
    _, path = ctx.deployed["acan"]
    return ["predict", "--model", path, "--input", source, "--output", out, *extra]


@contextmanager
def small_tmpfs(ctx, *options: str):
    """A 64 kB tmpfs (with ``options``, e.g. ``ro``) at a fresh folder; skips where mounting is refused."""
    folder = ctx.tmp / "mnt"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(["size=64k", *options]), "tmpfs", str(folder)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def bag_args(ctx, source: Path, out: Path, *extra):
    _, path = ctx.deployed["acan"]
    return ["bag", "--model", path, "--input", source, "--output", out, "--no-progress", *extra]


def command(*argv, env=None):
    environment = {k: v for k, v in os.environ.items() if k != "DEPTH_ESTIMATION_DEBUG"}
    environment.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=environment, cwd=ROOT)


def cases_of(module: str) -> list[str]:
    """The ids a test module registered (its ``test_bad_input`` runs exactly these)."""
    return [i for i, entry in CASES.items() if entry[4] == module]


def run_case(case_id, request, tmp_path, capsys) -> None:
    CASES[case_id][3](Context(request, tmp_path, capsys))


def spoiled_checkpoint(ctx, spoil) -> Path:
    """The small ACAN checkpoint with ``spoil(state)`` applied, saved in the case's folder."""
    import torch

    checkpoint, _ = ctx.deployed["acan"]
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    spoil(state)
    path = ctx.tmp / "spoiled.pt"
    torch.save(state, path)
    return path
