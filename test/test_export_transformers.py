"""Transformers folders exported to ONNX: one graph per fixed size, with the folder's card frozen at
that size in the metadata, so ONNX Runtime runs the same road (padding, interpolation, focal rule,
output kind) as PyTorch does on the folder."""

import dataclasses
import logging
import shutil

import cv2
import numpy as np
import pytest
import torch
from conftest import smooth_image

from depth_estimation_ros.core.backends import open_backend
from depth_estimation_ros.core.backends.onnxruntime_backend import read_onnx_info
from depth_estimation_ros.core.errors import UsageError
from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.core.models.transformers_depth import card_from_folder, load_transformers_model
from depth_estimation_ros.deploy import export
from depth_estimation_ros.deploy.export import default_size, export_onnx

# Export sizes: multiples of the card's multiple (Depth Anything 14, GLPN and ZoeDepth 32), square
# for DPT's ViT, Depth Pro's own fixed size; none is the 96x128 camera's.
SIZES = {
    "depth_anything_metric": (112, 154),
    "depth_anything_relative": (112, 154),
    "prompt_depth_anything": (112, 154),
    "dpt": (96, 96),
    "glpn": (64, 96),
    "zoedepth": (96, 128),
    "depth_pro": (128, 128),
}
# The tiny random layouts give nearly constant outputs (Depth Anything relative: 0.5 ± 2e-7); their weight
# matrices are scaled by this gain so the output varies over the image and the comparison means something.
GAIN = {"depth_anything_metric": 6, "depth_anything_relative": 6, "prompt_depth_anything": 6, "dpt": 6,
        "glpn": 10, "zoedepth": 10, "depth_pro": 1}  # fmt: skip
# Tolerances, per family: max |ONNX Runtime - PyTorch| / max |PyTorch| (float32, CPU), measured max
# in the comment. GRAPH: the raw output on the same input at the exported size. ROAD: metres after
# the estimator's road (pre-processing, focal rule, anchoring, resizing to the camera), the torch
# backend pinned to the export's metadata against ONNX Runtime. Depth Pro's road is looser: Z =
# f / (W·c) magnifies the graph's error where the canonical inverse depth c nears its 1e-4 clamp.
GRAPH_TOLERANCE = {
    "depth_anything_metric": 1e-5,  # 9.8e-7
    "depth_anything_relative": 2e-5,  # 4.2e-6
    "prompt_depth_anything": 1e-5,  # 1.7e-6
    "dpt": 1e-5,  # 1.1e-6
    "glpn": 1e-5,  # 9.6e-7 (dynamo), 1.5e-7 (TorchScript, unscaled weights)
    "zoedepth": 5e-5,  # 1.2e-5
    "depth_pro": 1e-5,  # 1.0e-6
}
ROAD_TOLERANCE = {
    "depth_anything_metric": 1e-5,  # 6.8e-7
    "depth_anything_relative": 3e-5,  # 5.3e-6
    "prompt_depth_anything": 1e-5,  # 1.1e-6
    "dpt": 1e-5,  # 1.1e-6
    "glpn": 1e-5,  # 1.9e-6
    "zoedepth": 2e-5,  # 3.9e-6
    "depth_pro": 1e-3,  # 2.3e-4 (and the same against the folder on torch at its fixed 128x128)
}
RELATIVE = ("depth_anything_relative", "prompt_depth_anything", "dpt")


def scale(name):
    # the shift keeps 1/Z > 0 where a ReLU head gives 0 (lively weights do), so every pixel has a depth
    return {"scale_source": "fixed", "fixed_scale": 0.5, "fixed_shift": 0.1} if name in RELATIVE else {}


def relative_error(actual, expected):
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def lively(folder, target, gain):
    """A copy of ``folder`` with its weight matrices scaled by ``gain``."""
    from transformers import AutoModelForDepthEstimation

    model = AutoModelForDepthEstimation.from_pretrained(str(folder), local_files_only=True)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(gain)
    model.save_pretrained(target)
    shutil.copy(folder / "preprocessor_config.json", target / "preprocessor_config.json")
    return target


