"""The bad-input suite, first part: one case per row of the table in docs/reliability.md.

The registry and the context cases run in are in ``reliability.py``; later parts of the suite are
``test_reliability_*.py``. This module also checks that the table and the whole suite agree.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import small_acan
from reliability import (
    CASES,
    ROOT,
    TINY,
    bag_args,
    case,
    cases_of,
    command,
    hashes,
    images,
    predict_args,
    run_case,
    small_tmpfs,
    spoiled_checkpoint,
    temporaries,
    tiny_config,
)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A one-epoch tiny run (its folder and config)."""
    from training.train import main as train_main

    folder = tmp_path_factory.mktemp("trained")
    config = tiny_config(folder)
    assert train_main(["--config", str(config)]) == 0
    return folder / "run", config


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    path = tmp_path_factory.mktemp("bag") / "seq"
    write_synthetic_bag(path, frames=3, height=48, width=64, seed=5)
    return path


# ============================================================================ train


@case("train-typo-key", "train", "`--set train.epoch=3` (typo of `epochs`)",
      "exit 2; `train.epoch: unknown key; valid keys of train: epochs, ...`")  # fmt: skip
def _(ctx):
    line = ctx.fails(2, "train", "--config", tiny_config(ctx.tmp), "--set", "train.epoch=3")
    assert "train.epoch: unknown key; valid keys of train: epochs, batch_size" in line
    assert not (ctx.tmp / "run").exists()


@case("train-unknown-section", "train", "config file with a `modle:` section",
      "exit 2; lists the valid sections")  # fmt: skip
def _(ctx):
    config = ctx.tmp / "bad.yaml"
    config.write_text("modle: {name: acan}\n")
    line = ctx.fails(2, "train", "--config", config)
    assert "unknown section(s) ['modle']; valid sections: model, data, loss" in line


@case("train-unknown-option", "train", "`--set data.train.lenght=8` (an option the dataset does not take)",
      "exit 2; lists the dataset's options")  # fmt: skip
def _(ctx):
    line = ctx.fails(2, "train", "--config", tiny_config(ctx.tmp), "--set", "data.train.lenght=8")
    assert "data.train.lenght: unknown option; valid options of data.train: length, kind" in line


@case("train-exponent-number", "train", "`--set optim.lr=1e-4` (as the docs show)",
      "read as the number 0.0001")  # fmt: skip
def _(ctx):
    from training.train import load_config

    assert load_config(tiny_config(ctx.tmp), ["optim.lr=1e-4"])["optim"]["lr"] == pytest.approx(1e-4)
    config = ctx.tmp / "exp.yaml"
    config.write_text("optim: {lr: 5e-3}\n")
    assert load_config(config)["optim"]["lr"] == pytest.approx(5e-3)


@case("train-nan", "train", "`--set optim.lr=.nan`", "exit 2; `optim.lr is not finite`")
def _(ctx):
    assert "optim.lr is not finite" in ctx.fails(2, "train", "--config", tiny_config(ctx.tmp), "--set", "optim.lr=.nan")


@case("train-wrong-type", "train", "`--set train.batch_size=eight`", "exit 2; `expected an integer`")
def _(ctx):
    line = ctx.fails(2, "train", "--config", tiny_config(ctx.tmp), "--set", "train.batch_size=eight")
    assert "train.batch_size is 'eight': expected an integer" in line


@case("train-zero-epochs", "train", "`--set train.epochs=0`", "exit 2; `expected at least 1`")
def _(ctx):
    line = ctx.fails(2, "train", "--config", tiny_config(ctx.tmp), "--set", "train.epochs=0")
    assert "train.epochs is 0: expected at least 1" in line


@case("train-existing-run", "train", "output folder holding a run (`best.pt`), no `--resume`",
      "exit 1; nothing in the folder changes; `--resume auto` or `--overwrite` suggested")  # fmt: skip
def _(ctx):
    run = ctx.tmp / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"my best model")
    line = ctx.fails(1, "train", "--config", tiny_config(ctx.tmp))
    assert "holds a training run (best.pt)" in line
    assert "--resume auto" in line
    assert hashes(run) == {"best.pt": b"my best model"}


