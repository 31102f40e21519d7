"""``depth-estimation eval``: score a model under the standard protocol and report latency.

The model runs through :class:`DepthEstimator` (so a checkpoint, an ONNX graph or an engine is
scored exactly as it would run on the robot); the prediction comes back at ground-truth
resolution, and ``training.protocol.evaluate_image`` applies the crop and caps. Metrics are per
image, then averaged. Flip test-time augmentation is optional and reported.

Scale: a network only knows metric depth at the focal lengths (in pixels) it saw in training.
Training records the image scale it trained at (``extra["eval"]["scale"]`` of the checkpoint,
see :func:`training.protocol.eval_scale`); eval shows each whole frame at that scale, rounded to
the model's size rule (one network input size per frame size; PyTorch checkpoints only). A
checkpoint without that record, or an ONNX graph or engine (fixed input), is stretched to its
input size as before; ``--scale`` overrides, and the report says which was used.

Every table and JSON report names the dataset, split, N, crop, caps, ground truth and, for
KITTI, the listed frames left out for want of ground truth.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.errors import UsageError, image_side, run_command
from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.core.files import refuse_existing, write_text
from depth_estimation_ros.core.metrics import METRICS, average_metrics, format_table
from training.protocol import CAPS, evaluate_image, flip_tta, resolve_crop

# NYU ground truth of each crop's lineage: BTS/AdaBins score the official raw depth, DenseDepth the filled.
NYU_GT_OF_CROP = {"bts": "raw", "densedepth": "filled", None: "raw"}
GROUND_TRUTHS = {"nyu": ("raw", "filled"), "kitti": ("annotated", "velodyne"), "synthetic": ("exact",)}


MAX_SCALE = 4.0  # --scale: a NYU frame at 4× is already 1920×2560 at the network


def network_size(h: int, w: int, scale: float, divisor: int) -> tuple[int, int]:
    """``scale`` × (h, w), each side rounded to the nearest multiple of ``divisor`` (at least one)."""
    return tuple(max(divisor, round(n * scale / divisor) * divisor) for n in (h, w))


class ScaledEstimator:
    """A checkpoint run on each whole frame at ``scale`` × its size (one PyTorch backend per size).

    Rounding to the size rule changes the scale by at most ``divisor / 2`` pixels per side.
    """

    def __init__(self, checkpoint: str | Path, scale: float, **backend_options):
        from depth_estimation_ros.core.backends import open_backend
        from depth_estimation_ros.core.models import load_checkpoint

        if not scale > 0:
            raise ValueError(f"--scale must be > 0, got {scale}")
        self.checkpoint, self.scale, self.options = checkpoint, float(scale), backend_options
        self.divisor = int(load_checkpoint(checkpoint).get("size_divisor", 32))
        self.estimators: dict[tuple[int, int], DepthEstimator] = {}
        self._open = open_backend

    def __call__(self, image: np.ndarray, camera: CameraModel):
        size = network_size(*image.shape[:2], self.scale, self.divisor)
        if size not in self.estimators:
            backend = self._open(self.checkpoint, "torch", input_size=size, **self.options)
            self.estimators[size] = DepthEstimator(backend)
        return self.estimators[size](image, camera)

    @property
    def backend(self):
        return next(iter(self.estimators.values())).backend

    def describe_input(self) -> str:
        sizes = ", ".join(f"{h}x{w}" for h, w in sorted(self.estimators))
        return f"whole frame at scale {self.scale:g} ({sizes})"


def predict(estimator, image: np.ndarray, camera: CameraModel, flip: bool) -> np.ndarray:
    if not flip:
        return estimator(image, camera).depth
    mirrored = camera.flip_horizontal()
    # flip_tta passes ``image`` itself, then its mirror image: give each the camera that describes it
    return flip_tta(lambda im: estimator(im, camera if im is image else mirrored).depth, image)


def describe_input(estimator) -> str:
    if isinstance(estimator, ScaledEstimator):
        return estimator.describe_input()
    h, w = estimator.input_size
    return f"stretched to {h}x{w}"


def evaluate(
    estimator,
    dataset,
    protocol: str = "nyu",
    crop: str | None = "default",
    flip: bool = False,
    min_depth: float | None = None,
    max_depth: float | None = None,
) -> dict:
    """Average metrics over ``dataset`` (samples with ``image``, ``depth``, ``K``), plus latency.

    ``estimator`` is a :class:`DepthEstimator` or a :class:`ScaledEstimator`.
    """
    crop = resolve_crop(protocol, crop)
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
    lo, hi = CAPS[protocol]
    return {
        "metrics": summary,
        "per_image": rows,
        "latency_ms": {"median": 1000 * float(np.median(latencies)), "mean": 1000 * float(np.mean(latencies))},
        "flip": flip,
        "crop": crop,
        "protocol": protocol,
        "caps_m": [lo if min_depth is None else min_depth, hi if max_depth is None else max_depth],
        "network_input": describe_input(estimator),
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


def ground_truth_of(args: argparse.Namespace, crop: str | None) -> str:
    """The ground truth a run scores against: ``--ground-truth``, or the default of the dataset."""
    choice = args.ground_truth
    if choice == "auto":
        return {"nyu": NYU_GT_OF_CROP.get(crop, "raw"), "kitti": "annotated", "synthetic": "exact"}[args.dataset]
    if choice not in GROUND_TRUTHS[args.dataset]:
        raise UsageError(
            f"--ground-truth {choice} does not exist for --dataset {args.dataset}; "
            f"expected auto or one of {', '.join(GROUND_TRUTHS[args.dataset])}"
        )
    return choice


def dataset_from_args(args: argparse.Namespace, ground_truth: str):
    if args.dataset == "nyu":
        from training.datasets.nyu import NYUDepthV2Mat

        return NYUDepthV2Mat(args.nyu_mat, split="test", splits_path=args.nyu_splits, depth=ground_truth)
    if args.dataset == "kitti":
        from training.datasets.kitti import KittiEigen

        return KittiEigen(args.kitti_split, args.kitti_raw, args.kitti_gt, ground_truth=ground_truth)
    from training.datasets.synthetic import SyntheticDataset

    return SyntheticDataset(args.count, kind=args.kind, height=args.height, width=args.width, seed=args.seed)


def open_estimator(args: argparse.Namespace):
    """A :class:`ScaledEstimator` at the checkpoint's (or ``--scale``) scale, else a stretching estimator."""
    from depth_estimation_ros.core.models import load_checkpoint

    is_checkpoint = Path(args.model).suffix not in (".onnx", ".engine", ".plan")
    if args.scale == "stretch":
        return DepthEstimator(args.model, args.backend)
    if args.scale != "auto":
        try:
            scale = float(args.scale)
        except ValueError:
            raise UsageError(f"--scale must be auto, stretch or a number, got {args.scale!r}") from None
        if not 0 < scale <= MAX_SCALE:  # NaN fails too
            raise UsageError(f"--scale must be a number in (0, {MAX_SCALE:g}], got {args.scale!r}")
        if not is_checkpoint:
            raise UsageError(
                f"--scale {args.scale}: {args.model} has a fixed input size; evaluate the .pt checkpoint, "
                "or export the graph at the size you want"
            )
        return ScaledEstimator(args.model, scale)
    if is_checkpoint and args.dataset != "synthetic":
        recorded = (load_checkpoint(args.model).get("extra") or {}).get("eval") or {}
        if recorded.get("scale"):
            return ScaledEstimator(args.model, recorded["scale"])
    return DepthEstimator(args.model, args.backend)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", "--model", dest="model", required=True, help=".pt, .onnx or .engine")
    parser.add_argument("--dataset", choices=("nyu", "kitti", "synthetic"), required=True)
    parser.add_argument("--backend", default="auto", choices=("auto", "tensorrt", "onnxruntime", "torch"))
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument(
        "--crop", default="default", help="NYU: bts (default), densedepth; KITTI: garg (default), eigen; or none"
    )
    parser.add_argument(
        "--ground-truth",
        default="auto",
        help="NYU: raw or filled (auto: the crop's lineage, raw for bts, filled for densedepth); "
        "KITTI: annotated (auto; 652 of the 697 Eigen frames) or velodyne (all 697, projected raw scans)",
    )
    parser.add_argument(
        "--scale",
        default="auto",
        help="image scale the network sees: auto (the checkpoint's training scale, else stretch), stretch "
        "(the whole frame resized to the model's input size), or a number (.pt only)",
    )
    parser.add_argument("--output-json", help="write the summary and per-image metrics here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output-json")
    nyu = parser.add_argument_group("NYU Depth V2 (labeled .mat, 654 test images)")
    nyu.add_argument("--nyu-mat", help="nyu_depth_v2_labeled.mat")
    nyu.add_argument("--nyu-splits", help="splits.mat (default: beside the .mat)")
    kitti = parser.add_argument_group("KITTI Eigen split")
    kitti.add_argument("--kitti-split", help="split file (e.g. eigen_test_files_with_gt.txt)")
    kitti.add_argument("--kitti-raw", help="raw data root (<date>/<drive>/image_02/data, velodyne_points, calib)")
    kitti.add_argument("--kitti-gt", nargs="+", help="annotated depth root(s) (not for velodyne)")
    synthetic = parser.add_argument_group("synthetic scenes (held-out seeds)")
    synthetic.add_argument("--kind", default="indoor", choices=("indoor", "street"))
    synthetic.add_argument("--count", type=int, default=100)
    synthetic.add_argument("--seed", type=int, default=1_000_000, help="first seed (training uses low seeds)")
    synthetic.add_argument("--height", type=image_side, default=256)
    synthetic.add_argument("--width", type=image_side, default=352)


