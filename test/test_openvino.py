"""The OpenVINO backend runs the graphs ONNX Runtime runs, with the same outputs; ``backend: auto``
on a CPU takes the faster runtime only where its depth agrees with ONNX Runtime's."""

import numpy as np
import pytest

from depth_estimation_ros.core.backends import open_backend
from depth_estimation_ros.core.backends.selection import AGREEMENT, fastest, probe_frames

pytest.importorskip("openvino", reason="make test's environment has OpenVINO")


def test_openvino_gives_an_export_the_outputs_onnx_runtime_gives(deployed):
    path = deployed["acan"][1]
    onnxruntime, openvino = open_backend(path, "onnxruntime"), open_backend(path, "openvino")
    assert openvino.describe() == "openvino on cpu"
    for batch, _ in probe_frames(64, 96):
        expected, got = onnxruntime(batch), openvino(batch)
        assert set(got) == set(expected) == {"depth", "confidence"}
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-3, atol=1e-4)


def test_openvino_runs_a_card_described_graph_with_the_cameras_rays(tmp_path):
    """UniDepth V2's signature (image and rays in; points, an uncertainty and K out) with its card."""
    from foreign_graphs import export

    from depth_estimation_ros.core.camera import CameraModel
    from depth_estimation_ros.core.estimator import DepthEstimator

    path = export("unidepth_v2", tmp_path / "unidepth.onnx")
    camera = CameraModel.from_intrinsics(500, 500, 319.5, 239.5, 640, 480, frame_id="cam")
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    expected = DepthEstimator(path, backend="onnxruntime", card="unidepth_v2")(image, camera)
    estimator = DepthEstimator(path, backend="openvino", card="unidepth_v2")
    got = estimator(image, camera)
    assert estimator.backend.name == "openvino"
    np.testing.assert_allclose(got.depth, expected.depth, rtol=1e-4)
    np.testing.assert_allclose(got.confidence, expected.confidence, rtol=1e-4)


def test_backend_auto_on_a_cpu_takes_the_faster_runtime_that_agrees_and_says_what_it_measured(deployed):
    backend = open_backend(deployed["msfnet"][1])
    assert backend.name in ("onnxruntime", "openvino")
    assert "onnxruntime" in backend.selection
    assert "openvino" in backend.selection
    assert backend.selection.count("δ1 1.000") == 2  # the same graph on both: the same depth
    assert backend.describe().startswith(f"{backend.name} on cpu (auto: ")


def test_a_runtime_whose_depth_disagrees_is_never_chosen_however_fast(deployed):
    """Another network behind the second runtime (MSFNet against ACAN at the same input): its depth
    is not the reference's, so the reference is kept whichever was faster."""
    reference = open_backend(deployed["acan"][1], "onnxruntime")
    other = open_backend(deployed["msfnet"][1], "openvino")
    chosen = fastest([reference, other])
    assert chosen is reference
    agreement = float(chosen.selection.split("openvino")[1].split("δ1 ")[1].split(",")[0])
    assert agreement < AGREEMENT