@case("train-resume-and-overwrite", "train", "`--resume auto --overwrite`", "exit 2; one of the two")
def _(ctx):
    assert "give one of the two" in ctx.fails(2, "train", "--config", tiny_config(ctx.tmp), "--resume", "auto",
                                              "--overwrite")  # fmt: skip


@case("train-resume-auto-fresh", "train", "`--resume auto` in a new folder (as the README shows)",
      "starts a new run, exit 0")  # fmt: skip
def _(ctx):
    code, _, err = ctx.run("train", "--config", tiny_config(ctx.tmp), "--resume", "auto")
    assert code == 0, err
    assert (ctx.tmp / "run" / "last.pt").is_file()


@case("train-resume-changed", "train", "`--resume auto --set optim.lr=0.01` on a run trained with 0.001",
      "exit 1; names `optim.lr: 0.001 → 0.01`; the run is untouched")  # fmt: skip
def _(ctx):
    run, config = ctx.fixture("trained_run")
    before = hashes(run)
    line = ctx.fails(1, "train", "--config", config, "--resume", "auto", "--set", "optim.lr=0.01")
    assert "optim.lr: 0.001 → 0.01" in line
    assert "--allow-changed-config" in line
    assert hashes(run) == before


@case("train-resume-allowed", "train", "the same with `--allow-changed-config`",
      "the new learning rate is the one used (and recorded)")  # fmt: skip
def _(ctx):
    from training.train import Trainer, load_config

    run, config = ctx.fixture("trained_run")
    copy = ctx.tmp / "run"
    shutil.copytree(run, copy)
    new = load_config(config, ["optim.lr=0.01", "train.epochs=2", f"output={copy}"])
    trainer = Trainer(new, resume="auto", allow_changed_config=True)
    encoder, head = trainer.optimizer.param_groups
    factor = trainer.scheduler.lr_lambdas[0](trainer.step)
    assert (encoder["initial_lr"], head["initial_lr"]) == (0.01, 0.01 * new["optim"]["head_lr_mult"])
    assert encoder["lr"] == pytest.approx(0.01 * factor)
    assert yaml.safe_load((copy / "config.yaml").read_text())["optim"]["lr"] == 0.01


@case("train-no-valid-depth", "train", "a dataset whose depth PNGs are all zero (invalid)",
      "exit 1; `no training sample ... has valid depth`; no checkpoint")  # fmt: skip
def _(ctx):
    data = ctx.tmp / "data"
    images(data / "rgb", [f"{i}.png" for i in range(6)], size=(32, 48))
    (data / "depth").mkdir()
    for i in range(6):
        assert cv2.imwrite(str(data / "depth" / f"{i}.png"), np.zeros((32, 48), np.uint16))
    (data / "list.txt").write_text("".join(f"rgb/{i}.png depth/{i}.png\n" for i in range(6)))
    section = {**TINY["data"], "name": "nyu_pairs", "train": {"list_path": str(data / "list.txt"),
               "intrinsics": [[40, 0, 23.5], [0, 40, 15.5], [0, 0, 1]]}, "val": None,
               "val_fraction": 0.2}  # fmt: skip
    line = ctx.fails(1, "train", "--config", tiny_config(ctx.tmp, data=section))
    assert "has valid depth" in line or "no pixel of this batch has valid depth" in line
    assert not (ctx.tmp / "run" / "last.pt").exists()


@case("train-checkpoint-mode", "train", "checkpoints written under umask 022",
      "mode 0644 (readable by a robot service of another user), not 0600")  # fmt: skip
def _(ctx):
    from depth_estimation_ros.core.models import save_checkpoint

    previous = os.umask(0o022)
    try:
        path = save_checkpoint(small_acan(), ctx.tmp / "m.pt")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in ctx.tmp.iterdir()] == ["m.pt"]


# ============================================================================ eval


@case("eval-count-zero", "eval", "`--dataset synthetic --count 0`", "exit 2; `--count must be at least 1`")
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    line = ctx.fails(2, "eval", "--checkpoint", checkpoint, "--dataset", "synthetic", "--count", "0")
    assert "--count must be at least 1" in line


@case("eval-missing-data", "eval", "`--dataset nyu` without `--nyu-mat`", "exit 2; names the missing option")
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    assert "--dataset nyu needs --nyu-mat" in ctx.fails(2, "eval", "--checkpoint", checkpoint, "--dataset", "nyu")


