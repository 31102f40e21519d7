"""Measurements in a real ROS 2 graph (separate processes, rclpy + Fast DDS): ``make bench`` runs them.

    python -m benchmarks.ros_bench qos             # input QoS: frames received per camera QoS
    python -m benchmarks.ros_bench node --model M  # the node with one consumer

``qos``: a camera process publishes rgb8 frames (640×480 and 1280×720, 10 and 30 Hz) with reliable or
best-effort QoS; a subscriber process with best-effort or reliable QoS counts what arrives.
``node``: a camera process publishes 640×480 frames at 10 Hz into ``depth_node``; a consumer
process subscribes to depth/image, depth/camera_info and depth/points and reports the output rate,
complete sets and the latency from the input stamp to receipt; the node's per-stage times come
from /diagnostics, its CPU and memory from /proc.
Each run is a :class:`~depth_estimation_ros.ros.graph.Graph` in a DDS domain of its own, localhost only:
a process that dies ends the measurement at once with its error line, and none outlives the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from depth_estimation_ros.ros.graph import ChildExited, Graph, Process

SIZES = {"640x480": (480, 640), "1280x720": (720, 1280)}
DURATION_S = 6.0


def _qos(reliability: str, depth: int = 1):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    kind = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=depth, reliability=kind)


def camera(size: str, rate: float, reliability: str, duration: float, frame_id: str = "camera") -> None:
    """Publish rgb8 frames of ``size`` at ``rate`` with their CameraInfo, stamped with the wall time."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    height, width = SIZES[size]
    image_pub = node.create_publisher(Image, "image", _qos(reliability))
    info_pub = node.create_publisher(CameraInfo, "camera_info", _qos(reliability))
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8).tobytes()
    image = Image(height=height, width=width, encoding="rgb8", step=3 * width, data=pixels)
    f = 0.8 * width
    info = CameraInfo(height=height, width=width, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[f, 0, width / 2 - 0.5, 0, f, height / 2 - 0.5, 0, 0, 1], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                      p=[f, 0, width / 2 - 0.5, 0, 0, f, height / 2 - 0.5, 0, 0, 0, 1, 0])  # fmt: skip
    image.header.frame_id = info.header.frame_id = frame_id
    deadline = time.monotonic() + 30
    while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - start < duration:
        due = start + sent / rate
        if now < due:
            time.sleep(due - now)
        stamp = node.get_clock().now().to_msg()
        image.header.stamp = info.header.stamp = stamp
        info_pub.publish(info)
        image_pub.publish(image)
        sent += 1
    print(json.dumps({"sent": sent}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def count(topics: list[str], reliability: str, duration: float, depth: int = 1, diagnostics: bool = False) -> None:
    """Count messages per topic for ``duration`` s after the first; latency from stamp to receipt;
    with ``diagnostics`` also the node's last /diagnostics values."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2

    kinds = {"image": Image, "depth/image": Image, "depth/camera_info": CameraInfo, "depth/points": PointCloud2,
             "depth/scan": LaserScan}  # fmt: skip
    rclpy.init()
    node = rclpy.create_node("bench_consumer")
    stamps: dict[str, list] = {t: [] for t in topics}
    latency: list[float] = []
    first = [None]

    def on_message(raw: bytes, topic: str) -> None:
        received = time.time()
        first[0] = first[0] or time.monotonic()
        msg = deserialize_message(raw, kinds[topic])
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        stamps[topic].append(key)
        if topic == topics[0]:
            latency.append(received - (key[0] + key[1] * 1e-9))

    last_diagnostics: dict[str, str] = {}
    if diagnostics:
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: last_diagnostics.update(
            {kv.key: kv.value for status in m.status for kv in status.values}), 10)  # fmt: skip
    for topic in topics:
        node.create_subscription(kinds[topic], topic, lambda raw, t=topic: on_message(raw, t), _qos(reliability, depth),
                                 raw=True)  # fmt: skip
    deadline = time.monotonic() + duration + 30
    while time.monotonic() < deadline and not (first[0] and time.monotonic() - first[0] > duration):
        rclpy.spin_once(node, timeout_sec=0.05)
    complete = set.intersection(*(set(s) for s in stamps.values())) if stamps else set()
    elapsed = time.monotonic() - first[0] if first[0] else 0.0
    latency.sort()
    print(json.dumps({
        "received": {t: len(s) for t, s in stamps.items()},
        "rate_hz": len(stamps[topics[0]]) / elapsed if elapsed else 0.0,
        "complete_sets": len(complete),
        "latency_ms_median": 1000 * latency[len(latency) // 2] if latency else None,
        "latency_ms_p90": 1000 * latency[int(len(latency) * 0.9)] if latency else None,
        **({"diagnostics": last_diagnostics} if diagnostics else {}),
    }), flush=True)  # fmt: skip
    node.destroy_node()
    rclpy.shutdown()


def _spawn(graph: Graph, role_args: list[str]) -> Process:
    """This module in one of its roles (``camera``, ``count``), a child that ends by itself."""
    return graph.module("benchmarks.ros_bench", *role_args, name=role_args[0])


def _result(graph: Graph, child: Process) -> dict:
    """The JSON line a role prints last, once it has ended (stderr shares its log)."""
    graph.wait(child, 120)
    for line in reversed(child.output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ChildExited(child.describe(" without printing its result"), child.output)


def bench_qos(domain: int | None = None) -> list[dict]:
    rows = []
    for size in SIZES:
        for rate in (10, 30):
            for publisher in ("reliable", "best_effort"):
                for subscriber in ("best_effort", "reliable"):
                    if publisher == "best_effort" and subscriber == "reliable":
                        continue  # incompatible: nothing is delivered (the node's auto never does this)
                    with Graph(domain=domain) as graph:
                        sub = _spawn(graph, ["count", "--topics", "image", "--reliability", subscriber,
                                             "--duration", str(DURATION_S - 1)])  # fmt: skip
                        cam = _spawn(graph, ["camera", "--size", size, "--rate", str(rate), "--reliability",
                                             publisher, "--duration", str(DURATION_S)])  # fmt: skip
                        got, sent = _result(graph, sub), _result(graph, cam)
                    rows.append({"size": size, "rate_hz": rate, "camera": publisher, "subscription": subscriber,
                                 "received_hz": round(got["rate_hz"], 1), "sent": sent["sent"],
                                 "latency_ms_median": got["latency_ms_median"]})  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def _proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def bench_node(
    model: str, domain: int | None = None, size: str = "640x480", rate: float = 10.0, params: tuple[str, ...] = ()
) -> dict:
    """The node's output rate, latency and load; ``params``: extra ``name:=value`` node parameters."""
    topics = ["depth/image", "depth/camera_info", "depth/points"]
    if "publish_scan:=true" in params:
        topics.append("depth/scan")
    with Graph(domain=domain) as graph:
        node = graph.depth_node("-p", f"model:={model}", "-p", "diagnostics_period:=1.0",
                                *(arg for param in params for arg in ("-p", param)))  # fmt: skip
        consumer = _spawn(graph, ["count", "--topics", *topics, "--diagnostics", "--reliability", "reliable",
                                  "--depth", "10", "--duration", "15"])  # fmt: skip
        cam = _spawn(graph, ["camera", "--size", size, "--rate", str(rate), "--reliability", "reliable",
                             "--duration", "20"])  # fmt: skip
        graph.sleep(8)  # warm-up: model loaded, first frames through (a node that cannot start fails here)
        cpu0, _ = _proc_usage(node.pid)
        t0 = time.monotonic()
        got = _result(graph, consumer)
        cpu1, rss = _proc_usage(node.pid)
        wall = time.monotonic() - t0
        _result(graph, cam)
        status = graph.stop(node, signal.SIGTERM)
    return {"size": size, "camera_rate_hz": rate, **got, "node_cpu_percent": round(100 * (cpu1 - cpu0) / wall, 1),
            "node_rss_mb": round(rss / 2**20), "node_exit": status}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from depth_estimation_ros.core.errors import run_guarded

    def command(rest: list[str]) -> int:
        parser = argparse.ArgumentParser(prog="python -m benchmarks.ros_bench", description=__doc__.split("\n")[0])
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("qos", help="frames received for each camera/subscription QoS")
        p = sub.add_parser("node", help="the node with one consumer")
        p.add_argument("--model", required=True)
        p.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE", help="a node parameter")
        p = sub.add_parser("camera")
        p.add_argument("--size", choices=SIZES, default="640x480")
        p.add_argument("--rate", type=float, default=10.0)
        p.add_argument("--reliability", default="reliable")
        p.add_argument("--duration", type=float, default=DURATION_S)
        p = sub.add_parser("count")
        p.add_argument("--topics", nargs="+", required=True)
        p.add_argument("--reliability", default="best_effort")
        p.add_argument("--depth", type=int, default=1)
        p.add_argument("--duration", type=float, default=DURATION_S)
        p.add_argument("--diagnostics", action="store_true")
        args = parser.parse_args(rest)
        if args.command == "camera":
            camera(args.size, args.rate, args.reliability, args.duration)
        elif args.command == "count":
            count(args.topics, args.reliability, args.duration, args.depth, args.diagnostics)
        elif args.command == "qos":
            bench_qos()
        else:
            print(json.dumps(bench_node(args.model, params=tuple(args.param)), indent=1))
        return 0

    return run_guarded("ros_bench", command, argv)


if __name__ == "__main__":
    sys.exit(main())
