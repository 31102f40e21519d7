"""The installed ``depth_node`` as its own process, driven the way a lifecycle manager, a camera and
a consumer would drive it: through lifecycle and parameter services and topics (rclpy + Fast DDS).
This test process plays those three roles in its own DDS domain."""

import array
import signal
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="the node tests need rclpy (make test's environment has it)")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_graph import depth_node, diagnostic_values, isolated_env, read_bag  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from depth_estimation_ros.core.camera import CameraModel  # noqa: E402
from depth_estimation_ros.ros.messages import MessageTypes, camera_info_msg, header, image_msg  # noqa: E402

NODE = "/depth_estimation"
CAMERA = CameraModel.from_intrinsics(120.0, 120.0, 79.5, 59.5, 160, 120, frame_id="cam")
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class Graph:
    """The test's own participant: lifecycle manager, camera and consumer."""

    def __init__(self, env):
        rclpy.init(domain_id=int(env["ROS_DOMAIN_ID"]))
        self.node = rclpy.create_node("test_graph")
        self.types = MessageTypes.from_rclpy()
        self.received: dict[str, list] = {}
        self.diagnostics: list = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)

    def close(self):
        self.node.destroy_node()
        rclpy.shutdown()

    def spin_until(self, predicate, timeout=30.0, what="a condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def call(self, service_type, name, request):
        client = self.node.create_client(service_type, name)
        self.spin_until(lambda: client.service_is_ready(), what=f"service {name}")
        future = client.call_async(request)
        self.spin_until(future.done, what=f"reply of {name}")
        self.node.destroy_client(client)
        return future.result()

    def state(self) -> str:
        return self.call(GetState, f"{NODE}/get_state", GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        return self.call(
            ChangeState, f"{NODE}/change_state", ChangeState.Request(transition=Transition(id=transition_id))
        ).success

    def set_parameter(self, name, value):
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(SetParameters, f"{NODE}/set_parameters", request).results[0]

    def subscribe(self, topic, kind, qos=RELIABLE):
        messages = self.received.setdefault(topic, [])
        return self.node.create_subscription(kind, topic, messages.append, qos)

    def feed(self, camera, info, image, camera_info, until, what="output", also=()):
        """Publish the frame (again every 0.5 s: the first may precede discovery) until ``until()``;
        ``also``: (publisher, message) pairs published with it first (a sparse depth)."""
        deadline = time.monotonic() + 30
        while not until():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            for publisher, message in also:
                publisher.publish(message)
            info.publish(camera_info)
            camera.publish(image)
            resend = time.monotonic() + 0.5
            while not until() and time.monotonic() < resend:
                rclpy.spin_once(self.node, timeout_sec=0.05)

    def status(self):
        """The latest diagnostics status (None before the first)."""
        return self.diagnostics[-1].status[0] if self.diagnostics else None

    def values(self) -> dict[str, str]:
        return diagnostic_values(self.diagnostics[-1]) if self.diagnostics else {}


@pytest.fixture
def graph(monkeypatch):
    env = isolated_env()
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    g = Graph(env)
    g.env = env
    yield g
    g.close()


def frame(graph, sec, *, encoding="rgb8", frame_id="cam", nanosec=0):
    rgb = np.random.default_rng(sec).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    h = header(sec, 0, frame_id, graph.types)
    h.stamp.nanosec = nanosec
    image = image_msg(rgb, "rgb8", h, graph.types)
    image.encoding = encoding
    return image, camera_info_msg(CAMERA, h, graph.types)


def test_lifecycle_parameters_and_bad_frames_through_services_of_the_node_process(graph, deployed, tmp_path):
    node = depth_node(graph.env, tmp_path / "node.log", "-r", "image:=/cam/color",
                      "-p", f"model:={deployed['acan'][1]}", "-p", "autostart:=false",
                      "-p", "diagnostics_period:=0.2")  # fmt: skip
    try:
        assert graph.state() == "unconfigured"
        assert "autostart is false: waiting for a lifecycle manager" in node.output
        # An invalid transition is refused and the process lives on.
        assert graph.transition(Transition.TRANSITION_ACTIVATE) is False
        assert graph.state() == "unconfigured"
        # Bad values are refused with a reason naming them; nothing is accepted and ignored.
        for name, value, reason in [
            ("backend", "nonsense", "must be one of"),
            ("min_confidence", float("nan"), "out of range"),
            ("min_confidence", 2.0, "out of range"),
            ("points_decimation", 0, "out of range"),
            ("points_decimation", 2.5, "type"),
            ("scan_range_min", 20.0, "must be below parameter scan_range_max=10.0"),
        ]:
            result = graph.set_parameter(name, value)
            assert not result.successful, (name, value)
            assert reason in result.reason, (name, value, result.reason)

        assert graph.transition(Transition.TRANSITION_CONFIGURE)
        assert graph.transition(Transition.TRANSITION_ACTIVATE)
        assert graph.state() == "active"
        result = graph.set_parameter("backend", "torch")  # configure-time: refused while configured
        assert not result.successful
        assert "takes effect at configure" in result.reason

        camera = graph.node.create_publisher(Image, "/cam/color", RELIABLE)
        info = graph.node.create_publisher(CameraInfo, "/camera_info", RELIABLE)
        graph.subscribe("/depth/image", Image)
        graph.subscribe("/depth/points", PointCloud2)

        depth = graph.received["/depth/image"]
        good, good_info = frame(graph, 100)
        graph.feed(camera, info, good, good_info, until=lambda: bool(depth), what="a depth image")
        # auto QoS: the node re-subscribes reliably once it sees the reliable camera
        graph.spin_until(lambda: graph.values().get("input QoS") == "reliable", what="a reliable subscription")

        # Faults: a bad encoding, a CameraInfo of another frame, a stamp out of range; each is
        # either processed or counted with its reason, and the node goes on with the next frame.
        def bad_frames():
            return int(graph.values().get("bad frames", 0))

        for sec, bad, bad_info in [(101, *frame(graph, 101, encoding="bgr16")),
                                   (103, *frame(graph, 103, nanosec=1_500_000_000))]:  # fmt: skip
            before = bad_frames()
            info.publish(bad_info)
            camera.publish(bad)
            graph.spin_until(lambda s=sec, b=before: bad_frames() > b or depth[-1].header.stamp.sec == s,
                             what=f"frame {sec} to be handled")  # fmt: skip
        # An image whose only CameraInfo is of another frame waits camera_info_wait for one of its
        # own, then it is skipped and counted.
        received = int(graph.values()["received frames"])
        info.publish(frame(graph, 200, frame_id="other")[1])
        camera.publish(frame(graph, 200)[0])
        graph.spin_until(lambda: int(graph.values()["received frames"]) > received, what="frame 200 to arrive")
        graph.feed(camera, info, *frame(graph, 104), until=lambda: depth[-1].header.stamp.sec == 104)
        graph.spin_until(lambda: "bad frames (no CameraInfo)" in graph.values(), what="frame 200 to be skipped")
        assert bad_frames() >= 2
        assert "last bad frame" in graph.values()
        assert graph.status().level == DiagnosticStatus.OK

        # A live parameter takes effect from the next frame: no more clouds, the topic is gone.
        assert graph.set_parameter("publish_points", False).successful
        graph.spin_until(lambda: graph.node.count_publishers("/depth/points") == 0, what="depth/points to go")
        points = len(graph.received["/depth/points"])
        count = len(depth)
        graph.feed(camera, info, *frame(graph, 105), until=lambda: len(depth) > count)
        assert len(graph.received["/depth/points"]) == points

        # Cleanup forgets the camera: an image without a CameraInfo of its own afterwards is
        # skipped, not published with the old intrinsics.
        for transition in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP,
                           Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):  # fmt: skip
            assert graph.transition(transition), transition
        count = len(depth)
        fresh = {"received frames": "0", "input QoS": "reliable"}  # new statistics, subscribed to the camera
        graph.spin_until(lambda: fresh.items() <= graph.values().items(), what="the node to subscribe again")
        camera.publish(frame(graph, 106)[0])  # waits for a CameraInfo of its stamp, which never comes
        expired = {"received frames": "1", "bad frames (no CameraInfo)": "1"}
        graph.spin_until(lambda: expired.items() <= graph.values().items(), what="the lone frame to be skipped")
        assert "image 106.000000000: no CameraInfo of its stamp" in graph.values()["last bad frame"]
        assert len(depth) == count
    finally:
        assert node.stop(signal.SIGTERM) == 0, node.output
    assert "Traceback" not in node.output, node.output


def test_diagnostics_warn_without_input_and_on_incompatible_qos_and_compressed_follows_image(graph, deployed, tmp_path):
    node = depth_node(graph.env, tmp_path / "node.log", "-r", "image:=/cam/color",
                      "-p", f"model:={deployed['acan'][1]}", "-p", "use_compressed:=true",
                      "-p", "input_timeout:=0.3", "-p", "diagnostics_period:=0.2",
                      "-p", "output_reliability:=best_effort")  # fmt: skip
    try:
        # image_transport's convention: image/compressed follows the remapping of image.
        graph.spin_until(lambda: graph.node.get_subscriptions_info_by_topic("/cam/color/compressed"),
                         what="the node to subscribe to /cam/color/compressed")  # fmt: skip
        graph.spin_until(lambda: "no input" in getattr(graph.status(), "message", ""), what="a no-input warning")
        assert graph.status().level == DiagnosticStatus.WARN
        # A reliable consumer of a best-effort output gets nothing: the node says so.
        graph.subscribe("/depth/image", Image, RELIABLE)
        graph.spin_until(lambda: "incompatible QoS" in graph.status().message, what="an incompatible-QoS warning")
        assert graph.status().level == DiagnosticStatus.WARN
    finally:
        assert node.stop(signal.SIGINT) == 0, node.output
    assert "Traceback" not in node.output, node.output


def test_sparse_depth_in_another_frame_is_reported_with_its_reason_not_as_no_input(graph, deployed, tmp_path):
    """A LiDAR depth image left in the LiDAR's frame cannot anchor the camera's frames: /diagnostics
    and the log say so, instead of "never fitted (no input yet)"."""
    node = depth_node(graph.env, tmp_path / "node.log", "-p", f"model:={deployed['acan'][1]}",
                      "-p", "scale_source:=sparse_depth", "-p", "diagnostics_period:=0.2")  # fmt: skip
    try:
        camera = graph.node.create_publisher(Image, "image", RELIABLE)
        info = graph.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
        sparse = graph.node.create_publisher(Image, "sparse_depth", RELIABLE)
        graph.subscribe("/depth/image", Image)
        image, camera_info = frame(graph, 300)
        scan = image_msg(np.full((60, 80), 3.0, np.float32), "32FC1", header(300, 0, "lidar", graph.types), graph.types)
        key = "last frame without its sparse_depth"
        why = "sparse_depth arrives in frame 'lidar', not the image's 'cam': it must be registered to the camera image"
        # (the first frames may be decided before the first scan has arrived: "no sparse_depth message")
        graph.feed(camera, info, image, camera_info, until=lambda: graph.values().get(key) == why,
                   also=[(sparse, scan)], what="a frame without its sparse depth, with the reason")  # fmt: skip
        assert graph.values()["scale level"] == f"WARN never fitted ({why})"
        node.wait_for_line(f"frame without its sparse_depth: {why}")
    finally:
        assert node.stop(signal.SIGTERM) == 0, node.output


def lidar_cloud(graph, sec: int, forward: float):
    """A PointCloud2 in the LiDAR's frame (x forward, y left, z up): a wall ``forward`` m ahead."""
    from depth_estimation_ros.ros.synthetic_bag import cloud_msg

    y, z = np.meshgrid(np.linspace(-1.5, 1.5, 60), np.linspace(-1.0, 1.0, 16))
    xyz = np.stack([np.full(y.size, forward), y.ravel(), z.ravel()], 1).astype(np.float32)
    return cloud_msg(xyz, header(sec, 0, "lidar", graph.types), graph.types)


def test_a_lidar_cloud_in_its_own_frame_anchors_the_node_through_its_transform(graph, deployed, tmp_path):
    """scale_source sparse_points: a PointCloud2 in frame 'lidar' (REP 103 axes), placed 0.3 m above
    the camera by sparse_points_transform, pairs by stamp whatever its frame_id; the wall 3 m ahead
    it sees fits the scale, and /diagnostics counts its points in view."""
    node = depth_node(graph.env, tmp_path / "node.log", "-p", f"model:={deployed['acan'][1]}",
                      "-p", "scale_source:=sparse_points", "-p", "sparse_points_transform:=0 -0.3 0 0.5 -0.5 0.5 0.5",
                      "-p", "diagnostics_period:=0.2")  # fmt: skip
    try:
        camera = graph.node.create_publisher(Image, "image", RELIABLE)
        info = graph.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
        lidar = graph.node.create_publisher(PointCloud2, "sparse_points", RELIABLE)
        graph.subscribe("/depth/image", Image)
        image, camera_info = frame(graph, 500)
        graph.feed(camera, info, image, camera_info, until=lambda: graph.values().get("scale level") == "OK",
                   also=[(lidar, lidar_cloud(graph, 500, 3.0))], what="a scale fitted to the LiDAR")  # fmt: skip
        values = graph.values()
        in_view, hidden = values["sparse points (last frame)"].split(" in view, ")
        assert int(in_view) > 100
        assert hidden == "0 hidden from the camera"  # one wall: nothing behind anything
        assert values["scale source"] == "sparse_points"
    finally:
        assert node.stop(signal.SIGTERM) == 0, node.output
    assert "Traceback" not in node.output, node.output


def odometry(sec: int, x: float):
    from nav_msgs.msg import Odometry

    msg = Odometry(child_frame_id="base_link")
    msg.header.stamp.sec, msg.header.frame_id = sec, "odom"
    msg.pose.pose.position.x, msg.pose.pose.orientation.w = x, 1.0
    return msg


def test_temporal_fusion_takes_the_odometry_of_each_frames_stamp_and_resets_without_it(graph, deployed, tmp_path):
    """temporal_fusion odometry: a frame whose odometry (nav_msgs/Odometry on odometry) has its stamp
    is fused with the last; one without any within odometry_max_age resets the fusion, and
    /diagnostics says which."""
    from nav_msgs.msg import Odometry

    node = depth_node(graph.env, tmp_path / "node.log", "-p", f"model:={deployed['acan'][1]}",
                      "-p", "temporal_fusion:=odometry", "-p", "diagnostics_period:=0.2")  # fmt: skip
    try:
        camera = graph.node.create_publisher(Image, "image", RELIABLE)
        info = graph.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
        odom = graph.node.create_publisher(Odometry, "odometry", RELIABLE)
        graph.subscribe("/depth/image", Image)
        key = "temporal fusion"
        rgb = frame(graph, 600)
        first = lambda: graph.values().get(key, "").endswith("reset: first frame")  # noqa: E731
        graph.feed(camera, info, *rgb, also=[(odom, odometry(600, 0.0))], until=first, what="a first frame")
        still = frame(graph, 601)  # another stamp, the same view: the robot stood still
        still[0].data, still[1].k = rgb[0].data, rgb[1].k
        graph.feed(camera, info, *still, also=[(odom, odometry(601, 0.0))],
                   until=lambda: "% of the last frame fused" in graph.values().get(key, "")
                   and "reset" not in graph.values()[key], what="a fused frame")  # fmt: skip
        assert graph.values()[key].startswith("odometry: 100% of the last frame fused")
        graph.feed(camera, info, *frame(graph, 605), until=lambda: "no pose" in graph.values().get(key, ""),
                   what="a frame without odometry")  # fmt: skip
        assert graph.values()[key] == "odometry: 0% of the last frame fused; reset: no pose for this frame"
    finally:
        assert node.stop(signal.SIGTERM) == 0, node.output
    assert "Traceback" not in node.output, node.output


def test_a_card_described_graph_runs_in_the_node_and_publishes_its_confidence(graph, tmp_path):
    """UniDepth V2's export signature (camera rays in, points and an uncertainty out) with its built-in
    card: the node feeds it the CameraInfo's rays and publishes metres and a confidence in [0, 1]."""
    from foreign_graphs import export

    model = export("unidepth_v2", tmp_path / "unidepth.onnx")
    node = depth_node(graph.env, tmp_path / "node.log", "-p", f"model:={model}", "-p", "card:=unidepth_v2")
    try:
        camera = graph.node.create_publisher(Image, "image", RELIABLE)
        info = graph.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
        graph.subscribe("/depth/image", Image)
        graph.subscribe("/depth/confidence", Image)
        graph.feed(camera, info, *frame(graph, 400),
                   until=lambda: graph.received["/depth/image"] and graph.received["/depth/confidence"])  # fmt: skip
        metres = np.frombuffer(bytes(graph.received["/depth/image"][-1].data), np.float32)
        trust = np.frombuffer(bytes(graph.received["/depth/confidence"][-1].data), np.float32)
        assert np.isfinite(metres).all()
        assert ((metres > 1.5) & (metres < 3.01)).all()  # ray_z · (2 + red): ray_z ≥ 0.77 at this camera's corners
        assert ((trust >= 0.25 - 1e-6) & (trust <= 1.0)).all()
        assert "unidepth_v2" in node.output  # the log says what it loaded
        graph.spin_until(lambda: "model intrinsics (network input)" in graph.values(), what="the model's own K")
        values = graph.values()  # the stand-in infers K = mean(rgb)·I: not the camera's
        assert values["camera intrinsics (network input)"].startswith("fx 462.0 fy 462.0")  # 120 px × 616/160
        assert values["model intrinsics (network input)"] != values["camera intrinsics (network input)"]
    finally:
        assert node.stop(signal.SIGTERM) == 0, node.output


def test_one_kind_of_bad_frame_never_hides_anothers_reason_in_the_log(graph, monkeypatch):
    """The log is throttled per kind: a frame without its CameraInfo, then one without a metric
    scale a moment later, are both said; a second of the same kind within the throttle is not."""
    from depth_estimation_ros.ros.node import DepthNode

    node = DepthNode()
    logged = []
    monkeypatch.setattr(node.get_logger(), "warning", lambda text, **kw: logged.append(text))
    try:
        node.log_bad_frame("image 1: no CameraInfo of its stamp")
        node.log_bad_frame("image 2: no CameraInfo of its stamp")
        node.log_bad_frame("image 3: no metric scale yet", "bad input")
    finally:
        node.destroy_node()
    assert logged == [
        "skipping frame: image 1: no CameraInfo of its stamp",
        "skipping frame: image 3: no metric scale yet",
    ]


def stream(types):
    """A camera that changes size between frames (each size with its own intrinsics); frame 303's
    CameraInfo has a NaN distortion coefficient. (image, CameraInfo) per frame, in ``types``."""
    frames = []
    for i, (width, height) in enumerate([(64, 48), (96, 72), (64, 48), (96, 72), (80, 60)]):
        camera = CameraModel.from_intrinsics(0.9 * width, 0.9 * width, width / 2 - 0.5, height / 2 - 0.5, width, height)
        h = header(300 + i, 0, "cam", types)
        rgb = np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)
        info = camera_info_msg(camera, h, types)
        if i == 3:  # set on the message: a CameraModel refuses it
            nan_d = [0.0, float("nan"), 0.0, 0.0, 0.0]
            info.d = np.asarray(nan_d) if isinstance(info.d, np.ndarray) else array.array("d", nan_d)
        frames.append((image_msg(rgb, "rgb8", h, types), info))
    return frames


