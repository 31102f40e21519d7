"""``depth_node``: the ROS 2 lifecycle node (rclpy). A thin layer over :mod:`.pipeline` and :mod:`.worker`.

* start-up: with ``autostart`` (the default) the node configures and activates itself, so
  ``ros2 run depth_estimation_ros depth_node --ros-args -p model:=M`` publishes with nothing else;
  with ``autostart:=false`` it waits for a lifecycle manager and says so once;
* configure: parameters are validated (:func:`.parameters.validate`) and the model is loaded (a
  TensorRT engine is built or rebuilt here, not on the first frame);
* activate: subscriptions (``image`` or ``image/compressed``, ``camera_info``), publishers
  (``depth/image``, ``depth/camera_info``, ``depth/points``, ``depth/confidence``, optionally
  ``depth/image_raw``), the inference thread and the ``/diagnostics`` timer;
* deactivate / cleanup undo them (and forget every CameraInfo and waiting image).

Topic names are relative: a namespace or remapping moves them, and ``image/compressed`` follows
``image`` (image_transport's convention). The subscription callbacks only pair each image with the
CameraInfo of its own stamp, and with a topic-fed scale source its input of its own stamp
(:class:`.pairing.FramePairing`, the bag tool's rule too: an image that arrives first waits
``camera_info_wait`` seconds for them) and drop the whole frame into a one-slot handoff; inference
runs in a worker thread, so the executor never blocks and output is never older than one frame.
Outputs carry the input image's stamp and frame_id. A frame that fails for any reason (its
CameraInfo never came, is invalid, ...) is logged (throttled), counted and skipped.

Parameters marked live in :mod:`.parameters` take effect from the next frame; changing another one
while configured is refused with the reason. SIGINT and SIGTERM end the process with status 0.
"""

from __future__ import annotations

import math
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy._rclpy_pybind11 import RCLError
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from depth_estimation_ros.core.errors import reraise_interrupt, sigterm_interrupts
from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.ros.messages import MessageTypes
from depth_estimation_ros.ros.odometry import PoseHistory
from depth_estimation_ros.ros.outputs import BY_TOPIC
from depth_estimation_ros.ros.pairing import FramePairing, InputMatch
from depth_estimation_ros.ros.parameters import (
    ANCHOR_OPTIONS,
    BY_NAME,
    FUSION_OPTIONS,
    LIVE,
    PARAMETERS,
    RETIRED,
    TOGETHER,
    check,
    check_together,
    validate,
)
from depth_estimation_ros.ros.pipeline import PIPELINE_OPTIONS, DepthPipeline
from depth_estimation_ros.ros.worker import FrameWorker

LOG_THROTTLE_S = 5.0
EXPIRY_PERIOD_S = 0.05  # how often waits for a CameraInfo are ended when no message arrives to do it
ROS_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


def qos(reliability: str, depth: int) -> QoSProfile:
    policy = ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


def descriptor(p) -> ParameterDescriptor:
    d = ParameterDescriptor(
        type=ROS_TYPES[p.type],
        description=p.description,
        additional_constraints=p.describe_range() + ("" if p.live else "; takes effect at configure"),
    )
    if p.minimum is not None and p.type is int:
        d.integer_range = [IntegerRange(from_value=p.minimum, to_value=p.maximum, step=1)]
    elif p.minimum is not None:
        d.floating_point_range = [FloatingPointRange(from_value=p.minimum, to_value=p.maximum, step=0.0)]
    return d