@case("eval-existing-json", "eval", "`--output-json` naming an existing file",
      "exit 1 before evaluating; the file is unchanged")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    report = ctx.tmp / "report.json"
    report.write_text("mine")
    line = ctx.fails(1, "eval", "--checkpoint", checkpoint, "--dataset", "synthetic", "--count", "1",
                     "--output-json", report)  # fmt: skip
    assert "exists already" in line
    assert report.read_text() == "mine"


# ============================================================================ export


@case("export-opset", "export", "`--opset 17` (below the exporter's 18)",
      "written at opset 17, or exit 1 and no file: never another opset")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["msfnet"]
    out = ctx.tmp / "m.onnx"
    code, _, err = ctx.run("export", "--checkpoint", checkpoint, "--output", out, "--opset", "17")
    if code == 0:
        assert {o.domain: o.version for o in onnx.load(str(out)).opset_import}[""] == 17
    else:
        assert code == 1, err
        assert "could not convert" in err
        assert not out.exists()


@case("export-opset-unknown", "export", "`--opset 99`", "exit 2; names the opsets this ONNX writes")
def _(ctx):
    checkpoint, _ = ctx.deployed["msfnet"]
    line = ctx.fails(2, "export", "--checkpoint", checkpoint, "--output", ctx.tmp / "m.onnx", "--opset", "99")
    assert "opset 99" in line
    assert not (ctx.tmp / "m.onnx").exists()


@case("export-planted-symlinks", "export", "symlinks to a victim file planted at `OUT.partial`, "
      "`.OUT.partial.onnx` and (with `--overwrite`) at `OUT` itself",
      "the victim is untouched; OUT becomes a regular file")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["msfnet"]
    victim = ctx.tmp / "victim.txt"
    victim.write_text("precious")
    out = ctx.tmp / "m.onnx"
    for name in ("m.onnx.partial", ".m.partial.onnx", "m.onnx"):
        (ctx.tmp / name).symlink_to(victim)
    code, _, err = ctx.run("export", "--checkpoint", checkpoint, "--output", out, "--overwrite")
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert not out.is_symlink()
    onnx.checker.check_model(onnx.load(str(out)))


@case("export-existing-output", "export", "`--output` naming an existing file",
      "exit 1 at once; the file is unchanged")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["msfnet"]
    out = ctx.tmp / "m.onnx"
    out.write_text("mine")
    assert "exists already" in ctx.fails(1, "export", "--checkpoint", checkpoint, "--output", out)
    assert out.read_text() == "mine"


@case("export-onto-input", "export", "`--output` equal to `--checkpoint`", "exit 2; the checkpoint is intact")
def _(ctx):
    checkpoint, _ = ctx.deployed["msfnet"]
    before = checkpoint.read_bytes()
    line = ctx.fails(2, "export", "--checkpoint", checkpoint, "--output", checkpoint, "--overwrite")
    assert "overlaps the checkpoint" in line
    assert checkpoint.read_bytes() == before


@case("export-truncated-checkpoint", "export", "a checkpoint cut to 5 kB", "exit 1; names the file")
def _(ctx):
    checkpoint, _ = ctx.deployed["msfnet"]
    cut = ctx.tmp / "cut.pt"
    cut.write_bytes(checkpoint.read_bytes()[:5000])
    assert "cut.pt is not a readable checkpoint" in ctx.fails(1, "export", "--checkpoint", cut, "--output",
                                                                ctx.tmp / "m.onnx")  # fmt: skip


class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@case("export-malicious-pickle", "export", "a checkpoint whose pickle would create a file when loaded",
      "exit 1; the file is never created (weights-only loading)")  # fmt: skip
def _(ctx):
    marker = ctx.tmp / "pwned"
    evil = ctx.tmp / "evil.pt"
    torch.save({"format": "depth_estimation_ros.checkpoint", "model": {}, "state_dict": {}, "x": Payload(marker)},
               evil)  # fmt: skip
    assert not marker.exists()
    assert "evil.pt is not a readable checkpoint" in ctx.fails(1, "export", "--checkpoint", evil, "--output",
                                                                 ctx.tmp / "m.onnx")  # fmt: skip
    assert not marker.exists()


