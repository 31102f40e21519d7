"""The node's frame handling, exercised without rclpy on genuine ROS 2 messages (rosbags)."""

import array
import threading
import tracemalloc

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.core.pointcloud import CloudPacker
from depth_estimation_ros.ros.messages import MessageTypes, camera_info_msg, depth_from_image, header, image_msg
from depth_estimation_ros.ros.pairing import FramePairing, InputMatch
from depth_estimation_ros.ros.parameters import DEFAULTS, PARAMETERS, validate
from depth_estimation_ros.ros.pipeline import BadFrame, DepthPipeline
from depth_estimation_ros.ros.worker import FrameWorker, LatestFrameSlot, PipelineStats

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


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "compressed"])
def test_a_frame_larger_than_max_image_pixels_is_a_bad_frame_named_by_its_size(estimator, compressed):
    """Checked before decoding (a compressed frame's size from its header): nothing is allocated for it."""
    import cv2

    image, info = frame(0)
    if compressed:
        _, png = cv2.imencode(".png", np.zeros((120, 160, 3), np.uint8))
        image = TYPES.CompressedImage(header=image.header, format="rgb8; png compressed bgr8", data=png.ravel())
    pipeline = DepthPipeline(estimator, TYPES, max_image_pixels=160 * 120 - 1)
    with pytest.raises(BadFrame, match=r"160x120 image \(19200 pixels\) is larger than max_image_pixels=19199"):
        pipeline.process(image, info, compressed=compressed)
    pipeline.max_image_pixels = 160 * 120  # live: the next frame passes
    assert "depth/image" in pipeline.process(image, info, compressed=compressed).messages


def test_a_camera_info_of_another_frame_is_noted_and_the_image_frame_wins(estimator):
    image, _ = frame(0)
    _, info = frame(0, frame_id="other_frame")
    output = DepthPipeline(estimator, TYPES).process(image, info)
    assert output.messages["depth/image"].header.frame_id == "cam_optical"
    assert "other_frame" in output.notes[0]


def sized(i, width, height, frame_id="cam_optical", offset_ns=0):
    """Frame i of a camera of this size (its own intrinsics); the CameraInfo ``offset_ns`` later by stamp."""
    camera = CameraModel.from_intrinsics(width * 0.8, width * 0.8, width / 2, height / 2, width, height)
    image, _ = frame(i, camera)
    h = header(1_700_000_000 + i, 500 + offset_ns, frame_id, TYPES)
    return image, camera_info_msg(camera, h, TYPES)


def paired(decisions):
    return [(d.image, d.camera_info) for d in decisions]


def test_an_image_that_comes_first_waits_for_the_camera_info_of_its_stamp_at_every_size():
    """The driver publishes the image, then its CameraInfo; the size changes between frames. Each
    image gets its own CameraInfo, never the one before it (of another size), which was there first."""
    pairing = FramePairing(wait=0.5)
    frames = [sized(i, w, h) for i, (w, h) in enumerate([(64, 48), (96, 72), (64, 48), (96, 72)])]
    for t, (image, info) in enumerate(frames):
        assert pairing.image(image, now=t) == []  # waits: the CameraInfo present is the last frame's
        assert paired(pairing.camera_info(info, now=t + 0.01)) == [(image, info)]
        assert (image.width, image.height) == (info.width, info.height)
    assert pairing.waiting == []
    later, info = sized(9, 64, 48)  # the usual order too: CameraInfo first, the image paired at once
    pairing.camera_info(info, now=10)
    assert paired(pairing.image(later, now=10)) == [(later, info)]


