import cv2
import numpy as np
import pytest
import yaml
from test_pointcloud import read_ply

from depth_estimation_ros.commands import main
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.edges import EdgeFilter


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(folder / f"frame_{i}.png"), rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    return folder


@pytest.fixture
def camera_yaml(tmp_path):
    path = tmp_path / "camera.yaml"
    camera = CameraModel.from_intrinsics(130.0, 130.0, 79.5, 59.5, 160, 120, frame_id="cam")
    path.write_text(yaml.safe_dump(camera.to_dict()))
    return path


def test_predict_writes_depth_png_npy_confidence_preview_and_ply(deployed, images, camera_yaml, tmp_path):
    _, onnx_path = deployed["acan"]
    out = tmp_path / "out"
    args = ["predict", "--model", str(onnx_path), "--input", str(images), "--output", str(out)]
    assert main([*args, "--camera", str(camera_yaml)]) == 0
    for i in range(2):
        depth = np.load(out / f"frame_{i}_depth.npy")
        assert depth.shape == (120, 160)
        assert depth.dtype == np.float32
        png = cv2.imread(str(out / f"frame_{i}_depth.png"), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint16
        assert png.shape == (120, 160)
        assert np.array_equal(png, np.round(depth.astype(np.float64) * 1000).astype(np.uint16))  # millimetres
        confidence = np.load(out / f"frame_{i}_confidence.npy")
        assert confidence.shape == (120, 160)
        assert 0 <= confidence.min() <= confidence.max() <= 1
        assert cv2.imread(str(out / f"frame_{i}_preview.png")).shape == (120, 320, 3)
        names, vertices = read_ply(out / f"frame_{i}.ply")
        assert names[-3:] == ["red", "green", "blue"]
        assert len(vertices) == 120 * 160
        assert np.allclose(np.sort(vertices["z"]), np.sort(depth.ravel()))


def test_predict_takes_intrinsics_on_the_command_line(deployed, images, tmp_path):
    checkpoint, _ = deployed["msfnet"]
    out = tmp_path / "out"
    args = ["predict", "--model", str(checkpoint), "--input", str(images / "frame_0.png"), "--output", str(out)]
    args += ["--fx", "130", "--fy", "130", "--cx", "79.5", "--cy", "59.5"]

    def distances():
        _, vertices = read_ply(out / "frame_0.ply")
        return np.sqrt(vertices["x"] ** 2 + vertices["y"] ** 2 + vertices["z"] ** 2)

    assert main(args) == 0
    assert not (out / "frame_0_confidence.npy").exists()  # MSFNet has no confidence
    everything = distances()
    assert len(everything) == 120 * 160
    limit = float(np.median(everything))
    assert main([*args, "--max-range", str(limit), "--overwrite"]) == 0
    kept = distances()
    assert kept.max() <= limit
    assert 0 < len(kept) < len(everything)


def test_predict_reads_video_files(deployed, tmp_path):
    _, onnx_path = deployed["acan"]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(3):
        writer.write(np.full((120, 160, 3), 40 * i, np.uint8))
    writer.release()
    out = tmp_path / "out"
    assert main(["predict", "--model", str(onnx_path), "--input", str(video), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*_depth.png")) == [f"clip_{i:06d}_depth.png" for i in range(3)]


def test_predict_refuses_a_camera_of_another_size(deployed, images, tmp_path, capsys):
    _, onnx_path = deployed["acan"]
    camera = tmp_path / "vga.yaml"
    camera.write_text(yaml.safe_dump(CameraModel.from_intrinsics(500, 500, 320, 240, 640, 480).to_dict()))
    args = ["predict", "--model", str(onnx_path), "--input", str(images), "--output", str(tmp_path / "o")]
    assert main([*args, "--camera", str(camera)]) == 1
    assert "image is 160x120 (WxH) but the camera describes 640x480" in capsys.readouterr().err
    assert main([*args, "--fx", "100"]) == 2
    assert "give all of --fx --fy --cx --cy" in capsys.readouterr().err


def test_predict_anchors_a_relative_model_to_a_folder_of_sparse_depth(tmp_path, caplog):
    """Sparse depth (16-bit mm PNG at another resolution, or float32 m .npy) beside each frame's stem
    makes a relative model's output metres; a frame before any scale is skipped, not written."""
    from conftest import relative_oracle

    from depth_estimation_ros.commands.predict import predict
    from depth_estimation_ros.core.estimator import DepthEstimator
    from depth_estimation_ros.core.scenes import render_scene
    from depth_estimation_ros.ros.synthetic_bag import sparse_samples

    frames, sparse, rng = tmp_path / "frames", tmp_path / "sparse", np.random.default_rng(0)
    frames.mkdir()
    sparse.mkdir()
    scenes = [render_scene(seed, 96, 128) for seed in (1, 2, 3)]
    decoded = []
    for i, scene in enumerate(scenes):
        cv2.imwrite(str(frames / f"f{i}.png"), cv2.cvtColor(scene["image"], cv2.COLOR_RGB2BGR))
        decoded.append((cv2.cvtColor(cv2.imread(str(frames / f"f{i}.png")), cv2.COLOR_BGR2RGB), scene["depth"]))
        points = sparse_samples(scene["depth"], 0.05, (48, 64), rng)
        if i == 1:
            cv2.imwrite(str(sparse / f"f{i}.png"), np.nan_to_num(points * 1000).round().astype(np.uint16))
        elif i == 2:
            np.save(sparse / f"f{i}.npy", points)
    camera = CameraModel.from_intrinsics(*scenes[0]["K"][[0, 1, 0, 1], [0, 1, 2, 2]], 128, 96)
    estimator = DepthEstimator(relative_oracle(decoded), scale_source="sparse_depth")
    assert predict(estimator, frames, tmp_path / "out", camera, sparse=sparse) == 2
    assert "f0 skipped: no metric scale yet" in caplog.text
    assert not (tmp_path / "out" / "f0_depth.npy").exists()
    for i in (1, 2):
        depth = np.load(tmp_path / "out" / f"f{i}_depth.npy")
        assert np.nanmean(np.abs(depth - scenes[i]["depth"]) / scenes[i]["depth"]) < 0.01


def test_predict_refuses_a_sparse_depth_file_of_the_wrong_kind(deployed, images, tmp_path, capsys):
    sparse = tmp_path / "sparse"
    sparse.mkdir()
    cv2.imwrite(str(sparse / "frame_0.png"), np.zeros((10, 10, 3), np.uint8))  # 8-bit colour, not mm
    code = main(["predict", "--model", str(deployed["acan"][0]), "--input", str(images), "--output",
                 str(tmp_path / "out"), "--scale-source", "sparse_depth", "--sparse-depth", str(sparse)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "frame_0.png must be a 16-bit single-channel PNG of millimetres" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "family",
    ["depth_anything_metric", "depth_anything_relative", "prompt_depth_anything", "dpt", "glpn", "zoedepth",
     "depth_pro"],
)  # fmt: skip
def test_predict_runs_a_transformers_folder_with_the_cameras_intrinsics(hf_folders, images, camera_yaml, tmp_path,
                                                                         family):  # fmt: skip
    from depth_estimation_ros.core.models.transformers_depth import card_from_folder

    scale = ["--scale-source", "fixed", "--fixed-scale", "0.5"] if card_from_folder(hf_folders[family]).relative else []
    out = tmp_path / "out"
    assert main(["predict", "--model", str(hf_folders[family]), "--input", str(images), "--output", str(out),
                 "--camera", str(camera_yaml), *scale]) == 0  # fmt: skip
    camera = CameraModel.from_yaml(camera_yaml)
    depth = np.load(out / "frame_0_depth.npy")
    assert depth.shape == (120, 160)
    assert np.isfinite(depth).all()
    _, vertices = read_ply(out / "frame_0.ply")  # back-projected with the camera's own intrinsics
    v, u = np.mgrid[0:120, 0:160]
    kept = np.isfinite(EdgeFilter()(depth, camera))  # the cloud has no flying pixels, as the node's
    expected = {"x": (u - camera.cx) * depth / camera.fx, "y": (v - camera.cy) * depth / camera.fy, "z": depth}
    for axis, values in expected.items():
        np.testing.assert_allclose(vertices[axis], values[kept], rtol=1e-4, atol=1e-4)


def test_predict_clouds_keep_flying_pixels_only_when_asked(hf_folders, images, camera_yaml, tmp_path):
    """A model with random weights predicts ramps everywhere: the default cloud drops them, the
    depth files keep every pixel, and --no-edge-filter keeps every point."""
    counts = {}
    for flags in ([], ["--no-edge-filter"]):
        out = tmp_path / ("kept" if flags else "filtered")
        assert main(["predict", "--model", str(hf_folders["depth_pro"]), "--input", str(images), "--output", str(out),
                     "--camera", str(camera_yaml), *flags]) == 0  # fmt: skip
        assert np.isfinite(np.load(out / "frame_0_depth.npy")).all()
        counts[bool(flags)] = len(read_ply(out / "frame_0.ply")[1])
    assert counts[True] == 120 * 160
    assert counts[False] < counts[True]


def test_a_focal_length_dependent_model_without_intrinsics_says_its_depth_is_not_metric(hf_folders, images, tmp_path,
                                                                                       caplog):  # fmt: skip
    assert main(["predict", "--model", str(hf_folders["depth_pro"]), "--input", str(images), "--output",
                 str(tmp_path / "out")]) == 0  # fmt: skip
    assert "this model's depth (canonical_inverse_depth, focal rule inverse_focal) is not metric" in caplog.text
    assert "pass --camera or --fx --fy --cx --cy" in caplog.text