# ============================================================================ models (loading untrusted files)


def tampered_checkpoint(ctx, **model_options) -> Path:
    return spoiled_checkpoint(ctx, lambda state: state["model"].update(model_options))


@case("load-pretrained-flag", "predict", "a checkpoint whose stored options say `pretrained: true`",
      "loads without asking timm for weights (no download, no stall)")  # fmt: skip
def _(ctx):
    import timm

    from depth_estimation_ros.core.models import load_model

    asked = []
    original = timm.create_model

    def spy(*args, **kwargs):
        asked.append(kwargs.get("pretrained"))
        return original(*args, **kwargs)

    ctx.request.getfixturevalue("monkeypatch").setattr(timm, "create_model", spy)
    load_model(tampered_checkpoint(ctx, pretrained=True))
    assert asked
    assert not any(asked)


@case("load-oversized-options", "predict", "a checkpoint whose options ask for ~10⁵-channel layers "
      "(gigabytes) while its weights are small",
      "refused from shapes on the meta device: `weights do not match`, nothing allocated")  # fmt: skip
def _(ctx):
    from depth_estimation_ros.core.models import load_model

    with pytest.raises(ValueError, match=r"weights do not match model 'acan'.*of another shape"):
        load_model(tampered_checkpoint(ctx, key_channels=100_000, value_channels=100_000))


@case("onnx-metadata-mismatch", "predict", "an ONNX file whose metadata says 128×96 for a 64×96 graph",
      "exit 1 at load; names graph and metadata shapes")  # fmt: skip
def _(ctx):
    _, path = ctx.deployed["acan"]
    model = onnx.load(str(path))
    entry = next(p for p in model.metadata_props if p.key == "depth_estimation_ros")
    entry.value = json.dumps({**json.loads(entry.value), "input_height": 128})
    lying = ctx.tmp / "lying.onnx"
    onnx.save(model, str(lying))
    line = ctx.fails(1, "predict", "--model", lying, "--input", images(ctx.tmp / "in"), "--output", ctx.tmp / "o")
    assert "does not match its 'depth_estimation_ros' metadata" in line
    assert "[1, 3, 64, 96] in the graph, [1, 3, 128, 96] by the metadata" in line


@case("onnx-metadata-nan", "predict", "ONNX metadata with `max_depth: NaN`",
      "exit 1; names the file and `max_depth` as not finite")  # fmt: skip
def _(ctx):
    _, path = ctx.deployed["acan"]
    model = onnx.load(str(path))
    entry = next(p for p in model.metadata_props if p.key == "depth_estimation_ros")
    entry.value = entry.value.replace('"max_depth": 10.0', '"max_depth": NaN')
    bad = ctx.tmp / "nan.onnx"
    onnx.save(model, str(bad))
    line = ctx.fails(1, "predict", "--model", bad, "--input", images(ctx.tmp / "in"), "--output", ctx.tmp / "o")
    assert str(bad) in line
    assert "max_depth is not finite" in line


@case("onnx-truncated", "predict", "an ONNX file cut to 2 kB", "exit 1; names the file")
def _(ctx):
    _, path = ctx.deployed["acan"]
    cut = ctx.tmp / "cut.onnx"
    cut.write_bytes(path.read_bytes()[:2000])
    assert "cut.onnx" in ctx.fails(1, "predict", "--model", cut, "--input", images(ctx.tmp / "in"), "--output",
                                   ctx.tmp / "o")  # fmt: skip


# ============================================================================ predict


@case("predict-same-stem", "predict", "a folder holding `a.png` and `a.jpg`",
      "two sets of results (`a_png_*`, `a_jpg_*`), none overwritten")  # fmt: skip
def _(ctx):
    source = images(ctx.tmp / "in", ["a.png", "a.jpg"])
    out = ctx.tmp / "out"
    code, _, err = ctx.run(*predict_args(ctx, source, out))
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*_depth.png")) == ["a_jpg_depth.png", "a_png_depth.png"]


@case("predict-output-is-input", "predict", "`--output` equal to the `--input` folder", "exit 2; nothing written")
def _(ctx):
    source = images(ctx.tmp / "in")
    before = hashes(source)
    assert "overlaps the input" in ctx.fails(2, *predict_args(ctx, source, source))
    assert hashes(source) == before


