import json

import numpy as np
import onnx
import pytest

from depth_estimation_ros.core.backends import detect_format, open_backend
from depth_estimation_ros.core.backends.base import METADATA_KEY
from depth_estimation_ros.deploy.export import TENSORRT_OPS, export_onnx

# ONNX Runtime and PyTorch agree to this many metres / confidence units on the same input.
DEPTH_TOLERANCE_M = 1e-4
CONFIDENCE_TOLERANCE = 1e-5


@pytest.mark.parametrize("name", ["acan", "msfnet"])
def test_exported_graph_is_valid_and_carries_its_description(deployed, name):
    _, path = deployed[name]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["image"]
    outputs = [o.name for o in model.graph.output]
    assert outputs == (["depth", "confidence"] if name == "acan" else ["depth"])
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 96]
    info = json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])
    assert info["name"] == name
    assert (info["input_height"], info["input_width"]) == (64, 96)
    assert (info["min_depth"], info["max_depth"]) == (0.5, 10.0)
    assert info["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert info["version"]
    assert {node.op_type for node in model.graph.node} <= TENSORRT_OPS


@pytest.mark.parametrize("name", ["acan", "msfnet"])
def test_onnxruntime_matches_pytorch_on_the_checkpoint(deployed, name):
    checkpoint, path = deployed[name]
    batch = np.random.default_rng(0).random((1, 3, 64, 96), dtype=np.float32)
    expected = open_backend(checkpoint, "torch", device="cpu", dtype="float32")(batch)
    actual = open_backend(path, "onnxruntime")(batch)
    assert expected.keys() == actual.keys()
    assert np.abs(actual["depth"] - expected["depth"]).max() < DEPTH_TOLERANCE_M
    if "confidence" in expected:
        assert np.abs(actual["confidence"] - expected["confidence"]).max() < CONFIDENCE_TOLERANCE


def test_export_rejects_sizes_the_network_cannot_take(deployed, tmp_path):
    checkpoint, _ = deployed["msfnet"]
    with pytest.raises(ValueError, match="multiples of 32"):
        export_onnx(checkpoint, tmp_path / "bad.onnx", height=60, width=96)
    assert not (tmp_path / "bad.onnx").exists()


def test_model_files_are_recognised_by_content_when_the_suffix_says_nothing(deployed, tmp_path):
    checkpoint, path = deployed["acan"]
    (tmp_path / "model_a").write_bytes(checkpoint.read_bytes())
    (tmp_path / "model_b").write_bytes(path.read_bytes())
    assert detect_format(tmp_path / "model_a") == "checkpoint"
    assert detect_format(tmp_path / "model_b") == "onnx"
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt: unknown model format"):
        detect_format(tmp_path / "notes.txt")


def test_truncated_and_foreign_model_files_are_named(deployed, tmp_path):
    _, path = deployed["acan"]
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match=r"truncated\.onnx"):
        open_backend(truncated, "onnxruntime")
    foreign = tmp_path / "foreign.onnx"
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(foreign))
    with pytest.raises(ValueError, match=r"foreign\.onnx: ONNX file has no 'depth_estimation_ros' metadata"):
        open_backend(foreign, "onnxruntime")
    with pytest.raises(FileNotFoundError, match=r"absent\.pt"):
        open_backend(tmp_path / "absent.pt")


def test_backends_reject_files_they_cannot_run_and_unknown_names(deployed):
    checkpoint, path = deployed["acan"]
    with pytest.raises(ValueError, match="is a checkpoint; the onnxruntime backend runs onnx"):
        open_backend(checkpoint, "onnxruntime")
    with pytest.raises(ValueError, match="is a checkpoint; the openvino backend runs onnx"):
        open_backend(checkpoint, "openvino")
    with pytest.raises(ValueError, match="unknown backend 'coreml'"):
        open_backend(path, "coreml")


def test_auto_backend_picks_by_model_file(deployed):
    checkpoint, path = deployed["acan"]
    assert open_backend(checkpoint).name == "torch"
    assert open_backend(path).name == "onnxruntime"  # no TensorRT on this machine


def test_backends_reject_input_of_the_wrong_shape_or_dtype(deployed):
    _, path = deployed["acan"]
    backend = open_backend(path, "onnxruntime")
    with pytest.raises(ValueError, match=r"expects float32 input \(1, 3, 64, 96\)"):
        backend(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="float64"):
        backend(np.zeros((1, 3, 64, 96), np.float64))
