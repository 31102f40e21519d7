"""Navigation outputs: flying-pixel removal measured against ground truth, beside Open3D's outlier
filters, and the per-frame cost of the filter and the scan.

Clouds are the node's default cloud (640×480 depth, ``points_decimation`` 2) of generated scenes,
whose true depth the renderer knows. Predictions smooth across edges the way networks do: the true
depth (sky filled with the far limit) area-resized to a network resolution, low-passed there with a
Gaussian, and resized back bilinearly; and, on indoor scenes, the shipped model's own prediction,
aligned to the truth by its median ratio (it is a 72×96 toy: its errors are mostly not at edges).

A published point is a *phantom* when it lies farther than 5 cm + 2 % of its range from every true
surface point (the true depth back-projected at full resolution); the others are *good*. For each
filter: the share of phantoms it removes and the share of good points it loses, and its time per
frame (ours on the full-resolution depth, as the node runs it; Open3D's on the decimated cloud,
which is smaller). Open3D is not a dependency: it runs in the interpreter ``--open3d-python``.

    python -m benchmarks.navigation --open3d-python /path/to/python-with-open3d
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.edges import EdgeFilter
from depth_estimation_ros.core.laserscan import ScanProjector
from depth_estimation_ros.core.pointcloud import depth_to_points
from depth_estimation_ros.core.scenes import STREET_MAX_RANGE, render_scene

HEIGHT, WIDTH, DECIMATION = 480, 640, 2
NETWORK = (192, 256)  # (h, w) the smoothed predictions are low-passed at
ANGLES = ((6.0, 6.0), (8.0, 8.0), (8.0, 5.0))  # (rows, columns) thresholds, degrees; the last is the default

OPEN3D_FILTERS = {  # name → (Open3D call, its arguments)
    "Open3D statistical (20 nb, 2.0 σ)": ("remove_statistical_outlier", {"nb_neighbors": 20, "std_ratio": 2.0}),
    "Open3D statistical (20 nb, 1.0 σ)": ("remove_statistical_outlier", {"nb_neighbors": 20, "std_ratio": 1.0}),
    "Open3D radius (6 in 5 cm)": ("remove_radius_outlier", {"nb_points": 6, "radius": 0.05}),
    "Open3D radius (6 in 10 cm)": ("remove_radius_outlier", {"nb_points": 6, "radius": 0.10}),
}

OPEN3D_SCRIPT = """
import json, sys, time
import numpy as np, open3d as o3d
data = np.load(sys.argv[1])
filters = json.loads(sys.argv[2])
result = {"version": o3d.__version__}
for name, (call, kwargs) in filters.items():
    kept, times = [], []
    for key in sorted(k for k in data.files if k.startswith("cloud")):
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(data[key].astype(np.float64)))
        start = time.perf_counter()
        _, index = getattr(cloud, call)(**kwargs)
        times.append(time.perf_counter() - start)
        kept.append(np.asarray(index, np.int64).tolist())
    result[name] = {"kept": kept, "ms": [1000 * t for t in times]}
