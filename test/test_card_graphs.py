"""Graphs exported elsewhere run through the one road with a model card (built-in cards, card
files), each family's metric rule reproduced on hand-computed numbers. The graphs are stand-ins
with the exact export signatures (test/foreign_graphs.py)."""

import numpy as np
import pytest
from foreign_graphs import export

from depth_estimation_ros.commands import main
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.card_files import builtin_cards, load_card
from depth_estimation_ros.core.estimator import DepthEstimator


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    return {name: export(name, root / f"{name}.onnx") for name in builtin_cards()}


def camera(f: float) -> CameraModel:
    return CameraModel.from_intrinsics(f, f, 319.5, 239.5, 640, 480, frame_id="cam")


def frame(red: int = 255, green_top: int = 255, green_bottom: int = 0) -> np.ndarray:
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = red
    image[:240, :, 1], image[240:, :, 1] = green_top, green_bottom
    return image


def test_every_built_in_card_opens_its_graph_and_says_what_it_is(graphs):
    for name, path in graphs.items():
        estimator = DepthEstimator(path, card=name)
        assert estimator.card.family == name
        assert estimator.backend.name in ("onnxruntime", "openvino")  # backend auto: the faster that agrees


@pytest.mark.parametrize("f", [500.0, 800.0])
def test_depth_anything_3_metric_is_mean_focal_times_output_over_300_and_sky_is_never_depth(graphs, f):
    """DA3: Z = (fx' + fy')/2 · out / 300 at the 280x504 input the frame is stretched to: fx' = f·504/640,
    fy' = f·280/480. out = 1 + 4·red = 5; the top half is sky (score 2·(green − 0.5) = 1 ≥ 0.3)."""
    result = DepthEstimator(graphs["depth_anything_3_metric"], card="depth_anything_3_metric")(frame(), camera(f))
    expected = (f * 504 / 640 + f * 280 / 480) / 2 * 5 / 300  # 5.71181 m at f = 500
    assert np.allclose(result.depth[300:], expected, rtol=1e-4)
    assert np.isnan(result.depth[:200]).all()


@pytest.mark.parametrize(("red", "f"), [(255, 500.0), (128, 500.0), (255, 800.0)])
def test_metric3d_is_canonical_depth_times_fx_over_1000_after_its_letterbox(graphs, red, f):
    """Metric3D: one scale 616/480 fits 640x480 into 616x1064 (821x616, centred, the rest its mean
    colour); fx' = f·821/640; Z = 10·red/255 · fx' / 1000 (6.414 m for red 255 at f = 500)."""
    estimator = DepthEstimator(graphs["metric3d_v2_vit"], card="metric3d_v2_vit")
    result = estimator(frame(red), camera(f))
    expected = 10 * red / 255 * (f * 821 / 640) / 1000
    assert np.allclose(result.depth, expected, rtol=1e-4)  # the mean-colour border never reaches the frame
    geometry = estimator.geometry(camera(f))
    assert (geometry.box.inner_width, geometry.box.inner_height, geometry.box.pad_x) == (821, 616, 121)


def test_unidepth_takes_the_cameras_rays_and_its_depth_is_the_z_of_its_points(graphs):
    """UniDepth V2: rays K⁻¹(u + 0.5, v + 0.5, 1), normalised, of the camera at 462x616; the points are
    rays · radius (radius 2 + red = 3), so the depth is 3 · ray_z; the confidence is 1 / (1 + u) of its
    uncertainty u = 3·(1 − green): 1 on top, 0.25 below."""
    estimator = DepthEstimator(graphs["unidepth_v2"], card="unidepth_v2", output_resolution="network")
    result = estimator(frame(), camera(500.0))
    K = result.camera.K
    for v, u in ((0, 0), (231, 308), (461, 615)):
        ray = np.linalg.inv(K) @ np.array([u + 0.5, v + 0.5, 1.0])
        assert result.depth[v, u] == pytest.approx(3 * ray[2] / np.linalg.norm(ray), rel=1e-4)
    assert np.allclose(result.confidence[:200], 1.0)
    assert np.allclose(result.confidence[262:], 0.25)


def test_a_card_that_does_not_fit_the_graph_is_one_error_naming_the_tensors(graphs):
    with pytest.raises(ValueError, match=r"does not match its model card \(DA3METRIC-LARGE ONNX.*no output \['depth', "
                                         r"'sky'\]"):  # fmt: skip
        DepthEstimator(graphs["metric3d_v2_vit"], card="depth_anything_3_metric")
    with pytest.raises(ValueError, match=r"its inputs are \['rgbs'\], the card names \['rgbs', 'rays'\]"):
        DepthEstimator(graphs["unidepth_v2_no_camera"], card="unidepth_v2")


