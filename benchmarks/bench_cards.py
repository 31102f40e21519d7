"""``python -m benchmarks.bench_cards``: the card-described families on this CPU, every runtime side by side.

    python -m benchmarks.bench_cards [--repeats N] [--output docs/benchmarks.md] [--families ...]
                                     [--model-dir runs/bench_cards]

Each built-in card's export (Depth Anything 3 metric, Metric3D v2, UniDepth V2, MoGe-2) at its own
input, as a random-weight network of the family's published width with the export's exact tensors
(:mod:`benchmarks.card_graphs`: DA3's own code where it is installed, else an approximation it
names), exported to ONNX and run with its card through ONNX Runtime fp32, ONNX Runtime int8
(``depth-estimation quantize --card``, 4 generated calibration frames), OpenVINO fp32 and PyTorch
(the same module), timed in turn within each round on the same generated 480×640 frames; the
random weights are rescaled (LSUV, :func:`.bench_pretrained.unit_activations`) so outputs vary as a
trained network's do. Agreement: δ1 of each runtime's depth (the graph's depth before the focal
rule) against ONNX Runtime fp32 on the same frames. ``backend: auto`` is then opened as the node
opens it and its choice reported beside the fastest runtime within δ1 0.01 of fp32. The fastest
family's graph is kept in ``--model-dir`` for ``python -m benchmarks.ros_bench node``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench import machine, write_section
from benchmarks.bench_pretrained import (
    Recorded,
    _first_line,
    agreement,
    generated_frames,
    timed_rounds,
    unit_activations,
)
from depth_estimation_ros.core import graph_io
from depth_estimation_ros.core.backends.base import Backend, ModelInfo

SECTION = "cards"
CALIBRATION_FRAMES = 4
AGREEMENT = 0.99  # as backend auto: δ1 within 0.01 of fp32
REFERENCE = "ort_fp32"
RUNTIMES = {"ort_fp32": "ONNX Runtime fp32", "ort_int8": "ONNX Runtime int8", "openvino": "OpenVINO fp32",
            "torch": "PyTorch fp32"}  # fmt: skip


@dataclass(frozen=True)
class Family:
    label: str  # the published model its width is
    size: str  # DINOv2 width of its encoder
    own_code: bool = False  # the family's own network where its package is installed


FAMILIES = {
    "depth_anything_3_metric": Family("Depth Anything 3 metric (DA3METRIC-LARGE)", "large", own_code=True),
    "metric3d_v2_vit": Family("Metric3D v2 ViT-S", "small"),
    "unidepth_v2": Family("UniDepth V2-S", "small"),
    "moge_2": Family("MoGe-2 ViT-S", "small"),
}


class TorchGraph(Backend):
    """The exported module itself in PyTorch, fed and read through the card as the ONNX graph is."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, card):
        super().__init__(ModelInfo.from_card(card))
        self.module, self.io = module, card.graph_io

    def __call__(self, batch: np.ndarray, K: np.ndarray | None = None) -> dict[str, np.ndarray]:
        feeds = graph_io.feeds(self.io, batch, self.info.normalization, K)
        with torch.inference_mode():
            raw = self.module(*(torch.from_numpy(feeds[n]) for n in self.io.input_names))
        named = dict(zip(self.io.output_names, (t.numpy() for t in raw), strict=True))
        return graph_io.outputs(self.io, named, batch.shape[2:], K)


def layout(family: Family, own: bool) -> str:
    if own:
        return "its own code: DINOv2 ViT-L/14, DPT head 256"
    encoder = "ViT-L/14" if family.size == "large" else "ViT-S/14"
    return f"DINOv2 {encoder} + Depth Anything's DPT head in place of its decoder"


