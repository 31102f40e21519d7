"""``python -m benchmarks.bench_pretrained``: the pretrained depth families on this CPU.

    python -m benchmarks.bench_pretrained [--repeats N] [--output docs/benchmarks.md]
                                                    [--families da-v2-small glpn-nyu ...]

Each family is built at the layout of a published checkpoint (Depth Anything V2 Small and Base,
DPT-Large, GLPN-NYU, ZoeDepth-NYU, Depth Pro) with **random weights** and no download, and run at
the input its model card's rule gives a 480×640 camera frame. Per family: parameters, GMACs at
that input, milliseconds per frame of the network with PyTorch fp32, PyTorch bf16 (autocast,
channels_last: ``TorchBackend`` with ``dtype="bfloat16"``), ONNX Runtime fp32 (exported at that
size with :func:`depth_estimation_ros.deploy.export.export_onnx`) and, for Depth Anything V2 Small, ONNX Runtime
int8 (:func:`depth_estimation_ros.deploy.quantize.quantize`); then the whole :class:`~.estimator.DepthEstimator`
call (pre-process + network + post-process) on the fastest of them. Speed does not depend on the
weights (no data-dependent control flow in these networks' forward passes).

The machine is shared, so the backends of one family are timed in turn within each round
(:func:`timed_rounds`: :func:`.bench.interleaved_ms` with the estimator call in the same rounds)
and reported with their ratio to PyTorch fp32 of the same rounds; each round feeds a different
generated frame (``depth_estimation_ros.core.scenes.render_scene``), and the outputs of those frames
give the agreement of bf16 / ONNX Runtime / int8 with fp32 (δ1 of one against the other: with
random weights δ1 against ground truth would mean nothing).

Also the per-frame cost of anchoring (:class:`~.anchoring.Anchor`) at 640×480 with 3,000 sparse
points, against the goal "under 1 ms". The fastest family's folder is saved (with a metric head
where the family is relative, so the node runs it without a scale source) for
``python -m benchmarks.ros_bench node --model runs/bench_pretrained/fastest``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Nothing is downloaded: set before anything imports huggingface_hub / transformers (all lazily below).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from benchmarks.bench import interleaved_ms, machine, write_section

SECTION = "pretrained"
FRAME = (480, 640)  # the camera frame each family's input rule is applied to
ANCHOR_POINTS = 3000
ANCHOR_GOAL_MS = 1.0
CALIBRATION_FRAMES = 4
NODE_FOLDER = "fastest"
FRAME_SEED = 4_000_000  # generated frames timed and compared (apart from training / test seeds)
CALIBRATION_SEED = 3_999_999  # the frame the random output spread is set on


# ---------------------------------------------------------------------------------------------
# Published layouts (random weights)


@dataclass(frozen=True)
class Family:
    label: str  # the published model it stands for
    layout: str  # that layout in words
    build: Callable[[bool], tuple]  # metric head? -> (transformers config, image processor)
    measured: bool = True  # False: too slow for this CPU, GMACs only
    int8: bool = False
    relative: bool = False
    metric_head: bool = False  # build(True) gives the published metric variant


def _dinov2_depth_anything(size: str):
    from transformers import Dinov2Config

    from depth_estimation_ros.core.models.transformers_layouts import WIDTHS

    width = WIDTHS[size]
    n = width["num_hidden_layers"]
    stages = [n // 4, n // 2, 3 * n // 4, n]  # Depth Anything V2 reads ViT blocks 3, 6, 9, 12
    return width, Dinov2Config(
        hidden_size=width["hidden_size"],
        num_hidden_layers=n,
        num_attention_heads=width["num_attention_heads"],
        patch_size=14,
        image_size=518,
        out_indices=stages,
        out_features=[f"stage{i}" for i in stages],
        reshape_hidden_states=False,
    )


def _depth_anything(size: str) -> Callable[[bool], tuple]:
    def build(metric: bool):
        import transformers as tf

        from depth_estimation_ros.core.models.transformers_layouts import IMAGENET

        width, backbone = _dinov2_depth_anything(size)
        head = {"depth_estimation_type": "metric", "max_depth": 20} if metric else {}  # Metric-Indoor
        config = tf.DepthAnythingConfig(
            backbone_config=backbone,
            reassemble_hidden_size=width["hidden_size"],
            neck_hidden_sizes=width["neck"],
            fusion_hidden_size=width["fusion"],
            head_hidden_size=width["head"],
            **head,
        )
        processor = tf.DPTImageProcessor(
            size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3, **IMAGENET
        )
        return config, processor

    return build


def _dpt_large(metric: bool):
    import transformers as tf

    config = tf.DPTConfig(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        image_size=384,
        patch_size=16,
        backbone_out_indices=[5, 11, 17, 23],
        neck_hidden_sizes=[256, 512, 1024, 1024],
        fusion_hidden_size=256,
    )
    return config, tf.DPTImageProcessor(size={"height": 384, "width": 384}, resample=3)


def _glpn_nyu(metric: bool):
    import transformers as tf

    # GLPNConfig() is MiT-b0 (3.7 M); the published KITTI / NYU checkpoints are MiT-b4.
    config = tf.GLPNConfig(
        depths=[3, 8, 27, 3],
        hidden_sizes=[64, 128, 320, 512],
        num_attention_heads=[1, 2, 5, 8],
        decoder_hidden_size=64,
        max_depth=10,
    )
    return config, tf.GLPNImageProcessor(size_divisor=32)


def _zoedepth_nyu(metric: bool):
    import transformers as tf

    processor = tf.ZoeDepthImageProcessor(
        size={"height": 384, "width": 512}, keep_aspect_ratio=True, ensure_multiple_of=32
    )
    return tf.ZoeDepthConfig(), processor  # the default: BEiT-L/16 384, one NYU bin configuration


def _depth_pro(metric: bool):
    import transformers as tf

    # DepthProConfig() has DINOv2's default ViT-B/14 encoders; the published model has three ViT-L/16.
    def vit_l():
        return tf.Dinov2Config(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, patch_size=16, image_size=384
        )

    config = tf.DepthProConfig(
        use_fov_model=True, image_model_config=vit_l(), patch_model_config=vit_l(), fov_model_config=vit_l()
    )
    return config, tf.DepthProImageProcessor(size={"height": 1536, "width": 1536})


FAMILIES: dict[str, Family] = {
    "da-v2-small": Family(
        "Depth Anything V2 Small",
        "ViT-S/14, DPT head 64",
        _depth_anything("small"),
        int8=True,
        relative=True,
        metric_head=True,
    ),
    "da-v2-base": Family(
        "Depth Anything V2 Base", "ViT-B/14, DPT head 128", _depth_anything("base"), relative=True, metric_head=True
    ),
    "dpt-large": Family("DPT-Large (MiDaS 3.0)", "ViT-L/16, fusion 256", _dpt_large, relative=True),
    "glpn-nyu": Family("GLPN-NYU", "MiT-b4, decoder 64", _glpn_nyu),
    "zoedepth-nyu": Family("ZoeDepth-NYU", "BEiT-L/16 384, 64 bins", _zoedepth_nyu),
    "depth-pro": Family("Depth Pro", "3 × ViT-L/16: patches, image, FOV", _depth_pro, measured=False),
}


SPREAD = (1.0, 0.25)  # mean and standard deviation the last convolution's output is set to


@torch.no_grad()
def unit_activations(model: torch.nn.Module, forward: Callable[[], object]) -> None:
    """Rescale the random weights of ``model`` on one forward pass (``forward()`` runs it on one frame)
    so activations neither vanish nor explode, as in a trained network: LSUV (Mishkin & Matas, 2016)
    in a single pass. Each convolution and linear layer, the first time it runs, scales its weights so
    its output (less the bias) has unit standard deviation and returns the rescaled output, so the
    layers after it see that; the last convolution instead gets mean and deviation ``SPREAD`` per
    channel. With the default initialisation the head's features shrink to almost nothing and the
    depth map is nearly constant, and a constant map agrees with any other: δ1 of bf16 against fp32
    would be 1 whatever bf16 did."""
    from torch import nn

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    last = [m for m in layers if isinstance(m, nn.Conv2d) and m.bias is not None][-1]
    done: set[int] = set()

    def rescale(module, args, out):
        if id(module) in done or not torch.is_tensor(out):
            return None
        done.add(id(module))
        conv = isinstance(module, nn.Conv2d)
        shape = (1, -1, *([1] * (out.dim() - 2))) if conv else (-1,)
        bias = module.bias.view(shape) if module.bias is not None else 0.0
        z = out - bias  # W * x, the part the input moves
        if module is last:
            dims = [d for d in range(z.dim()) if d != 1]
            k = SPREAD[1] / z.std(dim=dims).clamp_min(1e-12)
            module.weight.mul_(k.view(-1, *([1] * (module.weight.dim() - 1))))
            module.bias.copy_(SPREAD[0] - k * z.mean(dim=dims))
            return z * k.view(shape) + module.bias.view(shape)
        k = 1.0 / z.std().clamp_min(1e-12)
        module.weight.mul_(k)
        return z * k + bias

    hooks = [m.register_forward_hook(rescale) for m in layers]
    try:
        forward()
    finally:
        for hook in hooks:
            hook.remove()


def _unit_activations_on(model: torch.nn.Module, folder: Path, frame: tuple[np.ndarray, object]) -> None:
    """:func:`unit_activations` of a transformers folder's network on ``frame``, pre-processed by its card."""
    from depth_estimation_ros.core.estimator import network_geometry, preprocess
    from depth_estimation_ros.core.models.transformers_depth import TransformersDepth, card_from_folder

    card = card_from_folder(folder)  # config and preprocessor config are written already
    image, camera = frame
    size = network_geometry(camera, None, "stretch", card.input).size
    batch = torch.from_numpy(preprocess(image, camera, size, "stretch", card.input)[0])
    unit_activations(model, lambda: TransformersDepth(model, card)(batch))


