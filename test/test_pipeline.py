"""The node's frame handling, exercised without rclpy on genuine ROS 2 messages (rosbags)."""

import array
import threading
import tracemalloc

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_estimation_ros.camera import CameraModel
from depth_estimation_ros.estimator import DepthEstimator
from depth_estimation_ros.messages import MessageTypes, camera_info_msg, depth_from_image, header, image_msg
from depth_estimation_ros.parameters import DEFAULTS, PARAMETERS, validate
from depth_estimation_ros.pipeline import BadFrame, CameraInfoPairing, DepthPipeline
from depth_estimation_ros.pointcloud import CloudPacker
from depth_estimation_ros.worker import FrameWorker, LatestFrameSlot, PipelineStats

STORE = get_typestore(Stores.ROS2_JAZZY)
TYPES = MessageTypes.from_typestore(STORE)
CAMERA = CameraModel.from_intrinsics(120.0, 120.0, 79.5, 59.5, 160, 120, frame_id="cam_optical")


def frame(i, camera=CAMERA, frame_id="cam_optical"):
    rgb = np.random.default_rng(i).integers(0, 256, (camera.height, camera.width, 3), dtype=np.uint8)
    h = header(1_700_000_000 + i, 500, frame_id, TYPES)
    return image_msg(rgb, "rgb8", h, TYPES), camera_info_msg(camera, h, TYPES)


@pytest.fixture(scope="module")
def estimator(deployed):
    return DepthEstimator(deployed["acan"][1], "onnxruntime")


def test_outputs_carry_the_input_stamp_and_describe_the_depth_image(estimator):
    pipeline = DepthPipeline(estimator, TYPES, publish_raw_depth=True, points_decimation=2)
    image, info = frame(3)
    output = pipeline.process(image, info)
    assert set(output.messages) == {"depth/image", "depth/image_raw", "depth/camera_info", "depth/points",
                                    "depth/confidence"}  # fmt: skip
    for msg in output.messages.values():
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (1_700_000_003, 500,
                                                                                         "cam_optical")  # fmt: skip
    depth = output.messages["depth/image"]
    assert (depth.encoding, depth.height, depth.width) == ("32FC1", 120, 160)
    metres = depth_from_image(depth)
    assert np.isfinite(metres).all()
    assert metres.min() >= 0.5
    assert metres.max() <= 10
    info_out = output.messages["depth/camera_info"]
    assert (info_out.width, info_out.height) == (depth.width, depth.height)
    assert np.allclose(info_out.k, CAMERA.K.ravel())
    cloud = output.messages["depth/points"]
    assert (cloud.height, cloud.width, cloud.point_step) == (60, 80, 32)  # decimated by 2, organised, xyzrgb
    raw = output.messages["depth/image_raw"]
    assert raw.encoding == "16UC1"
    assert np.array_equal(depth_from_image(raw), np.round(metres * 1000) / 1000)
    assert {"decode", "preprocess", "inference", "postprocess", "cloud", "total"} <= set(output.timings)


def test_network_resolution_output_publishes_the_matching_camera_info(deployed):
    estimator = DepthEstimator(deployed["acan"][1], "onnxruntime", output_resolution="network")
    output = DepthPipeline(estimator, TYPES).process(*frame(1))
    depth, info = output.messages["depth/image"], output.messages["depth/camera_info"]
    assert (depth.width, depth.height) == (info.width, info.height) == (96, 64)
    assert np.allclose(np.asarray(info.k).reshape(3, 3), CAMERA.resize(96, 64).K)


def test_outputs_match_the_estimator_and_packer_run_on_their_own(estimator):
    image, info = frame(5)
    output = DepthPipeline(estimator, TYPES, points_max_range=6.0).process(image, info)
    rgb = np.frombuffer(image.data, np.uint8).reshape(120, 160, 3)
    result = estimator(rgb, CAMERA)
    np.testing.assert_array_equal(depth_from_image(output.messages["depth/image"]), result.depth)
    confidence = output.messages["depth/confidence"]
    np.testing.assert_array_equal(np.frombuffer(confidence.data, "<f4").reshape(120, 160), result.confidence)
    cloud = CloudPacker(rgb=True, max_range=6.0).pack(result.depth, CAMERA, rgb)
    np.testing.assert_array_equal(np.asarray(output.messages["depth/points"].data), cloud.data)


