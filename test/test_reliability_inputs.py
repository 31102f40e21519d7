"""The bad-input suite: every file a user hands in is checked where it enters (validation.py):
kinds other than a regular file, bounded YAML, duplicate keys, typed and ranged fields, finite weights."""

from __future__ import annotations

import os
import shutil

import pytest
from reliability import bag_args, case, cases_of, images, predict_args, run_case, spoiled_checkpoint, tiny_config

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)  # 10⁹ values once expanded, 400 bytes


def fifo(ctx, name: str):
    path = ctx.tmp / name
    os.mkfifo(path)
    return path


def camera_yaml(ctx, text: str):
    path = ctx.tmp / "camera.yaml"
    path.write_text(text)
    return path


CAMERA = """image_width: 96
image_height: 64
camera_matrix: {rows: 3, cols: 3, data: [80.0, 0, 48, 0, 80.0, 32, 0, 0, 1]}
"""


def predict_with_camera(ctx, camera):
    source = images(ctx.tmp / "in")
    return predict_args(ctx, source, ctx.tmp / "out", "--camera", camera)


# ============================================================================ YAML


@case("train-config-alias-bomb", "train", "a 400-byte config whose aliases expand to 10⁹ values",
      "exit 1 at once; names the file and the expansion bound")  # fmt: skip
def _(ctx):
    config = ctx.tmp / "bomb.yaml"
    config.write_text(BOMB)
    line = ctx.fails(1, "train", "--config", config)
    assert str(config) in line
    assert "once aliases are expanded" in line


@case("train-config-duplicate-key", "train", "config file with the `train:` section twice",
      "exit 1; names the key, its lines and the file")  # fmt: skip
def _(ctx):
    config = tiny_config(ctx.tmp)
    config.write_text(config.read_text() + "train:\n  epochs: 9\n")
    line = ctx.fails(1, "train", "--config", config)
    assert str(config) in line
    assert "duplicate key 'train'" in line
    assert "first on line" in line


@case("train-config-deep-nesting", "train", "config nested 10000 levels deep (`[[[[...]]]]`)",
      "exit 1; names the nesting bound, no RecursionError")  # fmt: skip
def _(ctx):
    config = ctx.tmp / "deep.yaml"
    config.write_text("model: " + "[" * 10000 + "]" * 10000 + "\n")
    line = ctx.fails(1, "train", "--config", config)
    assert str(config) in line
    assert "nested deeper than" in line


@case("train-config-oversized", "train", "a 2 MiB config file", "exit 1; names the size bound")
def _(ctx):
    config = ctx.tmp / "big.yaml"
    config.write_text("# padding\n" * 210_000)
    line = ctx.fails(1, "train", "--config", config)
    assert str(config) in line
    assert "more than the 1.0 MiB" in line


@case("predict-camera-alias-bomb", "predict", "`--camera` YAML whose aliases expand to 10⁹ values",
      "exit 1 at once; names the camera file")  # fmt: skip
def _(ctx):
    camera = camera_yaml(ctx, BOMB)
    line = ctx.fails(1, *predict_with_camera(ctx, camera))
    assert str(camera) in line
    assert "once aliases are expanded" in line


@case("predict-camera-duplicate-key", "predict", "`--camera` YAML with `image_width` twice",
      "exit 1; names the key and the file")  # fmt: skip
def _(ctx):
    camera = camera_yaml(ctx, CAMERA + "image_width: 640\n")
    line = ctx.fails(1, *predict_with_camera(ctx, camera))
    assert str(camera) in line
    assert "duplicate key 'image_width'" in line


@case("predict-camera-nan-k", "predict", "`--camera` YAML with `.nan` in `camera_matrix`",
      "exit 1; `FILE: camera_matrix.data: expected a list of 9 finite numbers`")  # fmt: skip
def _(ctx):
    camera = camera_yaml(ctx, CAMERA.replace("80.0, 0, 48", ".nan, 0, 48"))
    line = ctx.fails(1, *predict_with_camera(ctx, camera))
    assert f"{camera}: camera_matrix.data: expected a list of 9 finite numbers" in line


@case("predict-camera-negative-width", "predict", "`--camera` YAML with `image_width: -96`",
      "exit 1; `FILE: image_width: expected an integer from 1 to ...`")  # fmt: skip
