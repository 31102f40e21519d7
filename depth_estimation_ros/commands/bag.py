"""``depth-estimation bag``: run the depth node's pipeline over a rosbag2 recording and write its
outputs to a new rosbag2 (:mod:`depth_estimation_ros.ros.bag` does the work)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from depth_estimation_ros.core.anchoring import describe_outcomes
from depth_estimation_ros.core.backends import BACKENDS
from depth_estimation_ros.core.errors import UsageError, positive_float, positive_int, run_command, unit_float
from depth_estimation_ros.core.estimator import RESIZE_MODES
from depth_estimation_ros.ros.bag import PAIRING_ARGUMENTS, STORAGES, process_bag
from depth_estimation_ros.ros.parameters import (
    DEFAULTS,
    FUSION_OPTIONS,
    SCALE_ARGUMENTS,
    SCAN_ARGUMENTS,
    check_applicable,
    check_together,
    options_from,
)
from depth_estimation_ros.ros.parameters import add_arguments as add_parameter_arguments
from depth_estimation_ros.ros.pipeline import PIPELINE_OPTIONS

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint (.pt), ONNX graph (.onnx) or engine (.engine)")
    parser.add_argument("--input", required=True, help="input rosbag2 folder (MCAP or SQLite 3), or a .mcap/.db3 file")
    parser.add_argument("--output", required=True, help="output rosbag2 folder (must not exist)")
    parser.add_argument("--image-topic", help="sensor_msgs Image or CompressedImage topic (default: detected)")
    parser.add_argument("--camera-info-topic", help="CameraInfo topic (default: the one in the image's namespace)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    add_parameter_arguments(parser, ("card",))
    parser.add_argument("--storage", choices=STORAGES, help="output storage (default: the input's)")
    parser.add_argument("--no-copy-input", action="store_true", help="write only the outputs, not the input topics")
    parser.add_argument("--raw-depth", action="store_true", help="also write depth/image_raw (16UC1 millimetres)")
    parser.add_argument("--no-points", action="store_true", help="do not write depth/points")
    parser.add_argument("--points-xyz", action="store_true", help="uncoloured cloud (xyz, point_step 16)")
    parser.add_argument("--no-confidence", action="store_true", help="do not write depth/confidence")
    parser.add_argument(
        "--decimation",
        type=positive_int,
        default=DEFAULTS["points_decimation"],
        help="keep every n-th pixel in the cloud (default: %(default)s, the node's)",
    )
    parser.add_argument("--max-range", type=positive_float,
                        help="drop cloud points farther than this many metres (default: no limit)")  # fmt: skip
    parser.add_argument("--organized", type=_yes_no, default=DEFAULTS["points_organized"], metavar="{true,false}",
                        help="organised cloud with NaN (true, the node's default) or only the kept points")  # fmt: skip
    parser.add_argument("--edge-filter", type=_yes_no, default=DEFAULTS["points_edge_filter"], metavar="{true,false}",
                        help="drop flying pixels from the cloud and the scan (default: true)")  # fmt: skip
    add_parameter_arguments(parser, ("edge_filter_angle", "edge_filter_floor_angle"))
    parser.add_argument("--edge-filter-depth", action="store_true", help="also drop them from depth/image")
    parser.add_argument("--scan", action="store_true", help="also write depth/scan (sensor_msgs/LaserScan)")
    add_parameter_arguments(parser, SCAN_ARGUMENTS)
    add_parameter_arguments(parser, ("max_image_pixels", "sky_depth"))
    parser.add_argument("--resize", choices=RESIZE_MODES, default="stretch", help="fit to the network input")
    parser.add_argument("--output-resolution", choices=("camera", "network"), default="camera",
                        help="depth at the camera's or the network's resolution (default: camera)")  # fmt: skip
    parser.add_argument("--min-confidence", type=unit_float, default=0.0, help="depth below this confidence → NaN")
    add_parameter_arguments(parser, SCALE_ARGUMENTS)
    add_parameter_arguments(parser, PAIRING_ARGUMENTS)
    parser.add_argument("--sparse-depth-topic",
                        help="Image topic of sparse metric depth for --scale-source sparse_depth "
                             "(default: sparse_depth in the image's namespace)")  # fmt: skip
    add_parameter_arguments(parser, (*FUSION_OPTIONS, "odometry_max_age"))
    parser.add_argument("--odometry-topic", help="nav_msgs/Odometry topic for --temporal-fusion odometry "
                        "(default: the bag's only one)")  # fmt: skip
    parser.add_argument("--sparse-points-topic",
                        help="PointCloud2 topic of LiDAR points for --scale-source sparse_points "
                             "(default: sparse_points in the image's namespace)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# How this command spells the node's switches (check_applicable names them so).
FLAGS = {
    "points_edge_filter": "--edge-filter true",
    "edge_filter_depth": "--edge-filter-depth",
    "publish_scan": "--scan",
}


def _yes_no(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def _print_summary(summary: dict[str, Any]) -> None:
    print(
        f"wrote {summary['output']} ({summary['storage']}): {summary['frames']} frames from {summary['image_topic']} "
        f"+ {summary['camera_info_topic']}, {summary['bad_frames']} bad, in {summary['seconds']:.1f} s "
        f"({summary['frames_per_second']:.1f} frames/s, {summary['backend']})"
    )
    outputs = set(summary["output_topics"].values())
    for topic, count in summary["topics"].items():
        print(f"  {topic:40s} {count:6d}{'' if topic in outputs else '  (copied)'}")
    if summary["bad_frames"]:
        print(f"  bad frames (skipped): {summary['bad_frames']}, e.g. {summary['bad_frame_reasons'][0]}")
    for key in (k for k in summary if k.startswith("frames_without_") and summary[k]):
        print(f"  frames without their {key.removeprefix('frames_without_')} (scale held): {summary[key]}")
    if outcomes := summary["anchoring"]:
        print(f"  anchoring ({summary['scale_source']}): {describe_outcomes(outcomes)}")
        if not outcomes.get("fitted"):
            log.warning("no frame was anchored to %s; what was written is the model's own", summary["scale_source"])
    if summary["implausible_depth_pixels"]:
        low, high = summary["plausible_depth"]
        print(f"  depth pixels outside the plausible {low:g}-{high:g} m, written as NaN: "
              f"{summary['implausible_depth_pixels']} (check the intrinsics and the sparse depth)")  # fmt: skip
    if summary["bad_camera_infos"]:
        print(f"  undecodable CameraInfo messages (skipped): {summary['bad_camera_infos']}")
    if fusion := summary.get("temporal_fusion"):
        resets = ", ".join(f"{count} {why}" for why, count in fusion["resets"].items())
        print(f"  temporal fusion ({fusion['mode']}): {fusion['fused_frames']} frames fused; resets: {resets}")


def run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        check_together(vars(args))
    except ValueError as exc:  # before anything loads
        raise UsageError(str(exc).replace("parameter ", "--").replace("_", "-")) from None
    switches = {"points_edge_filter": args.edge_filter, "edge_filter_depth": args.edge_filter_depth,
                "publish_scan": args.scan}  # fmt: skip
    try:
        check_applicable({**vars(args), **switches}, FLAGS)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for source in ("sparse_depth", "sparse_points"):
        flag = f"--{source.replace('_', '-')}-topic"
        if getattr(args, f"{source}_topic") and args.scale_source != source:
            raise UsageError(f"{flag} applies only with --scale-source {source}; it would be ignored here")
    pipeline_options = {
        **{name: DEFAULTS[name] for name in PIPELINE_OPTIONS},  # the node's defaults, then the flags
        "publish_raw_depth": args.raw_depth,
        "publish_points": not args.no_points,
        "points_rgb": not args.points_xyz,
        "points_decimation": args.decimation,
        "points_max_range": args.max_range,
        "points_organized": args.organized,
        "points_edge_filter": args.edge_filter,
        "edge_filter_depth": args.edge_filter_depth,
        "publish_confidence": not args.no_confidence,
        "publish_scan": args.scan,
        **options_from(
            args, ("edge_filter_angle", "edge_filter_floor_angle", *SCAN_ARGUMENTS, "max_image_pixels", "sky_depth")
        ),
    }
    estimator_options = {
        "resize": args.resize,
        "output_resolution": args.output_resolution,
        "min_confidence": args.min_confidence,
        "card": args.card,
        **options_from(args, SCALE_ARGUMENTS),
        **options_from(args, FUSION_OPTIONS),
    }
    if args.odometry_topic and args.temporal_fusion != "odometry":
        raise UsageError("--odometry-topic applies only with --temporal-fusion odometry; it would be ignored here")
    summary = process_bag(
        args.model,
        args.input,
        args.output,
        args.image_topic,
        args.camera_info_topic,
        storage=args.storage,
        copy_input=not args.no_copy_input,
        pipeline_options=pipeline_options,
        backend=args.backend,
        estimator_options=estimator_options,
        progress=not args.no_progress,
        sparse_depth_topic=args.sparse_depth_topic or args.sparse_points_topic,
        odometry_topic=args.odometry_topic,
        odometry_max_age=args.odometry_max_age,
        **options_from(args, PAIRING_ARGUMENTS),
    )
    _print_summary(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("bag", __doc__, add_arguments, run, argv)
