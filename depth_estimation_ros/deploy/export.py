"""Export a checkpoint to ONNX: RGB in, metres (and confidence) out, everything else inside the graph.

The graph takes ``image`` float32 (batch, 3, H, W) RGB in [0, 1] and returns ``depth`` (metres) and,
for models that have one, ``confidence``. Input normalisation and ordinal decoding are inside, so
every backend returns the same quantities. Shapes are static (what TensorRT optimises best); the
project's :class:`ModelInfo` is stored as JSON in the file's metadata under ``depth_estimation_ros``.

The requested opset is honoured or refused: the exporter works at opset 18 and converts down, and a
graph it cannot convert is an error, never a file of another opset. The file is staged beside the
output and renamed when complete; an existing output is replaced only with ``overwrite``.

A transformers depth folder (or a Hub id in the local cache) exports too: the graph returns the
model's raw output as ``depth`` (its meaning, e.g. relative inverse depth, is in the card), at one
fixed size (Depth Anything's output size does not survive dynamic shapes: one file per size). The
metadata carries the folder's card frozen at that size, so every backend applies the same padding,
interpolation, focal rule and output kind. Those graphs are exported with the dynamo exporter, or
with the TorchScript one where dynamo fails (ZoeDepth on some torch versions); operators outside
:data:`TENSORRT_OPS` are reported, not refused (ACAN and MSFNet graphs are refused).

``precision`` makes the precision a property of the graph, as strongly typed TensorRT (10.x with
``STRONGLY_TYPED``, every 11.x network) builds it: ``fp32`` (the default), ``fp16`` (float16
weights and compute with float32 ``image`` in and outputs out; the input normalisation, the
decoding after the last convolution or matrix product, and the numerically sensitive operators of
:data:`FP32_OPS` stay float32) or ``int8`` (symmetric int8 Q/DQ on convolutions and matrix
products, ranges from calibration frames: ``depth_estimation_ros.deploy.quantize`` with ``target="tensorrt"``). The
precision is recorded in the metadata under :data:`PRECISION_KEY`.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from depth_estimation_ros.core.backends import FORMATS
from depth_estimation_ros.core.backends.base import METADATA_KEY, ModelInfo
from depth_estimation_ros.core.backends.tensorrt_backend import PRECISION_KEY, PRECISIONS
from depth_estimation_ros.core.card import InputRule, ModelCard
from depth_estimation_ros.core.errors import UsageError, quiet_loggers, reraise_interrupt, signals_deferred
from depth_estimation_ros.core.files import is_hub_id, refuse_overlap, staged_file
from depth_estimation_ros.core.models import load_checkpoint, model_from_checkpoint

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
# ONNX operators the TensorRT 10 ONNX parser supports (onnx-tensorrt's operator list) that these
# networks can produce: the convolutional ones, and those transformer graphs add (LayerNormalization,
# Gelu, Einsum, IsNaN, Softplus, ...). Anything else in an exported graph is a sign the graph would
# not build on a robot.
# fmt: off
TENSORRT_OPS = frozenset({
    "Abs", "Add", "And", "ArgMax", "ArgMin", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Clip",
    "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "CumSum", "DepthToSpace", "Div",
    "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "GatherElements",
    "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "Greater", "GreaterOrEqual", "GroupNormalization",
    "HardSigmoid", "HardSwish", "Identity", "InstanceNormalization", "IsInf", "IsNaN", "LayerNormalization",
    "LeakyRelu", "Less", "LessOrEqual", "Log", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mod", "Mul", "Neg",
    "Not", "Or", "Pad", "Pow", "PRelu", "Range", "Reciprocal", "ReduceL2", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSum", "Relu", "Reshape", "Resize", "Round", "ScatterND", "Shape",
    "Sigmoid", "Sign", "Sin", "Slice", "Softmax", "Softplus", "SpaceToDepth", "Split", "Sqrt", "Squeeze",
    "Sub", "Tanh", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Where",
})
# Operators kept in float32 in an fp16 graph wherever they are: reductions, normalisation,
# softmax/attention and exponentials, whose range or accumulated rounding float16 does not hold
# (the ordinal decoding after the last convolution stays float32 as a whole, see fp16_graph).
FP32_OPS = (
    "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceL2", "ReduceProd", "ReduceLogSumExp",
    "LayerNormalization", "GroupNormalization", "InstanceNormalization", "Exp", "Log", "Pow", "Sqrt", "Reciprocal",
    "Floor", "Ceil", "Round", "CumSum", "Range", "TopK",
)
# fmt: on
HEAVY_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Einsum")  # what float16 (and int8) is for
DEFAULT_FRAME = (480, 640)  # the frame a transformers model's input rule is applied to by default
PROTOBUF_LIMIT = 2**31 - 2**26  # bytes: one ONNX file (no external data) holds a little under 2 GiB


class DeployableDepth(nn.Module):
    """The model as a graph with positional outputs (``depth`` [, ``confidence``])."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()
        self.outputs = ("depth", "confidence") if model.has_confidence else ("depth",)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        return tuple(out[k] for k in self.outputs)


