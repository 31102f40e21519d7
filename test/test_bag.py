"""rosbag2 in, rosbag2 out with the node's pipeline; outputs read back with an independent reader.

Bags are written with rosbags (genuine ROS 2 message definitions, CDR); processed MCAP output is
decoded by mcap-ros2-support, a separate implementation of the format and of CDR.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import relative_oracle
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.rosbag2 import Reader, Writer

from depth_estimation_ros.commands.bag import main as bag_main
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.core.files import TEMP_PREFIX
from depth_estimation_ros.core.scenes import render_scene
from depth_estimation_ros.ros.bag import BagError, namespace_of, process_bag, storage_plugin, typestore_for
from depth_estimation_ros.ros.messages import MessageTypes, camera_info_msg, depth_from_image, header, image_msg
from depth_estimation_ros.ros.synthetic_bag import START_NS, write_synthetic_bag
from training.synth_cli import main as synth_main

H, W, FRAMES = 64, 96, 4
STORE = typestore_for("humble")
TYPES = MessageTypes.from_typestore(STORE)
IMAGE, INFO, CLOUD = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "sensor_msgs/msg/PointCloud2"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
OUTPUTS = {
    "/camera/depth/image": IMAGE,
    "/camera/depth/image_raw": IMAGE,
    "/camera/depth/camera_info": INFO,
    "/camera/depth/points": CLOUD,
    "/camera/depth/confidence": IMAGE,
}
INPUTS = {"/camera/image_raw": IMAGE, "/camera/camera_info": INFO, "/camera/depth_gt": IMAGE}


@pytest.fixture(scope="module")
def estimator(deployed):
    return DepthEstimator(deployed["acan"][1], "onnxruntime")


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "sequence"
    return path, write_synthetic_bag(path, frames=FRAMES, height=H, width=W, seed=3)


@pytest.fixture(scope="module")
def processed(sequence, estimator, tmp_path_factory):
    out = tmp_path_factory.mktemp("processed") / "depth"
    summary = process_bag(estimator, sequence[0], out, pipeline_options={"publish_raw_depth": True}, progress=False)
    return out, summary


@dataclass
class Decoded:
    schema: str
    log_time_ns: int
    ros_msg: object


def read_mcap(bag: Path) -> dict[str, list[Decoded]]:
    """topic → messages in log-time order, decoded by mcap-ros2-support."""
    (storage_file,) = bag.glob("*.mcap")
    topics = defaultdict(list)
    with storage_file.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=True):
            topics[channel.topic].append(Decoded(schema.name, message.log_time, decoded))
    return topics


def read_rosbags(bag: Path) -> dict[str, list]:
    """topic → (msgtype, log time, message), decoded by rosbags."""
    topics = defaultdict(list)
    with Reader(bag) as reader:
        for connection, timestamp, raw in reader.messages():
            topics[connection.topic].append(
                (connection.msgtype, timestamp, STORE.deserialize_cdr(raw, connection.msgtype))
            )
    return topics


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def write_bag(path: Path, messages: list[tuple[str, str, int, object]], storage: str = "mcap") -> Path:
    """A rosbag2 of (topic, msgtype, log time ns, message) in the given order."""
    with Writer(path, version=8, storage_plugin=storage_plugin(storage)) as writer:
        connections = {}
        for topic, msgtype, timestamp, message in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=STORE)
            writer.write(connections[topic], timestamp, STORE.serialize_cdr(message, msgtype))
    return path


def frame(i: int, info_size: tuple[int, int] | None = None, frame_id: str = "cam"):
    """(stamp ns, rgb8 Image, CameraInfo) of frame i; CameraInfo of another (W, H) if info_size."""
    sample = render_scene(7, H, W, pan_deg=2.0 * i)
    stamp = START_NS + i * 100_000_000
    head = header(stamp // 10**9, stamp % 10**9, frame_id, TYPES)
    camera = CameraModel(W, H, sample["K"], frame_id=frame_id)
    if info_size is not None:
        camera = camera.resize(*info_size)
    return stamp, image_msg(sample["image"], "rgb8", head, TYPES), camera_info_msg(camera, head, TYPES)


def no_partial_left(out: Path) -> bool:
    return not out.exists() and not list(out.parent.glob(f"{TEMP_PREFIX}*"))


# ---------------------------------------------------------------------------------------------


def test_processed_bag_holds_what_the_node_publishes(sequence, processed):
    bag, written = sequence
    out, summary = processed
    stamps = written["stamps_ns"]
    assert (summary["frames"], summary["bad_frames"], summary["unpaired_frames"]) == (FRAMES, 0, 0)
    assert summary["image_topic"] == "/camera/image_raw"  # the 32FC1 depth_gt topic is not a candidate
    assert summary["camera_info_topic"] == "/camera/camera_info"
    assert summary["storage"] == "mcap"
    assert summary["topics"] == dict.fromkeys(sorted({**OUTPUTS, **INPUTS}), FRAMES)
    assert summary["frames_per_second"] > 0

    topics = read_mcap(out)
    assert {t: m[0].schema for t, m in topics.items()} == {**OUTPUTS, **INPUTS}
    for topic, messages in topics.items():
        assert len(messages) == FRAMES, topic
        assert [stamp_ns(m.ros_msg) for m in messages] == stamps, topic  # the input's stamps, in order
        assert [m.log_time_ns for m in messages] == stamps, topic  # written at the input's log time
        assert {m.ros_msg.header.frame_id for m in messages} == {"camera_optical_frame"}, topic

    with Reader(bag) as reader:  # inputs copied unchanged: the same CDR bytes
        recorded = [(c.topic, bytes(raw)) for c, _, raw in reader.messages()]
    with (out / f"{out.name}.mcap").open("rb") as stream:
        copied = [(c.topic, bytes(m.data)) for _, c, m in make_reader(stream).iter_messages(topics=list(INPUTS))]
    assert sorted(copied) == sorted(recorded)
    inputs = read_rosbags(bag)

    for i in range(FRAMES):
        depth_msg = topics["/camera/depth/image"][i].ros_msg
        assert (depth_msg.encoding, depth_msg.height, depth_msg.width, depth_msg.step) == ("32FC1", H, W, 4 * W)
        assert depth_msg.is_bigendian == 0
        depth = np.frombuffer(depth_msg.data, "<f4").reshape(H, W)
        assert np.isfinite(depth).all()
        assert depth.min() >= 0.5 - 1e-5  # metres, within the model's range
        assert depth.max() <= 10 + 1e-5

        info = topics["/camera/depth/camera_info"][i].ros_msg
        assert (info.width, info.height) == (depth_msg.width, depth_msg.height)
        assert np.allclose(info.k, inputs["/camera/camera_info"][i][2].k)  # same size: the input's intrinsics

        cloud = topics["/camera/depth/points"][i].ros_msg
        assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (H, W, 32, 32 * W)  # organised
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
        points = np.frombuffer(cloud.data, "<f4").reshape(H, W, 8)
        assert np.allclose(points[..., 2], depth)  # z is the depth of the same pixel

        raw = topics["/camera/depth/image_raw"][i].ros_msg
        assert (raw.encoding, raw.height, raw.width, raw.step) == ("16UC1", H, W, 2 * W)
        millimetres = np.frombuffer(raw.data, "<u2").reshape(H, W)
        assert np.array_equal(millimetres, np.round(depth.astype(np.float64) * 1000).astype(np.uint16))

        confidence = np.frombuffer(topics["/camera/depth/confidence"][i].ros_msg.data, "<f4")
        assert confidence.size == H * W
        assert confidence.min() >= 0
        assert confidence.max() <= 1


def test_sqlite_input_gives_sqlite_output_and_the_cli_can_change_it(estimator, deployed, tmp_path, capsys):
    bag = write_synthetic_bag(tmp_path / "in", frames=2, height=H, width=W, storage="sqlite3")["output"]
    summary = process_bag(estimator, bag, tmp_path / "out", progress=False)
    assert summary["storage"] == "sqlite3"
    assert [p.suffix for p in (tmp_path / "out").glob("*.db3")] == [".db3"]
    topics = read_rosbags(tmp_path / "out")
    expected = {t: 2 for t in {**OUTPUTS, **INPUTS} if t != "/camera/depth/image_raw"}  # raw depth is off
    assert {t: len(m) for t, m in topics.items()} == expected
    depth = depth_from_image(topics["/camera/depth/image"][0][2])
    assert depth.shape == (H, W)
    assert np.isfinite(depth).all()

    args = ["--model", str(deployed["acan"][1]), "--backend", "onnxruntime", "--input", str(bag)]
    args += ["--output", str(tmp_path / "cli"), "--storage", "mcap", "--no-points", "--no-copy-input"]
    assert bag_main(args) == 0
    assert "2 frames from /camera/image_raw" in capsys.readouterr().out
    topics = read_mcap(tmp_path / "cli")
    assert sorted(topics) == ["/camera/depth/camera_info", "/camera/depth/confidence", "/camera/depth/image"]


def test_compressed_images_pair_with_camera_info_logged_after_them_and_never_with_another_frames(estimator, tmp_path):
    """CameraInfo of an image's stamp may be logged after it; an image without one of its own is a
    bad frame, not given the one before it."""
    messages = []
    for i in range(3):
        stamp, image, info = frame(i)
        _, png = cv2.imencode(".png", cv2.cvtColor(np.asarray(image.data).reshape(H, W, 3), cv2.COLOR_RGB2BGR))
        compressed = TYPES.CompressedImage(header=image.header, format="rgb8; png compressed bgr8", data=png.ravel())
        messages.append(("/cam/front/image_raw/compressed", COMPRESSED, stamp, compressed))
        if i != 1:  # frame 1 has no CameraInfo of its own
            messages.append(("/cam/front/camera_info", INFO, stamp + 5_000_000, info))
    bag = write_bag(tmp_path / "in", messages)
    summary = process_bag(estimator, bag, tmp_path / "out", progress=False)
    assert summary["compressed"]
    assert summary["image_topic"] == "/cam/front/image_raw/compressed"
    assert (summary["frames"], summary["bad_frames"], summary["unpaired_frames"]) == (2, 1, 1)
    assert summary["bad_frame_reasons"] == [
        "image 1700000000.100000000: no CameraInfo of its stamp and frame 'cam' arrived within 0.1 s; the nearest "
        "had stamp 1700000000.000000000 (-0.100000 s), frame 'cam'"
    ]
    topics = read_mcap(tmp_path / "out")
    images = [m[2] for m in messages if m[1] == COMPRESSED]
    assert [m.log_time_ns for m in topics["/cam/front/depth/image"]] == [images[0], images[2]]
    assert all(m.ros_msg.header.frame_id == "cam" for m in topics["/cam/front/depth/points"])


def test_images_logged_before_their_camera_info_at_changing_sizes_get_their_own_within_the_wait(estimator, tmp_path):
    """The driver's order (image, then its CameraInfo), the size changing between frames: each
    frame is processed with its own intrinsics; a CameraInfo logged later than ``camera_info_wait``
    after its image is refused, as the node refuses one that arrives that late."""
    sizes = [(48, 64), (72, 96), (48, 64), (60, 80)]
    bag = tmp_path / "in"
    written = write_synthetic_bag(bag, frames=4, sizes=sizes, seed=3, camera_info_delay=0.02)
    assert written["sizes"] == sizes
    recorded = read_rosbags(bag)
    info_log = [t for _, t, _ in recorded["/camera/camera_info"]]
    assert info_log == [t + 20_000_000 for _, t, _ in recorded["/camera/image_raw"]]
    summary = process_bag(estimator, bag, tmp_path / "out", progress=False, copy_input=False)
    assert (summary["frames"], summary["bad_frames"]) == (4, 0)
    topics = read_mcap(tmp_path / "out")
    assert [(m.ros_msg.height, m.ros_msg.width) for m in topics["/camera/depth/image"]] == sizes
    infos = {stamp_ns(m): m for _, _, m in recorded["/camera/camera_info"]}
    assert len({tuple(m.k) for m in infos.values()}) == 3  # three sizes, three sets of intrinsics
    for decoded in topics["/camera/depth/camera_info"]:
        own = infos[stamp_ns(decoded.ros_msg)]
        assert (decoded.ros_msg.width, decoded.ros_msg.height) == (own.width, own.height)
        np.testing.assert_allclose(decoded.ros_msg.k, own.k)

    with pytest.raises(BagError, match=r"\(4 of 4 bad, e.g. image 1700000000.000000000: no CameraInfo of its stamp"):
        process_bag(estimator, bag, tmp_path / "late", progress=False, camera_info_wait=0.01)
    assert no_partial_left(tmp_path / "late")


def test_a_bag_in_which_no_frame_can_be_processed_is_an_error(estimator, tmp_path):
    messages = []
    for i in range(3):
        stamp, image, info = frame(i, info_size=(2 * W, 2 * H))
        messages += [("/camera/image_raw", IMAGE, stamp, image), ("/camera/camera_info", INFO, stamp, info)]
    bag = write_bag(tmp_path / "in", messages)
    with pytest.raises(BagError, match=r"no frame of /camera/image_raw could be processed \(3 of 3 bad") as error:
        process_bag(estimator, bag, tmp_path / "out", progress=False)
    assert "96x64" in error.value.reasons[0]  # the image's size and the CameraInfo's
    assert "192x128" in error.value.reasons[0]
    assert no_partial_left(tmp_path / "out")  # an empty, complete-looking bag is never left


@pytest.mark.parametrize("case", ["unknown image topic", "no camera info", "two colour images"])
def test_missing_or_ambiguous_topics_are_errors_listing_the_topics(case, sequence, estimator, tmp_path):
    stamp, image, info = frame(0)
    bag, kwargs = sequence[0], {}
    if case == "unknown image topic":
        kwargs = {"image_topic": "/nope"}
        listed = ["/camera/image_raw (sensor_msgs/msg/Image", "/camera/depth_gt (sensor_msgs/msg/Image"]
    elif case == "no camera info":
        bag = write_bag(tmp_path / "in", [("/camera/image_raw", IMAGE, stamp, image), ("/tf_info", INFO, stamp, info)])
        listed = ["no CameraInfo topic in the namespace /camera", "/tf_info (sensor_msgs/msg/CameraInfo, 1 msgs)"]
    else:
        bag = write_bag(tmp_path / "in", [("/left/image", IMAGE, stamp, image), ("/right/image", IMAGE, stamp, image)])
        listed = ["several colour Image or CompressedImage topics", "/left/image (sensor_msgs/msg/Image, 1 msgs)"]
    with pytest.raises(ValueError, match="topics: ") as error:
        process_bag(estimator, bag, tmp_path / "out", progress=False, **kwargs)
    for text in listed:
        assert text in str(error.value)
    assert no_partial_left(tmp_path / "out")


class FailingEstimator(DepthEstimator):
    """The real estimator, raising on its second frame."""

    def __init__(self, backend, error: BaseException):
        super().__init__(backend)
        self.calls, self.error = 0, error

    def __call__(self, image, camera, **options):
        self.calls += 1
        if self.calls == 2:
            raise self.error
        return super().__call__(image, camera, **options)


def test_an_error_in_one_frame_skips_that_frame_only(sequence, estimator, tmp_path):
    summary = process_bag(FailingEstimator(estimator.backend, RuntimeError("inference failed")), sequence[0],
                          tmp_path / "out", progress=False)  # fmt: skip
    assert (summary["frames"], summary["bad_frames"]) == (FRAMES - 1, 1)
    assert "RuntimeError: inference failed" in summary["bad_frame_reasons"][0]
    assert len(read_mcap(tmp_path / "out")["/camera/depth/image"]) == FRAMES - 1


def test_an_interrupted_run_leaves_no_output(sequence, estimator, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        process_bag(FailingEstimator(estimator.backend, KeyboardInterrupt()), sequence[0], out, progress=False)
    assert no_partial_left(out)


def test_a_bad_model_path_is_a_one_line_error_and_writes_nothing(sequence, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--model", str(tmp_path / "missing.onnx"), "--input", str(sequence[0]), "--output", str(out)]
    assert bag_main(args) == 1
    error = capsys.readouterr().err
    assert error.startswith("depth-estimation bag: error:")
    assert error.count("\n") == 1
    assert no_partial_left(out)


def test_an_existing_output_is_refused(sequence, estimator, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=f"{out} exists already"):
        process_bag(estimator, sequence[0], out, progress=False)
    with pytest.raises(ValueError, match="exists already"):
        write_synthetic_bag(out, frames=1, height=H, width=W)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(f"{TEMP_PREFIX}*"))


def test_copies_get_a_definition_and_type_hash_also_from_bags_without_them(sequence):
    """Humble bags carry no type hashes; some bags no definitions: hash the recorded one, else the store's."""
    from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat

    from depth_estimation_ros.ros.bag import _definition

    none = MessageDefinition(MessageDefinitionFormat.NONE, "")
    with Reader(sequence[0]) as reader:
        for connection in reader.connections:
            recorded = (connection.msgdef.data, connection.digest)
            assert _definition(connection._replace(digest=""), STORE) == recorded
            assert _definition(connection._replace(digest="", msgdef=none), STORE)[1] == connection.digest
            assert _definition(connection._replace(digest="", msgdef=none, msgtype="my_pkg/msg/Thing"), STORE) is None


