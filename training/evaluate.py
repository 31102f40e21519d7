"""``depth-estimation eval``: score a model under the standard protocol and report latency.

The model runs through :class:`DepthEstimator` (so a checkpoint, an ONNX graph or an engine is
scored exactly as it would run on the robot): each image is resized to the network input, the
prediction comes back at ground-truth resolution, and ``training.protocol.evaluate_image`` applies
the crop and caps. Metrics are per image, then averaged. Flip test-time augmentation is optional
and reported.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from depth_estimation_ros.camera import CameraModel
from depth_estimation_ros.errors import UsageError
from depth_estimation_ros.estimator import DepthEstimator
from depth_estimation_ros.files import write_text
from depth_estimation_ros.metrics import METRICS, average_metrics, format_table
from training.protocol import evaluate_image, flip_tta


def predict(estimator: DepthEstimator, image: np.ndarray, camera: CameraModel, flip: bool) -> np.ndarray:
    if not flip:
        return estimator(image, camera).depth
    mirrored = camera.flip_horizontal()
    # flip_tta passes ``image`` itself, then its mirror image: give each the camera that describes it
    return flip_tta(lambda im: estimator(im, camera if im is image else mirrored).depth, image)


def evaluate(
    estimator: DepthEstimator,
    dataset,
    protocol: str = "nyu",
    crop: str | None = "default",
    flip: bool = False,
    min_depth: float | None = None,
    max_depth: float | None = None,
) -> dict:
    """Average metrics over ``dataset`` (samples with ``image``, ``depth``, ``K``), plus latency."""
    rows, latencies = [], []
    for index in tqdm(range(len(dataset)), unit="image", leave=False):
        sample = dataset[index]
        h, w = sample["depth"].shape
        camera = CameraModel(w, h, sample["K"])
        start = time.perf_counter()
        depth = predict(estimator, sample["image"], camera, flip)
        latencies.append(time.perf_counter() - start)
        gt = np.where(sample["valid"], sample["depth"], np.nan)
        rows.append(evaluate_image(depth, gt, protocol, crop, min_depth, max_depth))
    summary = average_metrics(rows)
    return {
        "metrics": summary,
        "per_image": rows,
        "latency_ms": {"median": 1000 * float(np.median(latencies)), "mean": 1000 * float(np.mean(latencies))},
        "flip": flip,
        "crop": crop,
        "protocol": protocol,
        "backend": estimator.backend.describe(),
    }


def median_depth(dataset, limit: int = 200) -> float:
    """Median valid depth over (up to ``limit``) samples: the best constant prediction for L1."""
    values = [dataset[i]["depth"][dataset[i]["valid"]] for i in range(min(limit, len(dataset)))]
    return float(np.median(np.concatenate(values)))


def evaluate_constant(value: float, dataset, protocol: str = "nyu", crop: str | None = "default") -> dict:
    """Metrics of a predictor that answers ``value`` metres everywhere: the floor a model must beat."""
    rows = []
    for index in range(len(dataset)):
        sample = dataset[index]
        gt = np.where(sample["valid"], sample["depth"], np.nan)
        rows.append(evaluate_image(np.full(gt.shape, value, np.float32), gt, protocol, crop))
    return average_metrics(rows)


def dataset_from_args(args: argparse.Namespace):
    if args.dataset == "nyu":
        from training.datasets.nyu import NYUDepthV2Mat

        return NYUDepthV2Mat(
            args.nyu_mat, split="test", splits_path=args.nyu_splits, depth="raw" if args.raw else "filled"
        )
    if args.dataset == "kitti":
        from training.datasets.kitti import KittiEigen

        return KittiEigen(args.kitti_split, args.kitti_raw, args.kitti_gt)
    from training.datasets.synthetic import SyntheticDataset

    return SyntheticDataset(args.count, kind=args.kind, height=args.height, width=args.width, seed=args.seed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", "--model", dest="model", required=True, help=".pt, .onnx or .engine")
    parser.add_argument("--dataset", choices=("nyu", "kitti", "synthetic"), required=True)
    parser.add_argument("--backend", default="auto", choices=("auto", "tensorrt", "onnxruntime", "torch"))
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument("--crop", default="default", help="default (NYU: bts, KITTI: garg), densedepth, eigen, none")
    parser.add_argument("--output-json", help="write the summary and per-image metrics here")
    nyu = parser.add_argument_group("NYU Depth V2 (labeled .mat, 654 test images)")
    nyu.add_argument("--nyu-mat", help="nyu_depth_v2_labeled.mat")
    nyu.add_argument("--nyu-splits", help="splits.mat (default: beside the .mat)")
    nyu.add_argument("--raw", action="store_true", help="score against rawDepths instead of the filled depths")
    kitti = parser.add_argument_group("KITTI Eigen split")
    kitti.add_argument("--kitti-split", help="split file (e.g. eigen_test_files_with_gt.txt)")
    kitti.add_argument("--kitti-raw", help="raw data root (<date>/<drive>/image_02/data)")
    kitti.add_argument("--kitti-gt", nargs="+", help="annotated depth root(s)")
    synthetic = parser.add_argument_group("synthetic scenes (held-out seeds)")
    synthetic.add_argument("--kind", default="indoor", choices=("indoor", "street"))
    synthetic.add_argument("--count", type=int, default=100)
    synthetic.add_argument("--seed", type=int, default=1_000_000, help="first seed (training uses low seeds)")
    synthetic.add_argument("--height", type=int, default=256)
    synthetic.add_argument("--width", type=int, default=352)


def run(args: argparse.Namespace) -> int:
    required = {"nyu": ("nyu_mat",), "kitti": ("kitti_split", "kitti_raw", "kitti_gt"), "synthetic": ()}[args.dataset]
    missing = [f"--{name.replace('_', '-')}" for name in required if not getattr(args, name)]
    if missing:
        raise UsageError(f"--dataset {args.dataset} needs {' '.join(missing)}")
    protocol = "kitti" if args.dataset == "kitti" or getattr(args, "kind", "") == "street" else "nyu"
    crop = None if args.crop == "none" or args.dataset == "synthetic" else args.crop
    result = evaluate(DepthEstimator(args.model, args.backend), dataset_from_args(args), protocol, crop, args.flip)
    count, flip = result["metrics"]["count"], "on" if args.flip else "off"
    label = f"{Path(args.model).name} ({args.dataset}, {count} images, flip {flip})"
    print(format_table({label: result["metrics"]}))
    print(f"latency per image: median {result['latency_ms']['median']:.1f} ms on {result['backend']}"
          f"{' (two passes: flip)' if args.flip else ''}")  # fmt: skip
    if args.output_json:
        text = json.dumps({**result, "metric_names": list(METRICS)}, indent=2)
        write_text(args.output_json, text, overwrite=getattr(args, "overwrite", False))
        print(f"wrote {args.output_json}")
    return 0
