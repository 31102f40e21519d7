"""``depth_node``: the ROS 2 lifecycle node (rclpy). A thin layer over :mod:`.pipeline`.

* configure: declare-time parameters are validated (:func:`.parameters.validate`) and the model is
  loaded (a TensorRT engine is built or rebuilt here, not on the first frame);
* activate: subscriptions (``image`` or ``image/compressed``, ``camera_info``), publishers
  (``depth/image``, ``depth/camera_info``, ``depth/points``, ``depth/confidence``, optionally
  ``depth/image_raw``), the inference thread and the ``/diagnostics`` timer;
* deactivate / cleanup undo them.

Topic names are relative: a namespace or remapping moves them. The subscription callback only
pairs the image with its CameraInfo and drops it into a one-slot handoff; inference runs in a
worker thread, so the executor never blocks and output is never older than one frame. Outputs
carry the input image's stamp and frame_id. A bad frame is logged (throttled) and skipped.
"""

from __future__ import annotations

import sys

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from .estimator import DepthEstimator
from .messages import MessageTypes
from .parameters import PARAMETERS, validate
from .pipeline import CameraInfoPairing, DepthPipeline, FrameWorker

MESSAGE_TYPES = {
    "depth/image": Image,
    "depth/image_raw": Image,
    "depth/camera_info": CameraInfo,
    "depth/points": PointCloud2,
    "depth/confidence": Image,
}
LOG_THROTTLE_S = 5.0


def qos(reliability: str, depth: int) -> QoSProfile:
    policy = ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


class DepthNode(LifecycleNode):
    def __init__(self, node_name: str = "depth_estimation", **kwargs):
        super().__init__(node_name, **kwargs)
        for p in PARAMETERS:
            self.declare_parameter(p.name, p.default, ParameterDescriptor(description=p.description))
        self.types = MessageTypes.from_rclpy()
        self.params: dict = {}
        self.estimator: DepthEstimator | None = None
        self.worker: FrameWorker | None = None
        self.pairing = CameraInfoPairing()
        self.subscriptions_: list = []
        self.publishers_: dict = {}
        self.diagnostics_pub = None
        self.diagnostics_timer = None

    # -- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.params = validate({p.name: self.get_parameter(p.name).value for p in PARAMETERS})
            p = self.params
            self.estimator = DepthEstimator(
                p["model"], p["backend"], resize=p["resize"], output_resolution=p["output_resolution"],
                min_confidence=p["min_confidence"], precision=p["precision"],
            )  # fmt: skip
        except Exception as exc:  # a bad parameter or model must fail the transition, not the process
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        pipeline = DepthPipeline(
            self.estimator, self.types, publish_raw_depth=p["publish_raw_depth"], publish_points=p["publish_points"],
            points_rgb=p["points_rgb"], points_decimation=p["points_decimation"],
            points_max_range=p["points_max_range"], publish_confidence=p["publish_confidence"],
        )  # fmt: skip
        self.worker = FrameWorker(pipeline, self.publish_output, self.log_bad_frame, compressed=p["use_compressed"])
        self.get_logger().info(
            f"loaded {p['model']} ({self.estimator.info.name}, input {self.estimator.input_size}) on "
            f"{self.estimator.backend.describe()}; publishing {', '.join(pipeline.topics)}"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.params
        out_qos = qos(p["output_reliability"], p["output_depth"])
        self.publishers_ = {t: self.create_publisher(MESSAGE_TYPES[t], t, out_qos) for t in self.worker.pipeline.topics}
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.worker.start()  # before the subscriptions, so no early frame lands in a stale slot
        in_qos = qos(p["input_reliability"], p["input_depth"])
        image_type, image_topic = (CompressedImage, "image/compressed") if p["use_compressed"] else (Image, "image")
        self.subscriptions_ = [
            self.create_subscription(image_type, image_topic, self.on_image, in_qos),
            self.create_subscription(CameraInfo, "camera_info", self.pairing.add, in_qos),
        ]
        self.diagnostics_timer = self.create_timer(p["diagnostics_period"], self.publish_diagnostics)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        self.estimator = self.worker = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.teardown()
        return TransitionCallbackReturn.SUCCESS

    def teardown(self) -> None:
        for subscription in self.subscriptions_:
            self.destroy_subscription(subscription)
        self.subscriptions_ = []
        if self.worker is not None:
            self.worker.stop()
        if self.diagnostics_timer is not None:
            self.destroy_timer(self.diagnostics_timer)
            self.diagnostics_timer = None
        for publisher in [*self.publishers_.values(), *([self.diagnostics_pub] if self.diagnostics_pub else [])]:
            self.destroy_publisher(publisher)
        self.publishers_, self.diagnostics_pub = {}, None

    # -- frames

    def on_image(self, msg) -> None:
        info, _ = self.pairing.match(msg)
        self.worker.offer(msg, info)

    def publish_output(self, output) -> None:
        for note in output.notes:
            self.get_logger().warning(note, throttle_duration_sec=LOG_THROTTLE_S)
        for topic, msg in output.messages.items():
            self.publishers_[topic].publish(msg)

    def log_bad_frame(self, reason: str) -> None:
        self.get_logger().warning(f"skipping frame: {reason}", throttle_duration_sec=LOG_THROTTLE_S)

    def publish_diagnostics(self) -> None:
        stats = self.worker.stats
        values = {
            **stats.summary(self.worker.slot.dropped),  # trims the window first
            "backend": self.estimator.backend.describe(),
            "model": f"{self.params['model']} ({self.estimator.info.name})",
        }
        publishing, receiving = bool(stats.published), bool(stats.received)
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK if publishing or not receiving else DiagnosticStatus.WARN,
            name=f"{self.get_fully_qualified_name()}: depth estimation",
            message="publishing" if publishing else ("frames arrive, none published" if receiving else "no frames"),
            hardware_id=self.estimator.backend.describe(),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = DepthNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.teardown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
