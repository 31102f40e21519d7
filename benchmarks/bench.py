"""``depth-estimation bench``: each speed figure as a ratio to a reference measured in the same run.

* Per-frame cost outside the network (``DepthPipeline.process`` on a 480×640 frame with the network
  replaced by its outputs) against Open3D's RGB-D → coloured cloud conversion of the same frame;
  publishing through rclpy with 0 and 1 subscribers; smaller clouds (xyz, decimation).
* CPU precision for ACAN-R50: PyTorch bf16 channels_last and ONNX Runtime int8 (static, calibrated
  on generated scenes) against PyTorch fp32 eager and ONNX Runtime fp32; with a trained checkpoint,
  their δ1 / AbsRel against fp32 on held-out generated scenes.
* Per model: PyTorch eager and ONNX Runtime fp32 (random weights: speed does not depend on them).

Results are written to a section of ``docs/benchmarks.md`` with the command and the machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from depth_estimation_ros.core.backends import Backend, ModelInfo, open_backend
from depth_estimation_ros.core.backends.torch_backend import cpu_has_bf16
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.errors import UsageError, image_side, positive_int, run_command
from depth_estimation_ros.core.estimator import preprocess
from depth_estimation_ros.core.models import build_model, save_checkpoint
from depth_estimation_ros.core.models.complexity import count_macs

MODELS = (
    ("ACAN-R50", "acan", {"backbone": "resnet50"}),
    ("ACAN-MobileNetV3", "acan", {"backbone": "mobilenetv3_large_100"}),
    ("MSFNet-SENet154", "msfnet", {"backbone": "legacy_senet154"}),
    ("MSFNet-EfficientNet-B0", "msfnet", {"backbone": "efficientnet_b0"}),
)
SECTION = "deployment"


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def interleaved_ms(calls: dict, repeats: int) -> dict[str, float]:
    """Median ms of each call, timed in turn within each repeat so all see the same machine load."""
    for call in calls.values():  # warm-up
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {torch.get_num_threads()} PyTorch threads{gpu}; torch {torch.__version__}"


def frame_and_camera(height: int = 480, width: int = 640) -> tuple[np.ndarray, CameraModel]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return image, CameraModel.from_intrinsics(518.9, 519.5, 325.6, 253.7, width, height, frame_id="camera")


def bench_model(label: str, name: str, options: dict, size: tuple[int, int], repeats: int, workdir: Path) -> dict:
    """PyTorch fp32 eager and bf16, ONNX Runtime fp32 for one architecture (random weights)."""
    from depth_estimation_ros.deploy.export import export_onnx

    model = build_model(name, **options).eval()
    checkpoint = save_checkpoint(model, workdir / f"{label}.pt", input_size=size)
    onnx_path = export_onnx(checkpoint, workdir / f"{label}.onnx")
    macs = count_macs(model, *size)
    del model
    image, camera = frame_and_camera()
    batch = preprocess(image, camera, size)[0]
    row = {"model": label, "input": f"{size[0]}x{size[1]}", "GMACs": macs / 1e9,
           "checkpoint": checkpoint, "onnx": onnx_path}  # fmt: skip
    runners = {
        "torch_fp32": open_backend(checkpoint, "torch", device="cpu", dtype="float32"),
        "torch_bf16": open_backend(checkpoint, "torch", device="cpu", dtype="bfloat16") if cpu_has_bf16() else None,
        "ort_fp32": open_backend(onnx_path, "onnxruntime"),
    }
    row.update(interleaved_ms({f"{k}_ms": (lambda r=r: r(batch)) for k, r in runners.items() if r}, repeats))
    row.setdefault("torch_bf16_ms", None)
    row["preprocess_ms"] = median_ms(lambda: preprocess(image, camera, size), repeats * 4)
    return row


def bench_int8(row: dict, size: tuple[int, int], repeats: int, workdir: Path, frames: int = 16) -> None:
    """ONNX Runtime int8 (static, calibrated on generated scenes) of ``row``'s graph."""
    from depth_estimation_ros.deploy.quantize import quantize, synthetic_frames

    start = time.perf_counter()
    row["int8_onnx"] = quantize(row["onnx"], workdir / f"{row['model']}-int8.onnx",
                                synthetic_frames("indoor", frames, *size))  # fmt: skip
    row["quantize_s"] = time.perf_counter() - start
    image, camera = frame_and_camera()
    batch = preprocess(image, camera, size)[0]
    runner = open_backend(row["int8_onnx"], "onnxruntime")
    row["ort_int8_ms"] = median_ms(lambda: runner(batch), repeats)


