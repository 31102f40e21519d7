"""Play a rosbag2 into a live ROS 2 graph, with ``/clock``: a small ``ros2 bag play`` for machines without ros2cli.

    python -m depth_estimation_ros.ros.player BAG [--rate 1.0] [--topics T ...] [--wait-for T ...]

Messages go out as the bag stores them (CDR bytes, published raw: no conversion), at their recorded
spacing divided by ``--rate``, with reliable QoS (keep last 10) so a subscriber of either
reliability receives them all. ``/clock`` carries each message's log time, so nodes run with
``use_sim_time`` see the bag's time. ``--wait-for`` holds playback until each named topic has a
subscriber (what the demo and the tests use so no frame is published into the void).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

WAIT_TIMEOUT_S = 60.0


def message_class(msgtype: str):
    """The rclpy message class of ``pkg/msg/Name``; ValueError naming it when there is none."""
    package, _, name = msgtype.partition("/msg/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(
            f"unknown message type {msgtype!r} (expected package/msg/Type of an installed package)"
        ) from None


def wait_until(predicate, node, timeout: float, what: str) -> None:
    import rclpy

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        rclpy.spin_once(node, timeout_sec=0.05)


def play(bag: Path, rate: float = 1.0, topics: list[str] | None = None, wait_for: list[str] | None = None) -> int:
    """Publish the bag's messages (all topics, or ``topics``); returns how many were published."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosbags.rosbag2 import Reader
    from rosgraph_msgs.msg import Clock

    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    node = rclpy.create_node("rosbag2_player")
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    clock = node.create_publisher(Clock, "/clock", 10)
    published = 0
    try:
        reader = Reader(bag)
        reader.open()
    except Exception as exc:  # rosbags' own errors: a missing, truncated or foreign file
        raise ValueError(f"{bag} is not a readable rosbag2: {exc}") from None
    try:
        connections = [c for c in reader.connections if topics is None or c.topic in topics]
        if not connections:
            raise ValueError(
                f"{bag} has none of the topics {topics}; it has {sorted({c.topic for c in reader.connections})}"
            )
        publishers = {}
        for c in connections:
            if c.topic not in publishers:
                publishers[c.topic] = node.create_publisher(message_class(c.msgtype), c.topic, reliable)
        for topic in wait_for or []:
            if topic not in publishers:
                raise ValueError(f"--wait-for {topic}: the bag has no such topic")
            wait_until(lambda t=topic: publishers[t].get_subscription_count() > 0, node, WAIT_TIMEOUT_S,
                       f"a subscriber of {topic}")  # fmt: skip
        start_wall, start_log = time.monotonic(), None
        for connection, timestamp, raw in reader.messages(connections=connections):
            start_log = timestamp if start_log is None else start_log
            due = start_wall + (timestamp - start_log) * 1e-9 / rate
            while (ahead := due - time.monotonic()) > 0:
                rclpy.spin_once(node, timeout_sec=ahead)  # keeps discovery going while we wait
            clock.publish(Clock(clock=_time(timestamp)))
            publishers[connection.topic].publish(bytes(raw))
            published += 1
    finally:
        reader.close()
        node.destroy_node()
    return published


def _time(nanoseconds: int):
    from builtin_interfaces.msg import Time

    return Time(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)


def main(argv: list[str] | None = None) -> int:
    from depth_estimation_ros.core.errors import positive_float, run_guarded

    def command(rest: list[str]) -> int:
        parser = argparse.ArgumentParser(
            prog="python -m depth_estimation_ros.ros.player", description=__doc__.split("\n")[0]
        )
        parser.add_argument("bag", type=Path, help="rosbag2 folder (MCAP or SQLite 3)")
        parser.add_argument("--rate", type=positive_float, default=1.0, help="playback speed factor (default 1.0)")
        parser.add_argument("--topics", nargs="+", help="play only these topics")
        parser.add_argument("--wait-for", nargs="+", default=[], metavar="TOPIC", help="wait for a subscriber of each")
        args = parser.parse_args(rest)
        import rclpy
        from rclpy.executors import ExternalShutdownException

        rclpy.init()
        try:
            print(f"played {play(args.bag, args.rate, args.topics, args.wait_for)} messages from {args.bag}")
        except ExternalShutdownException:
            pass  # SIGINT/SIGTERM: a normal stop
        finally:
            if rclpy.ok():
                rclpy.shutdown()
        return 0

    return run_guarded("player", command, argv)


if __name__ == "__main__":
    sys.exit(main())