def test_reused_buffers_are_the_last_frames_only_when_asked_for(estimator):
    def data(output):
        return [output.messages[t].data for t in ("depth/image", "depth/confidence", "depth/points")]

    reusing = DepthPipeline(estimator, TYPES, reuse_buffers=True)
    first, second = data(reusing.process(*frame(1))), data(reusing.process(*frame(2)))
    assert all(a is b for a, b in zip(first, second, strict=True))
    fresh = DepthPipeline(estimator, TYPES)
    kept = data(fresh.process(*frame(1)))
    snapshot = [np.array(d) for d in kept]
    fresh.process(*frame(2))
    assert all(np.array_equal(a, b) for a, b in zip(kept, snapshot, strict=True))  # held messages stay intact


def test_rclpy_messages_carry_the_same_bytes_without_a_copy_per_output(estimator):
    pytest.importorskip("sensor_msgs.msg")
    rclpy_types = MessageTypes.from_rclpy()
    ours = DepthPipeline(estimator, rclpy_types, reuse_buffers=True).process(*frame(4))
    reference = DepthPipeline(estimator, TYPES).process(*frame(4))
    for topic in ("depth/image", "depth/confidence", "depth/points"):
        data = ours.messages[topic].data
        assert isinstance(data, array.array)
        assert bytes(data) == np.asarray(reference.messages[topic].data).tobytes()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: (frame(0)[0], None), "no CameraInfo"),
        (lambda: (frame(0)[0], frame(0, CAMERA.resize(320, 240))[1]), "image is 160x120"),
        (lambda: (image_msg(np.zeros((120, 160), np.float32), "32FC1", frame(0)[0].header, TYPES), frame(0)[1]),
         "32FC1"),
    ],
)  # fmt: skip
def test_bad_frames_raise_bad_frame_with_the_reason(estimator, make, reason):
    with pytest.raises(BadFrame, match=reason):
        DepthPipeline(estimator, TYPES).process(*make())


def test_a_camera_info_of_another_frame_is_noted_and_the_image_frame_wins(estimator):
    image, _ = frame(0)
    _, info = frame(0, frame_id="other_frame")
    output = DepthPipeline(estimator, TYPES).process(image, info)
    assert output.messages["depth/image"].header.frame_id == "cam_optical"
    assert "other_frame" in output.notes[0]


def test_images_pair_with_the_camera_info_of_their_stamp_else_a_recent_one_of_their_frame():
    pairing = CameraInfoPairing(keep=3, max_age=1.5)
    images, infos = zip(*(frame(i) for i in range(5)), strict=True)
    assert pairing.match(images[0]) == (None, "no CameraInfo received yet")
    for info in infos[:4]:
        pairing.add(info)
    assert pairing.match(images[2]) == (infos[2], "")
    assert pairing.match(images[4])[0] is infos[3]  # not arrived yet: the latest, 1 s older
    info, note = pairing.match(images[0])  # forgotten (keep=3), and the latest is 3 s away
    assert info is None
    assert "+0.000" not in note
    assert "camera_info_max_age is 1.5 s" in note


def test_a_camera_info_of_another_frame_or_too_old_never_describes_an_image():
    pairing = CameraInfoPairing(max_age=0.5)
    pairing.add(frame(0, frame_id="left")[1])
    info, note = pairing.match(frame(0)[0])
    assert info is None
    assert "'left'" in note
    assert "'cam_optical'" in note
    pairing.add(frame(0)[1])
    assert pairing.match(frame(1)[0])[0] is None  # 1 s newer than the only CameraInfo
    pairing.clear()
    assert pairing.match(frame(0)[0]) == (None, "no CameraInfo received yet")


def test_parameters_are_validated_with_clear_messages(deployed, tmp_path):
    model = str(deployed["acan"][1])
    assert validate({"model": model})["points_decimation"] == 2
    assert validate({"model": model, "min_confidence": 1})["min_confidence"] == 1.0  # int accepted as float
    for values, message in [
        ({"model": model, "backend": "openvino"}, r"backend='openvino' must be one of"),
        ({"model": str(tmp_path / "none.onnx")}, r"model=.*none\.onnx.*no such file"),
        ({"model": ""}, "model is empty"),
        ({"model": model, "points_decimation": -2}, r"points_decimation=-2 must be in \[1, 64\]"),
        ({"model": model, "min_confidence": 2.0}, r"min_confidence=2.0 must be in \[0.0, 1.0\]"),
        ({"model": model, "points_max_range": float("nan")}, r"points_max_range=nan must be a finite number"),
        ({"model": model, "camera_info_max_age": float("inf")}, r"must be a finite number"),
        ({"model": model, "publish_points": "yes"}, r"publish_points='yes' must be a bool"),
        ({"model": model, "decimation": 2}, r"unknown parameter 'decimation'"),
    ]:
        with pytest.raises(ValueError, match=message):
            validate(values)
    assert all(p.description for p in PARAMETERS)
    assert DEFAULTS["input_reliability"] == "auto"
    assert DEFAULTS["input_depth"] == 1