def export_onnx(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    height: int | None = None,
    width: int | None = None,
    batch: int = 1,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    precision: str = "fp32",
    calibration_images: str | os.PathLike | None = None,
    calibration_frames: int = 64,
) -> Path:
    """Export ``checkpoint`` at (height, width) to ``output``.

    ``precision`` is ``fp32``, ``fp16`` or ``int8`` (see the module docstring); ``int8`` needs
    ``calibration_images``, a folder of representative frames (at most ``calibration_frames`` are used).

    ``checkpoint`` is an ACAN/MSFNet checkpoint (.pt), whose size defaults to the input size it
    records, or a transformers depth folder (or a Hub id in the local cache). A folder takes both
    ``height`` and ``width`` or neither; by default its card's input rule is applied to a 480×640
    frame: the rule's padding is added to the frame (ZoeDepth's reflect border), then the rule
    gives the network size of the padded frame (``card.input.network_size`` of it), e.g. Depth
    Anything 518×686, ZoeDepth 384×512, GLPN 480×640, DPT 384×384, Depth Pro 1536×1536. The size
    must be one the family takes (multiples of the rule's ``multiple``; a size the network runs at,
    e.g. square for DPT's ViT), else a one-line ValueError names the size and the rule.
    """
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= newest:
        raise UsageError(f"opset {opset} is not one this ONNX ({onnx.__version__}) writes: expected 7 to {newest}")
    for name, value in (("height", height), ("width", width), ("batch", batch)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value}")
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and calibration_images is None:
        raise UsageError("--precision int8 needs --calibration-images: a folder of the camera's own frames")
    if precision != "int8" and calibration_images is not None:
        raise UsageError("--calibration-images is for --precision int8 only")
    if calibration_frames < 1:
        raise UsageError(f"calibration frames must be at least 1, got {calibration_frames}")
    convert = PrecisionStep(precision, calibration_images, calibration_frames)
    output = Path(output)
    refuse_overlap(output, [("checkpoint", checkpoint)])
    if is_transformers_source(checkpoint):
        return _export_transformers(checkpoint, output, height, width, batch, opset, overwrite, convert)
    state = load_checkpoint(checkpoint)
    if height is None or width is None:
        if not state.get("input_size"):
            raise ValueError(f"{checkpoint} records no input size: pass --height and --width")
        height, width = height or state["input_size"][0], width or state["input_size"][1]
    # The temporary is claimed first: an existing output or a folder we cannot write fails at once.
    # Ctrl-C/SIGTERM stop loading and tracing at once (an interrupt torch's exporter wraps is still
    # one) and are held only while the graph is written.
    with staged_file(output, overwrite, defer_signals=False) as tmp:
        proto, info = onnx_graph(model_from_checkpoint(state, checkpoint), height, width, batch, opset, checkpoint)
        with signals_deferred():
            onnx.save(convert(proto, tmp), str(tmp))
    log.info("exported %s (%dx%d, opset %d, %s) to %s", info.name, width, height, opset, precision, output)
    return output


def is_transformers_source(checkpoint: str | os.PathLike) -> bool:
    """A folder, or a name that is no file but reads as a Hub id (resolved in the local cache)."""
    path = Path(checkpoint)
    if path.is_dir():
        return True
    return not path.exists() and path.suffix.lower() not in FORMATS and is_hub_id(str(checkpoint))


def describe_rule(rule: InputRule) -> str:
    """An input rule in words, for errors and help."""
    if rule.fixed:
        text = f"fixed {rule.height}x{rule.width}"
    elif rule.box:
        text = f"{rule.height}x{rule.width} box{', keep aspect' if rule.keep_aspect else ''}"
    else:
        text = "the frame's own size"
    if rule.multiple > 1:
        text += f", multiple of {rule.multiple}"
    return text + (f", {rule.pad} padding" if rule.pad != "none" else "")