def _(ctx):
    camera = camera_yaml(ctx, CAMERA.replace("image_width: 96", "image_width: -96"))
    line = ctx.fails(1, *predict_with_camera(ctx, camera))
    assert f"{camera}: image_width: expected an integer from 1 to" in line
    assert "-96" in line


# ============================================================================ file kinds


@case("predict-camera-fifo", "predict", "`--camera` naming a FIFO", "exit 1 at once (never opened); `is a FIFO`")
def _(ctx):
    camera = fifo(ctx, "camera.yaml")
    line = ctx.fails(1, *predict_with_camera(ctx, camera))
    assert f"{camera} is a FIFO, expected a regular file" in line


@case("predict-camera-folder", "predict", "`--camera` naming a folder", "exit 1; `is a folder, expected a file`")
def _(ctx):
    (ctx.tmp / "cam").mkdir()
    line = ctx.fails(1, *predict_with_camera(ctx, ctx.tmp / "cam"))
    assert f"{ctx.tmp / 'cam'} is a folder, expected a file" in line
    assert "not found" not in line


@case("predict-model-fifo", "predict", "`--model` naming a FIFO (`model.pt`)",
      "exit 1 at once (never opened); `is a FIFO`")  # fmt: skip
def _(ctx):
    model = fifo(ctx, "model.pt")
    line = ctx.fails(1, "predict", "--model", model, "--input", images(ctx.tmp / "in"), "--output", ctx.tmp / "o")
    assert f"{model} is a FIFO, expected a regular file" in line


@case("eval-nyu-mat-fifo", "eval", "`--nyu-mat` naming a FIFO", "exit 1 at once (never opened); `is a FIFO`")
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    mat = fifo(ctx, "nyu.mat")
    line = ctx.fails(1, "eval", "--checkpoint", checkpoint, "--dataset", "nyu", "--nyu-mat", mat)
    assert f"{mat} is a FIFO, expected a regular file" in line
    assert "not found" not in line


@case("eval-nyu-mat-folder", "eval", "`--nyu-mat` naming a folder", "exit 1; `is a folder, expected a file`")
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    line = ctx.fails(1, "eval", "--checkpoint", checkpoint, "--dataset", "nyu", "--nyu-mat", ctx.tmp)
    assert f"{ctx.tmp} is a folder, expected a file" in line
    assert "not found" not in line


@case("eval-kitti-split-fifo", "eval", "`--kitti-split` naming a FIFO",
      "exit 1 at once (never opened); `KITTI split file ... is a FIFO`")  # fmt: skip
def _(ctx):
    checkpoint, _ = ctx.deployed["acan"]
    split = fifo(ctx, "split.txt")
    line = ctx.fails(1, "eval", "--checkpoint", checkpoint, "--dataset", "kitti", "--kitti-split", split,
                     "--kitti-raw", ctx.tmp, "--kitti-gt", ctx.tmp)  # fmt: skip
    assert f"KITTI split file {split} is a FIFO, expected a regular file" in line


# ============================================================================ checkpoints


@case("predict-checkpoint-nan-weights", "predict", "checkpoint whose first conv weight is all NaN",
      "exit 1; names the file and the tensor (no all-NaN depth, exit 0)")  # fmt: skip
def _(ctx):
    name = None

    def spoil(state):
        nonlocal name
        name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
        state["state_dict"][name].fill_(float("nan"))

    model = spoiled_checkpoint(ctx, spoil)
    line = ctx.fails(1, "predict", "--model", model, "--input", images(ctx.tmp / "in"), "--output", ctx.tmp / "o")
    assert f"{model}: weight {name} holds" in line
    assert "NaN/infinite" in line
    assert not (ctx.tmp / "o").exists() or not any((ctx.tmp / "o").iterdir())


@case("export-checkpoint-inf-weights", "export", "checkpoint with an infinite weight",
      "exit 1; nothing written; names the file and the tensor")  # fmt: skip
def _(ctx):
    def spoil(state):
        tensor = next(v for v in state["state_dict"].values() if v.is_floating_point())
        tensor.view(-1)[0] = float("inf")

    model = spoiled_checkpoint(ctx, spoil)
    line = ctx.fails(1, "export", "--checkpoint", model, "--output", ctx.tmp / "m.onnx")
    assert f"{model}: weight" in line
    assert "holds 1 NaN/infinite values" in line
    assert not (ctx.tmp / "m.onnx").exists()


