"""``depth-estimation bench``: time each stage of the road from a 480×640 frame to depth and a cloud.

Stages: pre-processing (resize to the network input, float conversion), inference per backend
(PyTorch eager, ONNX Runtime; TensorRT where installed), post-processing (back to camera
resolution) and packing an organised xyzrgb PointCloud2. Models are randomly initialised (speed
does not depend on the weights). Results are written to a section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .backends import Backend, ModelInfo, open_backend
from .camera import CameraModel
from .estimator import postprocess, preprocess
from .models import build_model, save_checkpoint
from .models.complexity import count_macs
from .pointcloud import organised_cloud

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


def bench_geometry(repeats: int = 50) -> dict[str, float]:
    """Post-processing and cloud packing alone (no network), at 480×640 from a 256×352 output."""
    image, camera = frame_and_camera()
    outputs = {"depth": np.random.default_rng(1).uniform(0.5, 10, (1, 1, 256, 352)).astype(np.float32)}
    net_camera = camera.resize(352, 256)
    depth = postprocess(outputs, camera, net_camera).depth
    return {
        "postprocess_ms": median_ms(lambda: postprocess(outputs, camera, net_camera), repeats),
        "cloud_xyzrgb_ms": median_ms(lambda: organised_cloud(depth, camera, image), repeats),
        "post_plus_cloud_ms": median_ms(
            lambda: organised_cloud(postprocess(outputs, camera, net_camera).depth, camera, image), repeats
        ),
    }


def bench_model(label: str, name: str, options: dict, size: tuple[int, int], repeats: int, workdir: Path) -> dict:
    from training.export import export_onnx

    model = build_model(name, **options).eval()
    checkpoint = save_checkpoint(model, workdir / f"{label}.pt", input_size=size)
    onnx_path = export_onnx(checkpoint, workdir / f"{label}.onnx")
    macs = count_macs(model, *size)
    del model
    image, camera = frame_and_camera()
    row = {"model": label, "input": f"{size[0]}x{size[1]}", "GMACs": macs / 1e9}
    for backend in ("torch", "onnxruntime"):
        runner = open_backend(checkpoint if backend == "torch" else onnx_path, backend)
        batch = preprocess(image, camera, size)[0]
        row[f"{backend}_ms"] = median_ms(lambda r=runner, b=batch: r(b), repeats)
        row["device"] = runner.device
    row["preprocess_ms"] = median_ms(lambda: preprocess(image, camera, size), repeats * 4)
    row["ort_speedup"] = row["torch_ms"] / row["onnxruntime_ms"]
    return row


def render(rows: list[dict], geometry: dict, command: str) -> str:
    lines = [
        f"<!-- bench:{SECTION} start -->",
        "## Deployment stages (480×640 camera frames)",
        "",
        f"Command: `{command}`. Machine: {machine()}. Median of repeated runs after a warm-up;",
        "random weights (speed does not depend on them). Inference is one frame at the network input size.",
        "",
        "| model | network input | GMACs | pre-process (ms) | PyTorch eager (ms) | ONNX Runtime (ms) | ORT speed-up |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['input']} | {r['GMACs']:.1f} | {r['preprocess_ms']:.2f} | {r['torch_ms']:.0f} | "
            f"{r['onnxruntime_ms']:.0f} | {r['ort_speedup']:.2f}× |"
        )
    lines += [
        "",
        "Post-processing (256×352 network output back to 480×640) and organised xyzrgb PointCloud2 packing:",
        "",
        "| stage | median (ms) |",
        "|---|---:|",
        f"| post-process | {geometry['postprocess_ms']:.2f} |",
        f"| xyzrgb cloud packing | {geometry['cloud_xyzrgb_ms']:.2f} |",
        f"| post-process + cloud (target < 10 ms) | {geometry['post_plus_cloud_ms']:.2f} |",
        f"<!-- bench:{SECTION} end -->",
    ]
    return "\n".join(lines) + "\n"


def write_section(document: Path, text: str, section: str = SECTION) -> None:
    """Replace one benchmark's section of ``document`` (or append it), leaving the rest alone."""
    start, end = f"<!-- bench:{section} start -->", f"<!-- bench:{section} end -->"
    old = document.read_text() if document.is_file() else "# Benchmarks\n\n"
    if start in old and end in old:
        new = old[: old.index(start)] + text.rstrip("\n") + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    from .files import write_text

    write_text(document, new, overwrite=True)  # staged: an interrupted run never truncates the document


def run(
    output: str | None = "docs/benchmarks.md",
    repeats: int = 5,
    size: tuple[int, int] = (256, 352),
    models: list[str] | None = None,
    command: str = "depth-estimation bench",
) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, options in MODELS:
            if models and label not in models:
                continue
            row = bench_model(label, name, options, size, repeats, Path(tmp))
            print(f"{label}: torch {row['torch_ms']:.0f} ms, onnxruntime {row['onnxruntime_ms']:.0f} ms "
                  f"({row['ort_speedup']:.2f}x), pre-process {row['preprocess_ms']:.2f} ms")  # fmt: skip
            rows.append(row)
    geometry = bench_geometry()
    print(f"post-process {geometry['postprocess_ms']:.2f} ms, xyzrgb cloud {geometry['cloud_xyzrgb_ms']:.2f} ms, "
          f"both {geometry['post_plus_cloud_ms']:.2f} ms")  # fmt: skip
    text = render(rows, geometry, command)
    if output:
        write_section(Path(output), text)
        print(f"wrote {output}")
    return text


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

    from .messages import MessageTypes, camera_info_msg, header, image_msg

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
    from .backends import ModelInfo
    from .estimator import DepthEstimator
    from .pipeline import DepthPipeline

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