class DepthNode(LifecycleNode):
    def __init__(self, node_name: str = "depth_estimation", **kwargs):
        super().__init__(node_name, **kwargs)
        for p in PARAMETERS:
            self.declare_parameter(p.name, p.default, descriptor(p))
        self.params: dict = {}
        self.estimator: DepthEstimator | None = None
        self.guard_change_state_service()
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.add_post_set_parameters_callback(self.on_parameters_set)
        for name, why in RETIRED.items():  # declared so that a parameter file still setting one is refused
            self.declare_parameter(name, None, ParameterDescriptor(dynamic_typing=True, description=f"removed: {why}"))
        self.types = MessageTypes.from_rclpy()
        self.worker: FrameWorker | None = None
        self.pairing = FramePairing()
        self.subscriptions_: list = []
        self.input_reliability = ""
        self.publishers_: dict = {}
        self.publish_lock = threading.Lock()  # the worker publishes; parameter changes add/remove publishers
        self.diagnostics_pub = None
        self.diagnostics_timer = None
        self.activated_at = 0.0
        self.qos_problems: list[str] = []
        self.unpaired = ""  # why the last frame without a usable scale-source input had none
        self.bad_frames_logged: dict[str, float] = {}  # kind → when one was last logged (steady clock)
        self.expiry_timer = None

    def guard_change_state_service(self) -> None:
        """Answer an invalid transition request with success=False. rclpy's own handler raises out of
        the executor (rclpy up to Jazzy), so `ros2 lifecycle set <node> activate` on an unconfigured
        node would end the process."""
        service = self._service_change_state
        handle = service.callback

        def change_state(request, response):
            try:
                return handle(request, response)
            except RCLError as exc:
                self.get_logger().warning(f"refused lifecycle transition {request.transition.id} "
                                          f"{request.transition.label!r}: {exc}")  # fmt: skip
                response.success = False
                return response

        service.callback = change_state

    @property
    def source_input(self):
        """The scale source's topic-fed input (:class:`.inputs.FrameInput`), as the pipeline has it, or None."""
        return self.worker.pipeline.frame_input if self.worker is not None else None

    @property
    def configured(self) -> bool:
        return self.estimator is not None

    # -- parameters

    def on_set_parameters(self, parameters) -> SetParametersResult:
        """Refuse a bad value, or a configure-time parameter while configured (with the reason)."""
        try:
            for parameter in parameters:
                if parameter.name in RETIRED and parameter.value is not None:
                    check(parameter.name, parameter.value)  # refused, saying what replaces it
                if parameter.name not in BY_NAME:  # rclpy's own (use_sim_time…)
                    continue
                check(parameter.name, parameter.value)
                if self.configured and parameter.name not in LIVE and parameter.value != self.params[parameter.name]:
                    raise ValueError(
                        f"parameter {parameter.name} takes effect at configure; deactivate and clean up the node "
                        "first (ros2 lifecycle set <node> cleanup), or restart it"
                    )
            changed = {p.name: p.value for p in parameters if p.name in TOGETHER}
            if changed:
                check_together({**{name: self.get_parameter(name).value for name in TOGETHER}, **changed})
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def on_parameters_set(self, parameters) -> None:
        """Apply live parameters from the next frame (the executor thread, between publishes)."""
        if not self.configured:
            return
        for parameter in (p for p in parameters if p.name in BY_NAME):
            self.params[parameter.name] = check(parameter.name, parameter.value)
        with self.publish_lock:
            self.apply_live_parameters()

    def apply_live_parameters(self) -> None:
        p, pipeline = self.params, self.worker.pipeline
        for name in PIPELINE_OPTIONS:
            setattr(pipeline, name, p[name])
        pipeline.points_max_range = p["points_max_range"] or None
        pipeline.publish_confidence = p["publish_confidence"] and self.estimator.info.has_confidence
        self.estimator.min_confidence = p["min_confidence"]
        self.pairing.tolerance, self.pairing.wait = p["camera_info_tolerance"], p["camera_info_wait"]
        if self.source_input is not None:
            self.pairing.sparse.max_age = p[self.source_input.tolerance]
        if pipeline.poses is not None:
            pipeline.poses.max_age = p["odometry_max_age"]
        if self.publishers_:  # active: the set of published topics follows the pipeline's
            self.sync_publishers()

    def sync_publishers(self) -> None:
        wanted = set(self.worker.pipeline.topics)
        for topic in set(self.publishers_) - wanted:
            self.destroy_publisher(self.publishers_.pop(topic))
        out_qos = qos(self.params["output_reliability"], self.params["output_depth"])
        events = PublisherEventCallbacks(incompatible_qos=self.on_incompatible_qos)
        for topic in sorted(wanted - set(self.publishers_)):
            self.publishers_[topic] = self.create_publisher(
                BY_TOPIC[topic].message_class(self.types), topic, out_qos, event_callbacks=events
            )

    # -- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            p = validate({q.name: self.get_parameter(q.name).value for q in PARAMETERS})
            # loading may take minutes (a TensorRT build); SIGTERM or Ctrl-C stops it at once
            self.get_logger().info(f"loading {p['model']} (backend {p['backend']})")
            estimator = DepthEstimator(
                p["model"], p["backend"], resize=p["resize"], output_resolution=p["output_resolution"],
                min_confidence=p["min_confidence"], precision=p["precision"], card=p["card"],
                focal_correction=p["focal_correction"], **{k: p[k] for k in (*ANCHOR_OPTIONS, *FUSION_OPTIONS)},
            )  # fmt: skip
        except Exception as exc:  # a bad parameter or model must fail the transition, not the process
            reraise_interrupt(exc)  # but SIGTERM or Ctrl-C while loading (torch may wrap it) stops the node
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.params, self.estimator = p, estimator
        # The node keeps no message after publish() returns (rclpy serialises it there), so the
        # next frame may be written into the same buffers.
        pipeline = DepthPipeline(estimator, self.types, reuse_buffers=True)
        if p["temporal_fusion"] == "odometry":
            pipeline.poses = PoseHistory(p["odometry_max_age"])
        self.worker = FrameWorker(pipeline, self.publish_output, self.log_bad_frame, compressed=p["use_compressed"])
        source = self.source_input
        self.pairing = FramePairing(sparse=InputMatch(source.name, registered=source.registered) if source else None)
        self.apply_live_parameters()
        self.get_logger().info(
            f"loaded {p['model']} ({estimator.info.name}: {estimator.card.describe()}) on "
            f"{estimator.backend.describe()}; metric scale: {p['scale_source']}"
            + (", focal-length correction on" if estimator.focal_correction else "")
            + (f"; temporal fusion: {p['temporal_fusion']}" if estimator.fusion is not None else "")
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.params
        with self.publish_lock:
            self.sync_publishers()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.worker.start()  # before the subscriptions, so no early frame lands in a stale slot
        self.activated_at = time.monotonic()
        self.qos_problems, self.unpaired = [], ""
        self.subscribe()
        # Steady time, not the node's clock: with use_sim_time a paused or finished bag must not
        # silence the health report.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.diagnostics_timer = self.create_timer(p["diagnostics_period"], self.on_diagnostics_timer, clock=steady)
        self.expiry_timer = self.create_timer(EXPIRY_PERIOD_S, self.on_expiry_timer, clock=steady)
        self.get_logger().info(
            f"active: {self.image_topic} ({self.input_reliability} QoS) + {self.resolve_topic_name('camera_info')} "
            f"-> {', '.join(self.resolve_topic_name(t) for t in self.worker.pipeline.topics)}"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        self.estimator = self.worker = None
        self.pairing = FramePairing()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error("lifecycle error: tearing down; the node returns to unconfigured")
        self.teardown()
        self.estimator = self.worker = None
        return TransitionCallbackReturn.SUCCESS

    def teardown(self) -> None:
        self.unsubscribe()
        if self.worker is not None:
            self.worker.stop()
        for timer in (self.diagnostics_timer, self.expiry_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self.diagnostics_timer = self.expiry_timer = None
        self.pairing.clear()  # a later camera is never described with this one's intrinsics
        with self.publish_lock:
            for publisher in [*self.publishers_.values(), *([self.diagnostics_pub] if self.diagnostics_pub else [])]:
                self.destroy_publisher(publisher)
            self.publishers_, self.diagnostics_pub = {}, None

    # -- subscriptions

    @property
    def image_topic(self) -> str:
        # image_transport's convention: the compressed stream is <resolved image topic>/compressed,
        # so `-r image:=/cam/color` moves both.
        image = self.resolve_topic_name("image")
        return f"{image}/compressed" if self.params["use_compressed"] else image

    def choose_input_reliability(self) -> str:
        """The configured reliability; for ``auto``, reliable when every publisher of the image topic
        is reliable (best effort drops most large frames, see docs/ros.md), else best effort, which
        is compatible with any publisher."""
        wanted = self.params["input_reliability"]
        if wanted != "auto":
            return wanted
        publishers = self.get_publishers_info_by_topic(self.image_topic)
        reliable = [i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in publishers]
        return "reliable" if reliable and all(reliable) else "best_effort"

    def subscribe(self) -> None:
        p = self.params
        self.input_reliability = self.choose_input_reliability()
        in_qos = qos(self.input_reliability, p["input_depth"])
        events = SubscriptionEventCallbacks(incompatible_qos=self.on_incompatible_qos, message_lost=self.on_lost)
        image_type = CompressedImage if p["use_compressed"] else Image
        self.subscriptions_ = [
            self.create_subscription(image_type, self.image_topic, self.on_image, in_qos, event_callbacks=events),
            self.create_subscription(CameraInfo, "camera_info", self.on_camera_info, in_qos),
        ]
        if self.worker.pipeline.poses is not None:
            from nav_msgs.msg import Odometry  # only a node fusing with odometry needs nav_msgs

            odometry_qos = qos("best_effort", 50)  # 20-200 Hz: keep the burst between two spins
            self.subscriptions_.append(self.create_subscription(Odometry, "odometry", self.on_odometry, odometry_qos))
        if (source := self.source_input) is not None:  # best effort is compatible with any publisher
            self.subscriptions_.append(
                self.create_subscription(
                    source.message_class(self.types), source.name, self.on_source_input, qos("best_effort", 5)
                )
            )

    def unsubscribe(self) -> None:
        for subscription in self.subscriptions_:
            self.destroy_subscription(subscription)
        self.subscriptions_ = []

    def on_incompatible_qos(self, event) -> None:
        problem = f"incompatible QoS with a peer (last policy: {event.last_policy_kind}, {event.total_count} in all)"
        self.get_logger().warning(problem, throttle_duration_sec=LOG_THROTTLE_S)
        self.qos_problems = [problem]

    def on_lost(self, event) -> None:
        self.worker.stats.on_lost(event.total_count_change)

    # -- frames

    def on_image(self, msg) -> None:
        self.worker.stats.on_received()
        self.dispatch(self.pairing.image(msg, time.monotonic()))

    def on_camera_info(self, info) -> None:
        self.dispatch(self.pairing.camera_info(info, time.monotonic()))

    def on_source_input(self, msg) -> None:
        self.dispatch(self.pairing.input(msg, time.monotonic()))

    def on_odometry(self, msg) -> None:
        if (poses := self.worker.pipeline.poses) is None:
            return
        try:
            poses.add(msg)
        except ValueError as exc:
            self.get_logger().warning(f"odometry ignored: {exc}", throttle_duration_sec=LOG_THROTTLE_S)

    def on_expiry_timer(self) -> None:
        self.dispatch(self.pairing.expire(time.monotonic()))

    def dispatch(self, decisions) -> None:
        """Paired images to the inference thread (the newest wins the slot); the others are bad frames."""
        for decision in decisions:
            if decision.camera_info is None:
                self.worker.stats.on_bad_frame("no CameraInfo", decision.reason)
                self.log_bad_frame(decision.reason)
                continue
            if decision.reason:  # paired, but without its scale-source input: the anchor holds
                self.unpaired = decision.reason
                self.get_logger().warning(f"frame without its {self.source_input.name}: {decision.reason}",
                                          throttle_duration_sec=LOG_THROTTLE_S)  # fmt: skip
            self.worker.slot.put(decision)  # the whole frame: image, CameraInfo, scale-source input

    def publish_output(self, output) -> None:
        if output.refused_input:  # logged with the notes below
            self.unpaired = output.refused_input
        for note in output.notes:
            self.get_logger().warning(note, throttle_duration_sec=LOG_THROTTLE_S)
        with self.publish_lock:
            for topic, msg in output.messages.items():
                if (publisher := self.publishers_.get(topic)) is not None:  # None: switched off meanwhile
                    publisher.publish(msg)

    def log_bad_frame(self, reason: str, kind: str = "no CameraInfo") -> None:
        """Throttled per kind (as counted in /diagnostics), so one kind of bad frame never hides
        another's reason for the throttle's seconds."""
        now = time.monotonic()
        if now - self.bad_frames_logged.get(kind, -math.inf) >= LOG_THROTTLE_S:
            self.bad_frames_logged[kind] = now
            self.get_logger().warning(f"skipping frame: {reason}")

    # -- diagnostics

    def on_diagnostics_timer(self) -> None:
        if self.params["input_reliability"] == "auto" and self.choose_input_reliability() != self.input_reliability:
            old = self.input_reliability
            self.unsubscribe()
            self.subscribe()
            self.get_logger().info(f"input QoS {old} -> {self.input_reliability} to match the camera's publishers")
        self.diagnostics_pub.publish(self.diagnostics())

    def missing_inputs(self) -> dict[str, int]:
        """Frames processed without their scale-source input (by input name), 0 until one is."""
        source = self.source_input
        return {} if source is None else {source.name: self.pairing.missing[source.name]}

    def diagnostics(self) -> DiagnosticArray:
        stats = self.worker.stats
        values = {
            **stats.summary(self.worker.slot.dropped),
            "images waiting for their CameraInfo": str(len(self.pairing.waiting)),
            **{f"frames without their {name}": str(count) for name, count in self.missing_inputs().items()},
            **({f"last frame without its {self.source_input.name}": self.unpaired} if self.unpaired else {}),
            "input topic": self.image_topic,
            "input QoS": self.input_reliability,
            "backend": self.estimator.backend.describe(),
            "model": f"{self.params['model']} ({self.estimator.info.name})",
            "model output": self.estimator.card.output,
            "focal correction": "on" if self.estimator.focal_correction else "off",
            "plausible depth (m)": "{:g} to {:g}".format(*self.estimator.card.plausible_depth),
            "implausible depth pixels (NaN)": str(self.estimator.implausible),
            **intrinsics_values(self.estimator.predicted_intrinsics),
        }
        anchor = self.estimator.anchor
        if anchor is not None:
            values.update(anchor.diagnostics(self.worker.pipeline.last_stamp, unpaired=self.unpaired))
        if (fusion := self.estimator.fusion) is not None:
            step = fusion.last
            values["temporal fusion"] = f"{self.estimator.fusion_mode}: {step.fused:.0%} of the last frame fused" + (
                f"; reset: {step.reset}" if step.reset else "")  # fmt: skip
        if (seen := self.estimator.projection) is not None:
            values["sparse points (last frame)"] = f"{seen.points} in view, {seen.occluded} hidden from the camera"
        received, published = stats.window_counts()
        idle = stats.seconds_without_input(self.activated_at)
        level, message = DiagnosticStatus.OK, "publishing"
        if self.qos_problems:
            level, message = DiagnosticStatus.WARN, self.qos_problems[-1]
        elif idle > self.params["input_timeout"]:
            level, message = DiagnosticStatus.WARN, f"no input on {self.image_topic} for {idle:.0f} s"
        elif received and not published:
            level, message = DiagnosticStatus.WARN, "frames arrive, none published (see last bad frame)"
        elif values.get("scale level", "OK").startswith("WARN"):
            level, message = DiagnosticStatus.WARN, f"metric scale: {values['scale level'][5:]}"
        elif not received:
            message = "waiting for frames"
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: depth estimation",
            message=message,
            hardware_id=self.estimator.backend.describe(),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        return array


def intrinsics_values(pair) -> dict[str, str]:
    """The intrinsics a model infers beside the camera's, both at the network input (empty if none)."""
    if pair is None:
        return {}

    def text(K) -> str:
        return f"fx {K[0, 0]:.1f} fy {K[1, 1]:.1f} cx {K[0, 2]:.1f} cy {K[1, 2]:.1f}"

    predicted, camera = pair
    return {"model intrinsics (network input)": text(predicted), "camera intrinsics (network input)": text(camera)}


def start(node: DepthNode) -> bool:
    """Autostart: configure then activate; False if configuring failed (the reason is logged)."""
    if not node.get_parameter("autostart").value:
        node.get_logger().info(
            "autostart is false: waiting for a lifecycle manager "
            f"(ros2 lifecycle set {node.get_fully_qualified_name()} configure, then activate)"
        )
        return True
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def main(argv: list[str] | None = None) -> int:
    with sigterm_interrupts():  # before rclpy.init: its handler chains to this one
        return run(argv)


def run(argv: list[str] | None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)  # SIGINT and SIGTERM shut the context down
    node = None
    try:
        try:
            node = DepthNode()
        except (ParameterException, ValueError, TypeError) as exc:  # e.g. -p points_decimation:=2.5
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not start(node):
            print("error: depth_node could not be configured (see the log above); exiting", file=sys.stderr)
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C or SIGTERM: a normal stop
    except RCLError:
        if rclpy.ok():
            raise
        # The signal shut the context down while the executor was building its wait set: a normal stop.
    finally:
        if node is not None:
            node.teardown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