def test_an_image_whose_camera_info_does_not_come_in_time_is_a_bad_frame_naming_its_stamp():
    pairing = FramePairing(wait=0.1)
    (first, first_info), (second, second_info) = sized(1, 64, 48), sized(2, 64, 48)
    pairing.camera_info(first_info, now=0.0)
    pairing.image(first, now=0.0)  # paired at once
    assert pairing.image(second, now=1.0) == []
    assert pairing.expire(now=1.1) == []  # a CameraInfo at the deadline would still be in time
    (late,) = pairing.camera_info(second_info, now=1.2)  # its own, but too late: the wait ends first
    assert late.camera_info is None
    assert late.image is second
    assert late.reason == (
        "image 1700000002.000000500: no CameraInfo of its stamp and frame 'cam_optical' arrived "
        "within 0.1 s; the nearest had stamp 1700000001.000000500 (-1.000000 s), frame 'cam_optical'"
    )
    assert pairing.image(sized(3, 64, 48)[0], now=2.0) == []
    (expired,) = pairing.expire(now=2.5)  # the timer's call, when nothing else arrives
    assert "1700000003.000000500" in expired.reason
    assert FramePairing(wait=0).image(second, now=0)[0].reason.endswith("had arrived (camera_info_wait is 0)")


def test_a_stated_tolerance_pairs_stamps_a_few_microseconds_apart_and_only_those():
    image, info = sized(1, 64, 48, offset_ns=2_000)
    exact = FramePairing(wait=0.1)
    exact.camera_info(info, now=0)
    assert exact.image(image, now=0) == []  # 0: the same stamp only
    (missing,) = exact.close()
    assert "(+0.000002 s)" in missing.reason  # the log says how far off the stamps are
    assert "arrived before the input ended" in missing.reason
    tolerant = FramePairing(tolerance=1e-5, wait=0.1)
    assert tolerant.image(image, now=0) == []
    assert paired(tolerant.camera_info(info, now=0.01)) == [(image, info)]
    tolerant.camera_info(sized(2, 64, 48)[1], now=0.02)
    assert tolerant.image(sized(3, 64, 48)[0], now=0.03) == []  # 1 s from frame 2's: not within 10 µs


def test_the_nearest_camera_info_within_the_tolerance_wins():
    pairing = FramePairing(tolerance=0.6)
    image = sized(1, 64, 48)[0]
    near, far = sized(1, 96, 72, offset_ns=400)[1], sized(0, 64, 48)[1]
    pairing.camera_info(far, now=0)
    pairing.camera_info(near, now=0)
    assert paired(pairing.image(image, now=0)) == [(image, near)]


def test_a_camera_info_of_another_frame_never_describes_an_image():
    pairing = FramePairing(wait=0.1)
    image, _ = sized(1, 64, 48)
    left = sized(1, 64, 48, frame_id="left")[1]
    pairing.camera_info(left, now=0)
    assert pairing.image(image, now=0) == []  # the same stamp, another camera
    (missing,) = pairing.expire(now=1)
    assert "frame 'cam_optical'" in missing.reason
    assert missing.reason.endswith("(+0.000000 s), frame 'left'")
    anonymous = sized(1, 64, 48, frame_id="")[1]  # a CameraInfo without a frame_id describes any image
    pairing.camera_info(anonymous, now=2)
    assert paired(pairing.image(image, now=2)) == [(image, anonymous)]


def test_waiting_images_are_bounded_and_released_in_stamp_order():
    pairing = FramePairing(wait=1.0, max_pending=2)
    frames = [sized(i, 64, 48) for i in range(3)]
    assert pairing.image(frames[2][0], now=0) == []
    assert pairing.image(frames[1][0], now=0) == []
    (pushed,) = pairing.image(frames[0][0], now=0)  # a third: the first to arrive gives way
    assert pushed.image is frames[2][0]
    assert "arrived before 2 newer images were waiting too" in pushed.reason
    assert [d.image for d in pairing.expire(now=2)] == [frames[0][0], frames[1][0]]  # stamp order
    duplicate = sized(1, 64, 48)[0]  # two images of one stamp: one CameraInfo releases both
    pairing.image(frames[1][0], now=3)
    pairing.image(duplicate, now=3)
    assert [d.camera_info for d in pairing.camera_info(frames[1][1], now=3)] == [frames[1][1]] * 2
    pairing.image(frames[2][0], now=4)
    pairing.clear()  # forgets CameraInfo and waiting images, uncounted
    assert (pairing.waiting, pairing.close(), pairing.image(frames[1][0], now=5)) == ([], [], [])