def test_the_slot_keeps_only_the_newest_item_and_counts_drops():
    slot = LatestFrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert (slot.take(), slot.dropped) == (3, 2)
    assert slot.take(timeout=0) is None
    slot.close()
    assert slot.take() is None


def test_frames_offered_faster_than_inference_keep_memory_bounded_and_output_one_frame_old(estimator):
    """The load test: a burst of frames while inference is busy leaves one frame waiting, not a queue."""
    published, gate, busy = [], threading.Event(), threading.Event()
    pipeline = DepthPipeline(estimator, TYPES)
    original = pipeline.process

    def slow_process(*args, **kwargs):  # inference that takes as long as the test wants
        busy.set()
        gate.wait()
        return original(*args, **kwargs)

    pipeline.process = slow_process
    done = threading.Semaphore(0)  # one release per published frame: no race between wait and clear

    def publish(output):
        published.append(output.messages["depth/image"].header.stamp.sec)
        done.release()

    worker = FrameWorker(pipeline, publish)
    worker.start()
    frames = [frame(i) for i in range(200)]
    worker.offer(*frames[0])
    busy.wait(10)  # the worker is now inside inference with frame 0
    tracemalloc.start()
    for f in frames[1:]:
        worker.offer(*f)  # never blocks
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frame_bytes = 160 * 120 * 3
    assert held < 20 * frame_bytes  # not 199 frames queued up
    gate.set()
    assert done.acquire(timeout=10)  # frame 0 published
    assert done.acquire(timeout=10)  # then the newest waiting frame
    worker.stop()
    assert published[0] == 1_700_000_000
    assert published[-1] == 1_700_000_199  # the newest frame, not the next in a queue
    assert len(published) == 2
    assert worker.slot.dropped == 198
    summary = worker.stats.summary(worker.slot.dropped)
    assert summary["dropped frames"] == "198"
    assert "inference latency (ms)" in summary


def test_bad_frames_are_reported_and_the_worker_keeps_going(estimator):
    published, reasons = [], []
    reported, output = threading.Event(), threading.Event()
    worker = FrameWorker(
        DepthPipeline(estimator, TYPES),
        lambda out: (published.append(out), output.set()),
        lambda reason: (reasons.append(reason), reported.set()),
    )
    worker.start()
    image, _ = frame(0)
    worker.offer(image, None)  # no CameraInfo yet
    assert reported.wait(10)
    worker.offer(*frame(1))  # the same thread goes on with the next frame
    assert output.wait(10)
    worker.stop()
    assert reasons == ["no CameraInfo received yet for this image"]
    assert len(published) == 1
    assert worker.stats.bad_frames == 1


def test_an_unexpected_failure_is_counted_with_its_reason_and_the_thread_goes_on(estimator):
    pipeline, published, reported = DepthPipeline(estimator, TYPES), [], threading.Event()
    original = pipeline.process

    def process(image, info, compressed=False, sparse=None):
        if image.header.stamp.sec == 1_700_000_000:
            raise cv2.error("OpenCV(5.0) resize.cpp: (-215:Assertion failed) !ssize.empty()")
        return original(image, info, compressed, sparse)

    pipeline.process = process
    worker = FrameWorker(pipeline, published.append, lambda reason: reported.set())
    worker.start()
    worker.offer(*frame(0))
    assert reported.wait(10)
    worker.offer(*frame(1))
    worker.stop()
    assert worker.alive is False
    assert [o.messages["depth/image"].header.stamp.sec for o in published] == [1_700_000_001]
    summary = worker.stats.summary(0)
    assert summary["bad frames (error)"] == "1"
    assert "Assertion failed" in summary["last bad frame"]


def test_stats_report_rates_over_a_window():
    stats = PipelineStats(window=2.0)
    for t in (0.0, 0.5, 1.0, 1.5):
        stats.on_received(now=t)
    stats.on_published({"inference": 0.02}, now=1.5)
    summary = stats.summary(dropped=3, now=1.9)
    assert summary["input rate (Hz)"] == "2.00"
    assert summary["output rate (Hz)"] == "0.50"
    assert summary["inference latency (ms)"] == "20.0"
    assert summary["dropped frames"] == "3"
    assert stats.summary(dropped=3, now=10.0)["input rate (Hz)"] == "0.00"