def test_a_card_file_without_a_source_is_named_by_its_path(graphs, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("output: metric_depth\nmin_depth: 0.1\nmax_depth: 10.0\ninput: {height: 280, width: 504}\n"
                    "graph: {image: image, depth: nope}\n")  # fmt: skip
    with pytest.raises(ValueError, match=rf"does not match its model card \({path}\): no output \['nope'\]"):
        DepthEstimator(graphs["depth_anything_3_metric"], card=str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("output: metric_depth\nmin_depth: 0.1\nmax_depth: 10.0\ninput: {height: 8, width: 8}\n",
         "no graph section"),
        ("output: metric_depth\nmin_depth: 0.1\nmax_depth: 10.0\ninput: {height: 8, width: 8}\n"
         "graph: {image: x, deepth: y}\n", "unexpected keyword argument 'deepth'"),
        ("output: metric_depth\nmin_depth: 0.1\nmax_depth: 10.0\ninput: {height: 8, width: 8}\n"
         "graph: {image: x, sky: s, sky_kind: probability}\n", "graph.sky_kind='probability' must be one of"),
        ("output: metres\nmin_depth: 0.1\nmax_depth: 10.0\ninput: {height: 8, width: 8}\ngraph: {image: x}\n",
         "output='metres' must be one of"),
    ],
)  # fmt: skip
def test_a_bad_card_file_names_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "card.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        load_card(str(path))
    assert str(path) in str(error.value)


def test_predict_runs_a_card_described_graph_and_writes_no_metres_for_the_sky(graphs, tmp_path, capsys):
    import cv2

    source = tmp_path / "in"
    source.mkdir()
    cv2.imwrite(str(source / "a.png"), frame()[..., ::-1])
    out = tmp_path / "out"
    argv = [
        "predict",
        "--model",
        graphs["depth_anything_3_metric"],
        "--card",
        "depth_anything_3_metric",
        "--input",
        source,
        "--output",
        out,
        "--fx",
        "500",
        "--fy",
        "500",
        "--cx",
        "319.5",
        "--cy",
        "239.5",
    ]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    depth = np.load(out / "a_depth.npy")
    assert np.isnan(depth[:200]).all()
    assert np.allclose(depth[300:], (500 * 504 / 640 + 500 * 280 / 480) / 2 * 5 / 300, rtol=1e-4)


def test_moge_2_points_become_metres_with_the_shift_the_camera_implies_and_its_scale(graphs):
    """MoGe-2: points of depth D = 2 + 2·red divided by 2.5, z less 0.8, for a camera of f = 400 px at
    291x518; with that camera the shift solves to 0.8 and Z = 2.5·(z + 0.8) = D (4 m for red 255);
    outside the mask (green ≤ 0.5) nothing."""
    image = np.zeros((291, 518, 3), np.uint8)
    image[..., 0] = 255
    image[150:, :, 1] = 255  # valid below
    cam = CameraModel.from_intrinsics(400.0, 400.0, 258.5, 145.0, 518, 291, frame_id="cam")
    result = DepthEstimator(graphs["moge_2"], card="moge_2")(image, cam)
    assert np.allclose(result.depth[160:], 4.0, rtol=1e-4)
    assert np.isnan(result.depth[:140]).all()


@pytest.mark.parametrize("sky_depth", [0.0, 150.0])
def test_sky_is_never_a_point_and_gets_sky_depth_in_the_depth_image_only_when_asked(graphs, sky_depth):
    from rosbags.typesys import Stores, get_typestore

    from depth_estimation_ros.ros.messages import MessageTypes, camera_info_msg, header, image_msg
    from depth_estimation_ros.ros.pipeline import DepthPipeline

    types = MessageTypes.from_typestore(get_typestore(Stores.ROS2_JAZZY))
    estimator = DepthEstimator(graphs["depth_anything_3_metric"], card="depth_anything_3_metric")
    pipeline = DepthPipeline(estimator, types, points_decimation=1, points_rgb=False, sky_depth=sky_depth)
    h = header(1, 0, "cam", types)
    output = pipeline.process(image_msg(frame(), "rgb8", h, types), camera_info_msg(camera(500.0), h, types))
    depth = np.frombuffer(bytes(output.messages["depth/image"].data), np.float32).reshape(480, 640)
    cloud = np.frombuffer(bytes(output.messages["depth/points"].data), np.float32).reshape(480, 640, 4)
    assert np.isnan(cloud[:200, :, 2]).all()  # sky: no point, whatever sky_depth says
    assert np.isfinite(cloud[300:, :, 2]).all()
    assert np.isnan(depth[:200]).all() if not sky_depth else (depth[:200] == sky_depth).all()