def default_size(rule: InputRule, frame: tuple[int, int] = DEFAULT_FRAME) -> tuple[int, int]:
    """The network size the rule gives a ``frame`` (h, w): its padding added, then its size rule."""
    pad_y, pad_x = rule.padding(*frame)
    return rule.network_size(frame[0] + 2 * pad_y, frame[1] + 2 * pad_x)


def transformers_size(folder, card: ModelCard, height: int | None, width: int | None) -> tuple[int, int]:
    """The export size of a transformers folder: as given (checked against the card's multiple),
    or the rule's size for a 480×640 frame."""
    rule = card.input
    if (height is None) != (width is None):
        raise UsageError(
            f"{folder} is a transformers folder: pass both --height and --width, or neither "
            f"(default: its input rule on a 480x640 frame, {'x'.join(map(str, default_size(rule)))})"
        )
    if height is None:
        return default_size(rule)
    m = rule.multiple
    if m > 1 and (height % m or width % m):
        raise ValueError(
            f"{folder}: {height}x{width} is not an input size {card.family} takes: height and width must be "
            f"multiples of {m} (input rule: {describe_rule(rule)})"
        )
    return height, width


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _export_transformers(
    checkpoint, output: Path, height, width, batch: int, opset: int, overwrite: bool, convert=None
) -> Path:
    import onnx

    from depth_estimation_ros.core.models.transformers_depth import card_from_folder, resolve

    folder = resolve(checkpoint)  # a folder without config.json, or an id not in the cache, is named
    card = card_from_folder(folder)
    height, width = transformers_size(folder, card, height, width)
    with staged_file(output, overwrite, defer_signals=False) as tmp:  # as export_onnx
        proto, info, exporter = transformers_graph(folder, height, width, batch, opset)
        with signals_deferred():
            onnx.save(convert(proto, tmp) if convert else proto, str(tmp))
    log.info(
        "exported %s (%dx%d, opset %d) with the %s exporter to %s", info.name, height, width, opset, exporter, output
    )
    return output


def transformers_graph(checkpoint, height: int, width: int, batch: int, opset: int):
    """(proto, :class:`ModelInfo`, exporter name) of a transformers folder at a fixed size.

    The metadata's card is the folder's frozen at (height, width). The dynamo exporter is tried
    first, the TorchScript one where it fails or cannot write ``opset`` (``export_onnx`` logs which
    made the file). Operators outside :data:`TENSORRT_OPS` are logged as a warning.
    """
    from depth_estimation_ros.core.models.transformers_depth import load_transformers_model, resolve

    folder = resolve(checkpoint)
    model = load_transformers_model(folder)  # refuses non-finite weights, naming the folder and weight
    card = model.card()
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if size > PROTOBUF_LIMIT:
        raise ValueError(
            f"{folder}: {size / 2**30:.1f} GiB of weights do not fit in one ONNX file (protobuf's 2 GiB limit); "
            "exporting with external data is not supported here"
        )
    try:
        with torch.no_grad():
            depth = model(torch.rand(1, 3, height, width))["depth"]
    except Exception as exc:
        hint = "; DPT's ViT takes square inputs" if card.family == "dpt" and height != width else ""
        raise ValueError(
            f"{folder}: {card.family} cannot run at {height}x{width} (input rule: {describe_rule(card.input)}{hint}): "
            f"{_first_line(exc)}"
        ) from None
    if tuple(depth.shape) != (1, 1, height, width):
        raise ValueError(f"{folder}: at {height}x{width} the model returns depth of shape {tuple(depth.shape)}")
    info = ModelInfo.from_model(model, (height, width), batch)  # the card frozen at this size, dynamic False
    wrapper = DeployableDepth(model)
    example = torch.rand(batch, 3, height, width)
    failures = []
    for exporter in ("dynamo", "torchscript"):
        try:
            proto = export_proto(wrapper, example, opset, dynamo=exporter == "dynamo")
        except Exception as exc:
            reraise_interrupt(exc)  # Ctrl-C in the first exporter is not a reason to try the second
            failures.append(f"{exporter}: {_first_line(exc)}")
            continue
        if (written := graph_opset(proto)) != opset:
            failures.append(f"{exporter}: wrote opset {written}, not {opset}")
            continue
        try:  # a down-converted graph can be invalid (dynamo's opset 17 Split keeps num_outputs)
            proto = finish_graph(proto, info)
            break
        except Exception as exc:
            failures.append(f"{exporter}: invalid graph ({_first_line(exc)})")
    else:
        raise ValueError(
            f"{folder}: cannot export {card.family} at {height}x{width}, opset {opset}: {'; '.join(failures)}"
        )
    if failures:
        log.info("%s: the dynamo exporter failed (%s); using the TorchScript exporter", folder, failures[0])
    unsupported = sorted({node.op_type for node in proto.graph.node} - TENSORRT_OPS)
    if unsupported:
        log.warning(
            "%s: the graph uses operators outside the TensorRT 10 list checked here: %s; TensorRT's ONNX parser "
            "may still take them (depth-estimation build-engine tells)",
            folder,
            unsupported,
        )
    return proto, info, exporter


