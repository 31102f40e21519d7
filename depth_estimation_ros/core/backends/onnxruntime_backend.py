"""ONNX Runtime backend: the exported graph on the CUDA execution provider when present, else CPU.

The file's metadata is untrusted: at load it must agree with the graph's own input and output
names and shapes, so a mismatch is an error naming both, not a failure at the first frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from depth_estimation_ros.core.backends.base import METADATA_KEY, Backend, DependencyError, ModelInfo


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
    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise DependencyError(
                "ONNX Runtime is not installed: pip install onnxruntime (or onnxruntime-gpu)"
            ) from None
        super().__init__(read_onnx_info(path))
        available = ort.get_available_providers()
        wanted = providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
        chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=chosen)
        except Exception as exc:
            raise ValueError(f"{path}: ONNX Runtime cannot load the graph: {exc}") from None
        self.providers = self.session.get_providers()
        check_graph(path, self.info, self.session)

    @property
    def device(self) -> str:
        return "cuda" if "CUDAExecutionProvider" in self.providers else "cpu"

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(list(self.info.outputs), {"image": self.check_batch(batch)})
        return dict(zip(self.info.outputs, outputs, strict=True))


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