@case("predict-checkpoint-absurd-input-size", "predict", "checkpoint with `input_size: [100000, 100000]`",
      "exit 1 before any allocation; names the field and the bound")  # fmt: skip
def _(ctx):
    model = spoiled_checkpoint(ctx, lambda state: state.update(input_size=[100_000, 100_000]))
    line = ctx.fails(1, "predict", "--model", model, "--input", images(ctx.tmp / "in"), "--output", ctx.tmp / "o")
    assert f"{model}: input_size height: expected an integer from 1 to" in line


@case("predict-checkpoint-wrong-type-option", "predict", "checkpoint with model option `max_depth: \"ten\"`",
      "exit 1; `FILE: model.max_depth: expected a finite number`")  # fmt: skip
def _(ctx):
    model = spoiled_checkpoint(ctx, lambda state: state["model"].update(max_depth="ten"))
    line = ctx.fails(1, "predict", "--model", model, "--input", images(ctx.tmp / "in"), "--output", ctx.tmp / "o")
    assert f"{model}: model.max_depth: expected a finite number" in line
    assert "'ten'" in line


# ============================================================================ bags


def synthetic_bag(ctx):
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    path = ctx.tmp / "seq"
    write_synthetic_bag(path, frames=2, height=48, width=64, seed=3)
    return path


@case("bag-metadata-alias-bomb", "bag", "a bag whose `metadata.yaml` ends with aliases expanding to 10⁹ values",
      "exit 1 at once; names `metadata.yaml` and the expansion bound; nothing written")  # fmt: skip
def _(ctx):
    source = synthetic_bag(ctx)
    with (source / "metadata.yaml").open("a") as f:
        f.write(BOMB)
    line = ctx.fails(1, *bag_args(ctx, source, ctx.tmp / "out"))
    assert str(source / "metadata.yaml") in line
    assert "once aliases are expanded" in line
    assert not (ctx.tmp / "out").exists()


@case("bag-metadata-fifo", "bag", "a bag whose `metadata.yaml` is a FIFO",
      "exit 1 at once (never opened, so nothing blocks); `bag metadata ... is a FIFO`")  # fmt: skip
def _(ctx):
    source = synthetic_bag(ctx)
    (source / "metadata.yaml").unlink()
    os.mkfifo(source / "metadata.yaml")
    line = ctx.fails(1, *bag_args(ctx, source, ctx.tmp / "out"))
    assert f"bag metadata {source / 'metadata.yaml'} is a FIFO, expected a regular file" in line


# ============================================================================ images


@case("predict-non-utf8-name", "predict", "input folder holding `caf\\xe9.png` (a name that is not UTF-8)",
      "exit 0; the image is read, the result named `caf\\xe9` (no crash, exit 139)")  # fmt: skip
def _(ctx):
    source = images(ctx.tmp / "in", names=("a.png",))
    os.rename(source / "a.png", os.path.join(os.fsencode(source), b"caf\xe9.png"))
    code, _, err = ctx.run(*predict_args(ctx, source, ctx.tmp / "out"))
    assert code == 0, err
    assert any(p.name.startswith("caf\\xe9") for p in (ctx.tmp / "out").iterdir())


@case("predict-zero-byte-image", "predict", "a zero-byte `b.png` in the input folder",
      "exit 1; `cannot read image ... the file is empty`")  # fmt: skip
def _(ctx):
    source = images(ctx.tmp / "in")
    (source / "b.png").write_bytes(b"")
    line = ctx.fails(1, *predict_args(ctx, source, ctx.tmp / "out"))
    assert f"cannot read image {source / 'b.png'}: the file is empty" in line


@case("predict-fifo-in-folder", "predict", "a FIFO named `b.png` in the input folder",
      "exit 1 at once (never opened); `is a FIFO`")  # fmt: skip
def _(ctx):
    source = images(ctx.tmp / "in", names=("a.png",))
    os.mkfifo(source / "b.png")
    line = ctx.fails(1, *predict_args(ctx, source, ctx.tmp / "out"))
    assert f"image {source / 'b.png'} is a FIFO, expected a regular file" in line