def bench_family(key: str, repeats: int, workdir: Path) -> dict:
    """One family's row: ms per runtime, agreement with ONNX Runtime fp32, auto's choice."""
    from benchmarks.card_graphs import build, export, own_depth_anything_3
    from depth_estimation_ros.core.backends import open_backend
    from depth_estimation_ros.core.card_files import load_card
    from depth_estimation_ros.core.estimator import preprocess
    from depth_estimation_ros.deploy.quantize import quantize, synthetic_frames

    family, card = FAMILIES[key], load_card(key)
    own = family.own_code and own_depth_anything_3()
    row = {"key": key, "label": family.label, "layout": layout(family, own), "ms": {}, "failed": {},
           "agreement": {}, "input": (card.input.height, card.input.width)}  # fmt: skip
    begin = time.perf_counter()
    frames = generated_frames(repeats + 1)
    torch.manual_seed(0)
    module = build(card, family.size, own)
    row["params_m"] = sum(p.numel() for p in module.parameters()) / 1e6
    runners: dict[str, Backend] = {"torch": TorchGraph(module, card)}
    size = (card.input.height, card.input.width)
    inputs = []
    for image, camera in frames:
        batch, net_camera, _ = preprocess(image, camera, size, rule=card.input)
        inputs.append((batch, net_camera.K) if card.graph_io.needs_camera else (batch,))
    unit_activations(module, lambda: runners["torch"](*inputs[0]))
    print(f"{key}: {family.label}, {row['layout']}, input {size[0]}x{size[1]}, {row['params_m']:.1f} M parameters",
          flush=True)  # fmt: skip
    start = time.perf_counter()
    path = workdir / f"{key}.onnx"
    export(module, card, path)
    row["export_s"] = time.perf_counter() - start
    runners["ort_fp32"] = open_backend(path, "onnxruntime", card=card)
    try:
        runners["openvino"] = open_backend(path, "openvino", card=card)
    except Exception as exc:
        row["failed"]["openvino"] = _first_line(exc)
    start = time.perf_counter()
    try:
        calibration = synthetic_frames("indoor", CALIBRATION_FRAMES, 480, 640)
        int8 = quantize(path, workdir / f"{key}-int8.onnx", calibration, card=card)
        row["quantize_s"] = time.perf_counter() - start
        runners["ort_int8"] = open_backend(int8, "onnxruntime", card=card)
    except Exception as exc:
        row["failed"]["ort_int8"] = f"quantisation failed: {_first_line(exc)}"
    calls = {name: Recorded(backend, inputs) for name, backend in runners.items()}
    row["ms"], row["estimator"] = timed_rounds(calls, runners, frames, {}, repeats)
    for name, call in list(calls.items()):
        if call.error is not None:
            row["failed"][name] = f"run failed: {call.error}"
            row["ms"].pop(name, None)
            del calls[name]
    reference = calls[REFERENCE].outputs
    for name, call in calls.items():
        if name != REFERENCE:
            row["agreement"][name] = agreement(call.outputs, reference)
    usable = [n for n in row["ms"] if n == REFERENCE or row["agreement"][n]["d1"] >= AGREEMENT]
    row["best"] = min(usable, key=row["ms"].get)
    auto = open_backend(path, "auto", card=card)
    row["auto"] = f"{auto.name} ({auto.selection})" if auto.selection else auto.name
    row["path"] = path
    row["total_s"] = time.perf_counter() - begin
    return row


def _cell(row: dict, key: str) -> str:
    value, ref = row["ms"].get(key), row["ms"].get(REFERENCE)
    if value is None:
        return row["failed"].get(key, "n/a")
    text = f"{value:,.0f}"
    return text if key == REFERENCE else f"{text} ({ref / value:.2f}×)"


