"""``depth-estimation demo`` (``make demo``): the whole job on a built-in default, no download.

1. Generate a synthetic camera sequence (a pan through one room) as a rosbag2 with images, camera
   info and ground-truth depth on its own topic.
2. Obtain a model: the small ACAN shipped with the package (trained by the project's own training on
   other generated rooms, docs/training.md), ``--model``, or ``--train`` for a short CPU run.
3. Run a real ROS 2 graph (rclpy + Fast DDS, in a DDS domain of its own, this machine only): a player
   process publishes the sequence at its rate with ``/clock``, the installed ``depth_node`` runs as
   its own process with ``use_sim_time``, and a recorder process records its outputs (MCAP).
4. Leave in ``demo_output/``: the input bag, the recorded output bag, the processes' logs, previews
   (input | predicted depth | ground truth, and a rendering of the point cloud) and ``metrics.json``
   against the ground truth.

Everything is written into a staging folder beside the output (``.depth-estimation-tmp.PID.TOKEN.demo_output``), which
replaces the output (an earlier demo's) only when the demo succeeded, and is removed when it fails
or is interrupted: a failed run leaves an earlier result as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from depth_estimation_ros.core.errors import positive_int, run_command
from depth_estimation_ros.core.files import imwrite, write_text
from depth_estimation_ros.ros.inputs import frame_input

MARKER = ".depth_estimation_demo"
# A small ACAN trained on generated indoor rooms: two to three minutes on a 2-core CPU.
TRAINING = {
    "model": {"name": "acan", "backbone": "resnet18", "num_bins": 32, "min_depth": 0.5, "max_depth": 10.0,
              "key_channels": 64, "value_channels": 128, "pool_channels": 64, "fuse_channels": 64, "dropout": 0.0},
    "data": {"name": "synthetic", "train": {"length": 320, "kind": "indoor", "height": 96, "width": 128, "seed": 0},
             "val": {"length": 16, "kind": "indoor", "height": 96, "width": 128, "seed": 900000},
             "input_size": [96, 128], "augment": {"flip": 0.5, "brightness": 0.1, "contrast": 0.1}, "workers": 0},
    "loss": {"alpha_att": 0.1, "alpha_ord": 1.0},
    "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "head_lr_mult": 1.0, "schedule": "poly"},
    "train": {"epochs": 4, "batch_size": 8, "amp": False, "clip_grad": 1.0, "log_every": 10},
}  # fmt: skip
SCENE_SEED = 3_000_000  # a room no training frame comes from
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "data" / "demo_acan.pt"
NAMESPACE = "/camera"


def median_depth(scenes: dict, limit: int) -> float:
    """Median valid depth over the first ``limit`` generated ``scenes`` (a data split of ``TRAINING``):
    the best constant prediction for L1."""
    from depth_estimation_ros.core.scenes import render_scene

    frames = (render_scene(scenes["seed"] + i, scenes["height"], scenes["width"], scenes["kind"]) for i in range(limit))
    return float(np.median(np.concatenate([frame["depth"][frame["valid"]] for frame in frames])))


def _refuse_foreign(output: Path) -> None:
    if (output.exists() or output.is_symlink()) and not (output / MARKER).is_file():
        raise ValueError(f"{output} exists and was not made by the demo; choose another --output")


@contextmanager
def staged_demo(output: Path, inputs: tuple[str | Path | None, ...] = ()) -> Iterator[Path]:
    """An empty staging folder that becomes ``output`` when the block completes and is removed
    otherwise. An existing ``output`` is replaced only if an earlier demo made it, and never when it
    holds (or lies inside) one of ``inputs`` (e.g. ``--model``)."""
    from depth_estimation_ros.core.files import (
        create_staging_folder,
        mark_staging,
        refuse_overlap,
        remove_stale,
        temporary_name,
    )

    refuse_overlap(output, [("input", path) for path in inputs])
    _refuse_foreign(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(output.parent)  # what a killed demo left
    staging = create_staging_folder(output.parent, output.name)
    try:
        (staging / MARKER).write_text("made by depth-estimation demo\n")
        yield staging
        _refuse_foreign(output)  # it may have appeared meanwhile
        old = None
        if output.exists():  # an earlier demo's: renamed aside, so the new one takes its name at once
            old = output.parent / temporary_name(output.name)
            os.replace(output, old)
            mark_staging(old)  # a killed demo's next run sweeps it
        try:
            staging.rename(output)
        except OSError:
            if old is not None:
                os.replace(old, output)
            raise
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the demo succeeded


def check_model(model: str) -> None:
    """Refuse a model the node could not find before anything is started (the node finds the rest)."""
    if not Path(model).exists():
        from depth_estimation_ros.core.models.transformers_depth import resolve

        resolve(model)  # a Hub id in the local cache passes; otherwise the error says what was expected


def train_model(folder: Path, epochs: int, frames: int) -> Path:
    from training.train import DEFAULTS, Trainer, merge

    config = merge(DEFAULTS, TRAINING)
    config["train"]["epochs"] = epochs
    config["data"]["train"]["length"] = frames
    config["output"] = str(folder)
    Trainer(config).fit()
    return folder / "best.pt"


def read_frames(*bags: Path) -> dict[str, dict[tuple[int, int], object]]:
    """Messages of the bags by topic and header stamp."""
    from rosbags.rosbag2 import Reader

    from depth_estimation_ros.ros.bag import typestore_for

    store = typestore_for()
    topics: dict[str, dict] = {}
    for bag in bags:
        with Reader(bag) as reader:
            for connection, _, raw in reader.messages():
                msg = store.deserialize_cdr(raw, connection.msgtype)
                if hasattr(msg, "header"):
                    stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
                    topics.setdefault(connection.topic, {})[stamp] = msg
    return topics


def run_graph(folder: Path, input_bag: Path, output_bag: Path, model: str, *parameters: str) -> dict:
    """Play ``input_bag`` into the real node (with ``-p`` ``parameters``) and record its outputs
    into ``output_bag``.

    Returns the recorder's message counts and the node's last diagnostics values."""
    from depth_estimation_ros.ros.graph import ChildExited, Graph
    from depth_estimation_ros.ros.outputs import enabled
    from depth_estimation_ros.ros.parameters import DEFAULTS
    from depth_estimation_ros.ros.recorder import READY

    # What the node publishes with its default parameters (the shipped model has a confidence).
    topics = [f"{NAMESPACE}/{o.topic}:{o.msgtype}" for o in enabled(DEFAULTS)] + [
        "/diagnostics:diagnostic_msgs/msg/DiagnosticArray"
    ]
    # Every wait below watches all three processes: a node that cannot start fails the demo at once,
    # with its own error line, and leaving the block stops whatever still runs.
    with Graph(folder) as graph:
        recorder = graph.module("depth_estimation_ros.ros.recorder", str(output_bag), "--topics", *topics,
                                "--idle", "3", "--timeout", "240")  # fmt: skip
        node = graph.depth_node("-r", f"__ns:={NAMESPACE}", "-r", "image:=image_raw",
                                "-p", f"model:={model}", "-p", "use_sim_time:=true",
                                # The player publishes reliably (as ros2 bag play does). Said up front, the
                                # node needs no switch from its auto QoS, and no frame falls in between.
                                "-p", "input_reliability:=reliable",
                                # A CameraInfo lost beside a large image comes back as a reliable repair up
                                # to ~0.8 s later on a loaded 2-core machine; a played sequence loses
                                # nothing by waiting for it (the default, 0.1 s, is for live cameras).
                                "-p", "camera_info_wait:=2.0", *parameters)  # fmt: skip
        graph.wait_for_line(recorder, READY, timeout=120)  # the node is active and every output is matched
        player = graph.module("depth_estimation_ros.ros.player", str(input_bag),
                              "--wait-for", f"{NAMESPACE}/image_raw", f"{NAMESPACE}/camera_info")  # fmt: skip
        graph.wait(player, 240)
        graph.wait(recorder, 240)
        status = graph.stop(node)
    if status != 0:
        raise ChildExited(node.describe(" when stopped"), node.output)
    return {"node_exit_status": status, "logs": [p.name for p in sorted(folder.glob("*.log"))]}


def previews(
    folder: Path, topics: dict, namespace: str, constant: float, count: int = 3, zoom: int = 2
) -> tuple[list[dict], list[dict], list[Path]]:
    """Per-frame metrics against ground truth (of the model and of a constant ``constant`` m), and
    preview pictures of a few frames, enlarged ``zoom`` times."""
    from depth_estimation_ros.core.metrics import compute_metrics
    from depth_estimation_ros.core.pointcloud import depth_to_points
    from depth_estimation_ros.core.visualize import colorize, render_cloud, side_by_side
    from depth_estimation_ros.ros.messages import depth_from_image, image_to_rgb

    images, truths = topics[f"{namespace}/image_raw"], topics[f"{namespace}/depth_gt"]
    predictions, infos = topics.get(f"{namespace}/depth/image", {}), topics.get(f"{namespace}/depth/camera_info", {})
    stamps = sorted(predictions)
    picked = set(stamps[:: max(1, len(stamps) // count)][:count])
    rows, baseline, files = [], [], []

    def save(name: str, picture: np.ndarray) -> None:
        big = cv2.resize(picture, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        files.append(folder / name)
        imwrite(files[-1], cv2.cvtColor(big, cv2.COLOR_RGB2BGR))

    for index, stamp in enumerate(stamps):
        rgb, gt = image_to_rgb(images[stamp]), depth_from_image(truths[stamp])
        pred = depth_from_image(predictions[stamp])
        truth = np.nan_to_num(gt, nan=0.0)
        row = compute_metrics(pred, truth, 1e-3, 10.0)
        rows.append({"frame": index, "stamp": f"{stamp[0]}.{stamp[1]:09d}", **row})
        baseline.append(compute_metrics(np.full_like(pred, constant), truth, 1e-3, 10.0))
        if stamp in picked:
            lo, hi = (float(v) for v in np.nanpercentile(gt, [2, 98]))  # one colour scale for both panels
            save(f"preview_{index:03d}.png", side_by_side(rgb, colorize(pred, lo, hi), colorize(gt, lo, hi)))
            k = np.asarray(infos[stamp].k, dtype=np.float64).reshape(3, 3)
            save(f"cloud_{index:03d}.png", render_cloud(depth_to_points(pred, k), rgb, k))
    return rows, baseline, files


def run_demo(
    output: str = "demo_output",
    frames: int = 24,
    height: int = 120,
    width: int = 160,
    model: str | None = None,
    epochs: int = 4,
    train_frames: int = 320,
    train: bool = False,
    scale_source: str = "none",
) -> dict:
    from depth_estimation_ros.core.metrics import average_metrics
    from depth_estimation_ros.ros.synthetic_bag import write_synthetic_bag

    start = time.perf_counter()
    if model is not None:
        check_model(model)
    final = Path(output)
    with staged_demo(final, (model, SHIPPED_MODEL)) as folder:  # becomes ``final`` at the end of the block
        input_bag = folder / "input_bag"
        print(f"[1/4] writing a synthetic camera sequence ({frames} frames, {width}x{height}) to "
              f"{final / input_bag.name}")  # fmt: skip
        # With sparse_depth, a LiDAR-like sensor: 2 % of a half-resolution grid, registered to the camera.
        sparse = {}
        if frame_input(scale_source) is not None:  # the node anchors to a topic: the sequence carries it
            sparse = {"sparse_fraction": 0.02, "sparse_size": (height // 2, width // 2)}
        write_synthetic_bag(input_bag, frames=frames, kind="indoor", height=height, width=width, seed=SCENE_SEED,
                            **sparse)  # fmt: skip
        if model is None and (train or not SHIPPED_MODEL.is_file()):
            print(f"[2/4] training a small ACAN on {train_frames} other generated rooms for {epochs} epochs (CPU)")
            model = str(train_model(folder / "model", epochs, train_frames))
            shown = str(final / "model" / Path(model).name)  # where it will be once the demo is done
        else:
            model = shown = str(model or SHIPPED_MODEL)
            print(f"[2/4] using the model {model}")
        trained = time.perf_counter()
        output_bag = folder / "output_bag"
        print(f"[3/4] playing the sequence into depth_node in a ROS 2 graph, recording its outputs to "
              f"{final / output_bag.name}")  # fmt: skip
        graph = run_graph(folder, input_bag, output_bag, model, "-p", f"scale_source:={scale_source}")
        print("[4/4] previews and metrics against the ground-truth depth topic")
        # The floor any model must beat: the best constant depth for generated rooms (their median).
        constant = median_depth(TRAINING["data"]["train"], limit=100)
        rows, baseline, files = previews(folder, read_frames(input_bag, output_bag), NAMESPACE, constant)
        if not rows:
            from depth_estimation_ros.ros.graph import last_error_line

            last = last_error_line((folder / "node.log").read_text())
            raise RuntimeError(f"the node published no depth image; its last line: {last}")
        average, floor = average_metrics(rows), average_metrics(baseline)
        report = {
            "model": shown,
            "scale_source": scale_source,
            "frames": frames,
            "frames_published": len(rows),
            "metrics": average,
            "constant_baseline": {"depth_m": constant, "metrics": floor},
            "per_frame": rows,
            "graph": graph,
            "seconds": {"total": time.perf_counter() - start, "model": trained - start},
        }
        write_text(folder / "metrics.json", json.dumps(report, indent=2, default=str))
        for label, m in (("model", average), (f"constant {constant:.2f} m", floor)):
            print(f"{label:>16s} vs ground truth over {m['count']} frames: δ1 {m['d1']:.3f}, "
                  f"AbsRel {m['abs_rel']:.3f}, RMSE {m['rmse']:.3f} m")  # fmt: skip
    print(f"wrote {final}/: input_bag/, output_bag/, {', '.join(f.name for f in files)}, metrics.json, *.log "
          f"({report['seconds']['total']:.0f} s)")  # fmt: skip
    return report


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="demo_output", help="folder for the results (default: %(default)s)")
    parser.add_argument("--frames", type=positive_int, default=24,
                        help="frames in the synthetic sequence (default: 24)")  # fmt: skip
    parser.add_argument("--model", help="use this model instead of the shipped one")
    parser.add_argument("--train", action="store_true", help="train a small model on the CPU instead (a few minutes)")
    parser.add_argument("--epochs", type=positive_int, default=4, help="training epochs with --train (default: 4)")
    parser.add_argument("--train-frames", type=positive_int, default=320,
                        help="generated training frames (default: 320)")  # fmt: skip
    parser.add_argument("--scale-source", choices=("none", "sparse_depth"), default="none",
                        help="sparse_depth: the sequence gets a LiDAR-like sparse depth topic and the node anchors "
                             "its scale to it (default: %(default)s)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    run_demo(args.output, args.frames, model=args.model, epochs=args.epochs, train_frames=args.train_frames,
             train=args.train, scale_source=args.scale_source)  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("demo", __doc__, add_arguments, run, argv)