@case("predict-anchoring-outcomes", "predict", "`--scale-source sparse_depth` with sparse depth for the first "
      "of two frames only", "exit 0; the summary counts `1 fitted, 1 held (no sparse_depth for this frame)`: "
      "a frame the source did not anchor is never reported as anchored")  # fmt: skip
def _(ctx):
    import numpy as np

    source = images(ctx.tmp / "in")  # a.png, b.png
    assert ctx.run(*predict_args(ctx, source, ctx.tmp / "own"))[0] == 0
    own = np.load(ctx.tmp / "own" / "a_depth.npy")  # a sensor that sees 1.5 times the model's depth
    sparse = ctx.tmp / "sparse"
    sparse.mkdir()
    keep = np.random.default_rng(0).random(own.shape) < 0.3
    np.save(sparse / "a.npy", np.where(keep, 1.5 * own, 0).astype(np.float32))
    code, out, err = ctx.run(*predict_args(ctx, source, ctx.tmp / "out", "--scale-source", "sparse_depth",
                                           "--sparse-depth", sparse))  # fmt: skip
    assert code == 0, err
    assert "anchoring (sparse_depth): 1 fitted, 1 held (no sparse_depth for this frame)" in out


@case("predict-onnx-metadata-dynamic", "predict", "an exported graph whose metadata says `dynamic: \"yes\"`, or "
      "`dynamic: true` beside a card of a fixed input size", "exit 1 naming the file: `dynamic must be a boolean`, "
      "`dynamic is true but the card's input rule is a fixed HxW`; nothing written")  # fmt: skip
def _(ctx):
    import json

    import onnx

    from depth_estimation_ros.core.backends.base import METADATA_KEY

    _, onnx_path = ctx.deployed["acan"]
    for value, expected in (("yes", "dynamic must be a boolean, got 'yes'"),
                            (True, "dynamic is true but the card's input rule is a fixed")):  # fmt: skip
        model = onnx.load(str(onnx_path))
        entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
        entry.value = json.dumps({**json.loads(entry.value), "dynamic": value})
        spoiled = ctx.tmp / "spoiled.onnx"
        onnx.save(model, str(spoiled))
        line = ctx.fails(1, *predict_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "out", "--model", spoiled))
        assert str(spoiled) in line
        assert expected in line
        assert not (ctx.tmp / "out").exists() or not any((ctx.tmp / "out").iterdir())


# ============================================================================ model folders


def folder_copy(ctx, family: str):
    import shutil

    folder = ctx.tmp / family
    shutil.copytree(ctx.fixture("hf_folders")[family], folder)
    return folder


def rewrite_weights(folder, change):
    from safetensors.torch import load_file, save_file

    weights = change(load_file(folder / "model.safetensors"))
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


@case("predict-folder-partial-weights", "predict", "a transformers folder whose `model.safetensors` holds half "
      "of its tensors (a partial download)", "exit 1 naming the folder: `the weights do not fit the dpt model of "
      "its config.json: N of the model's M tensors are missing`; nothing written (they would be random)")  # fmt: skip
def _(ctx):
    folder = folder_copy(ctx, "dpt")
    rewrite_weights(folder, lambda w: {k: w[k] for k in sorted(w)[: len(w) // 2]})
    line = ctx.fails(1, *predict_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "out", "--model", folder))
    assert f"{folder}: the weights do not fit the dpt model of its config.json" in line
    assert "of the model's" in line
    assert "tensors are missing" in line
    assert not (ctx.tmp / "out").exists() or not any((ctx.tmp / "out").iterdir())


@case("predict-folder-other-family-weights", "predict", "a DPT folder holding a Depth Anything folder's "
      "`model.safetensors`", "exit 1 naming the folder; counts the missing tensors and those that are not the "
      "model's; nothing written")  # fmt: skip
def _(ctx):
    import shutil

    folder = folder_copy(ctx, "dpt")
    shutil.copy(ctx.fixture("hf_folders")["depth_anything_metric"] / "model.safetensors", folder / "model.safetensors")
    line = ctx.fails(1, *predict_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "out", "--model", folder))
    assert f"{folder}:" in line
    assert "the weights do not fit the dpt model of its config.json" in line
    assert "have another shape" in line
    assert not (ctx.tmp / "out").exists() or not any((ctx.tmp / "out").iterdir())


@case("predict-folder-float16", "predict", "a transformers folder saved in float16 (weights and "
      "`dtype: float16` in config.json)", "loads cast to float32; exit 0; finite metres")  # fmt: skip
def _(ctx):
    import json

    import numpy as np

    folder = folder_copy(ctx, "depth_anything_metric")
    rewrite_weights(folder, lambda w: {k: v.half() for k, v in w.items()})
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "dtype": "float16", "torch_dtype": "float16"}))
    code, _, err = ctx.run(*predict_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "out", "--model", folder))
    assert code == 0, err
    assert np.isfinite(np.load(ctx.tmp / "out" / "a_depth.npy")).all()


