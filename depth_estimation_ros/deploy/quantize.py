"""Static int8 quantisation of an exported graph, for ONNX Runtime on the CPU or for TensorRT.

``depth-estimation quantize model.onnx model-int8.onnx [--images DIR | --synthetic indoor] [--frames 64]
[--target onnxruntime|tensorrt]``

Weights are quantised per output channel (int8, symmetric) and activations per tensor with
ranges measured on calibration frames: the user's camera images (``--images``: a folder, the
frames the model will see), or generated scenes (``--synthetic indoor|street``). Frames are
pre-processed exactly as at run time (:func:`depth_estimation_ros.core.backends.base.network_input`).
Only convolutions and matrix products are quantised (QDQ format): the softmax, the bin/ordinal
decoding and the output stay in float32, which is where int8 would cost accuracy for nothing.
The project's metadata is carried over, so the result loads like any exported graph, and the
precision (``int8``) is recorded under ``depth_estimation_ros.precision``.

Targets: ``onnxruntime`` (the default; uint8 activations with a zero point, int32 biases: what
ONNX Runtime's CPU kernels run fastest) and ``tensorrt`` (explicit quantisation as strongly typed
TensorRT takes it: int8 activations and weights, symmetric (zero point 0), biases left in float32
for TensorRT to fuse, since TensorRT's Q/DQ layers are for int8/fp8/int4 tensors, not int32).
``depth-estimation export --precision int8`` uses the ``tensorrt`` target.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from depth_estimation_ros.core import graph_io
from depth_estimation_ros.core.backends.base import ModelInfo, network_input
from depth_estimation_ros.core.backends.onnxruntime_backend import read_onnx_info
from depth_estimation_ros.core.camera import CameraModel
from depth_estimation_ros.core.card import ModelCard
from depth_estimation_ros.core.estimator import preprocess
from depth_estimation_ros.core.files import create_staging_folder, remove_stale, write_with

QUANTISED_OPS = ("Conv", "MatMul", "Gemm")
TARGETS = ("onnxruntime", "tensorrt")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def synthetic_frames(kind: str, count: int, height: int, width: int, seed: int = 3_000_000) -> Iterator[np.ndarray]:
    """Generated scenes (seeds apart from training, validation and the held-out test set)."""
    from depth_estimation_ros.core.scenes import render_scene

    for index in range(count):
        yield render_scene(seed + index, height, width, kind)["image"]


def calibration_feeds(rgb: np.ndarray, info: ModelInfo, card: ModelCard | None) -> dict[str, np.ndarray]:
    """A frame as the graph's inputs, pre-processed as at run time. A card-described graph gets its
    card's input rule (stretch or letterbox), normalisation and, where it takes them, the intrinsics
    of a 60° camera (calibration frames come without a camera; the ranges barely depend on it)."""
    if card is None:
        return {"image": np.repeat(network_input(rgb, (info.input_height, info.input_width)), info.batch, axis=0)}
    height, width = rgb.shape[:2]
    f = width / (2 * np.tan(np.radians(30)))
    camera = CameraModel.from_intrinsics(f, f, (width - 1) / 2, (height - 1) / 2, width, height)
    size = (card.input.height, card.input.width) if card.input.fixed else None
    batch, net_camera, _ = preprocess(rgb, camera, size, rule=card.input)
    return graph_io.feeds(card.graph_io, batch, info.normalization, net_camera.K)


def quantize(
    onnx_path: str | os.PathLike,
    output: str | os.PathLike,
    frames,
    per_channel: bool = True,
    target: str = "onnxruntime",
    card: ModelCard | None = None,
) -> Path:
    """Write ``output``, the int8 graph of ``onnx_path`` calibrated on ``frames`` (uint8 RGB images),
    in QDQ format for ``target`` (``onnxruntime`` or ``tensorrt``); ``card``: the model card of a
    graph exported elsewhere (its metadata is carried over where it has any)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from depth_estimation_ros.core.backends.tensorrt_backend import PRECISION_KEY

    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")

    onnx_path, output = Path(onnx_path), Path(output)
    info = read_onnx_info(onnx_path) if card is None else ModelInfo.from_card(card)
    if output.exists() or output.is_symlink():
        raise FileExistsError(f"{output} exists; choose another output path (nothing is overwritten)")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.frames = iter(frames)

        def get_next(self):
            rgb = next(self.frames, None)
            if rgb is None:
                return None
            return calibration_feeds(np.asarray(rgb, np.uint8), info, card)

    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(output.parent)  # staging a killed run left
    # The quantiser writes side files (the augmented calibration graph) beside its output: a staging
    # folder like every temporary, so that the next run can tell a dead run's leftovers.
    tmp = create_staging_folder(output.parent, output.name)
    try:
        partial = tmp / output.name
        tensorrt = target == "tensorrt"
        try:
            # Not deferred: calibration takes minutes, and Ctrl-C or SIGTERM must stop it within a frame.
            # An interrupt that ORT wraps into its own error is still one (the command's boundary finds
            # it in the chain of causes); whatever it leaves is in the staging folder, removed below.
            with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints
                quantize_static(
                    str(onnx_path),
                    str(partial),
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(QUANTISED_OPS),
                    per_channel=per_channel,
                    activation_type=QuantType.QInt8 if target == "tensorrt" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.Percentile if tensorrt else CalibrationMethod.MinMax,
                    extra_options=(
                        {
                            "ActivationSymmetric": True,
                            "WeightSymmetric": True,
                            "QuantizeBias": False,
                            "CalibPercentile": 99.99,
                        }
                        if tensorrt
                        else {"CalibTensorRangeSymmetric": False}
                    ),
                )
            model = onnx.load(str(partial))
        except OSError:
            raise  # the disk, not the graph
        except Exception as exc:  # checker, shape inference, ORT: a bad graph, named, in one line
            raise ValueError(f"{onnx_path}: cannot quantise this graph: {_first_line(exc)}") from exc
        source = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
        del model.metadata_props[:]
        for key, value in {**source, PRECISION_KEY: "int8"}.items():
            model.metadata_props.add(key=key, value=value)
        write_with(output, lambda staged: onnx.save(model, str(staged)))  # complete before it appears
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output
