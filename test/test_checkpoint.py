import pickle

import pytest
import torch
from conftest import small_acan, small_msfnet

from depth_estimation_ros.core.models import load_checkpoint, load_model, save_checkpoint


@pytest.mark.parametrize("factory", [small_acan, small_msfnet])
def test_saved_checkpoint_rebuilds_a_model_with_identical_outputs(tmp_path, factory):
    model = factory().eval()
    path = save_checkpoint(model, tmp_path / "model.pt", input_size=(64, 96), extra={"epoch": 3})
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.config == model.config
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected, actual = model(image), loaded(image)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key])
    state = load_checkpoint(path)
    assert state["input_size"] == [64, 96]
    assert state["depth_range"] == [0.5, 10.0]
    assert state["normalization"] == model.normalization
    assert state["extra"] == {"epoch": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_missing_truncated_and_foreign_files_are_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt"):
        load_model(tmp_path / "nope.pt")
    good = save_checkpoint(small_acan(), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"truncated\.pt"):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match=r"foreign\.pt is not a depth_estimation_ros checkpoint"):
        load_model(foreign)


class Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_a_checkpoint_is_never_unpickled_as_arbitrary_objects(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "depth_estimation_ros.checkpoint", "payload": Payload()}, f)
    with pytest.raises(ValueError, match=r"evil\.pt"):
        load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_mismatched_weights_are_reported(tmp_path):
    path = save_checkpoint(small_acan(), tmp_path / "m.pt")
    state = torch.load(path, weights_only=True)
    state["model"]["num_bins"] = 20  # config no longer matches the weights
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"weights do not match model 'acan'"):
        load_model(path)


def test_pretrained_backbone_weights_load_from_a_local_file(tmp_path):
    import timm

    reference = timm.create_model("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = small_acan(pretrained=path)
    assert torch.equal(model.encoder.conv1.weight, reference.conv1.weight)
    assert "pretrained" not in model.config
    torch.save({"something": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other\.pth do not fit backbone 'resnet18'"):
        small_acan(pretrained=tmp_path / "other.pth")


def test_a_checkpoint_from_before_the_reference_options_rebuilds_with_its_old_behaviour(tmp_path):
    """Format-1 files written before the reference options (``align_corners`` …) lack them in their config."""
    legacy = small_acan(align_corners=False, full_dilation=False, reference_init=False).eval()
    for m in legacy.modules():  # timm zero-initialises residual branches: open them so dilation matters
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
    path = save_checkpoint(legacy, tmp_path / "old.pt", input_size=(64, 96))
    state = torch.load(path, weights_only=True)
    for key in ("align_corners", "full_dilation", "reference_init"):
        del state["model"][key]
    torch.save(state, path)
    loaded = load_model(path)
    assert loaded.config["align_corners"] is False
    assert loaded.config["full_dilation"] is False
    assert not loaded.align_corners
    assert {m.dilation[0] for m in loaded.encoder.layer3.modules() if isinstance(m, torch.nn.Conv2d)} == {1, 2}
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(loaded(image)["depth"], legacy(image)["depth"])
        # the same weights built with today's defaults compute something else
        today = small_acan().eval()
        today.load_state_dict(state["state_dict"])
        assert not torch.allclose(today(image)["depth"], legacy(image)["depth"])


def test_the_shipped_demo_checkpoint_rebuilds_with_the_layout_it_was_trained_with():
    from importlib.resources import files

    path = files("depth_estimation_ros") / "data" / "demo_acan.pt"
    assert "align_corners" not in load_checkpoint(path)["model"]  # written before the option existed
    model = load_model(path)
    assert model.config["align_corners"] is False
    assert model.config["full_dilation"] is False
    assert {m.dilation[0] for m in model.encoder.layer3.modules() if isinstance(m, torch.nn.Conv2d)} == {1, 2}
