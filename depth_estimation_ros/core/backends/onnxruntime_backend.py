"""ONNX Runtime backend: the exported graph on the CUDA execution provider when present, else CPU.

The file's metadata is untrusted: at load it must agree with the graph's own input and output
names and shapes, so a mismatch is an error naming both, not a failure at the first frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from depth_estimation_ros.core import graph_io
from depth_estimation_ros.core.backends.base import METADATA_KEY, Backend, DependencyError, ModelInfo
from depth_estimation_ros.core.card import ModelCard


def read_onnx_info(path: str | os.PathLike) -> ModelInfo:
    """The project's metadata of an exported graph (without loading its weights)."""
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable ONNX file: {exc}") from None
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ValueError(f"{path}: ONNX file has no {METADATA_KEY!r} metadata; export it with depth-estimation export")
    return ModelInfo.from_json(props[METADATA_KEY], str(path))


class OnnxRuntimeBackend(Backend):
    """``card``: the model card of a graph exported elsewhere (its ``graph`` section says which
    tensor is which); without it the file's own metadata (this project's exports) describes it."""

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None, threads: int | None = None,
                 card: ModelCard | None = None):  # fmt: skip
        super().__init__(read_onnx_info(path) if card is None else ModelInfo.from_card(card))
        self.io = card.graph_io if card is not None else None
        self.session = self.open_session(path, providers, threads)
        self.providers = self.session.get_providers()
        if self.io is None:
            check_graph(path, self.info, self.session)
        else:
            self.dtype = check_card_graph(path, self.info.model_card, self.session)

    @staticmethod
    def open_session(path, providers: list[str] | None, threads: int | None):
        """The runtime's session: ``get_inputs()``/``get_outputs()`` (name, shape, type),
        ``get_providers()`` and ``run(output_names, feeds)``, as ONNX Runtime's."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise DependencyError(
                "ONNX Runtime is not installed: pip install onnxruntime (or onnxruntime-gpu)"
            ) from None

        available = ort.get_available_providers()
        wanted = providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
        chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            return ort.InferenceSession(str(path), options, providers=chosen)
        except Exception as exc:
            raise ValueError(f"{path}: ONNX Runtime cannot load the graph: {exc}") from None

    @property
    def device(self) -> str:
        return "cuda" if "CUDAExecutionProvider" in self.providers else "cpu"

    def __call__(self, batch: np.ndarray, K: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``K``: the network input's camera matrix, for a card-described graph that takes it."""
        batch = self.check_batch(batch)
        if self.io is not None:
            inputs = graph_io.feeds(self.io, batch, self.info.normalization, K, self.dtype)
            raw = self.session.run(self.io.output_names, inputs)
            return graph_io.outputs(self.io, dict(zip(self.io.output_names, raw, strict=True)), batch.shape[2:], K)
        outputs = self.session.run(list(self.info.outputs), {"image": batch})
        return dict(zip(self.info.outputs, outputs, strict=True))


def check_card_graph(path, card: ModelCard, session) -> type:
    """A card-described graph has exactly the inputs its card names, the outputs it reads, and an
    image input of 3 channels whose fixed sizes (if any) are the card's; returns the image's dtype.
    A mismatch is one error naming the card's source, the tensor and what was expected."""
    io = card.graph_io
    assert io is not None
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    problems = []
    if set(inputs) != set(io.input_names):
        problems.append(f"its inputs are {sorted(inputs)}, the card names {io.input_names}")
    if missing := [name for name in io.output_names if name not in outputs]:
        problems.append(f"no output {missing} (its outputs: {sorted(outputs)})")
    image = inputs.get(io.image)
    if image is not None:
        shape = list(image.shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            problems.append(f"input {io.image} is {shape}, expected (batch, 3, height, width)")
        elif all(isinstance(d, int) for d in shape[2:]) and tuple(shape[2:]) != (card.input.height, card.input.width):
            problems.append(f"input {io.image} is {shape[2]}x{shape[3]}, the card's input is "
                            f"{card.input.height}x{card.input.width}")  # fmt: skip
        elif all(isinstance(d, int) for d in shape[2:]) and not card.input.fixed:
            problems.append(f"input {io.image} has the fixed size {shape[2]}x{shape[3]}, but the card's input rule "
                            "follows the frame (input.fixed: false)")  # fmt: skip
    if problems:
        raise ValueError(f"{path} does not match its model card ({card.source or card.family}): {'; '.join(problems)}")
    return np.float16 if image is not None and image.type == "tensor(float16)" else np.float32


def check_graph(path, info: ModelInfo, session) -> None:
    """The graph takes ``image`` (batch, 3, H, W) and returns the outputs the metadata names,
    each (batch, 1, H, W); symbolic dimensions match anything."""
    expected = {"image": (info.batch, 3, info.input_height, info.input_width)}
    actual = {i.name: tuple(i.shape) for i in session.get_inputs()}
    problems = [f"inputs {sorted(actual)}, expected ['image']"] if set(actual) != set(expected) else []
    outputs = {o.name: tuple(o.shape) for o in session.get_outputs()}
    if missing := [name for name in info.outputs if name not in outputs]:
        problems.append(f"no output {missing} (graph outputs: {sorted(outputs)})")
    expected.update({name: (info.batch, 1, info.input_height, info.input_width) for name in info.outputs})
    actual.update(outputs)
    for name, shape in expected.items():
        got = actual.get(name)
        if got is not None and (
            len(got) != len(shape) or any(isinstance(g, int) and g != e for g, e in zip(got, shape, strict=False))
        ):
            problems.append(f"{name} is {list(got)} in the graph, {list(shape)} by the metadata")
    if problems:
        raise ValueError(f"{path}: the graph does not match its {METADATA_KEY!r} metadata: {'; '.join(problems)}")