FOLDER_FIELDS = (  # (layout, file, field, value, what the error says it expected)
    ("depth_anything_metric", "preprocessor_config.json", "image_std", [0.229, 0, 0.225], "≥ 0.001"),
    ("depth_anything_metric", "preprocessor_config.json", "image_mean", [0.5, 0.5], "a list of 3 finite numbers"),
    ("depth_anything_metric", "preprocessor_config.json", "resample", 9, "a PIL resampling code"),
    ("depth_anything_metric", "preprocessor_config.json", "size", {"longest_edge": 518}, "a mapping with height and"),
    ("depth_anything_metric", "preprocessor_config.json", "ensure_multiple_of", 0, "an integer from 1 to 1024"),
    ("depth_anything_metric", "preprocessor_config.json", "keep_aspect_ratio", "yes", "true or false"),
    ("depth_anything_metric", "preprocessor_config.json", "rescale_factor", 0, "≥ 1e-06"),
    ("depth_anything_metric", "config.json", "max_depth", 0, "> 0.01"),
    ("depth_anything_metric", "config.json", "depth_estimation_type", "metres", "'relative' or 'metric'"),
    ("zoedepth", "config.json", "bin_configurations", [{"min_depth": 5.0, "max_depth": 1.0}], "> 5"),
)


@case("predict-folder-config-fields", "predict", "a transformers folder whose `preprocessor_config.json` or "
      "`config.json` holds a zero `image_std`, two `image_mean` values, an unknown `resample`, a `size` without "
      "height/width, `ensure_multiple_of: 0`, a non-boolean flag, `rescale_factor: 0`, `max_depth: 0`, an unknown "
      "`depth_estimation_type` or a ZoeDepth bin range with min > max", "exit 1 naming the file and the field "
      "and what was expected (`FILE: image_std: expected a finite number ≥ 0.001 ≤ 1000, got 0`); nothing "
      "written")  # fmt: skip
def _(ctx):
    import json

    source = images(ctx.tmp / "in")
    for layout, name, key, value, expected in FOLDER_FIELDS:
        folder = folder_copy(ctx, layout)
        settings = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps({**settings, key: value}))
        line = ctx.fails(1, *predict_args(ctx, source, ctx.tmp / "out", "--model", folder))
        assert f"{folder / name}: {key}" in line, line
        assert expected in line, line
        assert not (ctx.tmp / "out").exists()
        shutil.rmtree(folder)


@case("predict-folder-no-preprocessor", "predict", "a transformers folder without `preprocessor_config.json` "
      "(only the model was saved)", "exit 1 naming the folder and how to save the processor beside the model; "
      "never a silent default preprocessing")  # fmt: skip
def _(ctx):
    folder = folder_copy(ctx, "dpt")
    (folder / "preprocessor_config.json").unlink()
    line = ctx.fails(1, *predict_args(ctx, images(ctx.tmp / "in"), ctx.tmp / "out", "--model", folder))
    assert f"{folder}: no preprocessor_config.json" in line
    assert "AutoImageProcessor.from_pretrained(ID).save_pretrained(FOLDER)" in line
    assert not (ctx.tmp / "out").exists()


@case("predict-folder-frame-beyond-its-bound", "predict", "a 1500x2000 photo given to a GLPN folder (a model "
      "that runs at the frame's own size; at 24 MP its attention would ask for tens of GB)", "exit 0; the network "
      "runs at most at the card's `max_pixels` (GLPN: 1 MP, the frame scaled down keeping its aspect), the depth "
      "comes back at 1500x2000 with the camera followed")  # fmt: skip