@pytest.mark.parametrize("name", sorted(builtin_cards()))
def test_the_bag_tool_runs_every_built_in_card_with_the_recorded_cameras_intrinsics(graphs, name, tmp_path, capsys):
    """What the bag tool writes per frame is what the estimator computes from the recorded image and
    CameraInfo with the card; a confidence topic exactly where the family has one."""
    from ros_graph import read_bag, stamp

    from depth_estimation_ros.ros.messages import camera_from_info, image_to_rgb
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    source = tmp_path / "in"
    write_synthetic_bag(source, frames=2, height=120, width=160, seed=4)
    out = tmp_path / "out"
    argv = ["bag", "--model", graphs[name], "--card", name, "--input", source, "--output", out, "--no-progress"]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    inputs, topics = read_bag(source), read_bag(out)
    images = {stamp(m): m for m in inputs["/camera/image_raw"]}
    infos = {stamp(m): m for m in inputs["/camera/camera_info"]}
    estimator = DepthEstimator(graphs[name], card=name)
    assert len(topics["/camera/depth/image"]) == 2
    confidence = {stamp(m): m for m in topics.get("/camera/depth/confidence", [])}
    assert bool(confidence) == estimator.card.has_confidence
    for msg in topics["/camera/depth/image"]:
        expected = estimator(image_to_rgb(images[stamp(msg)]), camera_from_info(infos[stamp(msg)]))
        z = np.frombuffer(bytes(msg.data), np.float32).reshape(120, 160)
        np.testing.assert_allclose(z, expected.depth, rtol=1e-4, equal_nan=True)
        if confidence:
            trust = np.frombuffer(bytes(confidence[stamp(msg)].data), np.float32).reshape(120, 160)
            np.testing.assert_allclose(trust, expected.confidence, rtol=1e-4, atol=1e-6)
            assert ((trust >= 0.25 - 1e-6) & (trust <= 1)).all()  # UniDepth: 1/(1 + u), u = 3·(1 − green) ≤ 3


@pytest.mark.parametrize("name", sorted(builtin_cards()))
def test_predict_runs_every_built_in_card_with_the_cameras_intrinsics(graphs, name, tmp_path, capsys):
    import cv2

    source = tmp_path / "in"
    source.mkdir()
    cv2.imwrite(str(source / "a.png"), frame(green_top=128, green_bottom=128)[..., ::-1])  # no sky; MoGe: valid
    argv = ["predict", "--model", graphs[name], "--card", name, "--input", source, "--output", tmp_path / "out",
            "--fx", "500", "--fy", "500", "--cx", "319.5", "--cy", "239.5"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    depth = np.load(tmp_path / "out" / "a_depth.npy")
    assert depth.shape == (480, 640)
    assert (depth[np.isfinite(depth)] > 0).all()
    assert np.isfinite(depth[300:]).mean() > 0.9


@pytest.fixture(scope="module")
def real_da3(tmp_path_factory):
    """Depth Anything 3's own network (tiny configuration, random weights), exported with the ika
    signature in a process that has the ``depth-anything-3`` package (test/depth_anything_3_tiny.py),
    with its own outputs for a street frame normalised as the card says."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from depth_estimation_ros.core.scenes import render_scene

    package = os.environ.get("DEPTH_ANYTHING_3_PATH", "")
    if not (Path(package) / ".ready").is_file():
        pytest.skip("depth-anything-3 is not installed apart (make test installs it; DEPTH_ANYTHING_3_PATH)")
    root = tmp_path_factory.mktemp("da3")
    image = render_scene(3, 280, 504, "street")["image"]
    norm = load_card("depth_anything_3_metric").normalization
    mean, std = np.asarray(norm["mean"]), np.asarray(norm["std"])
    normalised = ((image / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    np.save(root / "input.npy", normalised)
    script = Path(__file__).with_name("depth_anything_3_tiny.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package, str(Path(__file__).parents[1])])}
    done = subprocess.run([sys.executable, str(script), str(root), str(root / "input.npy")], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "da3.onnx", image, dict(np.load(root / "torch.npz"))


@pytest.mark.parametrize("f", [250.0, 400.0])
def test_depth_anything_3s_own_network_gives_mean_focal_times_output_over_300_metres(real_da3, f):
    """The real DA3 network at its export's input: what the estimator publishes is the network's own
    depth (run in PyTorch) × (fx + fy)/2 / 300, and its sky (ReLU score ≥ 0.3) is NaN, never depth."""
    path, image, own = real_da3
    cam = CameraModel.from_intrinsics(f, 1.1 * f, 251.5, 139.5, 504, 280, frame_id="cam")
    result = DepthEstimator(path, card="depth_anything_3_metric")(image, cam)
    score = own["sky"][0, 0]
    sky = score >= 0.3
    assert 0.2 < sky.mean() < 0.8  # half the frame is sky: both rules are checked
    expected = np.where(sky, np.nan, own["depth"][0, 0] * (f + 1.1 * f) / 2 / 300)
    clear = np.abs(score - 0.3) > 1e-4  # ONNX Runtime's and PyTorch's last bits may fall either side of it
    assert clear.mean() > 0.95
    np.testing.assert_allclose(result.depth[clear], expected[clear], rtol=1e-3, equal_nan=True)