print(json.dumps(result))
"""


def smoothed_prediction(depth: np.ndarray, valid: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """What a network at ``NETWORK`` resolution makes of ``depth``: low-passed there, upsampled."""
    filled = np.where(valid, depth, np.float32(STREET_MAX_RANGE))
    small = cv2.resize(filled, NETWORK[::-1], interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma)
    return np.where(valid, cv2.resize(small, depth.shape[::-1], interpolation=cv2.INTER_LINEAR), np.nan)


def shipped_prediction(image: np.ndarray, depth: np.ndarray, valid: np.ndarray, camera: CameraModel) -> np.ndarray:
    from depth_estimation_ros.commands.demo import SHIPPED_MODEL
    from depth_estimation_ros.core.estimator import DepthEstimator

    global _SHIPPED
    if "_SHIPPED" not in globals():
        _SHIPPED = DepthEstimator(str(SHIPPED_MODEL), "torch", device="cpu")
    predicted = _SHIPPED(image, camera).depth
    ratio = np.nanmedian(depth[valid] / predicted[valid])
    return np.where(valid, predicted * ratio, np.nan).astype(np.float32)


def phantoms(points: np.ndarray, truth) -> np.ndarray:
    """(N,) bool: points farther than 5 cm + 2 % of their range from every true surface point."""
    distance, _ = truth.query(points, k=1, workers=-1)
    return distance > 0.05 + 0.02 * np.linalg.norm(points, axis=1)


def frames(count: int):
    """(name, kind, prediction, true depth, valid, camera) of generated scenes and their predictions."""
    for kind in ("indoor", "street"):
        for i in range(count):
            sample = render_scene(5000 + i, HEIGHT, WIDTH, kind)
            camera = CameraModel(WIDTH, HEIGHT, sample["K"])
            depth, valid = sample["depth"], sample["valid"]
            yield "smoothed", kind, smoothed_prediction(depth, valid), depth, valid, camera
            if kind == "indoor":
                yield "shipped", kind, shipped_prediction(sample["image"], depth, valid, camera), depth, valid, camera


def measure(count: int, open3d_python: str | None, repeats: int) -> dict:
    from scipy.spatial import cKDTree

    rows: dict[tuple[str, str], dict[str, list]] = {}
    filters = {f"ours ({rows:g}° rows, {cols:g}° columns)": EdgeFilter(rows, cols) for rows, cols in ANGLES}
    clouds, labels = {}, []
    for source, kind, predicted, depth, valid, camera in frames(count):
        truth = cKDTree(depth_to_points(np.where(valid, depth, np.nan), camera).reshape(-1, 3)[valid.ravel()])
        cloud = depth_to_points(predicted, camera)[::DECIMATION, ::DECIMATION].reshape(-1, 3)
        keep = np.isfinite(cloud).all(axis=1)
        points = cloud[keep]
        bad = phantoms(points, truth)
        key = (source, kind)
        stats = rows.setdefault(key, {"points": [], "phantoms": []})
        stats["points"].append(len(points))
        stats["phantoms"].append(int(bad.sum()))
        for name, edge_filter in filters.items():
            flying = edge_filter.mask(predicted, camera)[::DECIMATION, ::DECIMATION].ravel()[keep]
            stats.setdefault(name, []).append((int((flying & bad).sum()), int((flying & ~bad).sum())))
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                edge_filter.mask(predicted, camera)
                times.append(1000 * (time.perf_counter() - start))
            stats.setdefault(name + " ms", []).append(statistics.median(times))
        clouds[f"cloud{len(labels):03d}"] = points
        labels.append((key, bad))
    version = None
    if open3d_python:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "clouds.npz"
            np.savez(path, **clouds)
            run = subprocess.run([open3d_python, "-c", OPEN3D_SCRIPT, str(path), json.dumps(OPEN3D_FILTERS)],
                                 capture_output=True, text=True)  # fmt: skip
        if run.returncode != 0:
            sys.exit(f"the Open3D reference failed in {open3d_python}: {run.stderr.strip().splitlines()[-1:]}")
        result = json.loads(run.stdout.strip().splitlines()[-1])
        version = result.pop("version")
        for name, figures in result.items():
            for (key, bad), kept, ms in zip(labels, figures["kept"], figures["ms"], strict=True):
                removed = np.ones(len(bad), bool)
                removed[kept] = False
                rows[key].setdefault(name, []).append((int((removed & bad).sum()), int((removed & ~bad).sum())))
                rows[key].setdefault(name + " ms", []).append(ms)
    return {"rows": rows, "open3d_version": version, "filters": [*filters, *(OPEN3D_FILTERS if version else ())]}


def costs(repeats: int) -> dict[str, float]:
    """Median ms per 640×480 frame of the filter and the scan (after the first call caches geometry)."""
    sample = render_scene(5000, HEIGHT, WIDTH, "indoor")
    camera = CameraModel(WIDTH, HEIGHT, sample["K"])
    predicted = smoothed_prediction(sample["depth"], sample["valid"])
    figures = {}
    edge_filter, one_row, twenty_rows = EdgeFilter(), ScanProjector(1), ScanProjector(20)
    for name, call in (
        ("edge filter", lambda: edge_filter(predicted, camera)),
        ("scan (1 row)", lambda: one_row(predicted, camera)),
        ("scan (20 rows)", lambda: twenty_rows(predicted, camera)),
    ):
        call()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(1000 * (time.perf_counter() - start))
        figures[name] = statistics.median(times)
    return figures


def pipeline_share(repeats: int) -> dict[str, float]:
    """Median ms of the frame's cost outside the network (``DepthPipeline.process`` on a 640×480
    frame, network outputs replayed, the node's default cloud) without and with the filter and the scan."""
    from rosbags.typesys import Stores, get_typestore

    from benchmarks.bench import bench_overhead
    from depth_estimation_ros.ros.messages import MessageTypes
    from depth_estimation_ros.ros.parameters import DEFAULTS
    from depth_estimation_ros.ros.pipeline import PIPELINE_OPTIONS

    types = MessageTypes.from_typestore(get_typestore(Stores.ROS2_JAZZY))
    defaults = {name: DEFAULTS[name] for name in PIPELINE_OPTIONS}
    variants = {
        "no filter, no scan": {"points_edge_filter": False},
        "filter (the default)": {},
        "filter and scan (20 rows)": {"publish_scan": True, "scan_height": 20},
    }
    figures: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(3):  # interleaved rounds, so each variant sees the same load
        for name, options in variants.items():
            figures[name].append(bench_overhead(types, {**defaults, **options}, repeats)["ms"])
    return {name: statistics.median(values) for name, values in figures.items()}


def report(result: dict, cost: dict[str, float]) -> str:
    lines = [
        f"Open3D {result['open3d_version'] or '(not run)'}; clouds {WIDTH}×{HEIGHT} decimated by {DECIMATION}.",
        "",
    ]
    for (source, kind), stats in result["rows"].items():
        n, bad = sum(stats["points"]), sum(stats["phantoms"])
        lines += [f"**{source} predictions, {kind}** ({len(stats['points'])} frames, {n} points, "
                  f"{100 * bad / n:.1f} % phantoms)", "",
                  "| filter | phantoms removed | good points lost | ms per frame |", "|---|---|---|---|"]  # fmt: skip
        for name in result["filters"]:
            removed_bad = sum(r[0] for r in stats[name])
            removed_good = sum(r[1] for r in stats[name])
            ms = statistics.median(stats[name + " ms"])
            lines.append(f"| {name} | {100 * removed_bad / max(bad, 1):.1f} % | "
                         f"{100 * removed_good / max(n - bad, 1):.2f} % | {ms:.1f} |")  # fmt: skip
        lines.append("")
    lines += ["| per 640×480 frame | ms |", "|---|---|", *(f"| {k} | {v:.2f} |" for k, v in cost.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=6, help="scenes per kind (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per frame (default: %(default)s)")
    parser.add_argument("--open3d-python", help="an interpreter with open3d for the reference filters")
    args = parser.parse_args(argv)
    print(report(measure(args.frames, args.open3d_python, args.repeats), costs(5 * args.repeats)))
    share = pipeline_share(2 * args.repeats)
    print("\n| frame outside the network, 640×480, decimation 2, xyzrgb | ms |\n|---|---|")
    print("\n".join(f"| {name} | {ms:.2f} |" for name, ms in share.items()))


if __name__ == "__main__":
    main()