def describe_run(args: argparse.Namespace, dataset, result: dict, ground_truth: str) -> dict:
    """What the numbers are: dataset, split, N, crop, caps, ground truth, missing ground truth."""
    info = {
        "dataset": args.dataset,
        "count": result["metrics"]["count"],
        "crop": result["crop"] or "none",
        "caps_m": result["caps_m"],
        "ground_truth": ground_truth,
    }
    if args.dataset == "nyu":
        info["split"] = f"official test ({len(dataset)} frames)"
    elif args.dataset == "kitti":
        listed = len(dataset) + dataset.num_missing_gt
        info["split"] = f"{Path(args.kitti_split).name} ({listed} frames listed)"
        info["missing_ground_truth"] = dataset.num_missing_gt
    else:
        info["split"] = f"synthetic {args.kind}, seeds {args.seed}-{args.seed + args.count - 1}"
    return info


def run(args: argparse.Namespace) -> int:
    if args.dataset == "synthetic" and args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.output_json and not args.overwrite:
        refuse_existing(args.output_json)  # before spending the evaluation
    required = {"nyu": ("nyu_mat",), "kitti": ("kitti_split", "kitti_raw"), "synthetic": ()}[args.dataset]
    if args.dataset == "kitti" and args.ground_truth in ("auto", "annotated"):
        required = (*required, "kitti_gt")
    missing = [f"--{name.replace('_', '-')}" for name in required if not getattr(args, name)]
    if missing:
        raise UsageError(f"--dataset {args.dataset} needs {' '.join(missing)}")
    protocol = "kitti" if args.dataset == "kitti" or getattr(args, "kind", "") == "street" else "nyu"
    if args.dataset == "synthetic":
        if args.crop not in ("default", "none"):
            raise UsageError(f"--crop {args.crop}: synthetic frames have no standard crop; they are scored whole")
        crop = None
    else:
        try:
            crop = resolve_crop(protocol, args.crop)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    ground_truth = ground_truth_of(args, crop)
    dataset = dataset_from_args(args, ground_truth)
    result = evaluate(open_estimator(args), dataset, protocol, crop, args.flip)
    result.update(describe_run(args, dataset, result, ground_truth))
    lo, hi = result["caps_m"]
    flip = "on" if args.flip else "off"
    print(f"{result['dataset']} {result['split']}: N = {result['count']}, crop {result['crop']}, caps {lo:g}-{hi:g} m, "
          f"ground truth {ground_truth}, flip {flip}, network input {result['network_input']}")  # fmt: skip
    if "missing_ground_truth" in result:
        print(f"frames without {ground_truth} ground truth, left out: {result['missing_ground_truth']}")
    label = f"{Path(args.model).name} ({args.dataset}, {result['count']} images, flip {flip})"
    print(format_table({label: result["metrics"]}))
    print(f"latency per image: median {result['latency_ms']['median']:.1f} ms on {result['backend']}"
          f"{' (two passes: flip)' if args.flip else ''}")  # fmt: skip
    if args.output_json:
        text = json.dumps({**result, "metric_names": list(METRICS)}, indent=2)
        write_text(args.output_json, text, overwrite=args.overwrite)
        print(f"wrote {args.output_json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("eval", __doc__, add_arguments, run, argv)