@case("predict-output-inside-input", "predict", "`--output IN/results` for `--input IN`", "exit 2; nothing written")
def _(ctx):
    source = images(ctx.tmp / "in")
    assert "overlaps the input" in ctx.fails(2, *predict_args(ctx, source, source / "results"))
    assert not (source / "results").exists()


@case("predict-existing-results", "predict", "a second run into the same `--output` without `--overwrite`",
      "exit 1; the first results are unchanged")  # fmt: skip
def _(ctx):
    source, out = images(ctx.tmp / "in"), ctx.tmp / "out"
    assert ctx.run(*predict_args(ctx, source, out))[0] == 0
    (out / "a_depth.npy").write_bytes(b"edited by hand")
    before = hashes(out)
    assert "exists already" in ctx.fails(1, *predict_args(ctx, source, out))
    assert hashes(out) == before
    assert ctx.run(*predict_args(ctx, source, out, "--overwrite"))[0] == 0


@case("predict-max-range-zero", "predict", "`--max-range 0`",
      "exit 2 (must be positive; omit it for no limit, as in `bag`)")  # fmt: skip
def _(ctx):
    line = ctx.fails(2, *predict_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "o", "--max-range", "0"))
    assert "--max-range: expected a positive number" in line


@case("predict-nan-intrinsics", "predict", "`--fx nan` / `--cx inf`", "exit 2; `expected a ... number`")
def _(ctx):
    base = predict_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "o", "--fy", "50", "--cy", "24")
    assert "--fx: expected a finite number" in ctx.fails(2, *base, "--fx", "nan", "--cx", "32")
    assert "--cx: expected a finite number" in ctx.fails(2, *base, "--fx", "50", "--cx", "inf")


@case("predict-min-confidence", "predict", "`--min-confidence 2`", "exit 2; `expected a number in [0, 1]`")
def _(ctx):
    line = ctx.fails(2, *predict_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "o", "--min-confidence", "2"))
    assert "expected a number in [0, 1]" in line


@case("predict-output-is-file", "predict", "`--output` naming a file", "exit 1; the file is unchanged")
def _(ctx):
    out = ctx.tmp / "o"
    out.write_text("mine")
    assert "is a file, expected a folder" in ctx.fails(1, *predict_args(ctx, images(ctx.tmp / "in"), out))
    assert out.read_text() == "mine"


@case("predict-corrupt-image", "predict", "a folder holding a truncated PNG", "exit 1; names the image")
def _(ctx):
    source = images(ctx.tmp / "in", ["a.png"])
    (source / "b.png").write_bytes((source / "a.png").read_bytes()[:40])
    assert "cannot read image" in (line := ctx.fails(1, *predict_args(ctx, source, ctx.tmp / "o")))
    assert "b.png" in line


@case("predict-imwrite-fails", "predict", "`cv2.imwrite` returning False (encoder failure)",
      "exit 1; no result file of that frame, no temporary left")  # fmt: skip
def _(ctx):
    import depth_estimation_ros.commands.predict as module

    source, out = images(ctx.tmp / "in"), ctx.tmp / "o"
    ctx.request.getfixturevalue("monkeypatch").setattr(module.cv2, "imwrite", lambda *args: False)
    assert "cannot write" in ctx.fails(1, *predict_args(ctx, source, out))
    assert list(out.iterdir()) == []


@case("predict-disk-full", "predict", "`--output` on a 64 kB tmpfs (skipped where mounting is not allowed)",
      "exit 1; says no space is left; no temporary left")  # fmt: skip
def _(ctx):
    source = images(ctx.tmp / "in", ["a.png"], size=(240, 320))
    with small_tmpfs(ctx) as full:
        assert "no space left" in ctx.fails(1, *predict_args(ctx, source, full / "o")).lower()
        assert temporaries(full / "o") == []


@case("export-read-only", "export", "`--output` in a read-only folder (a read-only tmpfs; skipped where "
      "mounting is not allowed)", "exit 1 at once, before exporting; `Read-only file system`")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["msfnet"]
    with small_tmpfs(ctx, "ro") as folder:
        line = ctx.fails(1, "export", "--checkpoint", checkpoint, "--output", folder / "m.onnx")
        assert "Read-only file system" in line


