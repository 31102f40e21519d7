"""Transformers depth folders (random weights, save_pretrained) through the project's road, and
the model cards and focal rules that make their output metres."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_image

from depth_estimation_ros.core.backends.base import Backend, ModelInfo
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.card import InputRule, ModelCard
from depth_estimation_ros.core.estimator import DepthEstimator, preprocess, to_metres
from depth_estimation_ros.core.models.transformers_depth import card_from_folder, resolve

OUTPUTS = {
    "depth_anything_metric": "metric_depth",
    "depth_anything_relative": "relative_inverse_depth",
    "prompt_depth_anything": "relative_inverse_depth",
    "dpt": "relative_inverse_depth",
    "glpn": "metric_depth",
    "zoedepth": "metric_depth",
    "depth_pro": "canonical_inverse_depth",
}


def test_each_family_has_the_card_its_folder_states(hf_folders):
    for name, folder in hf_folders.items():
        card = card_from_folder(folder)
        assert card.output == OUTPUTS[name], name
        assert card.relative == (OUTPUTS[name] == "relative_inverse_depth")
    da = card_from_folder(hf_folders["depth_anything_metric"])
    assert (da.input.keep_aspect, da.input.multiple, da.input.interpolation, da.input.fixed) == (
        True,
        14,
        "bicubic",
        False,
    )
    assert da.max_depth == 20
    zoe = card_from_folder(hf_folders["zoedepth"])
    assert (zoe.input.pad, zoe.input.align_corners, zoe.input.multiple) == ("reflect_sqrt", True, 32)
    assert card_from_folder(hf_folders["glpn"]).normalization == {}  # GLPN is fed [0, 1] as is
    assert card_from_folder(hf_folders["dpt"]).input.fixed  # a plain 384x384 resize
    assert card_from_folder(hf_folders["depth_pro"]).focal_rule == "inverse_focal"


# processors that rescale otherwise than by 1/255: mean and std given in other units
UNITS = {
    "grey levels": {"do_rescale": False, "image_mean": [123.675, 116.28, 103.53], "image_std": [58.395, 57.12, 57.375]},
    "[-1, 1]": {"rescale_factor": 1 / 127.5, "image_mean": [1.0, 1.0, 1.0], "image_std": [1.0, 1.0, 1.0]},
}


@pytest.mark.parametrize(
    ("name", "units"),
    [(n, None) for n in ("depth_anything_metric", "dpt", "glpn", "zoedepth", "depth_pro")]
    + [("depth_anything_metric", u) for u in UNITS],
)
def test_network_input_is_what_the_folders_own_image_processor_makes(hf_folders, hf_camera, name, units, tmp_path):
    """Same size, padding and normalisation as transformers' processor; values within 1-2 grey
    levels (we resample the uint8 frame, transformers the float one)."""
    import json

    from transformers import AutoImageProcessor

    image, folder = smooth_image(), hf_folders[name]
    if units is not None:
        folder = Path(shutil.copytree(folder, tmp_path / "folder"))
        settings = json.loads((folder / "preprocessor_config.json").read_text())
        (folder / "preprocessor_config.json").write_text(json.dumps({**settings, **UNITS[units]}))
    card = card_from_folder(folder)
    expected = AutoImageProcessor.from_pretrained(folder, local_files_only=True)(images=image, return_tensors="np")
    expected = expected["pixel_values"][0]
    size = (card.input.height, card.input.width) if card.input.fixed else None
    batch, _, _ = preprocess(image, hf_camera, size, "stretch", card.input)
    norm = card.normalization or {"mean": [0.0] * 3, "std": [1.0] * 3}
    ours = (batch[0] - np.reshape(norm["mean"], (3, 1, 1))) / np.reshape(norm["std"], (3, 1, 1))
    assert ours.shape == expected.shape
    grey = 1 / 255 / min(norm["std"])  # one grey level in normalised units
    assert np.abs(ours - expected).mean() < 1.5 * grey
    assert np.abs(ours - expected).max() < 10 * grey


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_every_family_runs_through_the_estimator_with_the_camera_it_describes(hf_folders, hf_camera, name):
    card = card_from_folder(hf_folders[name])
    anchor = {"scale_source": "fixed", "fixed_scale": 0.5} if card.relative else {}
    estimator = DepthEstimator(str(hf_folders[name]), **anchor)
    result = estimator(smooth_image(), hf_camera)
    assert result.depth.shape == (96, 128)
    assert result.depth.dtype == np.float32
    assert result.camera == hf_camera
    assert np.isfinite(result.depth).all()
    assert (result.depth > 0).all()
    net = DepthEstimator(str(hf_folders[name]), **anchor, output_resolution="network")
    geometry = net.geometry(hf_camera)
    result = net(smooth_image(), hf_camera)
    assert result.depth.shape == geometry.size
    assert result.camera.isclose(geometry.camera)


def test_a_relative_model_is_refused_without_a_metric_scale(hf_folders):
    with pytest.raises(ValueError, match=r"relative model.*scale_source"):
        DepthEstimator(str(hf_folders["depth_anything_relative"]))


def test_a_missing_hub_id_says_how_to_bring_the_folder_and_downloads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        resolve("depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf")
    with pytest.raises(ValueError, match=r"without config\.json"):
        resolve(tmp_path)


def test_a_hub_id_in_the_local_cache_loads_offline(hf_folders, tmp_path, monkeypatch):
    """The Hub cache layout (models--owner--name/snapshots/<rev>/) found without any network."""
    import shutil

    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--tiny-depth" / "snapshots" / ("0" * 40)
    shutil.copytree(hf_folders["glpn"], snapshot)
    (cache / "models--acme--tiny-depth" / "refs").mkdir()
    (cache / "models--acme--tiny-depth" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    assert resolve("acme/tiny-depth") == snapshot


class Ramp(Backend):
    """Any input size; depth = 1 + 9·red, so the geometry of padding and resizing shows exactly."""

    name = "ramp"

    def __init__(self, rule: InputRule):
        card = ModelCard("metric_depth", rule, 0.5, 20.0)
        super().__init__(
            ModelInfo("ramp", rule.height, rule.width, 0.5, 20.0, False, card=card.to_dict(), dynamic=True)
        )

    def __call__(self, batch):
        return {"depth": 1 + 9 * batch[:, :1]}


@pytest.mark.parametrize(
    "rule",
    [
        InputRule(
            384,
            512,
            fixed=False,
            keep_aspect=True,
            multiple=32,
            interpolation="bilinear",
            pad="reflect_sqrt",
            align_corners=True,
        ),
        InputRule(518, 518, fixed=False, keep_aspect=True, multiple=14, interpolation="bicubic"),
        InputRule(480, 640, fixed=False, multiple=32, box=False),
    ],
)
def test_padding_and_size_rules_come_back_aligned_with_the_camera_image(rule):
    camera = CameraModel.from_intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)
    u = np.arange(640)[None, :]
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = (u * 255 / 639).astype(np.uint8)
    result = DepthEstimator(Ramp(rule))(image, camera)
    expected = 1 + 9 * (image[..., 0] / 255)
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(result.depth - expected)[inner].max() < 0.1


def test_a_frame_larger_than_the_rules_pixel_bound_runs_scaled_down_with_the_camera_following(hf_folders):
    """GLPN runs at the frame's own size: a 12 MP frame runs at most at its 1 MP bound (not tens of
    GB of attention), keeping the aspect and the multiple of 32, and the metres come back at the
    camera's size and right: the ramp's depth is where the ramp is."""
    rule = card_from_folder(hf_folders["glpn"]).input
    assert rule.max_pixels == 1 << 20
    assert rule.network_size(3000, 4000) == (864, 1152)  # 3000·s, 4000·s with s = sqrt(2²⁰ / 12e6), floored to 32
    assert rule.network_size(480, 640) == (480, 640)  # within the bound: the frame's own size, as transformers
    camera = CameraModel.from_intrinsics(3000.0, 3000.0, 1999.5, 1499.5, 4000, 3000)
    wide = InputRule(480, 640, fixed=False, multiple=32, box=False, max_pixels=1 << 16)  # the same at test scale
    assert DepthEstimator(Ramp(wide)).geometry(camera).size == (192, 288)
    image = np.zeros((3000, 4000, 3), np.uint8)
    image[..., 0] = (np.arange(4000)[None, :] * 255 / 3999).astype(np.uint8)
    result = DepthEstimator(Ramp(wide))(image, camera)
    assert result.depth.shape == (3000, 4000)
    assert np.abs(result.depth - (1 + 9 * (image[..., 0] / 255)))[100:-100, 100:-100].max() < 0.1


def test_a_card_asking_for_more_than_the_network_bound_is_refused():
    with pytest.raises(ValueError, match=r"4096x4096 .* is more than the 4194304 pixels a network input may have"):
        InputRule(4096, 4096)
    with pytest.raises(ValueError, match="max_pixels 8388608"):
        InputRule(480, 640, fixed=False, box=False, max_pixels=1 << 23)


def test_canonical_inverse_depth_becomes_metres_with_the_cameras_focal_length():
    """Depth Pro: Z = f / (W · c), f the focal length at the network input of width W."""
    card = ModelCard("canonical_inverse_depth", InputRule(64, 64), 0.01, 1000.0, focal_rule="inverse_focal")
    for f in (50.0, 120.0):
        net_camera = CameraModel.from_intrinsics(f, f, 31.5, 31.5, 64, 64)
        c = np.full((64, 64), 0.25, np.float32)
        to_metres(c, card, net_camera, focal_correction=True)
        np.testing.assert_allclose(c, f / (64 * 0.25), rtol=1e-6)


def test_focal_correction_rescales_by_the_ratio_of_focal_lengths():
    card = ModelCard("metric_depth", InputRule(64, 64), 0.5, 10.0, focal_rule="ratio", focal_length=80.0)
    net_camera = CameraModel.from_intrinsics(120.0, 120.0, 31.5, 31.5, 64, 64)
    depth = np.full((64, 64), 2.0, np.float32)
    to_metres(depth, card, net_camera, focal_correction=False)
    assert (depth == 2.0).all()
    to_metres(depth, card, net_camera, focal_correction=True)
    np.testing.assert_allclose(depth, 2.0 * 120 / 80, rtol=1e-6)


def test_focal_correction_makes_a_camera_dependent_model_right_on_another_camera(tmp_path):
    """The shipped ACAN, trained on generated rooms seen through a 62° lens, under-estimates depth
    through a 40° lens and over-estimates it through an 80° one (about by the ratio of focal
    lengths: measured median pred/true 0.61-0.69 and 1.24-1.48 on three rooms). Its card with the
    training focal length puts both within 15 % of the truth."""
    from depth_estimation_ros.core.models import load_checkpoint, load_model, save_checkpoint
    from depth_estimation_ros.core.scenes import DEFAULT_FOV_DEG, render_scene

    shipped = "depth_estimation_ros/data/demo_acan.pt"
    height, width = load_checkpoint(shipped)["input_size"]
    trained_f = (width / 2) / math.tan(math.radians(DEFAULT_FOV_DEG["indoor"]) / 2)  # px at the input
    checkpoint = save_checkpoint(load_model(shipped), tmp_path / "acan.pt", input_size=(height, width),
                                 focal_length=trained_f)  # fmt: skip
    corrected = DepthEstimator(str(checkpoint), dtype="float32")
    plain = DepthEstimator(str(checkpoint), dtype="float32", focal_correction=False)
    assert corrected.card.focal_rule == "ratio"
    assert corrected.focal_correction
    for fov in (40.0, 80.0):
        ratios = {"corrected": [], "plain": []}
        for seed in (100, 101, 102):
            scene = render_scene(seed, 240, 320, fov_deg=fov)
            K, valid = scene["K"], scene["valid"]
            camera = CameraModel.from_intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], 320, 240)
            for label, estimator in (("corrected", corrected), ("plain", plain)):
                depth = estimator(scene["image"], camera).depth
                ratios[label].append(np.median(depth[valid] / scene["depth"][valid]))
        corrected_error = np.abs(np.log(ratios["corrected"])).max()
        assert corrected_error < math.log(1.15), (fov, ratios)
        assert np.abs(np.log(ratios["plain"])).min() > 1.5 * corrected_error, (fov, ratios)


def test_models_command_says_what_a_folder_or_file_is(hf_folders, capsys):
    from depth_estimation_ros.commands import main

    shipped = "depth_estimation_ros/data/demo_acan.pt"
    assert main(["models", str(hf_folders["depth_pro"]), shipped]) == 0
    out = capsys.readouterr().out
    assert "transformers, depth_pro: canonical_inverse_depth" in out
    assert "focal rule Z = f/(W·c)" in out
    assert "checkpoint, acan: metric_depth" in out
    assert main(["models", "--json", str(hf_folders["dpt"])]) == 0
    (row,) = __import__("json").loads(capsys.readouterr().out)
    assert row["card"]["output"] == "relative_inverse_depth"
    assert main(["models", "nobody/no-such-model"]) == 1
    assert "save_pretrained" in capsys.readouterr().err


def test_an_old_checkpoint_without_a_focal_length_is_used_as_is_and_says_so_once(caplog, monkeypatch):
    from depth_estimation_ros.core.models import checkpoint, load_model

    monkeypatch.setattr(checkpoint, "_WITHOUT_FOCAL", set())  # as in a fresh process
    shipped = "depth_estimation_ros/data/demo_acan.pt"
    model = load_model(shipped)
    load_model(shipped)
    assert model.focal_length is None
    assert model.card((72, 96)).focal_rule == "none"
    assert caplog.text.count("records no training focal length") == 1


@pytest.mark.parametrize(
    ("readme", "licence"),
    [
        ("---\nlibrary_name: transformers\nlicense: apache-2.0\n---\n# Model\n", "apache-2.0"),
        ("---\nlicence: 'cc-by-nc-4.0'\n---\n", "cc-by-nc-4.0"),
        ("# Model\n---\nlicense: mit\n---\n", ""),  # not a header: the file does not open with it
        ("---\ntags: [depth]\n---\nlicense: mit\n", ""),  # in the body, not the header
        ("---\n" + "\n" * 1_000_000, ""),  # opened and never closed: one bounded pass, not quadratic time
    ],
    ids=["header", "quoted", "no-header", "body", "unclosed"],
)
def test_the_licence_comes_from_the_model_cards_header_in_one_bounded_pass(hf_folders, tmp_path, readme, licence):
    folder = tmp_path / "model"
    shutil.copytree(hf_folders["dpt"], folder)
    (folder / "README.md").write_text(readme)
    assert card_from_folder(folder).licence == licence