def test_sparse_depth_is_chosen_when_the_image_is_paired():
    """A sparse depth image that arrives after its image but before its CameraInfo anchors it, as in
    the bag tool (both pair by stamp)."""
    pairing = FramePairing(wait=0.5, sparse=InputMatch(max_age=0.05))
    image, info = sized(1, 64, 48)
    sparse = image_msg(np.ones((12, 16), np.float32), "32FC1", image.header, TYPES)
    pairing.image(image, now=0)
    assert pairing.input(sparse, now=0.005) == []  # still waiting for its CameraInfo
    (decision,) = pairing.camera_info(info, now=0.01)
    assert decision.sparse is sparse
    other, other_info = sized(2, 64, 48)  # 1 s away: beyond sparse_depth_max_age
    pairing.camera_info(other_info, now=1)
    assert pairing.image(other, now=1) == []  # waits for a sparse depth of its own stamp
    (late,) = pairing.expire(now=1.6)
    assert late.sparse is None
    assert late.camera_info is other_info  # processed without it; the anchor holds its scale
    assert pairing.missing == {"sparse_depth": 1}


def sparse_of(image, stamp_offset_ns: int = 0, frame_id: str | None = None):
    """A sparse depth image of ``image``'s frame (or ``frame_id``), stamped ``stamp_offset_ns`` after it."""
    sec, nanosec = divmod(image.header.stamp.sec * 10**9 + image.header.stamp.nanosec + stamp_offset_ns, 10**9)
    at = header(sec, nanosec, frame_id or image.header.frame_id, TYPES)
    return image_msg(np.ones((12, 16), np.float32), "32FC1", at, TYPES)


def test_sparse_depth_published_after_its_image_and_camera_info_still_anchors_that_image():
    """A LiDAR is slower than the camera: its scan of a frame's stamp arrives after the frame and its
    CameraInfo. The image waits for it (bounded), instead of taking the previous scan."""
    pairing = FramePairing(wait=0.2, sparse=InputMatch(max_age=0.05))
    first, first_info = sized(1, 64, 48)
    second, second_info = sized(2, 64, 48)
    earlier = sparse_of(first)
    pairing.input(earlier, now=0)
    pairing.camera_info(first_info, now=0)
    assert [d.sparse for d in pairing.image(first, now=0)] == [earlier]  # its own was there: paired at once
    pairing.camera_info(second_info, now=1.0)
    assert pairing.image(second, now=1.0) == []  # the scan there (frame 1's) is not its own
    own = sparse_of(second, stamp_offset_ns=10_000_000)  # 10 ms later, within max_age
    (decision,) = pairing.input(own, now=1.1)
    assert (decision.image, decision.camera_info, decision.sparse) == (second, second_info, own)
    assert pairing.missing == {}


def test_a_scan_stamped_before_the_image_serves_once_a_later_one_shows_nothing_nearer_will_come():
    pairing = FramePairing(wait=1.0, sparse=InputMatch(max_age=0.05))
    image, info = sized(1, 64, 48)
    pairing.camera_info(info, now=0)
    before, after = sparse_of(image, -20_000_000), sparse_of(image, 40_000_000)  # 20 ms before, 40 ms after
    pairing.input(before, now=0)
    assert pairing.image(image, now=0) == []  # a nearer one might still come
    (decision,) = pairing.input(after, now=0.05)
    assert decision.sparse is before  # the nearest of the two


def test_a_frame_without_its_sparse_depth_says_why():
    """Nothing came; it came in another frame (not registered to the camera); or not near the stamp."""
    image, info = sized(1, 64, 48)
    reasons = []
    for sparse in (None, sparse_of(image, frame_id="lidar"), sparse_of(image, 300_000_000)):
        pairing = FramePairing(wait=0.1, sparse=InputMatch(max_age=0.05))
        if sparse is not None:
            pairing.input(sparse, now=0)
        pairing.camera_info(info, now=0)
        (decision,) = pairing.image(image, now=0) + pairing.expire(now=1)  # decided at once, or when the wait ends
        assert (decision.camera_info, decision.sparse) == (info, None)  # processed, the anchor holds
        reasons.append(decision.reason)
    assert reasons[0] == "no sparse_depth message has arrived"
    assert reasons[1] == ("sparse_depth arrives in frame 'lidar', not the image's 'cam_optical': it must be "
                          "registered to the camera image")  # fmt: skip
    assert reasons[2] == ("no sparse_depth within 0.05 s of image 1700000001.000000500; the nearest had stamp "
                          "1700000001.300000500 (+0.300000 s)")  # fmt: skip