def described(infos) -> list:
    """What each depth/camera_info says: (stamp, width, height, K)."""
    return [(m.header.stamp.sec, m.width, m.height, [round(float(k), 9) for k in m.k]) for m in infos]


def test_images_published_before_their_camera_info_at_changing_sizes_get_their_own_as_in_the_bag_tool(
    graph, deployed, tmp_path
):
    """Each image reaches the node before its CameraInfo (the test holds the CameraInfo back until the
    node reports the image waiting), while the previous frame's CameraInfo, of another size, is there:
    every frame is processed with its own intrinsics, the NaN one is a bad frame, and the bag tool
    gives the same frames for the same stream."""
    from test_bag import write_bag

    from depth_estimation_ros.ros.bag import process_bag, typestore_for

    node = depth_node(graph.env, tmp_path / "node.log", "-r", "image:=/cam/color",
                      "-p", f"model:={deployed['acan'][1]}", "-p", "input_reliability:=reliable",
                      "-p", "diagnostics_period:=0.1", "-p", "camera_info_wait:=10.0")  # fmt: skip
    frames = stream(graph.types)
    try:
        camera = graph.node.create_publisher(Image, "/cam/color", RELIABLE)
        info = graph.node.create_publisher(CameraInfo, "/camera_info", RELIABLE)
        graph.subscribe("/depth/camera_info", CameraInfo)
        outputs = graph.received["/depth/camera_info"]
        graph.spin_until(lambda: camera.get_subscription_count() and info.get_subscription_count() and graph.values()
                         and graph.node.count_publishers("/depth/camera_info"), what="the node's topics")  # fmt: skip
        for k, (image, camera_info) in enumerate(frames, start=1):
            camera.publish(image)
            waiting = {"received frames": str(k), "images waiting for their CameraInfo": "1"}
            graph.spin_until(lambda w=waiting: w.items() <= graph.values().items(), what=f"image {k} to wait")
            info.publish(camera_info)
            done = k - (k >= 4)  # frame 4 (stamp 303) is the NaN one
            handled = {"images waiting for their CameraInfo": "0", "published frames": str(done),
                       "bad frames": str(k - done)}  # fmt: skip
            graph.spin_until(lambda h=handled: h.items() <= graph.values().items(), what=f"frame {k} handled")
        graph.spin_until(lambda: len(outputs) == 4, what="the last depth/camera_info")
        values = graph.values()
    finally:
        assert node.stop(signal.SIGTERM) == 0, node.output
    assert "Traceback" not in node.output, node.output
    expected = [(i.header.stamp.sec, i.width, i.height, [round(float(k), 9) for k in c.k])
                for i, c in frames if np.isfinite(c.d).all()]  # fmt: skip
    assert described(outputs) == expected  # each frame's own size and intrinsics, never the one before
    assert not any(np.isnan(m.d).any() for m in outputs)
    assert (values["bad frames"], values["bad frames (bad input)"]) == ("1", "1")
    assert values["last bad frame"].startswith("image 303.000000000: CameraInfo (frame_id 'cam'): D must be finite")

    # The same stream recorded as a driver publishes it (the image 5 ms before its CameraInfo).
    recorded = []
    for image, camera_info in stream(MessageTypes.from_typestore(typestore_for("humble"))):
        t = image.header.stamp.sec * 10**9
        recorded += [("/cam/color", "sensor_msgs/msg/Image", t, image),
                     ("/cam/camera_info", "sensor_msgs/msg/CameraInfo", t + 5_000_000, camera_info)]  # fmt: skip
    bag = write_bag(tmp_path / "bag", recorded)
    summary = process_bag(deployed["acan"][1], bag, tmp_path / "out", backend="onnxruntime", copy_input=False,
                          progress=False)  # fmt: skip
    assert described(read_bag(tmp_path / "out")["/cam/depth/camera_info"]) == expected
    assert summary["bad_frame_reasons"] == [values["last bad frame"]]