def save_family(
    family: Family, folder: Path, frame=None, metric: bool = False, weights: bool = True, seed: int = 0
) -> Path:
    """A random-weight transformers folder of ``family``, its output spread on ``frame`` (see
    :func:`unit_activations`); config and preprocessor config only without ``weights``."""
    from transformers import AutoModelForDepthEstimation

    config, processor = family.build(metric)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    processor.save_pretrained(folder)
    if weights:
        torch.manual_seed(seed)
        model = AutoModelForDepthEstimation.from_config(config).eval()
        _unit_activations_on(model, folder, frame)
        model.save_pretrained(folder)
    return folder


def complexity(folder: Path, size: tuple[int, int]) -> tuple[float, float]:
    """(parameters in M, GMACs at ``size``) of the folder's network in its project wrapper, counted
    on the meta device (:func:`.models.complexity.count_macs`: no weights, no arithmetic)."""
    from transformers import AutoConfig, AutoModelForDepthEstimation

    from depth_estimation_ros.core.models.complexity import count_macs, count_parameters
    from depth_estimation_ros.core.models.transformers_depth import TransformersDepth, card_from_folder

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    with torch.device("meta"):
        network = AutoModelForDepthEstimation.from_config(config)
    model = TransformersDepth(network, card_from_folder(folder)).to("meta").eval()
    return count_parameters(model) / 1e6, count_macs(model, *size) / 1e9