def bench_accuracy(checkpoint: Path, workdir: Path, count: int = 100) -> dict[str, dict]:
    """δ1 / AbsRel of each precision of a trained checkpoint on held-out generated scenes."""
    from depth_estimation_ros.core.estimator import DepthEstimator
    from depth_estimation_ros.deploy.export import export_onnx
    from depth_estimation_ros.deploy.quantize import quantize, synthetic_frames
    from training.datasets.synthetic import SyntheticDataset
    from training.evaluate import evaluate

    info = open_backend(checkpoint, "torch", device="cpu", dtype="float32").info
    size = (info.input_height, info.input_width)
    onnx_path = export_onnx(checkpoint, workdir / "trained.onnx")
    int8 = quantize(onnx_path, workdir / "trained-int8.onnx", synthetic_frames("indoor", 64, *size))
    test = SyntheticDataset(count, kind="indoor", height=size[0], width=size[1], seed=2_000_000)
    variants = {
        "PyTorch fp32": DepthEstimator(checkpoint, "torch", device="cpu", dtype="float32"),
        "PyTorch bf16": DepthEstimator(checkpoint, "torch", device="cpu", dtype="bfloat16") if cpu_has_bf16() else None,
        "ONNX Runtime fp32": DepthEstimator(onnx_path, "onnxruntime"),
        "ONNX Runtime int8": DepthEstimator(int8, "onnxruntime"),
    }
    return {name: evaluate(est, test, crop=None)["metrics"] for name, est in variants.items() if est is not None}


# ---------------------------------------------------------------------------------------------
# Per-frame cost outside the network, against Open3D's RGB-D → coloured cloud conversion

OPEN3D_SCRIPT = """
import json, statistics, sys, time
import numpy as np, open3d as o3d
data = np.load(sys.argv[1])
depth, rgb, k, repeats = data["depth"], data["rgb"], data["k"], int(sys.argv[2])
h, w = depth.shape
intrinsic = o3d.camera.PinholeCameraIntrinsic(w, h, k[0, 0], k[1, 1], k[0, 2], k[1, 2])
def convert():
    rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
        o3d.geometry.Image(rgb), o3d.geometry.Image(depth), depth_scale=1.0, depth_trunc=1e9,
        convert_rgb_to_intensity=False)
    return o3d.geometry.PointCloud.create_from_rgbd_image(rgbd, intrinsic, project_valid_depth_only=False)
convert()
times = []
for _ in range(repeats):
    start = time.perf_counter(); convert(); times.append(time.perf_counter() - start)
print(json.dumps({"ms": 1000 * statistics.median(times), "version": o3d.__version__}))
"""


class ReplayBackend(Backend):
    """Returns fixed network outputs: the frame's road without the network (for timing the rest)."""

    name = "replay"

    def __init__(self, info: ModelInfo, outputs: dict[str, np.ndarray]):
        super().__init__(info)
        self.outputs = outputs

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.check_batch(batch)
        return self.outputs


def open3d_reference(depth: np.ndarray, rgb: np.ndarray, camera: CameraModel, repeats: int, python: str | None):
    """Median ms of Open3D's RGB-D → organised coloured cloud for this frame, run by ``python`` (an
    interpreter with open3d; this one when None), and Open3D's version; None where it is missing."""
    import json
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        frame = Path(tmp) / "frame.npz"
        np.savez(frame, depth=depth, rgb=rgb, k=camera.K)
        run = subprocess.run([python or sys.executable, "-c", OPEN3D_SCRIPT, str(frame), str(repeats)],
                             capture_output=True, text=True)  # fmt: skip
    if run.returncode != 0:
        return None
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return result["ms"], result["version"]


def frame_messages(height: int = 480, width: int = 640, size: tuple[int, int] = (256, 352)):
    """A camera frame as (Image, CameraInfo) messages, and network outputs for it (rosbags types)."""
    from rosbags.typesys import Stores, get_typestore

    from depth_estimation_ros.ros.messages import MessageTypes, camera_info_msg, header, image_msg

    types = MessageTypes.from_typestore(get_typestore(Stores.ROS2_JAZZY))
    image, camera = frame_and_camera(height, width)
    h = header(1, 0, camera.frame_id, types)
    rng = np.random.default_rng(1)
    outputs = {
        "depth": rng.uniform(0.5, 10, (1, 1, *size)).astype(np.float32),
        "confidence": rng.uniform(0, 1, (1, 1, *size)).astype(np.float32),
    }
    return image_msg(image, "rgb8", h, types), camera_info_msg(camera, h, types), outputs


