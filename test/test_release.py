"""Released checkpoints (``training.release``) and the demo checkpoint that ships with the package."""

from importlib.resources import as_file, files

import numpy as np
import torch
from conftest import small_acan

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.core.models import load_checkpoint, load_model, save_checkpoint
from depth_estimation_ros.core.scenes import render_scene
from training.release import main, release

DEMO_CHECKPOINT = files("depth_estimation_ros") / "data" / "demo_acan.pt"


def test_a_float16_release_loads_into_a_float32_model_with_exactly_the_rounded_weights(tmp_path):
    model = small_acan().eval()
    source = save_checkpoint(model, tmp_path / "best.pt", input_size=(64, 96), extra={"training": {"epoch": 2}})
    path = release(source, tmp_path / "release.pt")
    state = load_checkpoint(path)
    parameters = dict(model.named_parameters())
    assert {state["state_dict"][name].dtype for name in parameters} == {torch.float16}
    assert state["extra"]["parameters_dtype"] == "float16"
    assert state["extra"]["epoch"] == 2
    assert "training" not in state["extra"]  # no optimiser or RNG state
    loaded = load_model(path)
    for name, value in loaded.state_dict().items():
        original = model.state_dict()[name]
        assert value.dtype == original.dtype  # float32 model, int64 BatchNorm counters
        expected = original.half().float() if name in parameters else original
        assert torch.equal(value, expected), name
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        exact, rounded = model(image)["depth"], loaded(image)["depth"]
    assert not torch.equal(exact, rounded)  # the weights really were rounded...
    torch.testing.assert_close(rounded, exact, rtol=1e-2, atol=1e-2)  # ...and barely moved the depth


def test_release_never_overwrites_and_reports_a_bad_source_in_one_line(tmp_path, capsys):
    source = save_checkpoint(small_acan(), tmp_path / "best.pt", input_size=(64, 96))
    taken = tmp_path / "taken.pt"
    taken.write_bytes(b"keep me")
    assert main([str(source), str(taken)]) == 2
    assert taken.read_bytes() == b"keep me"
    assert main([str(tmp_path / "missing.pt"), str(tmp_path / "out.pt")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert "taken.pt exists" in errors[0]
    assert "missing.pt" in errors[1]
    assert not (tmp_path / "out.pt").exists()


def test_the_shipped_demo_checkpoint_loads_safely_and_gives_metric_depth_in_its_range():
    with as_file(DEMO_CHECKPOINT) as path:
        assert path.is_file(), "depth_estimation_ros/data/demo_acan.pt is missing (see docs/training.md)"
        raw = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and types only
        assert "training" not in raw["extra"]
        model = load_model(path)
        assert {p.dtype for p in model.parameters()} == {torch.float32}
        estimator = DepthEstimator(path, "torch")
    low, high = raw["depth_range"]
    frame = render_scene(123, 120, 160, "indoor")  # demo-sized; any room works for this check
    result = estimator(frame["image"], CameraModel(160, 120, frame["K"]))
    assert result.depth.shape == (120, 160)
    assert np.isfinite(result.depth).all()
    assert low <= result.depth.min() <= result.depth.max() <= high
    assert result.depth.max() - result.depth.min() > 0.5  # depth varies across the room, not a constant
