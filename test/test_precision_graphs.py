"""fp16 and int8 as ONNX graphs (``depth-estimation export --precision``), verified in ONNX Runtime on the CPU.

Strongly typed TensorRT (every 11.x network, 10.x with STRONGLY_TYPED) builds the precision the
graph has, so the graph is what must be right: these tests run the fp16 and int8 graphs where
they can run here, ONNX Runtime on the CPU, against the fp32 graph on generated frames
(``training.datasets.synthetic.render_scene``, seeds apart from training and calibration).

Tolerances, against fp32 (measured on the shipped demo ACAN, 24 frames; see docs/deployment.md):

* fp16: depth within 1 cm everywhere (measured ≤ 2.3 mm), 0.1 % median and 0.5 % at the 99th
  percentile relative (measured 5e-5 and 2.5e-4); confidence within 0.01 on average (measured
  1e-4; its "within one bin" mask is a step, so single pixels on a bin edge flip, hence the mean);
  δ1 against the ground truth within 0.001 (measured 3e-5).
* int8 (symmetric Q/DQ for TensorRT, percentile calibration on 16 frames): depth within 3 % median
  and 10 % at the 99th percentile (measured 0.7 % and 3.2 %); confidence within 0.05 on average
  (measured 0.021); δ1 within 0.01 (measured 0.003).

The small random-weight ACAN of the other tests checks structure and closeness; δ1 needs a model
that predicts depth, so it is checked on the demo model, trained on these generated scenes.
"""

import numpy as np
import onnx
import pytest
from conftest import small_acan

from depth_estimation_ros.core.backends import open_backend
from depth_estimation_ros.core.backends.base import network_input
from depth_estimation_ros.core.backends.onnxruntime_backend import read_onnx_info
from depth_estimation_ros.core.backends.tensorrt_backend import (
    PRECISION_KEY,
    detect_precision,
    graph_precision,
    tensorrt_qdq_problems,
)
from depth_estimation_ros.core.errors import UsageError
from depth_estimation_ros.core.scenes import render_scene
from depth_estimation_ros.deploy.export import export_onnx, half_nodes

DEMO = "depth_estimation_ros/data/demo_acan.pt"
EVAL_SEEDS = range(5_000_000, 5_000_024)  # apart from the calibration seeds below
TOLERANCES = {  # against fp32: (max |Δdepth| m or None, median rel, p99 rel, mean |Δconfidence|, |Δδ1|)
    "fp16": (0.01, 1e-3, 5e-3, 0.01, 0.001),
    "int8": (None, 0.03, 0.10, 0.05, 0.01),
}
# The ordinal decoding of an ACAN graph (after its last convolution), all of which an fp16 graph keeps in float32
DECODING_OPS = {"Resize", "Slice", "Sub", "Sigmoid", "ReduceSum", "Clip", "Floor", "Min", "Exp", "Mul", "Add",
                "Concat", "Relu", "Abs", "LessOrEqual", "Cast", "Div"}  # fmt: skip


def write_frames(folder, size, count=16, seed=4_000_000):
    import cv2

    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), render_scene(seed + i, *size)["image"][..., ::-1])
    return folder


def export_all(checkpoint, root, size):
    frames = write_frames(root / "calibration", size)
    return {
        p: export_onnx(checkpoint, root / f"{p}.onnx", precision=p, calibration_images=frames if p == "int8" else None)
        for p in ("fp32", "fp16", "int8")
    }


def compare(paths, size):
    """Per precision: depth and confidence differences to fp32, and δ1 against the ground truth."""
    backends = {p: open_backend(path, "onnxruntime") for p, path in paths.items()}
    stats = {p: {"max": 0.0, "rel": [], "conf": [], "d1": []} for p in paths}
    for seed in EVAL_SEEDS:
        scene = render_scene(seed, *size)
        x = network_input(scene["image"], size)
        out = {p: b(x) for p, b in backends.items()}
        ref = out["fp32"]["depth"][0, 0]
        truth, valid = scene["depth"], scene["valid"]
        for p, o in out.items():
            depth = o["depth"][0, 0]
            assert np.isfinite(depth).all()
            assert np.isfinite(o["confidence"]).all()
            rel = np.abs(depth - ref) / ref
            s = stats[p]
            s["max"] = max(s["max"], float(np.abs(depth - ref).max()))
            s["rel"].append(rel.ravel())
            s["conf"].append(float(np.abs(o["confidence"] - out["fp32"]["confidence"]).mean()))
            s["d1"].append(float((np.maximum(depth / truth, truth / depth)[valid] < 1.25).mean()))
    summary = {}
    for p, s in stats.items():
        rel = np.concatenate(s["rel"])
        summary[p] = (s["max"], float(np.median(rel)), float(np.percentile(rel, 99)), float(np.mean(s["conf"])),
                      float(np.mean(s["d1"])))  # fmt: skip
    return summary


