"""The device path (tensors on the model's device) against the numpy path, run on the CPU."""

import cv2
import numpy as np
import pytest
import torch
from rosbags.typesys import Stores, get_typestore

from depth_estimation_ros.core.backends import ModelInfo, open_backend
from depth_estimation_ros.core.backends.base import Backend
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.estimator import DepthEstimator, preprocess
from depth_estimation_ros.core.resident import DeviceFramePath, area_matrix
from depth_estimation_ros.ros.messages import MessageTypes, camera_info_msg, header, image_msg
from depth_estimation_ros.ros.pipeline import DepthPipeline

TYPES = MessageTypes.from_typestore(get_typestore(Stores.ROS2_JAZZY))
CAMERA = CameraModel.from_intrinsics(150.0, 140.0, 79.0, 61.0, 160, 120, frame_id="cam")


class FixedOutputs(Backend):
    """A network stand-in with given outputs, on tensors and arrays alike (isolates the geometry)."""

    name = "fixed"

    def __init__(self, outputs: dict[str, np.ndarray]):
        super().__init__(ModelInfo("fixed", 64, 96, 0.5, 10.0, has_confidence=True))
        self.outputs = outputs
        self.torch_device = torch.device("cpu")

    def forward(self, x):
        assert x.shape == (1, 3, 64, 96)
        return {k: torch.from_numpy(v) for k, v in self.outputs.items()}

    def __call__(self, batch):
        self.check_batch(batch)
        return self.outputs


def frame(seed=0, camera=CAMERA):
    rgb = np.random.default_rng(seed).integers(0, 256, (camera.height, camera.width, 3), dtype=np.uint8)
    h = header(100, seed, camera.frame_id, TYPES)
    return image_msg(rgb, "rgb8", h, TYPES), camera_info_msg(camera, h, TYPES)


def fixed_outputs(seed=1):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 9, (1, 1, 64, 96)).astype(np.float32)
    depth[0, 0, 5, 7] = 0  # an invalid pixel
    return {"depth": depth, "confidence": rng.uniform(0, 1, (1, 1, 64, 96)).astype(np.float32)}


def cloud_floats(msg):
    return np.frombuffer(np.asarray(msg.data).tobytes(), "<f4").reshape(msg.height, msg.width, -1)


@pytest.mark.parametrize(("source", "target"), [(480, 256), (640, 352), (120, 64), (160, 96), (100, 50)])
def test_area_weights_reproduce_opencvs_area_downscaling(source, target):
    image = np.random.default_rng(source).integers(0, 256, (source, source), dtype=np.uint8)
    expected = cv2.resize(image, (target, target), interpolation=cv2.INTER_AREA).astype(np.float32)
    weights = area_matrix(source, target)
    resized = weights @ image.astype(np.float32) @ weights.T
    ours = np.floor(resized + 0.5) if source % target == 0 else np.round(resized)  # OpenCV's two paths
    assert np.allclose(weights.sum(axis=1), 1)
    assert np.abs(ours - expected).max() <= 1  # float summation order: a rare one-level rounding flip
    assert (ours == expected).mean() > 0.99


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_device_network_input_matches_the_numpy_preprocessing(resize):
    rgb = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    path = DeviceFramePath(FixedOutputs(fixed_outputs()), resize=resize)
    path._prepare(CAMERA)
    ours = path._network_input(torch.from_numpy(rgb)).numpy()
    expected, net_camera, _ = preprocess(rgb, CAMERA, (64, 96), resize)
    assert net_camera.isclose(path.net_camera)
    assert np.abs(ours - expected).max() <= 1 / 255 + 1e-6
    assert (np.abs(ours - expected) < 1e-6).mean() > 0.99


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"resize": "letterbox"},
        {"output_resolution": "network"},
        {"min_confidence": 0.3},
        {"points_decimation": 3, "points_max_range": 6.0},
        {"points_rgb": False, "publish_raw_depth": True},
        {"publish_scan": True, "scan_height": 4, "edge_filter_depth": True, "points_organized": False},
        {"publish_scan": True, "points_edge_filter": False},
        {"publish_scan": True, "edge_filter_angle": 20.0},  # scan filtered on the host, depth/image not
    ],
)
def test_device_path_publishes_what_the_numpy_path_publishes(options):
    estimator_options = {k: options.pop(k) for k in ("resize", "output_resolution", "min_confidence") if k in options}
    estimator = DepthEstimator(FixedOutputs(fixed_outputs()), **estimator_options)
    numpy_out = DepthPipeline(estimator, TYPES, device_path=False, **options).process(*frame())
    device_out = DepthPipeline(estimator, TYPES, device_path=True, **options).process(*frame())
    assert set(numpy_out.messages) == set(device_out.messages)
    for topic, expected in numpy_out.messages.items():
        got = device_out.messages[topic]
        if topic == "depth/camera_info":
            assert np.allclose(got.p, expected.p)
            assert (got.width, got.height) == (expected.width, expected.height)
            continue
        if topic == "depth/scan":
            assert got.header == expected.header
            np.testing.assert_allclose(got.ranges, expected.ranges, rtol=1e-4)  # NaN where NaN
            assert (got.angle_min, got.angle_max, got.range_max) == (expected.angle_min, expected.angle_max,
                                                                     expected.range_max)  # fmt: skip
            continue
        assert (got.height, got.width) == (expected.height, expected.width)
        if topic == "depth/points":
            assert (got.point_step, got.is_dense) == (expected.point_step, expected.is_dense)
            a, b = cloud_floats(got), cloud_floats(expected)
            np.testing.assert_allclose(a[..., :3], b[..., :3], rtol=1e-4, atol=1e-5)  # NaN where NaN
            np.testing.assert_array_equal(a[..., 3:].view(np.uint32), b[..., 3:].view(np.uint32))  # colour, padding
        elif topic == "depth/image_raw":
            got_mm = np.frombuffer(np.asarray(got.data).tobytes(), "<u2").astype(int)
            exp_mm = np.frombuffer(np.asarray(expected.data).tobytes(), "<u2").astype(int)
            assert np.abs(got_mm - exp_mm).max() <= 1
        else:
            a = np.frombuffer(np.asarray(got.data).tobytes(), "<f4")
            b = np.frombuffer(np.asarray(expected.data).tobytes(), "<f4")
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # OpenCV rounds its bilinear weights


