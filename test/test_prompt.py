"""Prompt Depth Anything fed its prompt: the frame's sparse depth, made dense and metric, through the
real transformers model (a tiny random-weight folder)."""

import numpy as np
import pytest
from conftest import smooth_image

from depth_estimation_ros.core.estimator import DepthEstimator, NoMetricScale
from depth_estimation_ros.core.prompt import MIN_READINGS, PROMPT_SIDE, depth_prompt


def test_holes_take_their_nearest_reading_and_the_prompt_is_small():
    sparse = np.full((480, 640), np.nan, np.float32)
    sparse[100, 100], sparse[400, 600] = 2.0, 8.0
    sparse[::40, ::40] = np.where(np.arange(12)[:, None] < 6, 2.0, 8.0) * np.ones((12, 16))
    prompt = depth_prompt(sparse)
    assert prompt.shape == (1, 1, PROMPT_SIDE * 480 // 640, PROMPT_SIDE)
    assert np.isfinite(prompt).all()
    assert prompt.min() == pytest.approx(2.0)
    assert prompt.max() == pytest.approx(8.0)
    assert prompt[0, 0, 10, 10] == pytest.approx(2.0)  # top rows: near the 2 m readings
    assert prompt[0, 0, -10, -10] == pytest.approx(8.0)


def test_too_few_or_absurd_readings_give_no_prompt():
    sparse = np.zeros((48, 64), np.float32)
    sparse[0, : MIN_READINGS - 1] = 3.0
    assert depth_prompt(sparse) is None
    sparse[1, :MIN_READINGS] = 1e30  # beyond 10 km: holes, not readings
    assert depth_prompt(sparse) is None


def test_the_models_metres_follow_its_prompt(hf_folders):
    """transformers' model normalises the prompt by its min and max and maps its output back: the same
    frame with a prompt twice as far gives depth twice as far."""
    estimator = DepthEstimator(str(hf_folders["prompt_depth_anything"]), scale_source="sparse_depth")
    assert estimator.prompted
    batch = np.random.default_rng(0).random((1, 3, 112, 154)).astype(np.float32)
    near = depth_prompt(np.linspace(1.5, 4.0, 48 * 64, dtype=np.float32).reshape(48, 64))
    depth = estimator.backend(batch, prompt=near)["depth"]
    assert np.allclose(estimator.backend(batch, prompt=2 * near)["depth"], 2 * depth, rtol=1e-4)
    assert not np.allclose(estimator.backend(batch)["depth"], depth, rtol=1e-2)  # the prompt changes it


def test_a_frame_without_its_prompt_is_skipped_and_one_with_it_is_metres(hf_folders, hf_camera):
    estimator = DepthEstimator(str(hf_folders["prompt_depth_anything"]), scale_source="sparse_depth")
    with pytest.raises(NoMetricScale, match="no depth prompt"):
        estimator(smooth_image(), hf_camera)
    sparse = np.full((96, 128), np.nan, np.float32)
    sparse[::8, ::8] = np.linspace(2.0, 6.0, 12 * 16).reshape(12, 16)
    result = estimator(smooth_image(), hf_camera, sparse=sparse)
    assert np.isfinite(result.depth).mean() > 0.9
    assert estimator.card.output == "metric_depth"  # prompted: metres, the anchor fits on top


def test_without_sparse_depth_as_its_scale_source_it_is_the_relative_model_of_its_card(hf_folders):
    estimator = DepthEstimator(str(hf_folders["prompt_depth_anything"]), scale_source="fixed", fixed_scale=0.5)
    assert not estimator.prompted
    assert estimator.card.relative


def test_an_exported_graph_has_no_prompt_input_and_its_card_says_so(hf_folders):
    from depth_estimation_ros.core.models.transformers_depth import load_transformers_model

    model = load_transformers_model(hf_folders["prompt_depth_anything"])
    assert model.card().prompt == "depth"
    assert model.card((112, 154)).prompt == ""  # what export writes into the graph's metadata