def _(ctx):
    import numpy as np

    source = images(ctx.tmp / "in", names=("big.png",), size=(1500, 2000))
    code, _, err = ctx.run("predict", "--model", ctx.fixture("hf_folders")["glpn"], "--input", source,
                           "--output", ctx.tmp / "out")  # fmt: skip
    assert code == 0, err
    depth = np.load(ctx.tmp / "out" / "big_depth.npy")
    assert depth.shape == (1500, 2000)
    assert np.isfinite(depth).mean() > 0.9


# ============================================================================ metres


@case("predict-camera-absurd-focal", "predict", "`--camera` YAML with `fx: 1e30`, or `--fx 1e-30 ...`",
      "exit 1 naming the file (exit 2 for the options), `fx=1e+30 px is not plausible for a 96x64 image`; "
      "nothing written")  # fmt: skip
def _(ctx):
    camera = camera_yaml(ctx, CAMERA.replace("80.0, 0, 48", "1e30, 0, 48"))
    line = ctx.fails(1, *predict_with_camera(ctx, camera))
    assert f"{camera}: camera K: fx=1e+30 px is not plausible for a 96x64 image" in line
    source = images(ctx.tmp / "in")
    line = ctx.fails(2, *predict_args(ctx, source, ctx.tmp / "out", "--fx", "1e-30", "--fy", "80", "--cx", "48",
                                      "--cy", "32"))  # fmt: skip
    assert "fx=1e-30 px is not plausible" in line
    assert not (ctx.tmp / "out").exists()


@case("predict-absurd-metres", "predict", "a metric model scaled by `--scale-source fixed --fixed-scale 1e6` "
      "(depths of 10⁶ m and more)", "exit 0 with a warning counting the pixels outside the plausible range "
      "(the card's range ×/÷ 10, within 1 mm-10 km); they are NaN in the .npy and 0 in the PNG, never "
      "metres")  # fmt: skip
def _(ctx):
    import cv2
    import numpy as np

    source = images(ctx.tmp / "in", names=("a.png",))
    logged = ctx.fixture("caplog")
    code, _, err = ctx.run(*predict_args(ctx, source, ctx.tmp / "out", "--scale-source", "fixed",
                                         "--fixed-scale", "1e6"))  # fmt: skip
    assert code == 0, err
    assert "3072 depth pixel(s) outside the plausible 0.05-100 m were written as invalid" in logged.text
    depth = np.load(ctx.tmp / "out" / "a_depth.npy")
    assert not (depth > 100).any()  # NaN compares false: no absurd metre survives
    assert np.isnan(depth).all()
    assert not cv2.imread(str(ctx.tmp / "out" / "a_depth.png"), cv2.IMREAD_UNCHANGED).any()


@case("predict-sparse-absurd-metres", "predict", "`--scale-source sparse_depth` with sparse depth of 1e30 m "
      "(float32 .npy) for a metric model", "the readings are holes, not a scale: the depth written is the "
      "model's own, as without sparse depth, never scaled towards 1e30; a warning says no frame was anchored "
      "and why")  # fmt: skip
def _(ctx):
    import numpy as np

    source = images(ctx.tmp / "in", names=("a.png",))
    sparse = ctx.tmp / "sparse"
    sparse.mkdir()
    np.save(sparse / "a.npy", np.full((16, 24), 1e30, np.float32))
    logged = ctx.fixture("caplog")
    code, out, err = ctx.run(*predict_args(ctx, source, ctx.tmp / "anchored", "--scale-source", "sparse_depth",
                                           "--sparse-depth", sparse))  # fmt: skip
    assert code == 0, err
    assert "no frame was anchored to sparse_depth (1 not anchored (" in logged.text
    assert "anchoring (sparse_depth): 1 not anchored (" in out
    assert ctx.run(*predict_args(ctx, source, ctx.tmp / "own"))[0] == 0
    np.testing.assert_array_equal(
        np.load(ctx.tmp / "anchored" / "a_depth.npy"), np.load(ctx.tmp / "own" / "a_depth.npy")
    )


@pytest.mark.parametrize("case_id", cases_of(__name__))
def test_bad_input(case_id, request, tmp_path, capsys):
    run_case(case_id, request, tmp_path, capsys)
