"""``depth-estimation predict``: depth for an image, a folder of images or a video file.

Per frame it writes ``<name>_depth.png`` (16-bit millimetres, 0 = invalid, REP 118's 16UC1),
``<name>_depth.npy`` (float32 metres, NaN = invalid), ``<name>_confidence.npy`` (when the model has
one), ``<name>_preview.png`` (input | colourised depth) and ``<name>.ply`` (coloured point cloud without
flying pixels; ``--no-edge-filter`` keeps them).

``<name>`` is the input's stem, or ``<stem>_<extension>`` when two inputs share a stem (``a.png``
and ``a.jpg``). Nothing is overwritten without ``overwrite``; the output folder may not be, hold
or lie inside an input folder. A frame's files are staged and renamed together once all are written.

``sparse``: a folder of sparse metric depth registered to the camera, for a ``sparse_depth``
anchor: ``<stem>.png`` (16-bit millimetres, 0 = none) or ``<stem>.npy`` (float32 metres, NaN or 0
= none) beside each input's stem, any resolution. A frame without one keeps the last scale; frames
are 1/30 s apart for the anchor's filter (videos: their own rate). A relative model's frame before
the first scale is skipped with a warning, never written as metres. ``sparse_points``: a folder of
LiDAR scans for a ``sparse_points`` anchor: ``<stem>.bin`` (KITTI: float32 x, y, z, intensity) or
``<stem>.npy`` ((N, 3+) metres), placed by the estimator's ``sparse_points_transform``.
``--temporal-fusion static`` fuses the frames, in name order, as a fixed camera's.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from depth_estimation_ros.core.anchoring import describe_outcomes
from depth_estimation_ros.core.backends import BACKENDS
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.edges import EdgeFilter
from depth_estimation_ros.core.errors import UsageError, finite_float, positive_float, run_command, unit_float
from depth_estimation_ros.core.estimator import IMAGE_SUFFIXES, DepthEstimator, DepthResult, NoMetricScale
from depth_estimation_ros.core.files import overlaps, refuse_existing, staged_files
from depth_estimation_ros.core.pointcloud import depth_to_points, write_ply
from depth_estimation_ros.core.validation import cv2_path, input_file, read_image, shown
from depth_estimation_ros.core.visualize import colorize, side_by_side
from depth_estimation_ros.ros.messages import depth_to_millimetres
from depth_estimation_ros.ros.parameters import SCALE_ARGUMENTS, check_applicable, options_from
from depth_estimation_ros.ros.parameters import add_arguments as add_parameter_arguments

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def read_rgb(path: Path) -> np.ndarray:
    # Bytes read here, not by cv2.imread: it crashes on names that are not UTF-8, blocks on a FIFO
    return cv2.cvtColor(read_image(path, "image"), cv2.COLOR_BGR2RGB)


def output_names(files: list[Path]) -> list[str]:
    """One distinct output name per input file: the stem, or stem_extension where stems collide."""
    stems = [shown(p.stem) for p in files]  # printable and writable even where the name is not UTF-8
    suffixes = [shown(p.suffix.lstrip(".").lower()) for p in files]
    names = [
        stem if stems.count(stem) == 1 else f"{stem}_{suffix}" for stem, suffix in zip(stems, suffixes, strict=True)
    ]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"inputs would give results of the same name {clashes}; rename or separate them")
    return names


def frames(source: str | os.PathLike) -> tuple[int, Iterator[tuple[str, np.ndarray]]]:
    """(frame count, iterator of (name, RGB)) for an image, a folder of images or a video."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {shown(source)}")
        return len(files), ((name, read_rgb(p)) for name, p in zip(output_names(files), files, strict=True))
    if not source.is_file():
        input_file(source, "input")  # missing, a FIFO or a device: named, never opened
    if source.suffix.lower() in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(cv2_path(source, "video"))
        if not capture.isOpened():
            raise ValueError(f"cannot open video {source}")

        def video():
            index = 0
            try:
                while True:
                    ok, bgr = capture.read()
                    if not ok:
                        break
                    yield f"{source.stem}_{index:06d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    index += 1
            finally:
                capture.release()
            if index == 0:
                raise ValueError(f"no frame could be decoded from video {source}")

        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), video()
    if source.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{source}: not an image ({', '.join(IMAGE_SUFFIXES)}) or video ({', '.join(VIDEO_SUFFIXES)})")
    return 1, iter([(shown(source.stem), read_rgb(source))])


