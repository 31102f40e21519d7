import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def small_acan(**kwargs):
    """An ACAN small enough for CPU tests (random initialisation, no download)."""
    from depth_estimation_ros.core.models import build_model

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
    from depth_estimation_ros.core.models import build_model

    options = {"backbone": "resnet18", "usf_channels": 8, "decoder_width": 0.25, "min_depth": 0.5, "max_depth": 10.0}
    return build_model("msfnet", **{**options, **kwargs})


@pytest.fixture(scope="session")
def deployed(tmp_path_factory):
    """Checkpoints (input 64x96) and their ONNX exports for a small ACAN and MSFNet."""
    from depth_estimation_ros.core.models import save_checkpoint
    from depth_estimation_ros.deploy.export import export_onnx

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
    from depth_estimation_ros.core.models.transformers_layouts import LAYOUTS, save_layout

    root = tmp_path_factory.mktemp("transformers")
    return {name: save_layout(name, root / name) for name in LAYOUTS}


def relative_oracle(frames, a=0.37, b=0.02):
    """A relative (affine inverse depth) model that knows the scenes: for each (RGB, depth) frame
    it was given, it returns (1/depth − b)/a, the true inverse depth with an unknown scale and shift.
    It stands in for a network where a test is about anchoring, not about the network."""
    import numpy as np

    from depth_estimation_ros.core.backends.base import Backend, ModelInfo, network_input
    from depth_estimation_ros.core.card import InputRule, ModelCard

    h, w = frames[0][1].shape
    card = ModelCard("relative_inverse_depth", InputRule(h, w), 0.01, 1000.0)
    answers = {network_input(rgb, (h, w)).tobytes(): (1 / depth - b) / a for rgb, depth in frames}

    class Oracle(Backend):
        name = "oracle"

        def __call__(self, batch):
            return {"depth": answers[batch.tobytes()][None, None].astype(np.float32)}

    return Oracle(ModelInfo("oracle", h, w, 0.01, 1000.0, False, card=card.to_dict()))


@pytest.fixture
def hf_camera():
    """A 128x96 camera whose size is not the transformers models' network input."""
    from depth_estimation_ros.core.camera import CameraModel

    return CameraModel.from_intrinsics(110.0, 112.0, 60.0, 50.0, 128, 96, frame_id="cam")


def smooth_image(seed=0, shape=(96, 128)):
    """A blurred random RGB frame: structure at every scale, smooth enough that resampling agrees."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((*shape, 3)) * 255).astype(np.uint8), (7, 7), 2)