def test_device_path_with_a_real_network_agrees_with_the_numpy_path(deployed):
    backend = open_backend(deployed["acan"][0], "torch", device="cpu", dtype="float32")
    estimator = DepthEstimator(backend)
    numpy_out = DepthPipeline(estimator, TYPES, device_path=False).process(*frame(7))
    device_out = DepthPipeline(estimator, TYPES, device_path=True).process(*frame(7))
    a, b = (cloud_floats(o.messages["depth/points"]) for o in (device_out, numpy_out))
    # the inputs differ only where a resized pixel rounds the other way (< 1% of pixels, 1/255)
    np.testing.assert_allclose(a[..., :3], b[..., :3], rtol=2e-3, atol=1e-4)
    np.testing.assert_array_equal(a[..., 4].view(np.uint32), b[..., 4].view(np.uint32))


def test_device_path_is_refused_for_a_backend_without_device_tensors(deployed):
    estimator = DepthEstimator(deployed["acan"][1], "onnxruntime")
    with pytest.raises(ValueError, match="onnxruntime backend cannot run the device path"):
        DepthPipeline(estimator, TYPES, device_path=True)
    assert DepthPipeline(estimator, TYPES).device_path is None  # auto: off without a GPU model


def test_options_changed_between_frames_take_effect_on_both_paths():
    estimator = DepthEstimator(FixedOutputs(fixed_outputs()))
    pipelines = [DepthPipeline(estimator, TYPES, device_path=flag) for flag in (False, True)]
    for pipeline in pipelines:
        pipeline.process(*frame())  # constants and buffers made for the first options
    for pipeline in pipelines:  # what the node does when parameters change at run time
        pipeline.points_rgb, pipeline.points_decimation, pipeline.points_max_range = False, 2, 5.0
    estimator.min_confidence = 0.4
    outputs = [pipeline.process(*frame(1)) for pipeline in pipelines]
    for out in outputs:
        cloud = out.messages["depth/points"]
        assert (cloud.point_step, cloud.height, cloud.width) == (16, 60, 80)
        assert np.nanmax(cloud_floats(cloud)[..., 2]) < 5.0
    a, b = (cloud_floats(o.messages["depth/points"]) for o in outputs)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_scan_band_taller_than_the_image_skips_the_scan_and_says_why():
    pipeline = DepthPipeline(DepthEstimator(FixedOutputs(fixed_outputs())), TYPES, publish_scan=True, scan_height=500)
    out = pipeline.process(*frame())
    assert "depth/image" in out.messages
    assert "depth/scan" not in out.messages
    assert any("depth/scan skipped: scan_height 500 rows is too large" in note for note in out.notes)