def export_proto(wrapper: DeployableDepth, example: torch.Tensor, opset: int, dynamo: bool = True):
    """The ONNX proto of ``wrapper`` on ``example`` (static shapes), by the dynamo or TorchScript exporter."""
    import onnx

    names = {"input_names": ["image"], "output_names": list(wrapper.outputs), "opset_version": opset}
    with warnings.catch_warnings(), torch.no_grad(), quiet_loggers("onnxscript", "torch.onnx"):
        warnings.simplefilter("ignore")  # the exporter's tracing chatter
        if dynamo:
            return torch.onnx.export(wrapper, (example,), **names, dynamo=True, verbose=False).model_proto
        buffer = io.BytesIO()
        torch.onnx.export(wrapper, (example,), buffer, **names, dynamo=False, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def graph_opset(proto) -> int | None:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def finish_graph(proto, info: ModelInfo):
    """``proto`` with ``info`` in its metadata and a doc string, checked by the ONNX checker."""
    import onnx

    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()
    kind = f" ({info.card['output']})" if info.card.get("output", "metric_depth") != "metric_depth" else ""
    proto.doc_string = f"{info.name} monocular depth: image (RGB [0, 1]) -> {', '.join(info.outputs)}{kind}"
    onnx.checker.check_model(proto, full_check=True)
    return proto


def onnx_graph(model, height: int, width: int, batch: int, opset: int, source: str | os.PathLike):
    """The checked ONNX model proto of the model of checkpoint ``source``, with its :class:`ModelInfo`
    in the metadata."""
    model.check_input(torch.empty(1, 3, height, width, device="meta"))
    wrapper = DeployableDepth(model)
    proto = export_proto(wrapper, torch.rand(batch, 3, height, width), opset, dynamo=True)
    written = graph_opset(proto)
    if written != opset:
        raise ValueError(
            f"the exporter could not convert {source} to opset {opset} (it produced opset {written}); "
            f"use --opset {DEFAULT_OPSET} or later"
        )
    info = ModelInfo.from_model(model, (height, width), batch)
    proto = finish_graph(proto, info)
    unsupported = sorted({node.op_type for node in proto.graph.node} - TENSORRT_OPS)
    if unsupported:
        raise ValueError(f"exported graph uses operators TensorRT 10 does not support: {unsupported}")
    return proto, info


class PrecisionStep:
    """The last export step: the fp32 proto in, the proto of the requested precision out, with
    :data:`PRECISION_KEY` in its metadata. ``staged`` is the output's staging path (int8
    calibration runs ONNX Runtime on files, which are kept beside it and removed)."""

    def __init__(self, precision: str = "fp32", calibration_images=None, calibration_frames: int = 64):
        self.precision, self.images, self.frames = precision, calibration_images, calibration_frames

    def __call__(self, proto, staged: str | os.PathLike):
        if self.precision == "fp16":
            proto = fp16_graph(proto)
        elif self.precision == "int8":
            proto = self._int8(proto, Path(staged))
        return set_precision(proto, self.precision)

    def _int8(self, proto, staged: Path):
        import tempfile

        import onnx

        from depth_estimation_ros.core.files import folder_frames
        from depth_estimation_ros.deploy.quantize import quantize

        with tempfile.TemporaryDirectory(dir=staged.parent, prefix=f".{staged.name}.int8.") as tmp:
            fp32 = Path(tmp) / "fp32.onnx"
            onnx.save(proto, str(fp32))
            frames = folder_frames(self.images, self.frames)
            quantised = quantize(fp32, Path(tmp) / "int8.onnx", frames, target="tensorrt")
            return onnx.load(str(quantised))


def set_precision(proto, precision: str):
    """``proto`` with ``precision`` recorded under :data:`PRECISION_KEY` (replacing any earlier entry)."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != PRECISION_KEY]
    del proto.metadata_props[:]
    for key, value in [*kept, (PRECISION_KEY, precision)]:
        proto.metadata_props.add(key=key, value=value)
    return proto


def half_nodes(graph) -> set[int]:
    """Indices of the nodes an fp16 graph runs in float16: those between two heavy operators
    (:data:`HEAVY_OPS`) and the heavy ones themselves, except :data:`FP32_OPS`; constants follow
    their consumers. The rest stays float32: the input normalisation before the first heavy
    operator and the decoding after the last (ACAN: logit upsampling, sigmoid, ordinal sums, floor,
    exponential bin centres, confidence)."""
    nodes = list(graph.node)
    producers = {out: i for i, n in enumerate(nodes) for out in n.output if out}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for name in n.input:
            consumers.setdefault(name, []).append(i)
    heavy = {i for i, n in enumerate(nodes) if n.op_type in HEAVY_OPS}

    def reach(start, step):
        seen, todo = set(), list(start)
        while todo:
            for j in step(todo.pop()):
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
        return seen

    after = reach(heavy, lambda i: [j for out in nodes[i].output for j in consumers.get(out, [])])
    before = reach(heavy, lambda i: [producers[x] for x in nodes[i].input if x in producers])
    half = {i for i in heavy | (after & before) if nodes[i].op_type not in FP32_OPS and nodes[i].input}
    for i, n in enumerate(nodes):
        if not n.input and any(j in half for out in n.output for j in consumers.get(out, [])):
            half.add(i)
    return half


def _to_half(tensor):
    """A float32 TensorProto as float16 (values beyond float16's range clipped to it)."""
    from onnx import numpy_helper

    array = np.clip(numpy_helper.to_array(tensor), -65504.0, 65504.0).astype(np.float16)
    return numpy_helper.from_array(array, tensor.name)


def fp16_graph(proto):
    """The float16 graph of an fp32 ``proto``, as strongly typed TensorRT builds it: float32
    ``image`` in and outputs out, float16 weights and compute in the nodes of :func:`half_nodes`,
    float32 everywhere else, one Cast on each edge between the two.

    (ONNX Runtime's ``float16.convert_float_to_float16`` was the first choice; on these graphs
    (onnxruntime 1.31) it round-trips values between neighbouring float32 nodes through float16,
    which is exactly what the float32 decoding must avoid, and leaves the graph unsorted.)
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.shape_inference.infer_shapes(proto)
    graph = model.graph
    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    nodes = list(graph.node)
    half = half_nodes(graph)
    initializers = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    produced_half = {out for i in half for out in nodes[i].output if types.get(out) == FLOAT}
    # float inputs that stay float32 whatever their node runs in (ONNX: Resize's scales are float)
    fp32_inputs = {"Resize": {2}, "Upsample": {1}}

    casts_in: dict[str, str] = {}  # float32 tensor -> its float16 copy, for half consumers
    new_nodes, new_initializers = [], []
    consumed_fp32 = set(outputs)
    for i, node in enumerate(nodes):
        new_nodes.append(node)
        if i not in half:
            consumed_fp32.update(node.input)
            continue
        for k, name in enumerate(node.input):
            if types.get(name) != FLOAT:
                continue
            if k in fp32_inputs.get(node.op_type, ()):
                consumed_fp32.add(name)
            elif name in produced_half:
                node.input[k] = f"{name}.fp16"
            else:
                if name not in casts_in:
                    casts_in[name] = f"{name}.fp16"
                    if name in initializers:
                        new_initializers.append(_to_half(initializers[name]))
                        new_initializers[-1].name = casts_in[name]
                    else:
                        new_nodes.append(helper.make_node("Cast", [name], [casts_in[name]], to=HALF,
                                                          name=f"{name}.to_fp16"))  # fmt: skip
                node.input[k] = casts_in[name]
        for k, name in enumerate(node.output):
            if name in produced_half:
                node.output[k] = f"{name}.fp16"
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT:
                attr.i = HALF
            elif attr.name == "value" and attr.t.data_type == FLOAT:
                attr.t.CopyFrom(_to_half(attr.t))
    for name in sorted(produced_half & consumed_fp32):  # float32 copies, under the original names
        new_nodes.append(helper.make_node("Cast", [f"{name}.fp16"], [name], to=FLOAT, name=f"{name}.to_fp32"))
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_initializers)
    used = {name for n in graph.node for name in n.input}
    kept = [t for t in graph.initializer if t.name in used or t.name in outputs]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    sort_nodes(graph)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def sort_nodes(graph) -> None:
    """Put ``graph``'s nodes in topological order (stable: the original order where it is one)."""
    nodes = list(graph.node)
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    ordered, pending = [], nodes
    while pending:
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(f"the graph has a cycle or an undefined input at {rest[0].name} ({rest[0].op_type})")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)
