import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def small_acan(**kwargs):
    """An ACAN small enough for CPU tests (random initialisation, no download)."""
    from depth_estimation_ros.models import build_model

    options = {
        "backbone": "resnet18",
        "num_bins": 16,
        "key_channels": 32,
        "value_channels": 64,
        "pool_channels": 32,
        "fuse_channels": 32,
        "min_depth": 0.5,
        "max_depth": 10.0,
    }
    return build_model("acan", **{**options, **kwargs})


def small_msfnet(**kwargs):
    from depth_estimation_ros.models import build_model

    options = {"backbone": "resnet18", "usf_channels": 8, "decoder_width": 0.25, "min_depth": 0.5, "max_depth": 10.0}
    return build_model("msfnet", **{**options, **kwargs})


@pytest.fixture(scope="session")
def deployed(tmp_path_factory):
    """Checkpoints (input 64x96) and their ONNX exports for a small ACAN and MSFNet."""
    from depth_estimation_ros.models import save_checkpoint
    from training.export import export_onnx

    root = tmp_path_factory.mktemp("deployed")
    files = {}
    for name, factory in (("acan", small_acan), ("msfnet", small_msfnet)):
        torch.manual_seed(0)
        checkpoint = save_checkpoint(factory(), root / f"{name}.pt", input_size=(64, 96))
        files[name] = (checkpoint, export_onnx(checkpoint, root / f"{name}.onnx"))
    return files


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory):
    """Random-weight transformers depth folders (save_pretrained) of every supported family."""
    from depth_estimation_ros.models.transformers_layouts import LAYOUTS, save_layout

    root = tmp_path_factory.mktemp("transformers")
    return {name: save_layout(name, root / name) for name in LAYOUTS}