def test_output_topics_are_the_nodes_names_in_the_image_namespace():
    assert namespace_of("/camera/image_raw") == "/camera"
    assert namespace_of("/image_raw") == ""
    assert namespace_of("/a/b/image_raw/compressed", COMPRESSED) == "/a/b"
    assert namespace_of("/a/b/compressed") == "/a/b"  # a raw Image topic keeps its own last name


def test_synth_cli_writes_a_camera_sequence_bag(tmp_path, capsys):
    out = tmp_path / "seq"
    args = ["--bag", str(out), "--frames", "3", "--height", "48", "--width", "64", "--storage", "sqlite3"]
    assert synth_main([*args, "--rate", "20", "--namespace", "front"]) == 0
    assert "wrote 3 indoor frames" in capsys.readouterr().out
    topics = read_rosbags(out)
    types = {t: {m[0] for m in messages} for t, messages in topics.items()}
    assert types == {"/front/image_raw": {IMAGE}, "/front/camera_info": {INFO}, "/front/depth_gt": {IMAGE}}
    stamps = [START_NS + i * 50_000_000 for i in range(3)]
    for messages in topics.values():
        assert [stamp_ns(m[2]) for m in messages] == stamps  # one stamp per frame, on every topic
        assert [m[1] for m in messages] == stamps  # log time = stamp
    image, info, depth = (topics[f"/front/{t}"][0][2] for t in ("image_raw", "camera_info", "depth_gt"))
    assert (image.encoding, image.width, image.height, depth.encoding) == ("rgb8", 64, 48, "32FC1")
    assert info.distortion_model == "plumb_bob"
    assert np.array_equal(info.d, np.zeros(5))
    assert np.allclose(
        np.asarray(info.p).reshape(3, 4), np.hstack([np.asarray(info.k).reshape(3, 3), np.zeros((3, 1))])
    )
    metres = depth_from_image(depth)
    assert np.isfinite(metres).all()  # indoor: all valid
    assert metres.min() >= 0.5
    assert metres.max() <= 10
    first, last = (np.asarray(topics["/front/image_raw"][i][2].data) for i in (0, 2))
    assert not np.array_equal(first, last)  # the camera pans

    assert synth_main(["--frames", "1"]) == 2  # neither a folder nor --bag
    assert synth_main([str(tmp_path / "png"), "--bag", str(tmp_path / "b")]) == 2  # both
    assert "one of the two" in capsys.readouterr().err


