"""Bad-input cases: signals and failures in the middle of a write, stale staging, quantize's boundary.

A signal that lands inside a C++ writer (torch.save, onnx.save, the ORT quantiser) comes out of it
as an internal RuntimeError; the writers here are replaced by ones that do exactly that, so a case
fails unless the signal is held until the write returned.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
from reliability import (
    DEAD_PID,
    TINY,
    bag_args,
    case,
    cases_of,
    command,
    hashes,
    images,
    plant_temporary,
    run_case,
    temporaries,
    tiny_config,
)


def wrapping_writer(real, signum, before=None):
    """``real`` (a writer) that first sends ``signum`` to this process, turning the interrupt into a
    RuntimeError as C++ code does; with the signal held it writes normally."""

    def write(*args, **kwargs):
        try:
            if before is not None:
                before(*args)
            os.kill(os.getpid(), signum)
            sum(range(1000))  # a few bytecodes: a Python handler runs here
        except KeyboardInterrupt as exc:
            raise RuntimeError("[enforce fail at inline_container.cc] PytorchStreamWriter failed writing") from exc
        return real(*args, **kwargs)

    return write


@pytest.fixture(scope="module")
def writes_run(tmp_path_factory):
    """A one-epoch tiny run (its folder and config)."""
    from training.train import main as train_main

    folder = tmp_path_factory.mktemp("writes")
    config = tiny_config(folder)
    assert train_main(["--config", str(config)]) == 0
    return folder / "run", config


# ============================================================================ train


def _signal_in_checkpoint_save(ctx, signum, status, word):
    monkeypatch = ctx.fixture("monkeypatch")
    monkeypatch.setattr(torch, "save", wrapping_writer(torch.save, signum))
    config = tiny_config(ctx.tmp)
    run = ctx.tmp / "run"
    code, _, err = ctx.run("train", "--config", config)
    assert code == status, err
    assert word in err
    assert "error" not in err
    assert not (run / "last.pt").exists()
    assert not (run / "best.pt").exists()
    assert temporaries(run) == []
    monkeypatch.undo()
    # nothing was checkpointed: the retry (without --resume) starts over
    assert ctx.run("train", "--config", config)[0] == 0
    assert (run / "last.pt").is_file()


@case("train-sigterm-checkpoint-save", "train", "SIGTERM while `last.pt` is written (torch.save turns it into "
      "an internal error)", "exit 143 `terminated`; no `last.pt`, no temporary; the retry starts")  # fmt: skip
def _(ctx):
    _signal_in_checkpoint_save(ctx, signal.SIGTERM, 143, "terminated")


@case("train-sigint-checkpoint-save", "train", "Ctrl-C while `last.pt` is written",
      "exit 130 `interrupted`; no `last.pt`, no temporary; the retry starts")  # fmt: skip
def _(ctx):
    _signal_in_checkpoint_save(ctx, signal.SIGINT, 130, "interrupted")


@case("train-stale-partial-resume", "train", "`--resume auto` in a run folder holding a temporary checkpoint "
      "of a killed save, and one of a live process", "resumes; the dead one's temporary is removed, the live one's "
      "kept")  # fmt: skip
def _(ctx):
    run, config = ctx.fixture("writes_run")
    copy = ctx.tmp / "run"
    shutil.copytree(run, copy)
    stale = plant_temporary(copy, "last.pt", DEAD_PID)
    live = plant_temporary(copy, "last.pt", os.getppid())
    code, _, err = ctx.run("train", "--config", config, "--resume", "auto", "--set", "train.epochs=2",
                           "--allow-changed-config", "--set", f"output={copy}")  # fmt: skip
    assert code == 0, err
    assert not stale.exists()
    assert live.exists()
    assert torch.load(copy / "last.pt", weights_only=True)["extra"]["training"]["epoch"] == 2


@case("train-fails-before-first-checkpoint", "train", "a run that failed in its first epoch (a dataset error), "
      "then the same command again", "the retry starts over without `--resume`/`--overwrite`")  # fmt: skip
def _(ctx):
    import training.train as module

    def broken(self):
        raise OSError("dataset went away: /data/nyu")

    monkeypatch = ctx.fixture("monkeypatch")
    monkeypatch.setattr(module.Trainer, "train_epoch", broken)
    config = tiny_config(ctx.tmp)
    assert "dataset went away" in ctx.fails(1, "train", "--config", config)
    monkeypatch.undo()
    code, _, err = ctx.run("train", "--config", config)
    assert code == 0, err
    assert (ctx.tmp / "run" / "last.pt").is_file()


@case("train-invalid-config-writes-nothing", "train", "a config failing validation (`optim.lr: fast`)",
      "exit 2; the output folder is not created; the corrected retry starts")  # fmt: skip
def _(ctx):
    config = tiny_config(ctx.tmp, optim={"name": "sgd", "lr": "fast"})
    ctx.fails(2, "train", "--config", config)
    assert not (ctx.tmp / "run").exists()
    assert ctx.run("train", "--config", tiny_config(ctx.tmp, optim=TINY["optim"]))[0] == 0


# ============================================================================ export


@case("export-sigterm-onnx-write", "export", "SIGTERM while the ONNX file is written (inside onnx.save)",
      "exit 143; no output file, no temporary")  # fmt: skip
def _(ctx):
    import onnx

    checkpoint, _ = ctx.deployed["acan"]
    ctx.fixture("monkeypatch").setattr(onnx, "save", wrapping_writer(onnx.save, signal.SIGTERM))
    out = ctx.tmp / "out"
    out.mkdir()
    code, _, err = ctx.run("export", "--checkpoint", checkpoint, "--output", out / "m.onnx")
    assert code == 143, err
    assert "terminated" in err
    assert list(out.iterdir()) == []


@case("export-sigterm-while-tracing", "export", "SIGTERM as the exporter starts tracing, for a checkpoint and a "
      "transformers folder (whose dynamo exporter has a TorchScript fallback)", "exit 143 at once: the exporter "
      "never runs on, the fallback is not tried, no output, no temporary")  # fmt: skip
def _(ctx):
    real, traced = torch.onnx.export, []

    def interrupted_export(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))  # a few bytecodes: the handler runs here unless the signal is held
        traced.append(kwargs.get("dynamo"))
        return real(*args, **kwargs)

    ctx.fixture("monkeypatch").setattr(torch.onnx, "export", interrupted_export)
    checkpoint, _ = ctx.deployed["acan"]
    for source in (checkpoint, ctx.fixture("hf_folders")["dpt"]):
        out = ctx.tmp / source.name
        out.mkdir()
        code, _, err = ctx.run("export", "--checkpoint", source, "--output", out / "m.onnx")
        assert code == 143, err
        assert traced == []
        assert list(out.iterdir()) == []


@case("export-int8-sigterm", "export", "`--precision int8`: SIGTERM inside the ORT quantiser",
      "exit 143; no output, no int8 staging folder")  # fmt: skip
def _(ctx):
    import onnxruntime.quantization as ortq

    checkpoint, _ = ctx.deployed["acan"]
    ctx.fixture("monkeypatch").setattr(ortq, "quantize_static", wrapping_writer(ortq.quantize_static, signal.SIGTERM))
    out = ctx.tmp / "out"
    out.mkdir()
    frames = images(ctx.tmp / "frames", ["a.png", "b.png"], size=(64, 96))
    code, _, err = ctx.run("export", "--checkpoint", checkpoint, "--output", out / "m.onnx", "--precision", "int8",
                           "--calibration-images", frames, "--calibration-frames", "2")  # fmt: skip
    assert code == 143, err
    assert list(out.iterdir()) == []


# ============================================================================ quantize


@case("quantize-boundary", "quantize", "a missing input graph; `--frames 0`; the same with `--debug`",
      "`depth-estimation quantize: error: ...` one line, exit 1 / 2; `--debug` adds the traceback")  # fmt: skip
def _(ctx):
    missing = ctx.tmp / "missing.onnx"
    line = ctx.fails(1, "quantize", missing, ctx.tmp / "q.onnx")
    assert line.startswith("depth-estimation quantize: error:")
    assert "missing.onnx" in line
    _, onnx_path = ctx.deployed["acan"]
    line = ctx.fails(2, "quantize", onnx_path, ctx.tmp / "q.onnx", "--frames", "0")
    assert "--frames" in line
    assert "positive integer" in line
    debug = command("-m", "depth_estimation_ros.commands", "quantize", str(missing), str(ctx.tmp / "q.onnx"), "--debug")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("depth-estimation quantize: error:")


@case("quantize-corrupt-graph", "quantize", "an exported graph with its metadata intact but a node removed",
      "exit 1; one line naming the file; no staging left")  # fmt: skip
def _(ctx):
    import onnx

    _, onnx_path = ctx.deployed["acan"]
    proto = onnx.load(str(onnx_path))
    del proto.graph.node[len(proto.graph.node) // 2]
    broken = ctx.tmp / "broken.onnx"
    onnx.save(proto, str(broken))
    line = ctx.fails(1, "quantize", broken, ctx.tmp / "q.onnx", "--frames", "2")
    assert f"{broken}: cannot quantise this graph" in line
    assert sorted(p.name for p in ctx.tmp.iterdir()) == ["broken.onnx"]


@case("quantize-sigterm", "quantize", "SIGTERM inside the ORT quantiser, then a second run",
      "exit 143; the staging folder is removed; a dead run's staging is removed by the next run")  # fmt: skip
def _(ctx):
    import onnxruntime.quantization as ortq

    _, onnx_path = ctx.deployed["acan"]
    out = ctx.tmp / "out"
    out.mkdir()

    def side_file(model_input, model_output, *args):
        Path(model_output).with_suffix(".augmented.onnx").write_bytes(b"partial")

    monkeypatch = ctx.fixture("monkeypatch")
    monkeypatch.setattr(ortq, "quantize_static", wrapping_writer(ortq.quantize_static, signal.SIGTERM, side_file))
    code, _, err = ctx.run("quantize", onnx_path, out / "q.onnx", "--frames", "2")
    assert code == 143, err
    assert list(out.iterdir()) == []
    monkeypatch.undo()
    plant_temporary(out, "q.onnx", DEAD_PID, staging=True)
    code, _, err = ctx.run("quantize", onnx_path, out / "q.onnx", "--frames", "2")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["q.onnx"]


@case("quantize-sigint-during-calibration", "quantize", "Ctrl-C while the calibration reads its second of 8 frames",
      "exit 130 at that frame (calibration is not deferred: only the final write is); no output, no "
      "temporary")  # fmt: skip
def _(ctx):
    import depth_estimation_ros.commands.quantize as command_module

    _, onnx_path = ctx.deployed["acan"]
    out = ctx.tmp / "out"
    out.mkdir()
    real, served = command_module.synthetic_frames, []

    def interrupted_frames(*args, **kwargs):
        for index, frame in enumerate(real(*args, **kwargs)):
            if index == 1:
                os.kill(os.getpid(), signal.SIGINT)
            served.append(index)
            yield frame

    ctx.fixture("monkeypatch").setattr(command_module, "synthetic_frames", interrupted_frames)
    code, _, err = ctx.run("quantize", onnx_path, out / "q.onnx", "--frames", "8")
    assert code == 130, err
    assert served == [0]  # the interrupt ended the calibration where it arrived
    assert list(out.iterdir()) == []


# ============================================================================ bag


@case("bag-stale-staging", "bag", "a staging folder left by a killed run, and one of a live run",
      "the dead run's is removed by the next run, the live one's kept")  # fmt: skip
def _(ctx):
    out = ctx.tmp / "out"
    stale = plant_temporary(ctx.tmp, "out", DEAD_PID, staging=True)
    live = plant_temporary(ctx.tmp, "out", os.getppid(), staging=True)
    code, _, err = ctx.run(*bag_args(ctx, ctx.fixture("small_bag"), out))
    assert code == 0, err
    assert out.is_dir()
    assert not stale.exists()
    assert live.exists()


@case("bag-sigterm-write", "bag", "SIGTERM while the output bag is written",
      "exit 143; no `OUT`, no temporary")  # fmt: skip
def _(ctx):
    import depth_estimation_ros.ros.bag as module

    real = module._progress_bar

    def terminate_mid_bag(*args):  # inside the writer: its connections are written, no frames yet
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    ctx.fixture("monkeypatch").setattr(module, "_progress_bar", terminate_mid_bag)
    code, _, err = ctx.run(*bag_args(ctx, ctx.fixture("small_bag"), ctx.tmp / "out"))
    assert code == 143, err
    assert list(ctx.tmp.iterdir()) == []


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    path = tmp_path_factory.mktemp("bag") / "seq"
    write_synthetic_bag(path, frames=3, height=48, width=64, seed=5)
    return path


# ============================================================================ bench


@case("bench-unknown-model", "bench", "`--models nosuch`", "exit 2 listing the valid labels; the document is "
      "not touched")  # fmt: skip
def _(ctx):
    document = ctx.tmp / "bench.md"
    document.write_text("# Benchmarks\n\nmine\n")
    before = hashes(ctx.tmp)
    line = ctx.fails(2, "bench", "--models", "nosuch", "--output", document)
    assert "'nosuch'" in line
    assert "ACAN-R50" in line
    assert hashes(ctx.tmp) == before


@pytest.mark.parametrize("case_id", cases_of(__name__))
def test_bad_input(case_id, request, tmp_path, capsys):
    run_case(case_id, request, tmp_path, capsys)


# ============================================================================ temporaries


def plant_look_alikes(folder: Path, victim: Path) -> dict[str, bytes]:
    """A user's files and folders of the shapes earlier temporaries had, and of this project's name
    without being its temporaries (a folder without the staging mark, a symlink); their contents."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f".notes.{DEAD_PID}-x1.partial.txt").write_text("a user's file")
    (folder / f"photos.partial-{DEAD_PID}-trip").mkdir()
    (folder / f"photos.partial-{DEAD_PID}-trip" / "a.jpg").write_bytes(b"a user's photo")
    mine = folder / f".depth-estimation-tmp.{DEAD_PID}.00400001.mine"  # our shape, not our folder
    mine.mkdir()
    (mine / "data.bin").write_bytes(b"a user's data")
    (folder / f".depth-estimation-tmp.{DEAD_PID}.00400002.link").symlink_to(victim)
    return hashes(folder)