def check(summary):
    d1 = summary["fp32"][4]
    for p, (max_m, median, p99, conf, _) in TOLERANCES.items():
        got = summary[p]
        print(f"{p}: max |Δdepth| {got[0]:.4f} m, median rel {got[1]:.2e}, p99 rel {got[2]:.2e}, "
              f"mean |Δconf| {got[3]:.4f}, δ1 {got[4]:.4f} (fp32 {d1:.4f})")  # fmt: skip
        if max_m is not None:
            assert got[0] <= max_m, p
        assert got[1] <= median, p
        assert got[2] <= p99, p
        assert got[3] <= conf, p


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    import torch

    from depth_estimation_ros.core.models import save_checkpoint

    root = tmp_path_factory.mktemp("small")
    torch.manual_seed(0)
    checkpoint = save_checkpoint(small_acan(), root / "acan.pt", input_size=(64, 96))
    return export_all(checkpoint, root, (64, 96))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return export_all(DEMO, tmp_path_factory.mktemp("demo"), (72, 96))


def test_each_graph_has_and_records_its_precision(small):
    for precision, path in small.items():
        model = onnx.load(str(path))
        assert detect_precision(model) == precision
        assert graph_precision(path) == precision
        assert {p.key: p.value for p in model.metadata_props}[PRECISION_KEY] == precision
        assert read_onnx_info(path) == read_onnx_info(small["fp32"])  # the same model description
        io = [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]]
        assert io == [onnx.TensorProto.FLOAT] * 3  # float32 image in, depth and confidence out
    assert tensorrt_qdq_problems(small["int8"]) == []  # symmetric int8: what TensorRT builds


def test_fp16_keeps_the_decoding_and_sensitive_operators_in_float32(small):
    fp32 = onnx.load(str(small["fp32"]))
    half = half_nodes(fp32.graph)
    last_heavy = max(i for i, n in enumerate(fp32.graph.node) if n.op_type in ("Conv", "MatMul", "Gemm"))
    tail = [n for i, n in enumerate(fp32.graph.node) if i > last_heavy]
    assert {n.op_type for n in tail} <= DECODING_OPS
    assert not any(i in half for i, n in enumerate(fp32.graph.node) if i > last_heavy and n.input)
    assert not any(n.op_type in ("Softmax", "ReduceMean", "ReduceSum", "Exp") for i, n in enumerate(fp32.graph.node)
                   if i in half)  # fmt: skip
    model = onnx.load(str(small["fp16"]))
    types = {v.name: v.type.tensor_type.elem_type for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    kinds = {n.op_type: types.get(n.output[0]) for n in model.graph.node}
    assert kinds["Conv"] == onnx.TensorProto.FLOAT16
    for op in ("Softmax", "Sigmoid", "ReduceSum", "Floor", "Exp"):
        assert kinds[op] == onnx.TensorProto.FLOAT, op
    halves = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) >= 20  # the convolution weights


def test_fp16_and_int8_of_a_small_acan_stay_close_to_fp32(small):
    check(compare(small, (64, 96)))


def test_fp16_and_int8_keep_delta1_of_the_trained_demo_model(demo):
    summary = compare(demo, (72, 96))
    check(summary)
    for p, (*_, limit) in TOLERANCES.items():
        assert abs(summary[p][4] - summary["fp32"][4]) <= limit, p
    assert summary["fp32"][4] > 0.7  # it is a model that predicts depth: the δ1 check means something


def test_int8_needs_calibration_frames(tmp_path):
    with pytest.raises(UsageError, match="--precision int8 needs --calibration-images"):
        export_onnx(DEMO, tmp_path / "m.onnx", precision="int8")
    with pytest.raises(UsageError, match="precision must be one of"):
        export_onnx(DEMO, tmp_path / "m.onnx", precision="bf16")
    assert not (tmp_path / "m.onnx").exists()
