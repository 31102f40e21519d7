"""int8 static quantisation for ONNX Runtime (depth_estimation_ros/deploy/quantize.py) on a small exported ACAN."""

import cv2
import numpy as np
import onnx
import pytest

from depth_estimation_ros.commands.quantize import main
from depth_estimation_ros.core.backends import open_backend
from depth_estimation_ros.core.backends.onnxruntime_backend import read_onnx_info
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.core.files import folder_frames
from depth_estimation_ros.deploy.quantize import quantize, synthetic_frames


@pytest.fixture(scope="module")
def int8(deployed, tmp_path_factory):
    _, onnx_path = deployed["acan"]
    return quantize(
        onnx_path, tmp_path_factory.mktemp("int8") / "acan-int8.onnx", synthetic_frames("indoor", 4, 64, 96)
    )


def test_quantised_graph_keeps_the_metadata_and_has_int8_convolutions(deployed, int8):
    _, onnx_path = deployed["acan"]
    assert read_onnx_info(int8) == read_onnx_info(onnx_path)
    graph = onnx.load(str(int8)).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 10  # the encoder's and decoder's convolution weights


def test_quantised_graph_gives_depth_close_to_fp32(deployed, int8):
    _, onnx_path = deployed["acan"]
    camera = CameraModel.from_intrinsics(100, 100, 47.5, 31.5, 96, 64)
    image = next(synthetic_frames("indoor", 1, 64, 96, seed=5))
    fp32 = DepthEstimator(onnx_path, "onnxruntime")(image, camera).depth
    quantised = DepthEstimator(open_backend(int8, "onnxruntime"))(image, camera).depth
    assert np.isfinite(quantised).all()
    assert np.median(np.abs(quantised - fp32) / fp32) < 0.05


def test_calibration_frames_come_from_a_folder_of_images(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 10, 3), (10 * i, 20, 30), np.uint8))  # BGR
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(folder_frames(tmp_path, limit=2))
    assert len(frames) == 2
    assert frames[1][0, 0].tolist() == [30, 20, 10]  # read as RGB
    with pytest.raises(ValueError, match="calibration folder not found"):
        list(folder_frames(tmp_path / "missing", 2))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no calibration images"):
        list(folder_frames(tmp_path / "empty", 2))


def test_the_command_refuses_to_overwrite_and_names_the_file(deployed, int8, capsys):
    _, onnx_path = deployed["acan"]
    assert main([str(onnx_path), str(int8), "--frames", "1"]) == 1  # not a usage error: the file is there
    err = capsys.readouterr().err
    assert err.startswith(f"depth-estimation quantize: error: {int8} exists")
    assert "Traceback" not in err


def test_a_graph_exported_elsewhere_is_quantised_through_its_card(deployed, tmp_path, capsys):
    """A card file describing a graph (here an export read as if it came from elsewhere): calibration
    feeds it through the card's input rule, and the int8 graph runs with the same card."""
    _, onnx_path = deployed["acan"]
    card = tmp_path / "card.yaml"
    card.write_text("family: outside\nsource: a graph from elsewhere\noutput: metric_depth\nmin_depth: 0.1\n"
                    "max_depth: 10.0\ninput: {height: 64, width: 96, fixed: true}\n"
                    "graph: {image: image, depth: depth}\n")  # fmt: skip
    out = tmp_path / "int8.onnx"
    assert main([str(onnx_path), str(out), "--card", str(card), "--frames", "4"]) == 0, capsys.readouterr().err
    assert {"QuantizeLinear", "Conv"} <= {node.op_type for node in onnx.load(str(out)).graph.node}
    camera = CameraModel.from_intrinsics(100, 100, 47.5, 31.5, 96, 64)
    image = next(synthetic_frames("indoor", 1, 64, 96, seed=5))
    fp32 = DepthEstimator(onnx_path, "onnxruntime", card=str(card))(image, camera).depth
    quantised = DepthEstimator(out, "onnxruntime", card=str(card))(image, camera).depth
    assert np.median(np.abs(quantised - fp32) / fp32) < 0.05