def test_a_sparse_depth_that_cannot_be_read_costs_the_anchoring_not_the_frame_and_says_why(deployed):
    estimator = DepthEstimator(deployed["acan"][1], "onnxruntime", scale_source="sparse_depth")
    image, info = frame(0)
    colour = image_msg(np.zeros((12, 16, 3), np.uint8), "rgb8", image.header, TYPES)  # not a depth image
    output = DepthPipeline(estimator, TYPES).process(image, info, sparse=colour)
    assert "depth/image" in output.messages
    assert output.refused_input.startswith("its sparse_depth was refused: ")
    assert "rgb8" in output.refused_input
    assert DepthPipeline(estimator, TYPES).process(image, info).refused_input == ""


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("d", [0.1, float("nan"), 0, 0, 0], r"D must be finite, got \[0.1, nan"),
        ("k", [float("inf"), 0, 80, 0, 120, 60, 0, 0, 1], "K must be finite"),
        ("p", [120, 0, 80, 0, 0, float("nan"), 60, 0, 0, 0, 1, 0], "P must be finite"),
        ("k", [0, 0, 80, 0, 120, 60, 0, 0, 1], "positive focal lengths, got fx=0.0"),
        ("width", 0, r"camera width must be a positive integer.*, got 0"),
    ],
)
def test_a_camera_info_with_non_finite_or_zero_intrinsics_is_a_bad_frame_and_nothing_is_published(
    estimator, field, value, reason
):
    image, info = frame(2)
    setattr(info, field, np.asarray(value, dtype=np.float64) if field != "width" else value)
    with pytest.raises(BadFrame, match=reason) as error:
        DepthPipeline(estimator, TYPES).process(image, info)
    assert str(error.value).startswith("image 1700000002.000000500: CameraInfo (frame_id 'cam_optical')")


def test_parameters_are_validated_with_clear_messages(deployed, tmp_path):
    model = str(deployed["acan"][1])
    assert validate({"model": model})["points_decimation"] == 2
    assert validate({"model": model, "min_confidence": 1})["min_confidence"] == 1.0  # int accepted as float
    for values, message in [
        ({"model": model, "backend": "coreml"}, r"backend='coreml' must be one of"),
        ({"model": str(tmp_path / "none.onnx")}, r"model=.*none\.onnx.*no such file"),
        ({"model": ""}, "model is empty"),
        ({"model": model, "points_decimation": -2}, r"points_decimation=-2 must be in \[1, 64\]"),
        ({"model": model, "min_confidence": 2.0}, r"min_confidence=2.0 must be in \[0.0, 1.0\]"),
        ({"model": model, "points_max_range": float("nan")}, r"points_max_range=nan must be a finite number"),
        ({"model": model, "camera_info_tolerance": float("inf")}, r"must be a finite number"),
        ({"model": model, "camera_info_wait": 11.0}, r"camera_info_wait=11.0 must be in \[0.0, 10.0\]"),
        ({"model": model, "camera_info_max_age": 1.0}, r"camera_info_max_age was removed: .*camera_info_tolerance"),
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
        lambda reason, kind: (reasons.append((kind, reason)), reported.set()),
    )
    worker.start()
    image, _ = frame(0)
    worker.offer(image, None)  # no CameraInfo yet
    assert reported.wait(10)
    worker.offer(*frame(1))  # the same thread goes on with the next frame
    assert output.wait(10)
    worker.stop()
    assert reasons == [("bad input", "image 1700000000.000000500: no CameraInfo received yet for this image")]
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
    worker = FrameWorker(pipeline, published.append, lambda reason, kind: reported.set())
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