@pytest.fixture(scope="module")
def exported(hf_folders, tmp_path_factory):
    """name -> (folder, its ONNX export at SIZES[name])."""
    root = tmp_path_factory.mktemp("exported")
    files = {}
    for name, folder in hf_folders.items():
        folder = lively(folder, root / name, GAIN[name])
        files[name] = (folder, export_onnx(folder, root / f"{name}.onnx", *SIZES[name]))
    return files


@pytest.mark.parametrize("name", list(SIZES))
def test_onnx_runtime_computes_what_pytorch_does_at_the_exported_size(exported, name):
    folder, path = exported[name]
    h, w = SIZES[name]
    batch = cv2.resize(smooth_image(1), (w, h)).transpose(2, 0, 1)[None].astype(np.float32) / 255
    with torch.no_grad():
        expected = load_transformers_model(folder)(torch.from_numpy(batch))["depth"].numpy()
    actual = open_backend(path, "onnxruntime")(batch)["depth"]
    assert actual.shape == expected.shape == (1, 1, h, w)
    assert expected.std() > 1e-3 * np.abs(expected).mean()  # an output that varies: the test can fail
    assert relative_error(actual, expected) < GRAPH_TOLERANCE[name]


@pytest.mark.parametrize("name", list(SIZES))
def test_the_estimator_runs_the_export_with_the_card_frozen_at_its_size(exported, hf_camera, name):
    folder, path = exported[name]
    card = card_from_folder(folder)
    frozen = dataclasses.replace(card, input=card.input.at(*SIZES[name]), prompt="")  # an export takes no prompt
    onnx_estimator = DepthEstimator(path, "onnxruntime", **scale(name))
    assert onnx_estimator.card == frozen
    result = onnx_estimator(smooth_image(), hf_camera)
    assert result.depth.shape == (96, 128)
    assert result.camera == hf_camera
    assert np.isfinite(result.depth).all()
    assert (result.depth > 0).all()
    # The same road on PyTorch: the folder's network pinned to the export's metadata.
    backend = open_backend(folder, "torch", dtype="float32")
    backend.info = read_onnx_info(path)
    expected = DepthEstimator(backend, **scale(name))(smooth_image(), hf_camera).depth
    assert relative_error(result.depth, expected) < ROAD_TOLERANCE[name]
    if card.input.fixed and SIZES[name] == (card.input.height, card.input.width):  # Depth Pro at its own size
        plain = DepthEstimator(folder, "torch", dtype="float32", **scale(name))(smooth_image(), hf_camera).depth
        assert relative_error(result.depth, plain) < ROAD_TOLERANCE[name]


def test_the_card_travels_in_the_metadata(exported):
    for name, (folder, path) in exported.items():
        info, card = read_onnx_info(path), card_from_folder(folder)
        exported_card = info.model_card
        for field in ("output", "focal_rule", "focal_length", "normalization", "family", "min_depth", "max_depth"):
            assert getattr(exported_card, field) == getattr(card, field), (name, field)
        rule = exported_card.input
        assert rule.fixed
        assert (rule.height, rule.width) == SIZES[name] == (info.input_height, info.input_width)
        assert (rule.pad, rule.interpolation, rule.align_corners) == (
            card.input.pad,
            card.input.interpolation,
            card.input.align_corners,
        )
        assert not info.dynamic
        assert info.name == card.family


@pytest.mark.parametrize("name", RELATIVE)
def test_a_relative_export_is_refused_without_a_scale_source_as_its_folder_is(exported, name):
    folder, path = exported[name]
    with pytest.raises(ValueError, match=r"relative model.*scale_source") as from_folder:
        DepthEstimator(folder, "torch", dtype="float32")
    with pytest.raises(ValueError, match=r"relative model.*scale_source") as from_onnx:
        DepthEstimator(path, "onnxruntime")
    assert str(from_onnx.value) == str(from_folder.value)


