"""The rclpy node itself: runs where ROS 2 is installed, skipped cleanly elsewhere (rclpy is not on PyPI)."""

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from depth_estimation_ros.camera import CameraModel  # noqa: E402
from depth_estimation_ros.messages import MessageTypes, camera_info_msg, header, image_msg  # noqa: E402


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def make_node(model, **overrides):
    from depth_estimation_ros.node import DepthNode

    params = {"model": str(model), "backend": "onnxruntime", **overrides}
    return DepthNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def test_configure_rejects_a_missing_model(ros, tmp_path):
    node = make_node(tmp_path / "missing.onnx")
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    node.destroy_node()


def test_node_publishes_metric_depth_cloud_and_camera_info_with_the_input_stamp(ros, deployed):
    node = make_node(deployed["acan"][1])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    feeder = rclpy.create_node("feeder")
    types = MessageTypes.from_rclpy()
    camera = CameraModel.from_intrinsics(120.0, 120.0, 79.5, 59.5, 160, 120, frame_id="cam")
    image_pub = feeder.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = feeder.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    received = {}
    for topic, kind in (("depth/image", Image), ("depth/camera_info", CameraInfo), ("depth/points", PointCloud2)):
        feeder.create_subscription(kind, topic, lambda msg, t=topic: received.setdefault(t, msg), 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(feeder)
    h = header(1_700_000_042, 7, "cam", types)
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    deadline = time.monotonic() + 30
    while len(received) < 3 and time.monotonic() < deadline:
        info_pub.publish(camera_info_msg(camera, h, types))
        image_pub.publish(image_msg(rgb, "rgb8", h, types))
        executor.spin_once(timeout_sec=0.1)
    assert set(received) == {"depth/image", "depth/camera_info", "depth/points"}
    for msg in received.values():
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (1_700_000_042, 7, "cam")
    assert received["depth/image"].encoding == "32FC1"
    assert (received["depth/camera_info"].width, received["depth/camera_info"].height) == (160, 120)
    node.trigger_deactivate()
    node.destroy_node()
    feeder.destroy_node()