@case("bag-read-only", "bag", "`--output` in a read-only folder (as above)", "exit 1; `Read-only file system`")
def _(ctx):
    with small_tmpfs(ctx, "ro") as folder:
        line = ctx.fails(1, *bag_args(ctx, ctx.fixture("small_bag"), folder / "out"))
        assert "Read-only file system" in line


@case("predict-sigterm", "predict", "SIGTERM while a frame's files are being written",
      "exit 143; the staged files are removed, nothing half-written remains")  # fmt: skip
def _(ctx):
    import depth_estimation_ros.commands.predict as module

    def write_then_terminate(path, *args):
        Path(path).write_bytes(b"partial cloud")
        os.kill(os.getpid(), signal.SIGTERM)

    ctx.request.getfixturevalue("monkeypatch").setattr(module, "write_ply", write_then_terminate)
    out = ctx.tmp / "o"
    code, _, err = ctx.run(*predict_args(ctx, images(ctx.tmp / "in"), out))
    assert code == 143, err
    assert "terminated" in err
    assert list(out.iterdir()) == []


@case("predict-file-mode", "predict", "results written under umask 022", "mode 0644")
def _(ctx):
    out = ctx.tmp / "o"
    previous = os.umask(0o022)
    try:
        assert ctx.run(*predict_args(ctx, images(ctx.tmp / "in", ["a.png"]), out))[0] == 0
    finally:
        os.umask(previous)
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}


# ============================================================================ bag


def damage_one_image(bag: Path, copy: Path) -> Path:
    """Give the second image message an unknown channel id: readers skip it without a word."""
    from depth_estimation_ros.ros.synthetic_bag import START_NS

    shutil.copytree(bag, copy)
    (storage,) = copy.glob("*.mcap")
    data = bytearray(storage.read_bytes())
    log_time = (START_NS + 100_000_000).to_bytes(8, "little")
    first = data.find(log_time + log_time)  # log time then publish time: a message record
    assert first > 0
    data[first - 6 : first - 4] = b"\xff\xff"  # channel id (uint16), before the sequence (uint32)
    storage.write_bytes(bytes(data))
    return copy


@case("bag-damaged-middle", "bag", "an MCAP bag whose second image record is corrupted",
      "exit 1; `read 2 of the 3 messages the bag lists`; no output")  # fmt: skip
def _(ctx):
    source = damage_one_image(ctx.fixture("small_bag"), ctx.tmp / "damaged")
    out = ctx.tmp / "out"
    line = ctx.fails(1, *bag_args(ctx, source, out))
    assert "the bag is damaged" in line
    assert "read 2 of the 3 messages the bag lists" in line
    assert not out.exists()


@case("bag-malformed-sqlite", "bag", "a SQLite 3 bag with 3 kB zeroed in its middle",
      "exit 1; says the storage cannot be read; no output")  # fmt: skip
def _(ctx):
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    source = ctx.tmp / "sq"
    write_synthetic_bag(source, frames=3, height=48, width=64, storage="sqlite3")
    (db,) = source.glob("*.db3")
    data = bytearray(db.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 3000] = bytes(3000)
    db.write_bytes(bytes(data))
    out = ctx.tmp / "out"
    line = ctx.fails(1, *bag_args(ctx, source, out))
    assert "malformed" in line or "damaged" in line
    assert not out.exists()


@case("bag-no-usable-frame", "bag", "every CameraInfo of another size than its image",
      "exit 1; `no frame ... could be processed` with the first reason; no output")  # fmt: skip
def _(ctx):
    from test_bag import frame, write_bag

    messages = []
    for i in range(2):
        stamp, image, info = frame(i, info_size=(32, 32))
        messages += [("/camera/image_raw", "sensor_msgs/msg/Image", stamp, image),
                     ("/camera/camera_info", "sensor_msgs/msg/CameraInfo", stamp, info)]  # fmt: skip
    source, out = write_bag(ctx.tmp / "in", messages), ctx.tmp / "out"
    line = ctx.fails(1, *bag_args(ctx, source, out))
    assert "no frame of /camera/image_raw could be processed (2 of 2 bad" in line
    assert "camera describes 32x32" in line
    assert not out.exists()


