"""The procedural RGB-D renderer, its dataset and the ``synth`` command."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from depth_estimation_ros.core import scenes as synthetic
from depth_estimation_ros.core.scenes import (
    DEPTH_RANGE,
    FLOOR,
    KINDS,
    NONE,
    OBJECT,
    WALL,
    intrinsics,
    render_scene,
)
from training.datasets.synthetic import SyntheticDataset
from training.synth_cli import main as synth_main

SMALL = {"height": 96, "width": 128}


def back_project(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(H, W, 3) camera-frame points of every pixel (pixel-centre convention)."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    z = depth.astype(np.float64)
    return np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], -1)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_identical_frames_and_different_seeds_differ(kind):
    a, b, c = (
        render_scene(5, kind=kind, **SMALL),
        render_scene(5, kind=kind, **SMALL),
        render_scene(6, kind=kind, **SMALL),
    )
    for key in ("image", "depth", "valid", "K"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["name"] == b["name"] != c["name"]
    assert not np.array_equal(a["depth"], c["depth"])
    assert not np.array_equal(a["image"], c["image"])


@pytest.mark.parametrize("kind", KINDS)
def test_sample_shapes_dtypes_and_intrinsics(kind):
    s = render_scene(0, height=64, width=96, kind=kind, fov_deg=70.0)
    assert s["image"].shape == (64, 96, 3)
    assert s["image"].dtype == np.uint8
    assert s["depth"].shape == (64, 96)
    assert s["depth"].dtype == np.float32
    assert s["valid"].shape == (64, 96)
    assert s["valid"].dtype == bool
    assert s["K"].shape == (3, 3)
    assert s["K"].dtype == np.float64
    np.testing.assert_allclose(s["K"], intrinsics(64, 96, 70.0))
    # the horizontal field of view spans the image edges (−0.5 and W − 0.5 in pixel-centre coordinates)
    half = np.degrees(np.arctan((96 - 0.5 - s["K"][0, 2]) / s["K"][0, 0]))
    assert half == pytest.approx(35.0)
    assert isinstance(s["name"], str)
    assert s["meta"]["kind"] == kind


@pytest.mark.parametrize("kind", KINDS)
def test_depth_lies_in_the_documented_range_and_is_zero_exactly_where_invalid(kind):
    low, high = DEPTH_RANGE[kind]
    for seed in range(8):
        s = render_scene(seed, kind=kind)
        depth, valid = s["depth"], s["valid"]
        assert np.all(np.isfinite(depth))
        np.testing.assert_array_equal(valid, depth > 0)
        assert low <= depth[valid].min()
        assert depth[valid].max() <= high


def test_street_sky_is_invalid_and_indoor_rooms_are_closed():
    for seed in range(4):
        street = render_scene(seed, kind="street", layers=True, **SMALL)
        sky = street["layers"]["surface"] == NONE
        assert sky.any()
        assert not street["valid"][sky].any()
        assert (~street["valid"][:5]).any()  # sky is at the top of the frame
        assert street["valid"].mean() > 0.5
        room = render_scene(seed, kind="indoor", **SMALL)
        assert room["valid"].all()


@pytest.mark.parametrize("kind", KINDS)
def test_back_projected_floor_pixels_lie_on_the_floor_plane(kind):
    for seed in range(3):
        s = render_scene(seed, kind=kind, layers=True)
        floor = (s["layers"]["surface"] == FLOOR) & s["valid"]
        assert floor.sum() > 1000
        points = back_project(s["depth"], s["K"])[floor]
        a, b, c, d = s["meta"]["floor_plane"]
        assert np.hypot(np.hypot(a, b), c) == pytest.approx(1.0)
        residual = points @ np.array([a, b, c]) + d
        assert np.abs(residual).max() < 1e-5 * np.abs(points).max() + 1e-5
        # independently of meta's normal: a least-squares plane through the points sits at the camera height
        centred = points - points.mean(0)
        normal = np.linalg.svd(centred, full_matrices=False)[2][-1]
        assert abs(points.mean(0) @ normal) == pytest.approx(s["meta"]["camera_height"], rel=1e-5)
        assert np.abs(centred @ normal).max() < 1e-4


def test_screen_space_culling_changes_no_pixel(monkeypatch):
    """Boxes are only intersected inside their projected bounds; intersecting everywhere gives the same frame."""
    culled = {kind: render_scene(2, kind=kind, **SMALL) for kind in KINDS}
    monkeypatch.setattr(synthetic._Box, "screen_rect", lambda self, *args: (slice(None), slice(None)))
    for kind in KINDS:
        everywhere = render_scene(2, kind=kind, **SMALL)
        np.testing.assert_array_equal(everywhere["depth"], culled[kind]["depth"])
        np.testing.assert_array_equal(everywhere["image"], culled[kind]["image"])


@pytest.mark.parametrize("kind", KINDS)
def test_floor_depth_grows_towards_the_horizon_along_the_centre_column(kind):
    checked = 0
    for seed in range(6):
        s = render_scene(seed, kind=kind, layers=True, **SMALL)
        column = SMALL["width"] // 2
        rows = np.flatnonzero((s["layers"]["surface"][:, column] == FLOOR) & s["valid"][:, column])
        if len(rows) < 10:
            continue
        depth_upwards = s["depth"][rows[::-1], column]
        assert np.all(np.diff(depth_upwards) > 0)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("kind", KINDS)
def test_depth_discontinuities_show_as_image_edges(kind):
    """Occlusion cue: the image changes much more across depth edges than within surfaces."""
    for seed in range(4):
        s = render_scene(seed, kind=kind, **SMALL)
        grey = s["image"].astype(np.float64).mean(2)
        log_depth = np.log(np.where(s["valid"], s["depth"], 1.0))
        both = s["valid"][:, 1:] & s["valid"][:, :-1]
        jump = np.abs(np.diff(log_depth, axis=1))
        gradient = np.abs(np.diff(grey, axis=1))
        edges, smooth = both & (jump > 0.1), both & (jump < 0.02)
        assert edges.sum() > 20
        assert gradient[edges].mean() > 3 * gradient[smooth].mean()


def test_shading_and_texture_cues():
    for seed in range(4):
        s = render_scene(seed, kind="indoor", layers=True, **SMALL)
        surface, shading = s["layers"]["surface"], s["layers"]["shading"]
        assert s["image"].std() > 10
        # Lambertian shading depends on the surface orientation: floor and walls are lit differently
        assert abs(shading[surface == FLOOR].mean() - shading[surface == WALL].mean()) > 0.03
        # and varies within one plane (a point light falls off with distance)
        assert shading[surface == FLOOR].std() > 0.01
        # the image is albedo × shading (plus exposure, gamma and noise): same ordering of brightness
        albedo = s["layers"]["albedo"].mean(2)
        predicted = albedo * shading
        grey = s["image"].astype(np.float64).mean(2)
        assert np.corrcoef(predicted.ravel(), grey.ravel())[0, 1] > 0.8
    street = render_scene(1, kind="street", layers=True, **SMALL)
    assert (street["layers"]["surface"] == OBJECT).any() or (street["layers"]["surface"] == WALL).any()


def test_dataset_items_are_deterministic_and_splits_are_disjoint():
    train = SyntheticDataset(3, kind="indoor", seed=0, **SMALL)
    val = SyntheticDataset(2, kind="indoor", seed=3, **SMALL)
    assert len(train) == 3
    assert len(val) == 2
    names = [train[i]["name"] for i in range(3)] + [val[i]["name"] for i in range(2)]
    assert len(set(names)) == 5
    np.testing.assert_array_equal(train[1]["depth"], render_scene(1, kind="indoor", **SMALL)["depth"])
    np.testing.assert_array_equal(val[0]["image"], render_scene(3, kind="indoor", **SMALL)["image"])
    np.testing.assert_array_equal(train[-1]["depth"], train[2]["depth"])
    with pytest.raises(IndexError):
        train[3]
    with_transform = SyntheticDataset(1, kind="street", seed=7, transform=lambda s: s["name"], **SMALL)
    assert with_transform[0] == render_scene(7, kind="street", **SMALL)["name"]
    with pytest.raises(ValueError, match="kind"):
        SyntheticDataset(1, kind="forest")


def read_frames(out):
    cameras = json.loads((out / "cameras.json").read_text())
    frames = []
    for frame in cameras["frames"]:
        rgb = cv2.cvtColor(cv2.imread(str(out / frame["rgb"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        raw = cv2.imread(str(out / frame["depth"]), cv2.IMREAD_UNCHANGED)
        frames.append((frame, rgb, raw))
    return cameras, frames


@pytest.mark.parametrize(("kind", "encoding", "step"), [("indoor", "mm", 1e-3), ("street", "m256", 1 / 256)])
def test_synth_command_writes_frames_whose_depth_png_round_trips(tmp_path, capsys, kind, encoding, step):
    out = tmp_path / kind
    assert synth_main([str(out), "-n", "2", "--kind", kind, "--seed", "10", "--height", "64", "--width", "96"]) == 0
    assert "wrote 2" in capsys.readouterr().out
    cameras, frames = read_frames(out)
    assert cameras["depth_encoding"] == encoding
    assert cameras["depth_scale"] == pytest.approx(step)
    for i, (frame, rgb, raw) in enumerate(frames):
        s = render_scene(10 + i, 64, 96, kind)
        assert frame["name"] == s["name"]
        assert frame["seed"] == 10 + i
        np.testing.assert_array_equal(rgb, s["image"])
        np.testing.assert_allclose(np.array(frame["K"]), s["K"])
        assert raw.dtype == np.uint16
        assert raw.shape == (64, 96)
        np.testing.assert_array_equal(raw > 0, s["valid"])
        error = np.abs(raw * cameras["depth_scale"] - s["depth"])[s["valid"]]
        assert error.max() <= step / 2 + 1e-6
    if kind == "indoor":
        assert error.max() <= 1e-3  # millimetres: within 1 mm


def test_synth_command_is_deterministic_and_refuses_millimetres_for_streets(tmp_path, capsys):
    args = ["-n", "1", "--kind", "indoor", "--seed", "4", "--height", "32", "--width", "48"]
    assert synth_main([str(tmp_path / "a"), *args]) == 0
    assert synth_main([str(tmp_path / "b"), *args]) == 0
    for sub in ("rgb", "depth"):
        name = f"{sub}/indoor_0000004.png"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert synth_main([str(tmp_path / "c"), "-n", "1", "--kind", "street", "--depth-encoding", "mm"]) == 1
    assert "m256" in capsys.readouterr().err
