import numpy as np
import pytest

from depth_estimation_ros.core.backends.base import Backend, ModelInfo
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.estimator import DepthEstimator


class BrightnessDepth(Backend):
    """A graph with a known answer: depth = 1 + 9·red, confidence = green. It lets the tests check
    the geometry of pre- and post-processing (alignment, padding, sizes) exactly."""

    name = "analytic"

    def __init__(self, height=64, width=96):
        super().__init__(ModelInfo("analytic", height, width, 1.0, 10.0, has_confidence=True))

    def __call__(self, batch):
        return {"depth": 1 + 9 * batch[:, :1], "confidence": batch[:, 1:2].copy()}


@pytest.fixture
def camera():
    return CameraModel.from_intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480, frame_id="cam")


def ramp_image():
    """Red rises left to right, green top to bottom: smooth, so resampling error is small."""
    v, u = np.mgrid[0:480, 0:640]
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = (u * 255 / 639).astype(np.uint8)
    image[..., 1] = (v * 255 / 479).astype(np.uint8)
    return image


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_depth_comes_back_aligned_with_the_camera_image(camera, resize):
    image = ramp_image()
    result = DepthEstimator(BrightnessDepth(), resize=resize)(image, camera)
    assert result.depth.shape == result.confidence.shape == (480, 640)
    assert result.camera == camera
    expected = 1 + 9 * (image[..., 0] / 255)
    inner = (slice(16, -16), slice(16, -16))  # away from the borders resampling clamps
    assert np.abs(result.depth - expected)[inner].max() < 0.2  # of a 9 m ramp
    assert np.abs(result.confidence - image[..., 1] / 255)[inner].max() < 0.03


def test_network_resolution_output_comes_with_the_matching_camera(camera):
    estimator = DepthEstimator(BrightnessDepth(), output_resolution="network")
    result = estimator(ramp_image(), camera)
    assert result.depth.shape == (64, 96)
    assert result.camera.isclose(camera.resize(96, 64))
    boxed = DepthEstimator(BrightnessDepth(), resize="letterbox", output_resolution="network")(ramp_image(), camera)
    assert boxed.camera.isclose(camera.letterbox(96, 64)[0])


def test_low_confidence_depth_becomes_nan(camera):
    result = DepthEstimator(BrightnessDepth(), min_confidence=0.5)(ramp_image(), camera)
    assert np.isnan(result.depth[:200]).all()  # green (confidence) < 0.5 in the upper part
    assert np.isfinite(result.depth[300:]).all()


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((480, 640, 3), np.float32), "uint8 RGB, got dtype float32"),
        (np.zeros((480, 640, 4), np.uint8), r"\(H, W, 3\) RGB, got shape \(480, 640, 4\)"),
        (np.zeros((480, 640), np.uint8), r"got shape \(480, 640\)"),
        (np.zeros((240, 320, 3), np.uint8), "image is 320x240 .* camera describes 640x480"),
    ],
)
def test_bad_frames_are_rejected_with_what_was_expected(camera, image, message):
    with pytest.raises(ValueError, match=message):
        DepthEstimator(BrightnessDepth())(image, camera)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="resize must be one of"):
        DepthEstimator(BrightnessDepth(), resize="crop")
    with pytest.raises(ValueError, match="min_confidence must be in"):
        DepthEstimator(BrightnessDepth(), min_confidence=2)


def test_every_backend_gives_the_same_metres_for_the_same_frame(deployed, camera):
    checkpoint, path = deployed["acan"]
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    torch_result = DepthEstimator(checkpoint, "torch", device="cpu", dtype="float32")(image, camera)
    ort_result = DepthEstimator(path, "onnxruntime")(image, camera)
    assert np.abs(torch_result.depth - ort_result.depth).max() < 1e-4
    assert np.abs(torch_result.confidence - ort_result.confidence).max() < 1e-5


def test_torch_auto_precision_keeps_the_faster_of_fp32_and_bf16_and_bf16_stays_close(deployed, camera):
    from depth_estimation_ros.core.backends.torch_backend import cpu_has_bf16

    checkpoint, _ = deployed["acan"]
    image = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    auto = DepthEstimator(checkpoint, "torch", device="cpu").backend
    if cpu_has_bf16():  # both timed at load, the faster kept
        assert set(auto.measured_ms) == {"float32", "bfloat16"}
        assert auto.dtype == min(auto.measured_ms, key=auto.measured_ms.get)
    else:
        assert (auto.dtype, auto.measured_ms) == ("float32", {})
    bf16 = DepthEstimator(checkpoint, "torch", device="cpu", dtype="bfloat16")(image, camera).depth
    fp32 = DepthEstimator(checkpoint, "torch", device="cpu", dtype="float32")(image, camera).depth
    relative = np.abs(bf16 - fp32) / fp32
    assert np.median(relative) < 0.02  # bf16 keeps 8 bits of mantissa: ~0.4 % per operation
    with pytest.raises(ValueError, match="dtype must be 'auto' or one of"):
        DepthEstimator(checkpoint, "torch", dtype="int4")