def read_sparse(folder: Path | None, name: str) -> np.ndarray | None:
    """The sparse depth (metres, NaN holes) for frame ``name``, or None when the folder has none."""
    if folder is None:
        return None
    png, npy = folder / f"{name}.png", folder / f"{name}.npy"
    if npy.is_file():
        try:
            depth = np.load(npy, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read sparse depth {npy}: {exc}") from None
        if depth.ndim != 2 or depth.dtype.kind != "f":
            raise ValueError(f"sparse depth {npy} must be a 2-D float array of metres, got {depth.dtype} {depth.shape}")
        return depth.astype(np.float32, copy=False)
    if png.is_file():
        try:
            pixels = read_image(png, "sparse depth", cv2.IMREAD_UNCHANGED)
        except ValueError:
            pixels = None
        if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 2:
            raise ValueError(f"sparse depth {png} must be a 16-bit single-channel PNG of millimetres")
        depth = pixels.astype(np.float32) / np.float32(1000)
        depth[pixels == 0] = np.nan
        return depth
    return None


def read_points(folder: Path | None, name: str) -> np.ndarray | None:
    """The LiDAR points (N, 3+) for frame ``name``: ``<name>.bin`` (KITTI: float32 x, y, z,
    intensity) or ``<name>.npy`` ((N, 3) or wider, x y z first); None when the folder has none."""
    if folder is None:
        return None
    scan, npy = folder / f"{name}.bin", folder / f"{name}.npy"
    if npy.is_file():
        try:
            points = np.load(npy, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read LiDAR points {npy}: {exc}") from None
        if points.ndim != 2 or points.shape[1] < 3 or points.dtype.kind != "f":
            raise ValueError(f"LiDAR points {npy} must be a float array (N, 3) or wider, got {points.dtype} "
                             f"{points.shape}")  # fmt: skip
        return points
    if scan.is_file():
        raw = np.fromfile(scan, np.float32)
        if raw.size % 4:
            raise ValueError(f"LiDAR scan {scan} has {raw.size} float32 values, not x y z intensity per point")
        return raw.reshape(-1, 4)
    return None


def assumed_camera(width: int, height: int) -> CameraModel:
    """A 53° horizontal field of view, centred: used only when no intrinsics are given."""
    return CameraModel.from_intrinsics(width, width, (width - 1) / 2, (height - 1) / 2, width, height)


def result_files(name: str) -> tuple[str, ...]:
    return f"{name}_depth.png", f"{name}_depth.npy", f"{name}_confidence.npy", f"{name}_preview.png", f"{name}.ply"


def write_outputs(
    out_dir: Path,
    name: str,
    rgb: np.ndarray,
    result: DepthResult,
    max_range: float | None,
    overwrite: bool = False,
    edges: EdgeFilter | None = None,
) -> None:
    """The frame's files, each staged; all renamed once every one is complete. ``edges``: the
    flying-pixel filter for the cloud (the depth files keep every pixel)."""
    if rgb.shape[:2] != result.depth.shape:
        rgb = cv2.resize(rgb, result.camera.size, interpolation=cv2.INTER_AREA)
    preview = cv2.cvtColor(side_by_side(rgb, colorize(result.depth)), cv2.COLOR_RGB2BGR)
    depth_png, depth_npy, confidence_npy, preview_png, ply = result_files(name)
    cloud_depth = result.depth if edges is None else edges(result.depth, result.camera)
    writers = {
        depth_png: lambda tmp: cv2.imwrite(str(tmp), depth_to_millimetres(result.depth)),
        depth_npy: lambda tmp: np.save(tmp, result.depth),
        preview_png: lambda tmp: cv2.imwrite(str(tmp), preview),
        ply: lambda tmp: write_ply(tmp, depth_to_points(cloud_depth, result.camera, max_range), rgb),
    }
    if result.confidence is not None:
        writers[confidence_npy] = lambda tmp: np.save(tmp, result.confidence)
    with staged_files([out_dir / file for file in writers], overwrite) as staged:
        for file, write in writers.items():
            if write(staged[out_dir / file]) is False:
                raise OSError(f"cannot write {out_dir / file} (the encoder failed: no space or no permission?)")
    if result.confidence is None and overwrite:  # a replaced result keeps no file of the one it replaced
        (out_dir / confidence_npy).unlink(missing_ok=True)


def warn_unanchored(estimator: DepthEstimator, outcomes: Counter) -> None:
    """A fitted scale source that anchored no frame: said, since what was written is the model's own."""
    if outcomes and outcomes["fitted"] == 0:
        log.warning("no frame was anchored to %s (%s); what was written is the model's own depth",
                    estimator.anchor.source, describe_outcomes(outcomes))  # fmt: skip


def predict(
    estimator: DepthEstimator,
    source: str | os.PathLike,
    output: str | os.PathLike,
    camera: CameraModel | None = None,
    max_range: float | None = None,
    overwrite: bool = False,
    sparse: str | os.PathLike | None = None,
    edge_filter: bool = True,
    sparse_points: str | os.PathLike | None = None,
) -> int:
    """Run ``estimator`` on every frame of ``source``; returns the number of frames written.
    ``edge_filter``: drop flying pixels from the clouds, as the node does."""
    source, out_dir = Path(source), Path(output)
    sparse = None if sparse is None else Path(sparse)
    if sparse is not None and not sparse.is_dir():
        raise UsageError(f"sparse depth {sparse} is not a folder (expected <stem>.png or <stem>.npy per frame)")
    points = None if sparse_points is None else Path(sparse_points)
    if points is not None and not points.is_dir():
        raise UsageError(f"LiDAR points {points} is not a folder (expected <stem>.bin or <stem>.npy per frame)")
    if max_range is not None and not (np.isfinite(max_range) and max_range > 0):
        raise UsageError(f"max_range must be a positive number of metres (omit it for no limit), got {max_range}")
    if (source.is_dir() and overlaps(out_dir, source)) or source.resolve() == out_dir.resolve():
        raise UsageError(f"output {out_dir} overlaps the input {source}; choose an output folder outside it")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"output {out_dir} is a file, expected a folder for the results")
    total, items = frames(source)
    edges = EdgeFilter() if edge_filter else None
    implausible, anchoring = estimator.implausible, Counter(estimator.anchoring)  # it may have run before
    out_dir.mkdir(parents=True, exist_ok=True)
    count = skipped = 0
    try:
        for index, (name, rgb) in enumerate(tqdm(items, total=total, unit="frame", disable=total <= 1)):
            if not overwrite:
                for file in result_files(name):
                    refuse_existing(out_dir / file, "result", "pass --overwrite to replace results")
            frame_camera = camera
            if frame_camera is None:
                frame_camera = assumed_camera(rgb.shape[1], rgb.shape[0])
                if count == 0 and estimator.card.camera_dependent:  # its metres come from the focal length
                    log.warning("no camera intrinsics given: this model's depth (%s, focal rule %s) is not metric "
                                "without them (it assumes K=%s); pass --camera or --fx --fy --cx --cy",
                                estimator.card.output, estimator.card.focal_rule, frame_camera.K.tolist())  # fmt: skip
                elif count == 0:
                    log.warning("no camera intrinsics given: point clouds assume %s", frame_camera.K.tolist())
            try:
                given = read_points(points, name) if points is not None else read_sparse(sparse, name)
                result = estimator(rgb, frame_camera, sparse=given, stamp=index / 30)
            except NoMetricScale as exc:
                skipped += 1
                log.warning("%s skipped: %s", name, exc)
                continue
            write_outputs(out_dir, name, rgb, result, max_range, overwrite, edges)
            count += 1
    except BaseException:
        if count:
            log.warning("stopped after %d of %d frame(s); their results in %s are complete", count, total, out_dir)
        raise
    if skipped:
        log.warning("%d frame(s) had no metric scale and were skipped", skipped)
    warn_unanchored(estimator, estimator.anchoring - anchoring)
    if implausible := estimator.implausible - implausible:
        log.warning(
            "%d depth pixel(s) outside the plausible %g-%g m were written as invalid (NaN, 0 in the PNG): "
            "check the intrinsics and the sparse depth",
            implausible,
            *estimator.card.plausible_depth,
        )
    if not count and skipped:
        raise ValueError(f"no frame of {source} could be given a metric scale (see the warnings above)")
    return count


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help="checkpoint (.pt), ONNX graph (.onnx), engine (.engine) or transformers folder"
    )
    parser.add_argument("--input", required=True, help="an image, a folder of images, or a video file")
    parser.add_argument("--output", required=True, help="folder for the results")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    add_parameter_arguments(parser, ("card",))
    parser.add_argument("--camera", help="camera_info YAML (ROS camera_calibration format)")
    for name in ("fx", "fy", "cx", "cy"):
        kind = positive_float if name in ("fx", "fy") else finite_float
        parser.add_argument(f"--{name}", type=kind, help=f"intrinsic {name} in pixels (instead of --camera)")
    parser.add_argument("--resize", choices=("stretch", "letterbox"), default="stretch",
                        help="how frames are fitted to the network input (default: stretch)")  # fmt: skip
    parser.add_argument("--min-confidence", type=unit_float, default=0.0, help="drop depth below this confidence")
    parser.add_argument("--max-range", type=positive_float,
                        help="drop cloud points farther than this many metres (default: no limit)")  # fmt: skip
    parser.add_argument("--no-edge-filter", action="store_true",
                        help="keep flying pixels (points between an object and its background) in clouds")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace result files that exist in --output")
    add_parameter_arguments(parser, SCALE_ARGUMENTS)
    parser.add_argument("--sparse-depth", metavar="FOLDER",
                        help="sparse metric depth per frame for --scale-source sparse_depth: <stem>.png (16-bit mm) "
                             "or <stem>.npy (float32 m), registered to the camera, any resolution")  # fmt: skip
    parser.add_argument("--sparse-points", metavar="FOLDER",
                        help="LiDAR points per frame for --scale-source sparse_points: <stem>.bin (KITTI float32 "
                             "x y z intensity) or <stem>.npy ((N, 3+) x y z first), placed by "
                             "--sparse-points-transform")  # fmt: skip
    parser.add_argument("--temporal-fusion", choices=("none", "static"), default="none",
                        help="fuse depth over the frames of a fixed camera, in name order (default: none; odometry: "
                             "the bag tool)")  # fmt: skip