@case("bag-depth-only", "bag", "a bag whose only image topic is 32FC1 depth",
      "exit 1; says why the topic is not usable and lists the topics")  # fmt: skip
def _(ctx):
    from test_bag import TYPES, frame, write_bag

    from depth_estimation_ros.ros.messages import depth_image_msg

    stamp, image, info = frame(0)
    depth = depth_image_msg(np.ones((image.height, image.width), np.float32), image.header, TYPES)
    messages = [("/camera/depth", "sensor_msgs/msg/Image", stamp, depth),
                ("/camera/camera_info", "sensor_msgs/msg/CameraInfo", stamp, info)]  # fmt: skip
    source = write_bag(ctx.tmp / "in", messages)
    line = ctx.fails(1, *bag_args(ctx, source, ctx.tmp / "out"))
    assert "Not usable: /camera/depth: encoding 32FC1, not colour" in line


@case("bag-output-inside-input", "bag", "`--output IN/processed` for `--input IN`", "exit 2; nothing written")
def _(ctx):
    source = ctx.tmp / "seq"
    shutil.copytree(ctx.fixture("small_bag"), source)
    before = hashes(source)
    assert "overlaps the input bag" in ctx.fails(2, *bag_args(ctx, source, source / "processed"))
    assert hashes(source) == before


@case("bag-max-range-zero", "bag", "`--max-range 0` (used to mean \"no limit\" here, \"empty\" in predict)",
      "exit 2; the same meaning as in predict: positive, omit for no limit")  # fmt: skip
def _(ctx):
    line = ctx.fails(2, *bag_args(ctx, ctx.fixture("small_bag"), ctx.tmp / "out", "--max-range", "0"))
    assert "--max-range: expected a positive number" in line


@case("bag-not-a-bag", "bag", "`--input` a folder of PNG images", "exit 1; `cannot read bag`")
def _(ctx):
    assert "cannot read bag" in ctx.fails(1, *bag_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "out"))


@case("bag-existing-output", "bag", "`--output` an existing folder", "exit 1; the folder is unchanged")
def _(ctx):
    out = ctx.tmp / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert "exists already" in ctx.fails(1, *bag_args(ctx, ctx.fixture("small_bag"), out))
    assert hashes(out) == {"keep.txt": b"mine"}


# ============================================================================ synth


@case("synth-non-empty-output", "synth", "an output folder that already holds files",
      "exit 1; the files are unchanged (`--overwrite` to write into it)")  # fmt: skip
def _(ctx):
    out = ctx.tmp / "frames"
    out.mkdir()
    (out / "cameras.json").write_text("mine")
    line = ctx.fails(1, "synth", out, "-n", "1", "--height", "16", "--width", "16")
    assert "not empty" in line
    assert hashes(out) == {"cameras.json": b"mine"}


@case("synth-nan-fov", "synth", "`--fov nan`", "exit 2; `expected a finite number`")
def _(ctx):
    assert "expected a finite number" in ctx.fails(2, "synth", ctx.tmp / "f", "--fov", "nan")


@case("synth-zero-frames", "synth", "`-n 0`", "exit 2; `expected a positive integer`")
def _(ctx):
    assert "expected a positive integer" in ctx.fails(2, "synth", ctx.tmp / "f", "-n", "0")


@case("synth-infinite-rate", "synth", "`--bag OUT --rate inf`", "exit 2; no bag written")
def _(ctx):
    assert "expected a finite number" in ctx.fails(2, "synth", "--bag", ctx.tmp / "b", "--rate", "inf")
    assert not (ctx.tmp / "b").exists()


# ============================================================================ demo (prepare)


@case("demo-output-holds-model", "demo", "`--output D --model D/model/best.pt` where D is an earlier demo's",
      "exit 2; the model is not deleted")  # fmt: skip
def _(ctx):
    from depth_estimation_ros.commands.demo import MARKER

    demo = ctx.tmp / "D"
    (demo / "model").mkdir(parents=True)
    (demo / MARKER).write_text("made by depth-estimation demo\n")
    model = demo / "model" / "best.pt"
    model.write_bytes(b"weights")
    assert "overlaps the input" in ctx.fails(2, "demo", "--output", demo, "--model", model)
    assert model.read_bytes() == b"weights"