def bench_overhead(types, options: dict, repeats: int, size: tuple[int, int] = (256, 352)) -> dict:
    """Median per-frame ms of ``DepthPipeline.process`` minus the network, and its outputs."""
    from depth_estimation_ros.core.backends import ModelInfo
    from depth_estimation_ros.core.estimator import DepthEstimator
    from depth_estimation_ros.ros.pipeline import DepthPipeline

    image, info, outputs = frame_messages(size=size)
    model = ModelInfo("replay", *size, 0.5, 10.0, has_confidence=True)
    pipeline = DepthPipeline(DepthEstimator(ReplayBackend(model, outputs)), types, **options)
    times, stages = [], {}
    for i in range(repeats + 1):
        output = pipeline.process(image, info)
        if i:  # the first frame allocates and caches
            times.append(1000 * (output.timings["total"] - output.timings["inference"]))
            for k, v in output.timings.items():
                stages.setdefault(k, []).append(1000 * v)
    return {"ms": statistics.median(times), "stages": {k: statistics.median(v) for k, v in stages.items()},
            "output": output}  # fmt: skip


def bench_frames(repeats: int, open3d_python: str | None, rounds: int = 5) -> dict:
    """Per-frame overhead of the pipeline (as the node runs it) against Open3D, interleaved in
    ``rounds`` so both see the same machine load; publish cost and smaller clouds."""
    from depth_estimation_ros.ros.messages import MessageTypes, camera_from_info, depth_from_image, image_to_rgb

    try:
        types, middleware = MessageTypes.from_rclpy(), "rclpy"
    except ImportError:
        from rosbags.typesys import Stores, get_typestore

        types, middleware = MessageTypes.from_typestore(get_typestore(Stores.ROS2_JAZZY)), "rosbags"
    node = {"reuse_buffers": middleware == "rclpy"}  # the node reuses its buffers
    variants = {
        "xyzrgb": {},
        "xyz": {"points_rgb": False},
        "xyzrgb, decimation 2": {"points_decimation": 2},
        "xyz, decimation 2": {"points_rgb": False, "points_decimation": 2},
        "no cloud": {"publish_points": False},
    }
    image, info, _ = frame_messages()
    rgb, camera = image_to_rgb(image), camera_from_info(info)
    samples: dict[str, list[float]] = {}
    stages: dict[str, list[float]] = {}
    version = None
    for _ in range(rounds):  # every figure once per round: all see the same machine load
        for label, options in variants.items():
            result = bench_overhead(types, {**node, **options}, repeats)
            samples.setdefault(label, []).append(result["ms"])
            if label == "xyzrgb":
                for stage, value in result["stages"].items():
                    stages.setdefault(stage, []).append(value)
                depth = depth_from_image(result["output"].messages["depth/image"])
            if middleware == "rclpy":
                for n in (0, 1):
                    samples.setdefault(f"{label} publish {n}", []).append(
                        bench_publish(result["output"].messages, repeats, n) or float("nan")
                    )
        reference = open3d_reference(depth, rgb, camera, repeats, open3d_python)
        if reference is not None:
            samples.setdefault("open3d", []).append(reference[0])
            version = reference[1]
    median = {k: statistics.median(v) for k, v in samples.items()}
    figures = {"middleware": middleware, "overhead_ms": median["xyzrgb"], "open3d_version": version,
               "stages": {k: statistics.median(v) for k, v in stages.items()},
               "open3d_ms": median.get("open3d")}  # fmt: skip
    figures["variants"] = {
        label: {"overhead_ms": median[label], **{f"publish_{n}_ms": median.get(f"{label} publish {n}") for n in (0, 1)}}
        for label in variants
    }
    return figures


# ---------------------------------------------------------------------------------------------
# Publishing through rclpy

SUBSCRIBER_SCRIPT = """
import sys, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
rclpy.init()
node = rclpy.create_node("bench_subscriber")
qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
kinds = {"depth/camera_info": CameraInfo, "depth/points": PointCloud2}
subs = [node.create_subscription(kinds.get(t, Image), t, lambda m: None, qos) for t in sys.argv[1:]]
print("ready", flush=True)
try:
    rclpy.spin(node)
except Exception:
    pass
"""