def test_the_default_size_is_the_rule_on_a_480x640_frame(hf_folders):
    expected = {
        "depth_anything_metric": (518, 686),
        "dpt": (384, 384),
        "glpn": (480, 640),
        "zoedepth": (384, 512),
        "depth_pro": (128, 128),  # the tiny layout's fixed size (the published model's: 1536x1536)
    }
    for name, size in expected.items():
        assert default_size(card_from_folder(hf_folders[name]).input) == size, name


def test_bad_sizes_and_folders_are_one_line_errors_naming_them(hf_folders, tmp_path):
    out = tmp_path / "bad.onnx"
    with pytest.raises(ValueError, match=r"112x150 is not an input size depth_anything takes.*multiples of 14") as e:
        export_onnx(hf_folders["depth_anything_metric"], out, 112, 150)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"dpt cannot run at 96x128 .*fixed 384x384.*square") as e:
        export_onnx(hf_folders["dpt"], out, 96, 128)
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="both --height and --width, or neither"):
        export_onnx(hf_folders["glpn"], out, height=64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty is a folder without config\.json"):
        export_onnx(tmp_path / "empty", out)
    assert not out.exists()
    assert not list(tmp_path.glob(".bad.*"))


def test_non_finite_weights_are_refused_naming_the_folder(hf_folders, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(hf_folders["glpn"], tmp_path / "poisoned")
    weights = load_file(folder / "model.safetensors")
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.dim() > 1)
    weights[name][0] = float("nan")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=rf"poisoned: weight {name}.* holds non-finite values"):
        export_onnx(folder, tmp_path / "x.onnx", 64, 64)
    assert not (tmp_path / "x.onnx").exists()


def test_torchscript_is_the_fallback_and_unlisted_operators_are_reported(hf_folders, tmp_path, monkeypatch, caplog):
    real = torch.onnx.export

    def no_dynamo(*args, dynamo=True, **kwargs):
        if dynamo:
            raise RuntimeError("dynamo cannot trace this")
        return real(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", no_dynamo)
    monkeypatch.setattr(export, "TENSORRT_OPS", export.TENSORRT_OPS - {"LayerNormalization"})
    with caplog.at_level(logging.INFO, logger="depth_estimation_ros.deploy.export"):
        path = export_onnx(hf_folders["glpn"], tmp_path / "glpn.onnx", 64, 64)
    assert "with the torchscript exporter" in caplog.text
    assert "dynamo cannot trace this" in caplog.text
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warned
    assert "LayerNormalization" in warned[0].getMessage()
    batch = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    with torch.no_grad():
        expected = load_transformers_model(hf_folders["glpn"])(torch.from_numpy(batch))["depth"].numpy()
    assert relative_error(open_backend(path, "onnxruntime")(batch)["depth"], expected) < GRAPH_TOLERANCE["glpn"]


def test_the_cli_exports_a_folder_at_a_given_and_the_default_size(hf_folders, tmp_path, capsys):
    from depth_estimation_ros.commands import main

    given, default = tmp_path / "glpn.onnx", tmp_path / "pro.onnx"
    argv = ["export", "--checkpoint", str(hf_folders["glpn"]), "--output", str(given), "--height", "64"]
    assert main([*argv, "--width", "96"]) == 0
    assert main(["export", "--checkpoint", str(hf_folders["depth_pro"]), "--output", str(default)]) == 0
    assert f"wrote {given}" in capsys.readouterr().out
    assert (read_onnx_info(given).input_height, read_onnx_info(given).input_width) == (64, 96)
    assert read_onnx_info(default).model_card.input == card_from_folder(hf_folders["depth_pro"]).input.at(128, 128)