def camera_from_args(args: argparse.Namespace) -> CameraModel | None:
    """``--camera`` or ``--fx --fy --cx --cy`` (the size then is the first input's), or none."""
    if args.camera:
        return CameraModel.from_yaml(args.camera)
    given = [v is not None for v in (args.fx, args.fy, args.cx, args.cy)]
    if any(given) and not all(given):
        raise UsageError("give all of --fx --fy --cx --cy, or --camera CAMERA_INFO_YAML")
    if not any(given):
        return None
    _, first = frames(args.input)
    height, width = next(first)[1].shape[:2]
    try:
        return CameraModel.from_intrinsics(args.fx, args.fy, args.cx, args.cy, width, height)
    except ValueError as exc:  # e.g. --fx 1e30: refused before anything loads
        raise UsageError(f"--fx --fy --cx --cy: {exc}") from None


def run(args: argparse.Namespace) -> int:
    scale = options_from(args, SCALE_ARGUMENTS)
    try:
        check_applicable(scale)
    except ValueError as exc:  # before anything loads
        raise UsageError(str(exc)) from None
    for flag, source in (("--sparse-depth", "sparse_depth"), ("--sparse-points", "sparse_points")):
        if getattr(args, source) and args.scale_source != source:
            raise UsageError(f"{flag} applies only with --scale-source {source}; it would be ignored here")
    camera = camera_from_args(args)
    estimator = DepthEstimator(args.model, args.backend, resize=args.resize, min_confidence=args.min_confidence,
                               card=args.card, temporal_fusion=args.temporal_fusion,
                               **options_from(args, SCALE_ARGUMENTS))  # fmt: skip
    count = predict(estimator, args.input, args.output, camera, args.max_range, overwrite=args.overwrite,
                    sparse=args.sparse_depth, edge_filter=not args.no_edge_filter,
                    sparse_points=args.sparse_points)  # fmt: skip
    print(f"wrote {count} frame(s) to {args.output} ({estimator.backend.describe()})")
    if estimator.anchoring:  # a fitted scale source: what it did, frame by frame
        print(f"  anchoring ({estimator.anchor.source}): {describe_outcomes(estimator.anchoring)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("predict", __doc__, add_arguments, run, argv)