# ---------------------------------------------------------------------------------------------
# Frames and the network runs


def generated_frames(count: int, seed: int = FRAME_SEED):
    """``count`` generated indoor frames at 480×640 (uint8 RGB) and the camera of each."""
    from depth_estimation_ros.core.camera import CameraModel
    from depth_estimation_ros.core.scenes import render_scene

    frames = []
    for i in range(count):
        sample = render_scene(seed + i, *FRAME, kind="indoor")
        K = sample["K"]
        camera = CameraModel.from_intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], FRAME[1], FRAME[0], "camera")
        frames.append((sample["image"], camera))
    return frames


class Recorded:
    """A backend called on the prepared inputs in turn (frame i's arguments on its i-th call: the batch,
    and the camera's K for a graph that takes it), keeping the depth. A backend that fails is recorded
    (``error``) and not called again, so the others are still timed."""

    def __init__(self, backend, inputs: list[tuple]):
        self.backend, self.inputs, self.outputs, self.error = backend, inputs, [], None

    def __call__(self) -> None:
        if self.error is not None:
            return
        try:
            out = self.backend(*self.inputs[len(self.outputs) % len(self.inputs)])
        except Exception as exc:
            self.error = _first_line(exc)
            return
        self.outputs.append(np.array(out["depth"][0, 0], dtype=np.float32))