@case("demo-foreign-folder", "demo", "`--output` an existing folder the demo did not make",
      "exit 1; the folder is unchanged")  # fmt: skip
def _(ctx):
    mine = ctx.tmp / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert "was not made by the demo" in ctx.fails(1, "demo", "--output", mine)
    assert hashes(mine) == {"notes.txt": b"mine"}


# ============================================================================ models


@case("models-unknown", "models", "`models nonet`", "exit 2; lists the models")
def _(ctx):
    assert "unknown model 'nonet'" in ctx.fails(2, "models", "nonet")


@case("models-zero-size", "models", "`--height 0`", "exit 2; `expected an image side of 1 to 8192 pixels`")
def _(ctx):
    assert "expected an image side of 1 to 8192 pixels" in ctx.fails(2, "models", "acan", "--height", "0")


@case("models-unknown-backbone", "models", "`models acan:resnet9000`", "exit 1; names the backbone")
def _(ctx):
    assert "unknown backbone 'resnet9000'" in ctx.fails(1, "models", "acan:resnet9000")


# ============================================================================ the boundary, as real processes


@case("process-exit-statuses", "train, predict", "`python -m training.train --set train.epoch=3`, "
      "`python -m depth_estimation_ros.commands predict ... --model missing.onnx`",
      "exit 2 and exit 1, one `error:` line each, no traceback")  # fmt: skip
def _(ctx):
    usage = command("-m", "training.train", "--set", "train.epoch=3")
    assert usage.returncode == 2, usage.stderr
    assert usage.stderr.startswith("depth-estimation train: error: --set: train.epoch: unknown key")
    runtime = command("-m", "depth_estimation_ros.commands", "predict", "--model", str(ctx.tmp / "missing.onnx"),
                      "--input", str(images(ctx.tmp / "in")), "--output", str(ctx.tmp / "o"))  # fmt: skip
    assert runtime.returncode == 1, runtime.stderr
    missing = ctx.tmp / "missing.onnx"
    assert runtime.stderr.strip() == f"depth-estimation predict: error: model file not found: {missing}"


@case("process-debug", "predict, train", "the same failure with `--debug`, with `DEPTH_ESTIMATION_DEBUG=1`, "
      "and `depth-estimation --debug train ...`",
      "the traceback is printed, then the same `error:` line")  # fmt: skip
def _(ctx):
    argv = ["-m", "depth_estimation_ros.commands", "predict", "--model", str(ctx.tmp / "missing.onnx"), "--input",
            str(ctx.tmp), "--output", str(ctx.tmp / "o")]  # fmt: skip
    for result in (command(*argv, "--debug"), command(*argv, env={"DEPTH_ESTIMATION_DEBUG": "1"})):
        assert result.returncode == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert result.stderr.strip().endswith(f"error: model file not found: {ctx.tmp / 'missing.onnx'}")
    delegated = command("-m", "depth_estimation_ros.commands", "--debug", "train", "--set", "train.epochs=0")
    assert delegated.returncode == 2
    assert "Traceback (most recent call last)" in delegated.stderr


# ============================================================================ the table


@pytest.mark.parametrize("case_id", cases_of(__name__))
def test_bad_input(case_id, request, tmp_path, capsys):
    run_case(case_id, request, tmp_path, capsys)


def all_cases() -> dict:
    """Every case of the suite, in table order (this module's first, then the others by name)."""
    for path in sorted(Path(__file__).parent.glob("test_reliability_*.py")):
        importlib.import_module(path.stem)
    # Sorted (stably) by module, whatever order pytest imported them in: a run of some files agrees too.
    return dict(sorted(CASES.items(), key=lambda item: (item[1][4] != __name__, item[1][4])))


def table() -> str:
    rows = [f"| `{i}` | {c} | {g} | {o} |" for i, (c, g, o, *_) in all_cases().items()]
    return "\n".join(["| Case | Command | Input | Expected outcome |", "|---|---|---|---|", *rows])


def test_the_reliability_table_lists_exactly_these_cases():
    text = (ROOT / "docs" / "reliability.md").read_text()
    assert table() in text, "docs/reliability.md is out of date: python test/test_reliability.py prints the table"
    assert len(CASES) >= 100


if __name__ == "__main__":
    print(table())