@case("temporaries-look-alikes-survive", "predict, export, bag, quantize, eval, synth",
      "beside each output, a user's files and folders named like earlier temporaries (`.NAME.PID-X.partial.SUFFIX`, "
      "`NAME.partial-PID-X/`), a folder named like this project's staging but without its mark, a symlink so named; "
      "all with a dead pid", "every command succeeds and every planted file, folder and symlink target is "
      "untouched; only names with the project's prefix, the pid of a dead run and (for a folder) the staging "
      "mark are ever swept")  # fmt: skip
def _(ctx):
    checkpoint, onnx_path = ctx.deployed["acan"]
    victim = ctx.tmp / "victim.txt"
    victim.write_text("precious")
    runs = {
        "predict": lambda out: ("predict", "--model", onnx_path, "--input", images(ctx.tmp / "in"), "--output", out),
        "export": lambda out: ("export", "--checkpoint", checkpoint, "--output", out / "m.onnx"),
        "bag": lambda out: bag_args(ctx, ctx.fixture("small_bag"), out / "bag"),
        "quantize": lambda out: ("quantize", onnx_path, out / "q.onnx", "--frames", "2"),
        "eval": lambda out: ("eval", "--checkpoint", checkpoint, "--dataset", "synthetic", "--count", "1",
                             "--height", "32", "--width", "48", "--output-json", out / "eval.json"),
        "synth": lambda out: ("synth", out, "--frames", "1", "--height", "32", "--width", "48", "--overwrite"),
    }  # fmt: skip
    for name, argv in runs.items():
        out = ctx.tmp / name
        planted = plant_look_alikes(out, victim)
        code, _, err = ctx.run(*argv(out))
        assert code == 0, (name, err)
        after = hashes(out)
        assert {k: after.get(k) for k in planted} == planted, name
        assert (out / f".depth-estimation-tmp.{DEAD_PID}.00400002.link").is_symlink(), name
        assert victim.read_text() == "precious"
        assert [t for t in temporaries(out) if "00400001" not in t and "00400002" not in t] == [], name