def agreement(outputs: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    """δ1 of ``outputs`` against ``reference`` (share of pixels with max(a/b, b/a) < 1.25; equal
    values, zeros included, agree; a zero or negative against a positive value does not) and their
    AbsRel (mean |a − b| / b over pixels where b > 0), averaged over frames."""
    from depth_estimation_ros.core.metrics import agreement_d1

    d1, rel = [], []
    for a, b in zip(outputs, reference, strict=False):
        d1.append(agreement_d1(a, b))
        with np.errstate(divide="ignore", invalid="ignore"):
            both = np.isfinite(a) & np.isfinite(b) & (b > 0)  # pixels either leaves out (sky) are δ1's business
            rel.append(float(np.mean(np.abs(a - b)[both] / b[both])) if both.any() else math.nan)
    return {"d1": float(np.mean(d1)), "abs_rel": float(np.mean(rel)), "frames": len(d1)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__


def timed_rounds(calls: dict[str, Recorded], runners: dict, frames: list, scale: dict, repeats: int):
    """Median ms of each backend over ``repeats`` rounds after a warm-up round, every backend once
    per round in turn (as :func:`.bench.interleaved_ms`), and in the same rounds the whole
    :class:`DepthEstimator` call on the backend that was fastest in the warm-up round, split by its
    own stage timings (ms). Interleaved, so that every figure sees the same load of the machine."""
    from depth_estimation_ros.core.estimator import DepthEstimator

    warm = {}
    for name, call in calls.items():
        start = time.perf_counter()
        call()
        warm[name] = time.perf_counter() - start if call.error is None else math.inf
    fastest = min(warm, key=warm.get)
    whole = DepthEstimator(runners[fastest], **scale)
    whole(*frames[0])  # its own first call (buffers, the anchor)
    times: dict[str, list[float]] = {name: [] for name in calls}
    stages: dict[str, list[float]] = {"total": [], "preprocess": [], "inference": [], "postprocess": []}
    for i in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        whole(*frames[(i + 1) % len(frames)])
        stages["total"].append(1000 * (time.perf_counter() - start))
        for stage, seconds in whole.timings.items():
            stages[stage].append(1000 * seconds)
    medians = {name: statistics.median(v) for name, v in times.items()}
    return medians, {"backend": fastest, **{k: statistics.median(v) for k, v in stages.items()}}


def empty_row(key: str) -> dict:
    """A family's row before anything is measured."""
    family = FAMILIES[key]
    return {"key": key, "label": family.label, "layout": family.layout, "ms": {}, "failed": {}, "agreement": {},
            "relative": family.relative}  # fmt: skip


def bench_family(key: str, repeats: int, workdir: Path) -> dict:
    """Every figure of one family's row (see the module docstring); failures as strings."""
    from depth_estimation_ros.core.backends import open_backend
    from depth_estimation_ros.core.estimator import DepthEstimator, preprocess

    family = FAMILIES[key]
    row = empty_row(key)
    folder = workdir / key
    frames = generated_frames(repeats + 1)
    if not family.measured:
        from depth_estimation_ros.core.estimator import network_geometry
        from depth_estimation_ros.core.models.transformers_depth import card_from_folder

        save_family(family, folder, weights=False)
        size = network_geometry(frames[0][1], None, "stretch", card_from_folder(folder).input).size
        row["input"] = size
        row["params_m"], row["gmacs"] = complexity(folder, size)
        return row
    begin = start = time.perf_counter()
    save_family(family, folder, generated_frames(1, CALIBRATION_SEED)[0])
    row["build_s"] = time.perf_counter() - start
    scale = {"scale_source": "fixed"} if family.relative else {}
    runners = {"torch_fp32": open_backend(folder, "torch", device="cpu", dtype="float32")}
    estimator = DepthEstimator(runners["torch_fp32"], **scale)
    size = estimator.geometry(frames[0][1]).size
    row["input"] = size
    row["params_m"], row["gmacs"] = complexity(folder, size)
    print(
        f"{key}: {family.label}, input {size[0]}x{size[1]}, {row['params_m']:.1f} M parameters, "
        f"{row['gmacs']:.1f} GMACs",
        flush=True,
    )
    try:
        runners["torch_bf16"] = open_backend(folder, "torch", device="cpu", dtype="bfloat16")
    except Exception as exc:
        row["failed"]["torch_bf16"] = _first_line(exc)
    from depth_estimation_ros.deploy.export import export_onnx

    start = time.perf_counter()
    try:
        onnx_path = export_onnx(folder, workdir / f"{key}.onnx", *size)
        row["export_s"] = time.perf_counter() - start
        runners["ort_fp32"] = open_backend(onnx_path, "onnxruntime")
    except Exception as exc:
        onnx_path = None
        row["failed"]["ort_fp32"] = f"export failed: {_first_line(exc)}"
    if family.int8 and onnx_path is not None:
        from depth_estimation_ros.deploy.quantize import quantize, synthetic_frames

        start = time.perf_counter()
        try:
            int8 = quantize(
                onnx_path, workdir / f"{key}-int8.onnx", synthetic_frames("indoor", CALIBRATION_FRAMES, *size)
            )
            row["quantize_s"] = time.perf_counter() - start
            runners["ort_int8"] = open_backend(int8, "onnxruntime")
        except Exception as exc:
            row["failed"]["ort_int8"] = f"quantisation failed: {_first_line(exc)}"
    elif not family.int8:
        row["failed"]["ort_int8"] = "not measured"
    else:
        row["failed"]["ort_int8"] = "not measured (no ONNX graph)"
    batches = [preprocess(image, camera, size, "stretch", estimator.card.input)[0] for image, camera in frames]
    calls = {name: Recorded(backend, [(batch,) for batch in batches]) for name, backend in runners.items()}
    row["ms"], row["estimator"] = timed_rounds(calls, runners, frames, scale, repeats)
    for name, call in list(calls.items()):
        if call.error is not None:
            if name == "torch_fp32":
                raise RuntimeError(f"PyTorch fp32 failed: {call.error}")
            row["failed"][name] = f"run failed: {call.error}"
            row["ms"].pop(name, None)
            del calls[name]
    reference = calls["torch_fp32"].outputs
    for name, call in calls.items():
        if name != "torch_fp32":
            row["agreement"][name] = agreement(call.outputs, reference)
    values = np.concatenate([o.ravel() for o in reference])
    row["output_range"] = tuple(float(v) for v in np.percentile(values, [5, 95]))
    row["total_s"] = time.perf_counter() - begin
    return row


def save_node_folder(rows: list[dict], model_dir: Path) -> dict | None:
    """The fastest measured family's folder under ``model_dir``/fastest, with its metric head where it is
    relative (the node's default scale source is the model's own); relative families without one are
    skipped. Replaces only a folder this command wrote (one with config.json)."""
    measured = [r for r in rows if r.get("ms") and (not r["relative"] or FAMILIES[r["key"]].metric_head)]
    if not measured:
        return None
    best = min(measured, key=lambda r: min(r["ms"].values()))
    target = model_dir / NODE_FOLDER
    if target.exists():
        if not (target / "config.json").is_file():
            raise FileExistsError(f"{target} exists and is not a model folder this command wrote; move it away")
        shutil.rmtree(target)
    save_family(FAMILIES[best["key"]], target, generated_frames(1, CALIBRATION_SEED)[0], metric=best["relative"])
    return {"key": best["key"], "folder": target, "metric_head": best["relative"]}


# ---------------------------------------------------------------------------------------------
# Anchoring


def bench_anchoring(repeats: int = 200, points: int = ANCHOR_POINTS) -> list[dict]:
    """Per-frame ms of :meth:`Anchor.apply` at 640×480 for each source and model output kind, and
    of its two steps on the correspondences (finding them, the fit); the anchored depth's AbsRel
    against the generated frame's true depth."""
    from depth_estimation_ros.core.anchoring import Anchor, sample_sparse
    from depth_estimation_ros.core.scenes import render_scene

    sample = render_scene(0, *FRAME, kind="indoor")
    depth, K, meta = sample["depth"].astype(np.float32), sample["K"], sample["meta"]
    rng = np.random.default_rng(0)
    noise = (1 + 0.02 * rng.standard_normal(depth.shape)).astype(np.float32)
    predictions = {"inverse_depth": (0.8 / depth + 0.05) * noise, "depth": depth / 1.3 * noise}
    sparse = np.full(depth.shape, np.nan, np.float32)
    index = rng.choice(depth.size, points, replace=False)
    sparse.flat[index] = depth.flat[index] * (1 + 0.01 * rng.standard_normal(points))
    ground = {
        "camera_height": meta["camera_height"],
        "camera_pitch": math.radians(meta["pitch_deg"]),
        "camera_roll": math.radians(meta["roll_deg"]),
    }
    rows, calls = [], {}
    for source in ("sparse_depth", "ground_plane"):
        for kind in ("inverse_depth", "depth"):
            anchor = Anchor(source, kind, **(ground if source == "ground_plane" else {}))
            pred, on_ground = predictions[kind], source == "ground_plane"
            start = time.perf_counter()
            anchor.apply(pred, K, 0.0, sparse)  # the ground grid is built (and cached per camera) here
            row = {"source": source, "kind": kind, "first_ms": 1000 * (time.perf_counter() - start)}
            # The steps apply() takes, one by one (the anchor's own methods, as apply calls them).
            # ground_plane: finding = reading the configured floor's grid; the fit = the whole per-frame
            # fit (the floor plane from a metric prediction, or the consensus fit on that grid).
            if on_ground:
                find = lambda a=anchor, p=pred: a._ground_correspondences(p, K, a.prior)  # noqa: E731
            else:
                find = lambda p=pred: sample_sparse(p, sparse)  # noqa: E731
            found = find()
            name = f"{source} {kind}"
            clock, fit_clock = iter(range(1, 10**9)), iter(range(1, 10**9))
            calls[name] = lambda a=anchor, p=pred, c=clock: a.apply(p, K, 0.1 * next(c), sparse)
            calls[f"{name} find"] = find
            if on_ground:
                calls[f"{name} fit"] = lambda a=anchor, p=pred, c=fit_clock: a._ground_fit(p, K, 0.1 * next(c))
            else:
                calls[f"{name} fit"] = lambda a=anchor, f=found: a._fit(*f, ground=False)
            rows.append((name, anchor, pred, row))
    times = interleaved_ms(calls, repeats)
    results = []
    for name, anchor, pred, row in rows:
        metric = anchor.apply(pred, K, 1e6, sparse)
        fit = anchor.last_fit
        row.update(
            ms=times[name],
            find_ms=times[f"{name} find"],
            fit_ms=times[f"{name} fit"],
            points=fit.points,
            inliers=fit.inliers,
            abs_rel=float(np.nanmean(np.abs(metric - depth) / depth)),
        )
        results.append(row)
    return results


# ---------------------------------------------------------------------------------------------
# Report


def _ms(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "n/a"


def _cell(row: dict, key: str) -> str:
    value, ref = row["ms"].get(key), row["ms"].get("torch_fp32")
    if value is None:
        return row["failed"].get(key, "n/a")
    return f"{_ms(value)} ({ref / value:.2f}×)" if key != "torch_fp32" else _ms(value)


BACKEND_NAMES = {
    "torch_fp32": "PyTorch fp32",
    "torch_bf16": "PyTorch bf16",
    "ort_fp32": "ONNX Runtime fp32",
    "ort_int8": "ONNX Runtime int8",
}


def render(rows: list[dict], anchoring: dict, context: dict) -> str:
    import onnxruntime
    import transformers

    from depth_estimation_ros.core.backends.torch_backend import cpu_has_bf16

    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    isa = f"bf16 arithmetic: {'AVX-512 BF16' if cpu_has_bf16() else 'none'}{', AMX' if amx else ', no AMX'}"
    lines = [
        f"<!-- bench:{SECTION} start -->",
        "### Pretrained families on the CPU (random weights, published layouts)",
        "",
        f"Command: `{context['command']}`. Machine: {machine()}; {isa}; ONNX Runtime {onnxruntime.__version__}, "
        f"transformers {transformers.__version__}. Date: {context['date']}; the command took "
        f"{context['minutes']:.1f} min.",
        "",
        f"Network alone, ms per frame at the input the family's rule gives a 480×640 frame: median of "
        f"{context['repeats']} generated frames after one warm-up frame, the backends of a family timed in turn "
        "within each frame (interleaved: all see the same load of this shared machine); in brackets the speed-up "
        "over PyTorch fp32 of the same rounds (below 1×: slower). GMACs: `count_macs` (PyTorch's flop counter: "
        "convolutions and matrix products, attention included) on the project's `TransformersDepth` wrapper on "
        "the meta device. Whole call: `DepthEstimator` (pre-process + network + post-process back to 480×640; "
        "relative models with `scale_source` fixed) on the backend fastest in the warm-up frame, timed in the "
        "same rounds, split by the estimator's own stage timings.",
        "",
        "| family (layout) | input | params (M) | GMACs | PyTorch fp32 | PyTorch bf16 autocast, channels_last "
        "| ONNX Runtime fp32 | ONNX Runtime int8 | whole estimator call (fastest backend) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        size = f"{r['input'][0]}×{r['input'][1]}" if "input" in r else "?"
        params = f"{r['params_m']:.1f}" if "params_m" in r else "?"
        gmacs = f"{r['gmacs']:,.1f}" if "gmacs" in r else "?"
        head = f"| {r['label']} ({r['layout']}) | {size} | {params} | {gmacs}"
        if not r["ms"]:
            lines.append(f"{head} | {r['not_measured']} | | | | |")
            continue
        e = r["estimator"]
        whole = (
            f"{_ms(e['total'])} ({BACKEND_NAMES[e['backend']]}: pre-process {e['preprocess']:.1f} + network "
            f"{_ms(e['inference'])} + post-process {e['postprocess']:.1f})"
        )
        cells = " | ".join(_cell(r, k) for k in BACKEND_NAMES)
        lines.append(f"{head} | {cells} | {whole} |")
    lines += [
        "",
        "Agreement with PyTorch fp32 on the same generated frames (network output at the network's input size): "
        "δ1 of each variant against fp32, i.e. the share of pixels where max(a/b, b/a) < 1.25, and AbsRel "
        "(mean |a − b| / b) against fp32. Not δ1 against ground truth: with random weights that means nothing. "
        "The last column is fp32's own 5-95 % output range, to show the random-weight outputs are not constant.",
        "",
        "| family | frames | δ1 bf16 vs fp32 (AbsRel) | δ1 ONNX Runtime fp32 vs fp32 (AbsRel) | "
        "δ1 int8 vs fp32 (AbsRel) | fp32 output 5-95 % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if not r["agreement"]:
            continue
        cells = []
        for key in ("torch_bf16", "ort_fp32", "ort_int8"):
            a = r["agreement"].get(key)
            cells.append(f"{a['d1']:.4f} ({a['abs_rel']:.4f})" if a else r["failed"].get(key, "n/a"))
        frames = next(iter(r["agreement"].values()))["frames"]
        low, high = r["output_range"]
        lines.append(f"| {r['label']} | {frames} | {' | '.join(cells)} | {low:.3g}-{high:.3g} |")
    lines += [
        "",
        f"Anchoring per frame (`Anchor.apply` on a 640×480 prediction; goal under {ANCHOR_GOAL_MS:g} ms): "
        f"`sparse_depth` with {ANCHOR_POINTS:,} valid points in a 640×480 NaN image, `ground_plane` with the "
        "generated frame's camera height, pitch and roll (its floor grid of about 3,000 pixels is built once per "
        f"camera: the first frame's cost is given apart). Medians of {context['anchor_repeats']} interleaved calls "
        "on a generated indoor frame whose prediction is the true depth (or an affine map of its inverse) with "
        "2 % noise; AbsRel of the anchored depth against the true depth shows the fit locked on.",
        "",
        "| source | model output (fit) | per frame (ms) | of which correspondences (ms) | of which the fit (ms) "
        "| under 1 ms | first frame (ms) | inliers / points | anchored AbsRel |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    fits = {"inverse_depth": "inverse depth (affine fit)", "depth": "metric depth (scale fit)"}
    for a in anchoring:
        verdict = "yes" if a["ms"] < ANCHOR_GOAL_MS else "no"
        cells = [
            fits[a["kind"]],
            f"{a['ms']:.2f}",
            f"{a['find_ms']:.2f}",
            f"{a['fit_ms']:.2f}",
            verdict,
            f"{a['first_ms']:.2f}",
            f"{a['inliers']:,} / {a['points']:,}",
            f"{a['abs_rel']:.4f}",
        ]
        lines.append(f"| {a['source']} | {' | '.join(cells)} |")
    lines += [
        "",
        "Correspondences: `sample_sparse` scanning the 640×480 sparse image for its valid pixels, or reading the "
        "prediction at the cached floor grid; the rest of a frame beyond them and the fit is the full-image "
        "`scale · pred (+ shift)`, reciprocal and invalid-masking.",
    ]
    if context.get("notes"):
        lines += ["", *context["notes"]]
    lines += ["", "CUDA figures: pending (no GPU lent to this session).", f"<!-- bench:{SECTION} end -->"]
    return "\n".join(lines) + "\n"


def run(families: list[str], repeats: int, output: str | None, model_dir: str | None, command: str) -> str:
    start = time.perf_counter()
    torch.manual_seed(0)
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench_pretrained.") as tmp:
        for key in families:
            try:
                row = bench_family(key, repeats, Path(tmp))
            except Exception as exc:  # recorded in the table; the other families still run
                row = {**empty_row(key), "not_measured": f"failed: {_first_line(exc)}"}
                print(f"{key}: {row['not_measured']}", flush=True)
            gc.collect()
            rows.append(row)
            if row["ms"]:
                speeds = ", ".join(f"{BACKEND_NAMES[k]} {v:.0f} ms" for k, v in row["ms"].items())
                e = row["estimator"]
                print(f"{key}: {speeds}; whole call {e['total']:.0f} ms ({BACKEND_NAMES[e['backend']]})", flush=True)
                spent = {k: f"{row[k]:.0f} s" for k in ("build_s", "export_s", "quantize_s", "total_s") if k in row}
                print(f"  time spent: {spent}", flush=True)
                for k, v in row["failed"].items():
                    print(f"  {BACKEND_NAMES[k]}: {v}", flush=True)
        # Families too slow to run here: the best GMAC/s reached in this run bounds their time.
        rates = [r["gmacs"] / (min(r["ms"].values()) / 1000) for r in rows if r["ms"]]
        for r in rows:
            if not r["ms"] and "not_measured" not in r:
                reason = f"{r['gmacs']:,.0f} GMACs"
                if rates:
                    best = max(rates)
                    reason += f", about {r['gmacs'] / best:.0f} s per frame at the best {best:.0f} GMAC/s of this run"
                weights = 4e6 * r["params_m"]  # bytes of fp32 weights
                if weights > 2**31:
                    reason += f"; {weights / 1e9:.1f} GB of fp32 weights, over ONNX's 2 GiB single-file limit"
                r["not_measured"] = f"not measured on this CPU ({reason})"
                print(f"{r['key']}: {r['not_measured']}", flush=True)
        if any("ort_int8" in r["ms"] for r in rows):
            q = next(r for r in rows if "ort_int8" in r["ms"])
            notes.append(
                f"int8: `depth-estimation quantize` (ONNX Runtime static QDQ, Conv/MatMul/Gemm, calibrated on "
                f"{CALIBRATION_FRAMES} generated frames) quantised the {q['label']} graph in {q['quantize_s']:.0f} s; "
                "the larger graphs were not quantised here (calibration holds every activation of the graph, and "
                'the command has to stay under 10 minutes): their int8 cells read "not measured".'
            )
        if model_dir:
            node = save_node_folder(rows, Path(model_dir))
            if node:
                head = " with its metric head (Metric-Indoor, max depth 20 m)" if node["metric_head"] else ""
                notes.append(
                    f"The fastest family's layout{head}, random weights, is saved as `{node['folder']}` for "
                    f"`python -m benchmarks.ros_bench node --model {node['folder']}` "
                    "(`make bench`)."
                )
                print(f"saved {FAMILIES[node['key']].label}{head} to {node['folder']}", flush=True)
    anchor_repeats = 200
    anchoring = bench_anchoring(anchor_repeats)
    for a in anchoring:
        print(f"anchoring {a['source']}, {a['kind']}: {a['ms']:.2f} ms (fit {a['fit_ms']:.2f} ms)", flush=True)
    context = {
        "command": command,
        "date": datetime.date.today().isoformat(),
        "repeats": repeats,
        "anchor_repeats": anchor_repeats,
        "notes": notes,
        "minutes": (time.perf_counter() - start) / 60,
    }
    text = render(rows, anchoring, context)
    if output:
        write_section(Path(output), text, SECTION)
        print(f"wrote {output} ({context['minutes']:.1f} min)", flush=True)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_pretrained",
        description="Pretrained depth families on this CPU: speed per backend, bf16/int8 agreement, anchoring cost.",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed frames per family after one warm-up (default 3)")
    parser.add_argument("--output", default="docs/benchmarks.md", help="document to write the section to ('' for none)")
    parser.add_argument(
        "--families",
        nargs="+",
        default=list(FAMILIES),
        metavar="NAME",
        help=f"families to run (default: all): {', '.join(FAMILIES)}",
    )
    parser.add_argument(
        "--model-dir",
        default="runs/bench_pretrained",
        help="where the fastest family's folder is saved as 'fastest' ('' for nowhere)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.families if name not in FAMILIES]
    if unknown:
        parser.exit(2, f"error: unknown families {', '.join(unknown)}; expected some of {', '.join(FAMILIES)}\n")
    if args.repeats < 1:
        parser.exit(2, f"error: --repeats must be at least 1, got {args.repeats}\n")
    families = list(dict.fromkeys(args.families))
    command = shlex.join(["python", "-m", "benchmarks.bench_pretrained", *(sys.argv[1:] if argv is None else argv)])
    run(families, args.repeats, args.output or None, args.model_dir or None, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