def test_a_relative_model_comes_out_metric_with_the_bags_sparse_depth(tmp_path):
    """Sparse depth at 2 % of a half-resolution grid anchors a relative model: AbsRel against the
    ground truth below 1 % (without anchoring the output is not metres at all)."""
    from depth_estimation_ros.ros.messages import image_to_rgb

    bag = tmp_path / "sparse"
    written = write_synthetic_bag(bag, frames=FRAMES, height=H, width=W, seed=3, sparse_fraction=0.02,
                                  sparse_size=(H // 2, W // 2))  # fmt: skip
    assert written["topics"]["/camera/sparse_depth"] == (IMAGE, FRAMES)
    recorded = read_rosbags(bag)
    truth = [depth_from_image(m) for _, _, m in recorded["/camera/depth_gt"]]
    frames = [(image_to_rgb(m), d) for (_, _, m), d in zip(recorded["/camera/image_raw"], truth, strict=True)]
    estimator = DepthEstimator(relative_oracle(frames), scale_source="sparse_depth")
    out = tmp_path / "out"
    summary = process_bag(estimator, bag, out, progress=False, copy_input=False)
    assert summary["frames"] == FRAMES
    assert summary["anchoring"] == {"fitted": FRAMES}  # every frame by its own scan, and said so
    messages = read_mcap(out)["/camera/depth/image"]
    for gt, msg in zip(truth, messages, strict=True):  # log-time order: the bag's
        depth = depth_from_image(msg.ros_msg)
        abs_rel = np.nanmean(np.abs(depth - gt) / gt)
        assert abs_rel < 0.01, abs_rel


def test_sparse_depth_logged_after_its_image_and_camera_info_anchors_that_very_frame(tmp_path):
    """The LiDAR's scan of a frame is logged 50 ms after the frame (within camera_info_wait): every
    frame waits for its own, so even the first frame of a relative model comes out metric (taking
    the nearest scan already logged, as before, would leave frame 0 without a scale, a bad frame,
    and anchor each later frame to the previous frame's scan)."""
    from depth_estimation_ros.ros.messages import image_to_rgb

    bag = tmp_path / "late_sparse"
    write_synthetic_bag(bag, frames=FRAMES, height=H, width=W, seed=3, sparse_fraction=0.02,
                        sparse_size=(H // 2, W // 2), sparse_delay=0.05)  # fmt: skip
    recorded = read_rosbags(bag)
    logged = [t for _, t, _ in recorded["/camera/sparse_depth"]]
    images = [t for _, t, _ in recorded["/camera/image_raw"]]
    assert all(s > i for s, i in zip(logged, images, strict=True))  # after its image, in the bag
    truth = [depth_from_image(m) for _, _, m in recorded["/camera/depth_gt"]]
    frames = [(image_to_rgb(m), d) for (_, _, m), d in zip(recorded["/camera/image_raw"], truth, strict=True)]
    estimator = DepthEstimator(relative_oracle(frames), scale_source="sparse_depth")
    summary = process_bag(estimator, bag, tmp_path / "out", progress=False, copy_input=False)
    assert (summary["frames"], summary["bad_frames"], summary["frames_without_sparse_depth"]) == (FRAMES, 0, 0)
    messages = read_mcap(tmp_path / "out")["/camera/depth/image"]
    for gt, msg in zip(truth, messages, strict=True):
        abs_rel = np.nanmean(np.abs(depth_from_image(msg.ros_msg) - gt) / gt)
        assert abs_rel < 0.01, abs_rel


def test_sparse_depth_anchoring_is_refused_for_a_bag_without_a_sparse_topic(sequence, tmp_path, hf_folders):
    with pytest.raises(ValueError, match=r"sparse depth topic /camera/sparse_depth is not in the bag"):
        process_bag(str(hf_folders["depth_anything_relative"]), sequence[0], tmp_path / "out", progress=False,
                    estimator_options={"scale_source": "sparse_depth"})  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "family",
    ["depth_anything_metric", "depth_anything_relative", "prompt_depth_anything", "dpt", "glpn", "zoedepth",
     "depth_pro"],
)  # fmt: skip
def test_a_transformers_folder_runs_through_the_bag_tool_with_the_cameras_intrinsics(
    hf_folders, sequence, tmp_path, family
):
    from depth_estimation_ros.core.models.transformers_depth import card_from_folder

    scale = {"scale_source": "fixed", "fixed_scale": 0.5} if card_from_folder(hf_folders[family]).relative else {}
    out = tmp_path / "out"
    summary = process_bag(str(hf_folders[family]), sequence[0], out, progress=False, copy_input=False,
                          estimator_options=scale)  # fmt: skip
    assert summary["frames"] == FRAMES
    assert summary["bad_frames"] == 0
    topics = read_mcap(out)
    infos = {stamp_ns(m): m for _, _, m in read_rosbags(sequence[0])["/camera/camera_info"]}
    for decoded in topics["/camera/depth/camera_info"]:
        info = decoded.ros_msg
        assert (info.width, info.height) == (W, H)
        np.testing.assert_allclose(info.k, infos[stamp_ns(info)].k)
    for decoded in topics["/camera/depth/image"]:
        depth = depth_from_image(decoded.ros_msg)
        assert depth.shape == (H, W)
        assert np.isfinite(depth).all()
        assert (depth > 0).all()
    assert "/camera/depth/confidence" not in topics


def test_the_bag_tool_writes_the_scan_of_the_depth_it_writes(sequence, deployed, tmp_path, capsys):
    """``--scan`` as the node's publish_scan: a LaserScan per frame, stamped and read as its depth
    (decoded by mcap-ros2-support), with the flying pixels gone from depth/image as asked."""
    from test_laserscan import assert_scan_matches_depth

    args = ["--model", str(deployed["acan"][1]), "--backend", "onnxruntime", "--input", str(sequence[0]),
            "--output", str(tmp_path / "out"), "--no-copy-input", "--scan", "--scan-height", "3",
            "--scan-output-frame", "base_scan", "--edge-filter-depth", "--organized", "false"]  # fmt: skip
    assert bag_main(args) == 0
    assert "/camera/depth/scan" in capsys.readouterr().out
    topics = read_mcap(tmp_path / "out")
    depth = {stamp_ns(d.ros_msg): d.ros_msg for d in topics["/camera/depth/image"]}
    infos = {stamp_ns(d.ros_msg): d.ros_msg for d in topics["/camera/depth/camera_info"]}
    scans = [d.ros_msg for d in topics["/camera/depth/scan"]]
    assert topics["/camera/depth/scan"][0].schema == "sensor_msgs/msg/LaserScan"
    assert len(scans) == len(depth) == FRAMES
    for scan in scans:
        image, info = depth[stamp_ns(scan)], infos[stamp_ns(scan)]
        assert scan.header.frame_id == "base_scan"
        z = depth_from_image(image)
        assert_scan_matches_depth(scan, z, info.p[0], info.p[2], info.p[6], 3)
    assert all(d.ros_msg.height == 1 for d in topics["/camera/depth/points"])  # unorganised


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--scan-range-min", "5", "--scan-range-max", "4"], "--scan-range-min=5.0 must be below --scan-range-max=4.0"),
     (["--organized", "maybe"], "expected true or false, got 'maybe'")],
)  # fmt: skip
def test_bad_scan_and_cloud_options_are_one_line_usage_errors(sequence, deployed, tmp_path, capsys, flags, message):
    args = ["--model", str(deployed["acan"][1]), "--input", str(sequence[0]), "--output", str(tmp_path / "out"), *flags]
    try:
        status = bag_main(args)
    except SystemExit as exc:  # argparse's own refusal
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
