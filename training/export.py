"""Export a checkpoint to ONNX: RGB in, metres (and confidence) out, everything else inside the graph.

The graph takes ``image`` float32 (batch, 3, H, W) RGB in [0, 1] and returns ``depth`` (metres) and,
for models that have one, ``confidence``. Input normalisation and ordinal decoding are inside, so
every backend returns the same quantities. Shapes are static (what TensorRT optimises best); the
project's :class:`ModelInfo` is stored as JSON in the file's metadata under ``depth_estimation_ros``.

The requested opset is honoured or refused: the exporter works at opset 18 and converts down, and a
graph it cannot convert is an error, never a file of another opset. The file is staged beside the
output and renamed when complete; an existing output is replaced only with ``overwrite``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from depth_estimation_ros.backends.base import METADATA_KEY, ModelInfo
from depth_estimation_ros.errors import UsageError
from depth_estimation_ros.files import refuse_overlap, staged_file
from depth_estimation_ros.models import load_checkpoint, load_model

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
# ONNX operators the TensorRT 10 ONNX parser supports that these networks can produce. Anything
# else in an exported graph is a sign the graph would not build on a robot.
# fmt: off
TENSORRT_OPS = frozenset({
    "Abs", "Add", "ArgMax", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "ConvTranspose", "DepthToSpace", "Div", "Equal", "Erf", "Exp", "Expand",
    "Flatten", "Floor", "Gather", "Gemm", "GlobalAveragePool", "Greater", "GreaterOrEqual", "HardSigmoid",
    "HardSwish", "Identity", "InstanceNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "MatMul",
    "Max", "MaxPool", "Mean", "Min", "Mul", "Neg", "Not", "Pad", "Pow", "Range", "Reciprocal", "ReduceMax",
    "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice",
    "Softmax", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Tile", "Transpose", "Unsqueeze",
    "Where",
})
# fmt: on


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
) -> Path:
    """Export ``checkpoint`` at (height, width) (default: the checkpoint's input size) to ``output``."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= newest:
        raise UsageError(f"opset {opset} is not one this ONNX ({onnx.__version__}) writes: expected 7 to {newest}")
    for name, value in (("height", height), ("width", width), ("batch", batch)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value}")
    output = Path(output)
    refuse_overlap(output, [("checkpoint", checkpoint)])
    state = load_checkpoint(checkpoint)
    if height is None or width is None:
        if not state.get("input_size"):
            raise ValueError(f"{checkpoint} records no input size: pass --height and --width")
        height, width = height or state["input_size"][0], width or state["input_size"][1]
    # The temporary is claimed first: an existing output or a folder we cannot write fails at once.
    with staged_file(output, overwrite) as tmp:
        proto, info = onnx_graph(checkpoint, height, width, batch, opset)
        onnx.save(proto, str(tmp))
    log.info("exported %s (%dx%d, opset %d) to %s", info.name, width, height, opset, output)
    return output


@contextlib.contextmanager
def quiet_loggers(*names: str):
    """Silence libraries' own logging (a failed opset conversion logs a traceback); the outcome is
    checked and reported here instead."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def onnx_graph(checkpoint, height: int, width: int, batch: int, opset: int):
    """The checked ONNX model proto of a checkpoint, with its :class:`ModelInfo` in the metadata."""
    import onnx

    model = load_model(checkpoint)
    model.check_input(torch.empty(1, 3, height, width, device="meta"))
    wrapper = DeployableDepth(model)
    with warnings.catch_warnings(), torch.no_grad(), quiet_loggers("onnxscript", "torch.onnx"):
        warnings.simplefilter("ignore")  # the exporter's tracing chatter
        program = torch.onnx.export(
            wrapper,
            (torch.rand(batch, 3, height, width),),
            input_names=["image"],
            output_names=list(wrapper.outputs),
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:
        raise ValueError(
            f"the exporter could not convert {checkpoint} to opset {opset} (it produced opset {written}); "
            f"use --opset {DEFAULT_OPSET} or later"
        )
    info = ModelInfo.from_model(model, (height, width), batch)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()
    proto.doc_string = f"{info.name} monocular depth: image (RGB [0, 1]) -> {', '.join(info.outputs)}"
    onnx.checker.check_model(proto, full_check=True)
    unsupported = sorted({node.op_type for node in proto.graph.node} - TENSORRT_OPS)
    if unsupported:
        raise ValueError(f"exported graph uses operators TensorRT 10 does not support: {unsupported}")
    return proto, info