def render(rows: list[dict], context: dict) -> str:
    import onnxruntime
    import openvino

    lines = [
        f"<!-- bench:{SECTION} start -->",
        "### Card-described families on the CPU (random weights, published widths)",
        "",
        f"Command: `{context['command']}`. Machine: {machine()}; ONNX Runtime {onnxruntime.__version__}, "
        f"OpenVINO {openvino.__version__.split('-')[0]}. Date: {context['date']}; the command took "
        f"{context['minutes']:.1f} min.",
        "",
        f"Network alone (the card's feeds and outputs included), ms per frame at the export's input: median of "
        f"{context['repeats']} generated 480×640 frames after one warm-up frame, the runtimes of a family timed in "
        "turn within each frame; in brackets the speed-up over ONNX Runtime fp32 of the same rounds. Whole call: "
        "`DepthEstimator` (pre-process, network, the family's rule back to 480×640) on the runtime fastest in the "
        "warm-up frame, in the same rounds.",
        "",
        "| family (network) | input | params (M) | ONNX Runtime fp32 | ONNX Runtime int8 | OpenVINO fp32 "
        "| PyTorch fp32 | whole estimator call |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        head = f"| {r['label']} ({r['layout']}) | {r['input'][0]}×{r['input'][1]}"
        if not r["ms"]:
            lines.append(f"{head} | {r.get('params_m', 0):.1f} | {r['not_measured']} | | | | |")
            continue
        e = r["estimator"]
        whole = (f"{e['total']:,.0f} ({RUNTIMES[e['backend']]}: pre-process {e['preprocess']:.1f} + network "
                 f"{e['inference']:,.0f} + post-process {e['postprocess']:.1f})")  # fmt: skip
        cells = " | ".join(_cell(r, k) for k in RUNTIMES)
        lines.append(f"{head} | {r['params_m']:.1f} | {cells} | {whole} |")
    lines += [
        "",
        "δ1 of each runtime's depth against ONNX Runtime fp32 on the same frames (max(a/b, b/a) < 1.25, pixels "
        "the card leaves out (sky, invalid) agreeing where both leave them out; AbsRel in brackets); the fastest "
        f"runtime with δ1 ≥ {AGREEMENT}; and what `backend: auto` chose opening the graph as the node does (it "
        "times ONNX Runtime and OpenVINO on two generated frames and keeps the faster that agrees; int8 is another "
        "file, chosen by the user).",
        "",
        "| family | δ1 int8 | δ1 OpenVINO | δ1 PyTorch | fastest within δ1 0.01 | backend auto chose |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if not r["ms"]:
            continue
        cells = []
        for key in ("ort_int8", "openvino", "torch"):
            a = r["agreement"].get(key)
            cells.append(f"{a['d1']:.4f} ({a['abs_rel']:.4f})" if a else r["failed"].get(key, "n/a"))
        lines.append(f"| {r['label']} | {' | '.join(cells)} | {RUNTIMES[r['best']]} | {r['auto']} |")
    if context.get("notes"):
        lines += ["", *context["notes"]]
    lines += ["", "CUDA figures: pending (no GPU lent to this session).", f"<!-- bench:{SECTION} end -->"]
    return "\n".join(lines) + "\n"


def keep_fastest(rows: list[dict], model_dir: Path) -> dict | None:
    """The graph of the family fastest on its best runtime, copied to ``model_dir`` (replacing only a
    graph this command wrote there)."""
    measured = [r for r in rows if r["ms"]]
    if not measured:
        return None
    best = min(measured, key=lambda r: r["ms"][r["best"]])
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / f"fastest-{best['key']}.onnx"
    for old in model_dir.glob("fastest-*.onnx"):
        old.unlink()
    shutil.copyfile(best["path"], target)
    return {"key": best["key"], "path": target}


def run(families: list[str], repeats: int, output: str | None, model_dir: str | None, command: str) -> str:
    start = time.perf_counter()
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench_cards.") as tmp:
        for key in families:
            try:
                row = bench_family(key, repeats, Path(tmp))
            except Exception as exc:  # recorded; the other families still run
                family = FAMILIES[key]
                row = {"key": key, "label": family.label, "layout": layout(family, False), "ms": {}, "failed": {},
                       "agreement": {}, "input": (0, 0), "not_measured": f"failed: {_first_line(exc)}"}  # fmt: skip
            gc.collect()
            rows.append(row)
            speeds = ", ".join(f"{RUNTIMES[k]} {v:.0f} ms" for k, v in row["ms"].items())
            print(f"{key}: {speeds or row.get('not_measured')}; auto: {row.get('auto')}", flush=True)
        if model_dir and (kept := keep_fastest(rows, Path(model_dir))):
            node = f"python -m benchmarks.ros_bench node --model {kept['path']} --param card:={kept['key']}"
            notes.append(f"The fastest family's graph ({FAMILIES[kept['key']].label}) is kept as `{kept['path']}` "
                         f"for `{node}`.")  # fmt: skip
    context = {"command": command, "date": datetime.date.today().isoformat(), "repeats": repeats, "notes": notes,
               "minutes": (time.perf_counter() - start) / 60}  # fmt: skip
    text = render(rows, context)
    if output:
        write_section(Path(output), text, SECTION)
        print(f"wrote {output} ({context['minutes']:.1f} min)", flush=True)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_cards", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed frames per family after one warm-up (default 3)")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument(
        "--output", default="docs/benchmarks.md", help="document whose section is rewritten ('' for none)"
    )
    parser.add_argument("--model-dir", default="runs/bench_cards", help="where the fastest family's graph is kept")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.bench_cards " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(run(args.families, args.repeats, args.output or None, args.model_dir, command.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