def bench_publish(messages: dict, repeats: int, subscribers: int, domain_id: int = 77) -> float | None:
    """Median ms to publish one frame's ``messages`` (rclpy types) on reliable topics with
    ``subscribers`` (0 or 1, another process) listening; None without rclpy."""
    import os
    import subprocess
    import sys

    try:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
    except ImportError:
        return None
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    child = None
    try:
        node = rclpy.create_node("bench_publisher", context=context)
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        publishers = {t: node.create_publisher(type(m), t, qos) for t, m in messages.items()}
        if subscribers:
            child = subprocess.Popen([sys.executable, "-c", SUBSCRIBER_SCRIPT, *messages], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
            child.stdout.readline()
            deadline = time.monotonic() + 30
            while any(p.get_subscription_count() < subscribers for p in publishers.values()):
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.05)

        def publish():
            for topic, msg in messages.items():
                publishers[topic].publish(msg)

        return median_ms(publish, repeats, warmup=3)
    finally:
        if child is not None:
            child.terminate()
            child.wait(10)
        rclpy.shutdown(context=context)


def ratio(value: float | None, reference: float | None) -> str:
    return "n/a" if value is None or not reference else f"{value / reference:.2f}×"


def ms(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render(rows: list[dict], frames: dict, accuracy: dict | None, command: str) -> str:
    f = frames
    lines = [
        f"<!-- bench:{SECTION} start -->",
        "## CPU deployment: each figure against its reference from the same run",
        "",
        f"Command: `{command}`. Machine: {machine()}. Medians after a warm-up.",
        "",
        "### Per-frame cost outside the network (480×640 rgb8 + CameraInfo → depth, CameraInfo, confidence,",
        "organised xyzrgb cloud; network outputs 256×352 replayed)",
        "",
        f"Messages: {f['middleware']} types"
        f"{', buffers reused as the node does' if f['middleware'] == 'rclpy' else ''}. "
        f"Reference: Open3D {f['open3d_version'] or '(not installed: see docs/benchmarks.md)'} "
        "`RGBDImage.create_from_color_and_depth` + `PointCloud.create_from_rgbd_image` on the same frame, "
        "interleaved with ours.",
        "",
        "| figure | ms | ratio to Open3D (goal ≤ 0.5) |",
        "|---|---:|---:|",
        f"| Open3D RGB-D → coloured cloud (reference) | {ms(f['open3d_ms'])} | 1.00× |",
        f"| `DepthPipeline.process` minus the network | {ms(f['overhead_ms'])} | "
        f"{ratio(f['overhead_ms'], f['open3d_ms'])} |",
    ]
    lines += [f"| … of which {k} | {v:.2f} | |" for k, v in f["stages"].items() if k not in ("inference", "total")]
    lines += [
        "",
        "Cloud variants: overhead outside the network, and publishing all outputs through rclpy (reliable,",
        "depth 1) with no subscriber and with one subscriber in another process:",
        "",
        "| cloud | overhead (ms) | publish, 0 subscribers (ms) | publish, 1 subscriber (ms) |",
        "|---|---:|---:|---:|",
    ]
    for label, row in f["variants"].items():
        lines.append(f"| {label} | {ms(row['overhead_ms'], 2)} | {ms(row.get('publish_0_ms'), 2)} | "
                     f"{ms(row.get('publish_1_ms'), 2)} |")  # fmt: skip
    lines += [
        "",
        "### Network on the CPU, against PyTorch fp32 eager of the same model",
        "",
        "Milliseconds per frame, and in brackets the speed-up over PyTorch fp32 eager (below 1×: slower).",
        "",
        "| model | input | GMACs | PyTorch fp32 eager | PyTorch bf16 channels_last | ONNX Runtime fp32 | "
        "ONNX Runtime int8 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ref = r["torch_fp32_ms"]
        cells = [f"{ms(r.get(k), 0)} ({ratio(ref, r.get(k))})" if r.get(k) else "n/a"
                 for k in ("torch_bf16_ms", "ort_fp32_ms", "ort_int8_ms")]  # fmt: skip
        lines.append(f"| {r['model']} | {r['input']} | {r['GMACs']:.1f} | {ref:.0f} | {' | '.join(cells)} |")
    if accuracy:
        ref = accuracy["PyTorch fp32"]
        lines += [
            "",
            "### Accuracy of each precision against fp32 (trained checkpoint, held-out generated scenes)",
            "",
            "| variant | δ1 | AbsRel | δ1 change | AbsRel change |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, m in accuracy.items():
            lines.append(f"| {name} | {m['d1']:.4f} | {m['abs_rel']:.4f} | {m['d1'] - ref['d1']:+.4f} | "
                         f"{m['abs_rel'] - ref['abs_rel']:+.4f} |")  # fmt: skip
    lines.append(f"<!-- bench:{SECTION} end -->")
    return "\n".join(lines) + "\n"


def write_section(document: Path, text: str, section: str = SECTION) -> None:
    """Replace one benchmark's section of ``document`` (or append it), leaving the rest alone."""
    start, end = f"<!-- bench:{section} start -->", f"<!-- bench:{section} end -->"
    old = document.read_text() if document.is_file() else "# Benchmarks\n\n"
    if start in old and end in old:
        new = old[: old.index(start)] + text.rstrip("\n") + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    from depth_estimation_ros.core.files import write_text

    write_text(document, new, overwrite=True)  # staged: an interrupted run never truncates the document


def check_models(models: list[str] | None) -> None:
    """Refuse labels that name no benchmarked model (a typo would otherwise bench nothing)."""
    labels = [label for label, _, _ in MODELS]
    unknown = [m for m in models or () if m not in labels]
    if unknown:
        raise UsageError(f"--models: unknown {', '.join(map(repr, unknown))}; expected labels from {', '.join(labels)}")


def run_benchmarks(
    output: str | None = "docs/benchmarks.md",
    repeats: int = 5,
    size: tuple[int, int] = (256, 352),
    models: list[str] | None = None,
    command: str = "depth-estimation bench",
    open3d_python: str | None = None,
    checkpoint: str | None = None,
) -> str:
    check_models(models)  # before anything is timed or written
    frames = bench_frames(max(repeats, 15), open3d_python)
    print(f"per-frame overhead {frames['overhead_ms']:.2f} ms ({frames['middleware']}), Open3D "
          f"{ms(frames['open3d_ms'], 2)} ms: ratio {ratio(frames['overhead_ms'], frames['open3d_ms'])}")  # fmt: skip
    for label, row in frames["variants"].items():
        print(f"  {label}: overhead {row['overhead_ms']:.2f} ms, publish 0/1 subscribers "
              f"{ms(row.get('publish_0_ms'), 2)} / {ms(row.get('publish_1_ms'), 2)} ms")  # fmt: skip
    rows, accuracy = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, options in MODELS:
            if models and label not in models:
                continue
            row = bench_model(label, name, options, size, repeats, Path(tmp))
            if label == "ACAN-R50":
                bench_int8(row, size, repeats, Path(tmp))
            ref = row["torch_fp32_ms"]
            print(f"{label}: PyTorch fp32 {ref:.0f} ms; bf16 {ratio(ref, row['torch_bf16_ms'])}, ONNX Runtime fp32 "
                  f"{ratio(ref, row['ort_fp32_ms'])}, int8 {ratio(ref, row.get('ort_int8_ms'))} faster")  # fmt: skip
            rows.append(row)
        if checkpoint:
            accuracy = bench_accuracy(Path(checkpoint), Path(tmp))
            for name, m in accuracy.items():
                print(f"{name}: d1 {m['d1']:.4f} AbsRel {m['abs_rel']:.4f}")
    text = render(rows, frames, accuracy, command)
    if output:
        write_section(Path(output), text)
        print(f"wrote {output}")
    return text


# ---------------------------------------------------------------------------------------------
# Command line (``depth-estimation bench``)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="docs/benchmarks.md", help="document to update (default: %(default)s)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed runs per stage (default: 5)")
    parser.add_argument("--height", type=image_side, default=256, help="network input height (default: 256)")
    parser.add_argument("--width", type=image_side, default=352, help="network input width (default: 352)")
    parser.add_argument("--models", nargs="*", help="subset of models by label (default: all)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch")
    parser.add_argument("--open3d-python", help="a Python with open3d for the reference (default: this one)")
    parser.add_argument("--checkpoint", help="trained checkpoint: accuracy of bf16 and int8 against fp32")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    run_benchmarks(args.output, args.repeats, (args.height, args.width), args.models,
                   command=" ".join(["depth-estimation bench", *sys.argv[2:]]), open3d_python=args.open3d_python,
                   checkpoint=args.checkpoint)  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("bench", __doc__, add_arguments, run, argv)
