"""OpenVINO backend: the same ONNX graphs (this project's exports and card-described ones) on Intel's
CPU runtime, which is often faster than ONNX Runtime on x86 CPUs (docs/benchmarks.md).

Everything but the session is :class:`OnnxRuntimeBackend`'s: the metadata or card, the checks of the
graph's tensors at load, the feeds and the outputs. Inference runs in f32 (OpenVINO would otherwise
pick bf16 on CPUs with AMX), with the latency hint: one frame at a time, as a camera delivers them.
"""

from __future__ import annotations

from typing import NamedTuple

from depth_estimation_ros.core.backends.base import DependencyError
from depth_estimation_ros.core.backends.onnxruntime_backend import OnnxRuntimeBackend


class Tensor(NamedTuple):
    """A graph input or output as ONNX Runtime describes it (``?`` for a dimension of any size)."""

    name: str
    shape: list
    type: str


def _tensor(port, name: str) -> Tensor:
    import openvino as ov

    shape = [d.get_length() if d.is_static else "?" for d in port.get_partial_shape()]
    kind = "tensor(float16)" if port.get_element_type() == ov.Type.f16 else "tensor(float)"
    return Tensor(name, shape, kind)


class OpenVinoSession:
    """A compiled OpenVINO model behind ONNX Runtime's session interface."""

    def __init__(self, path, threads: int | None):
        try:
            import openvino as ov
        except ImportError:
            raise DependencyError("OpenVINO is not installed: pip install openvino") from None
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        try:
            model = core.read_model(str(path))
            # The graph's own tensors, named as in the ONNX file: compiling merges a tensor's names with
            # those of the operations fused into it (an input may come back as '/Div_output_0').
            self.inputs = [_tensor(port, port.get_any_name()) for port in model.inputs]
            self.outputs = [_tensor(port, port.get_any_name()) for port in model.outputs]
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ValueError(f"{path}: OpenVINO cannot load the graph: {exc}") from None
        self.request = self.compiled.create_infer_request()

    def get_inputs(self) -> list[Tensor]:
        return self.inputs

    def get_outputs(self) -> list[Tensor]:
        return self.outputs

    def get_providers(self) -> list[str]:
        return ["OpenVINO CPU"]

    def run(self, names: list[str], feeds: dict):
        results = self.request.infer(feeds, share_outputs=False)  # copies: the next frame reuses the buffers
        return [results[self.compiled.output(name)] for name in names]


class OpenVinoBackend(OnnxRuntimeBackend):
    name = "openvino"

    @staticmethod
    def open_session(path, providers: list[str] | None, threads: int | None) -> OpenVinoSession:
        return OpenVinoSession(path, threads)

    @property
    def device(self) -> str:
        return "cpu"
