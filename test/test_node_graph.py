"""The installed ``depth_node`` in a real ROS 2 graph of separate processes (rclpy + Fast DDS).

A player process publishes a generated camera sequence (a rosbag2) with /clock, the node runs as
its own process, and a recorder process (the consumer) records what it publishes; the test reads
the recording and checks what docs/ros.md promises.
"""

import signal

import numpy as np
import pytest
from ros_graph import cloud_xyz, depth_node, diagnostic_values, isolated_env, python_module, read_bag, stamp

from depth_estimation_ros.recorder import READY

pytest.importorskip("rclpy", reason="the node tests need rclpy (make test's environment has it)")

FRAMES = 12
OUTPUTS = {
    "/camera/depth/image": "sensor_msgs/msg/Image",
    "/camera/depth/camera_info": "sensor_msgs/msg/CameraInfo",
    "/camera/depth/points": "sensor_msgs/msg/PointCloud2",
    "/camera/depth/confidence": "sensor_msgs/msg/Image",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


@pytest.fixture(scope="module")
def camera_bag(tmp_path_factory):
    from training.synthetic_bag import write_synthetic_bag

    path = tmp_path_factory.mktemp("camera") / "camera_bag"
    write_synthetic_bag(path, frames=FRAMES, height=120, width=160, seed=7, rate_hz=10.0)
    return path


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_node_process_publishes_rep118_depth_camera_info_and_cloud_for_every_frame(
    deployed, camera_bag, tmp_path, stop_signal
):
    env = isolated_env()
    recording = tmp_path / "recording"
    topics = [f"{t}:{m}" for t, m in OUTPUTS.items()]
    recorder = python_module(env, tmp_path / "recorder.log", "depth_estimation_ros.recorder", str(recording),
                             "--topics", *topics, "--idle", "4", "--timeout", "90")  # fmt: skip
    node = depth_node(
        env, tmp_path / "node.log",
        "-r", "__ns:=/camera", "-r", "image:=image_raw",
        "-p", f"model:={deployed['acan'][1]}", "-p", "use_sim_time:=true", "-p", "diagnostics_period:=0.2",
    )  # fmt: skip
    recorder.wait_for_line(READY)
    player = python_module(env, tmp_path / "player.log", "depth_estimation_ros.player", str(camera_bag),
                           "--rate", "0.5", "--wait-for", "/camera/image_raw", "/camera/camera_info")  # fmt: skip
    assert player.wait(90) == 0, player.output
    assert recorder.wait(120) == 0, recorder.output
    assert node.stop(stop_signal) == 0, node.output
    assert "Traceback" not in node.output, node.output

    inputs, outputs = read_bag(camera_bag), read_bag(recording)
    images = {stamp(m): m for m in inputs["/camera/image_raw"]}
    infos = {stamp(m): m for m in inputs["/camera/camera_info"]}
    by_stamp = {topic: {stamp(m): m for m in outputs.get(topic, [])} for topic in OUTPUTS if topic != "/diagnostics"}
    depth = by_stamp["/camera/depth/image"]
    published = int(diagnostic_values(outputs["/diagnostics"][-1])["published frames"])
    # Exact-time synchronisation: every published frame arrives complete, on every output topic.
    assert published == len(depth) >= FRAMES // 2
    assert all(set(messages) == set(depth) for messages in by_stamp.values())
    for key, msg in depth.items():
        source = images[key]  # the input's stamp ...
        assert msg.header.frame_id == source.header.frame_id  # ... and frame
        assert (msg.encoding, msg.height, msg.width, msg.is_bigendian) == ("32FC1", source.height, source.width, 0)
        z = np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)
        assert np.isfinite(z).any()
        assert not (z[np.isfinite(z)] <= 0).any()
        info = by_stamp["/camera/depth/camera_info"][key]
        assert (info.width, info.height) == (msg.width, msg.height)
        np.testing.assert_allclose(info.k, infos[key].k)  # same resolution: the camera's intrinsics
        np.testing.assert_allclose(info.p, infos[key].p)
        cloud = by_stamp["/camera/depth/points"][key]
        n = 2  # points_decimation's default: every 2nd pixel, organised
        assert (cloud.height, cloud.width) == (msg.height // n, msg.width // n)
        assert cloud.is_dense == bool(np.isfinite(z[::n, ::n]).all())
        fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
        v, u = np.mgrid[0 : msg.height : n, 0 : msg.width : n]
        expected = np.stack([(u - cx) * z[::n, ::n] / fx, (v - cy) * z[::n, ::n] / fy, z[::n, ::n]], -1)
        np.testing.assert_allclose(cloud_xyz(cloud), expected, rtol=1e-5, atol=1e-5)
        confidence = by_stamp["/camera/depth/confidence"][key]
        c = np.frombuffer(bytes(confidence.data), np.float32)
        assert confidence.encoding == "32FC1"
        assert ((c >= 0) & (c <= 1)).all()
