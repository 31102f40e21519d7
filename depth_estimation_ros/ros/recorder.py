"""Record topics of a live ROS 2 graph into a rosbag2 (MCAP): a small ``ros2 bag record`` for machines without ros2cli.

    python -m depth_estimation_ros.ros.recorder OUTPUT --topics T:pkg/msg/Type ... [--count T N] [--idle S]

Messages are stored as they arrive (raw CDR from the subscription, no conversion), each with its
receive time as log time. Subscriptions are reliable, keep last 100, so a recording keeps what a
synchronising consumer would get. Recording stops at SIGINT/SIGTERM, once ``--count`` messages
arrived on a topic, or after ``--idle`` seconds without a message on the first topic (once one came,
so a periodic topic such as /diagnostics does not keep it going), or after ``--timeout``. It prints
a line starting ``ready:`` once every topic has a publisher. The bag appears
under ``OUTPUT`` only when closed (written in a staging folder first).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from depth_estimation_ros.ros.bag import BAG_VERSION, qos_profile, staged_output, storage_plugin, typestore_for
from depth_estimation_ros.ros.player import message_class

READY = "ready: every topic has a publisher"


def parse_topic(text: str) -> tuple[str, str]:
    topic, sep, msgtype = text.partition(":")
    if not sep or msgtype.count("/") != 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TOPIC:package/msg/Type")
    return topic, msgtype


def record(
    output: Path,
    topics: list[tuple[str, str]],
    count: tuple[str, int] | None = None,
    idle: float | None = None,
    timeout: float | None = None,
) -> dict[str, int]:
    """Record until a stop condition; returns the number of messages per topic."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosbags.rosbag2 import Writer

    node = rclpy.create_node("rosbag2_recorder")
    store = typestore_for("jazzy")
    counts = dict.fromkeys((t for t, _ in topics), 0)
    last = [None]
    offered = [qos_profile("reliable", 100)]
    with staged_output(output) as staging, Writer(staging, version=BAG_VERSION,
                                                  storage_plugin=storage_plugin("mcap")) as writer:  # fmt: skip

        def on_message(raw: bytes, topic: str, connection) -> None:
            now = time.time_ns()
            writer.write(connection, now, raw)
            counts[topic] += 1
            if topic == topics[0][0]:
                last[0] = time.monotonic()

        subscriptions = []
        for topic, msgtype in topics:
            connection = writer.add_connection(topic, msgtype, typestore=store, offered_qos_profiles=offered)
            subscription = node.create_subscription(
                message_class(msgtype),
                topic,
                lambda raw, t=topic, c=connection: on_message(raw, t, c),
                QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
                raw=True,
            )
            subscriptions.append(subscription)
        started, ready = time.monotonic(), False
        print(f"recording {len(topics)} topics into {output}", flush=True)
        try:
            while True:
                try:
                    rclpy.spin_once(node, timeout_sec=0.05)
                except (KeyboardInterrupt, ExternalShutdownException):
                    break  # SIGINT/SIGTERM: a normal end, the bag is kept
                if not ready and all(s.get_publisher_count() for s in subscriptions):
                    ready = True
                    print(READY, flush=True)  # what a script waits for before starting the source
                if count is not None and counts.get(count[0], 0) >= count[1]:
                    break
                if idle is not None and last[0] is not None and time.monotonic() - last[0] > idle:
                    break
                if timeout is not None and time.monotonic() - started > timeout:
                    break
        finally:
            node.destroy_node()
    return counts


def main(argv: list[str] | None = None) -> int:
    from depth_estimation_ros.core.errors import positive_float, run_guarded

    def command(rest: list[str]) -> int:
        parser = argparse.ArgumentParser(
            prog="python -m depth_estimation_ros.ros.recorder", description=__doc__.split("\n")[0]
        )
        parser.add_argument("output", type=Path, help="rosbag2 folder to create (must not exist)")
        parser.add_argument("--topics", nargs="+", type=parse_topic, required=True, metavar="TOPIC:TYPE")
        parser.add_argument("--count", nargs=2, metavar=("TOPIC", "N"), help="stop after N messages on TOPIC")
        parser.add_argument(
            "--idle", type=positive_float, help="stop after this many seconds without a message on the first topic"
        )
        parser.add_argument("--timeout", type=positive_float, help="stop after this many seconds in all")
        args = parser.parse_args(rest)
        for _, msgtype in args.topics:
            message_class(msgtype)  # an unknown type is an error before anything is created
        count = (args.count[0], int(args.count[1])) if args.count else None
        import rclpy

        rclpy.init()
        try:
            counts = record(args.output, args.topics, count, args.idle, args.timeout)
        finally:
            if rclpy.ok():
                rclpy.shutdown()
        print(f"recorded {counts} into {args.output}")
        return 0

    return run_guarded("recorder", command, argv)


if __name__ == "__main__":
    sys.exit(main())
