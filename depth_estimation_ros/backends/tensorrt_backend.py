"""TensorRT 10: engine building (fp32/fp16/int8 with calibration), an engine cache, and the runtime.

TensorRT is imported only when an engine is built or run; without it these functions raise one
clear ``RuntimeError`` and the rest of the package works.

An engine only runs on the TensorRT version and GPU it was built for. Every engine is written with
a JSON sidecar (``<engine>.json``) holding its :class:`EngineKey` (ONNX hash, TensorRT version, GPU
name and compute capability, precision, input shape), the model's :class:`ModelInfo` and the
engine file's own SHA-256, so a sidecar never passes for another engine's. Both files are staged and
renamed when complete; an existing engine is replaced only when asked (or by the cache). Loading
compares the key with the running machine; a stale engine is rebuilt from its ONNX file when that
is at hand (with a log line saying why), otherwise the error names what differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..files import folder_frames, refuse_existing, staged_files
from .base import Backend, DependencyError, ModelInfo, network_input
from .onnxruntime_backend import read_onnx_info

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "depth_estimation_ros" / "engines"
NO_TENSORRT = (
    "TensorRT is not installed: install the tensorrt Python package (JetPack ships it on Jetson), "
    "or use the onnxruntime or torch backend."
)


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise DependencyError(NO_TENSORRT) from None
    return tensorrt


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; two engines with equal keys are interchangeable."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shape: tuple[int, ...]

    def differences(self, other: EngineKey) -> list[str]:
        """Human-readable reasons why an engine built for ``self`` does not fit ``other``."""
        return [
            f"{name} {getattr(self, name)!s} != {getattr(other, name)!s}"
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(other, name)
        ]

    @classmethod
    def from_dict(cls, data: dict) -> EngineKey:
        return cls(**{**data, "input_shape": tuple(data["input_shape"])})


def current_platform() -> tuple[str, str, str]:
    """(TensorRT version, GPU name, compute capability) of this machine."""
    trt = import_tensorrt()
    import torch

    if not torch.cuda.is_available():
        raise DependencyError("TensorRT needs a CUDA GPU, and none is visible")
    major, minor = torch.cuda.get_device_capability()
    return trt.__version__, torch.cuda.get_device_name(), f"{major}.{minor}"


def engine_key(onnx_path: str | os.PathLike, precision: str, platform: tuple[str, str, str]) -> EngineKey:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    info = read_onnx_info(onnx_path)
    shape = (info.batch, 3, info.input_height, info.input_width)
    return EngineKey(sha256_file(onnx_path), *platform, precision, shape)


def sidecar_path(engine_path: str | os.PathLike) -> Path:
    return Path(f"{engine_path}.json")


def read_sidecar(engine_path: str | os.PathLike) -> tuple[EngineKey, ModelInfo, str | None]:
    """The key, model info and source ONNX path recorded beside an engine."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise ValueError(
            f"{engine_path}: no {path.name} beside it, so its TensorRT version, GPU and model are unknown; "
            "build engines with depth-estimation build-engine"
        )
    try:
        data = json.loads(path.read_text())
        key, info, onnx, digest = (
            EngineKey.from_dict(data["key"]),
            ModelInfo(**data["info"]),
            data.get("onnx"),
            data["engine_sha256"],
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a valid engine description ({exc})") from None
    if sha256_file(engine_path) != digest:
        raise ValueError(
            f"{path} describes another engine than {engine_path} (SHA-256 differs): rebuild it with "
            "depth-estimation build-engine --overwrite"
        )
    return key, info, onnx


def check_engine(engine_path: str | os.PathLike, platform: tuple[str, str, str]) -> list[str]:
    """Why the engine cannot run on ``platform`` (empty when it can)."""
    key, _, _ = read_sidecar(engine_path)
    here = EngineKey(key.onnx_sha256, *platform, key.precision, key.input_shape)
    return key.differences(here)


class EngineCache:
    """Engines keyed by :class:`EngineKey`, under ``directory`` (``~/.cache/depth_estimation_ros/engines``)."""

    def __init__(self, directory: str | os.PathLike = DEFAULT_CACHE):
        self.directory = Path(directory)

    def path_for(self, onnx_path: str | os.PathLike, key: EngineKey) -> Path:
        """One slot per graph, precision and shape; the platform is checked, not part of the name,
        so a TensorRT upgrade or another GPU finds the stale engine and says what changed."""
        shape = "x".join(map(str, key.input_shape))
        return self.directory / f"{Path(onnx_path).stem}-{key.onnx_sha256[:12]}-{key.precision}-{shape}.engine"

    def engine_for(
        self,
        onnx_path: str | os.PathLike,
        precision: str = "fp16",
        platform: tuple[str, str, str] | None = None,
        build=None,
        **build_options,
    ) -> Path:
        """The cached engine of ``onnx_path``, building it if missing or stale."""
        platform = platform or current_platform()
        key = engine_key(onnx_path, precision, platform)
        path = self.path_for(onnx_path, key)
        if path.is_file() and sidecar_path(path).is_file():
            reasons = check_engine(path, platform)
            if not reasons:
                return path
            log.warning("rebuilding stale TensorRT engine %s: %s", path, "; ".join(reasons))
        else:
            log.info("no cached TensorRT engine for %s (%s); building %s", onnx_path, precision, path)
        if build is None:
            build, build_options = build_engine, {**build_options, "overwrite": True}  # the cache's own files
        return build(onnx_path, path, precision=precision, **build_options)


def resolve_engine(
    engine_path: str | os.PathLike,
    platform: tuple[str, str, str] | None = None,
    cache: EngineCache | None = None,
    build=None,
) -> Path:
    """An engine that runs here: ``engine_path`` itself, or a rebuild from its ONNX file if it is stale."""
    platform = platform or current_platform()
    reasons = check_engine(engine_path, platform)
    if not reasons:
        return Path(engine_path)
    key, _, onnx_path = read_sidecar(engine_path)
    if onnx_path and Path(onnx_path).is_file() and sha256_file(onnx_path) == key.onnx_sha256:
        log.warning("engine %s was built for another platform (%s); rebuilding from %s",
                    engine_path, "; ".join(reasons), onnx_path)  # fmt: skip
        return (cache or EngineCache()).engine_for(onnx_path, key.precision, platform, build=build)
    raise ValueError(
        f"{engine_path} cannot run here: {'; '.join(reasons)}. Rebuild it on this machine with "
        "depth-estimation build-engine (its ONNX file is not available to rebuild automatically)"
    )


def calibration_batches(directory: str | os.PathLike, info: ModelInfo, limit: int = 500):
    """Pre-processed float32 batches from the images of a folder, as the runtime would feed them."""
    for rgb in folder_frames(directory, limit):
        x = network_input(rgb, (info.input_height, info.input_width))
        yield np.repeat(x, info.batch, axis=0)


def build_engine(
    onnx_path: str | os.PathLike,
    output: str | os.PathLike,
    precision: str = "fp16",
    calibration_images: str | os.PathLike | None = None,
    timing_cache: str | os.PathLike | None = None,
    workspace_gib: float = 4.0,
    overwrite: bool = False,
) -> Path:
    """Build a serialized engine with the TensorRT 10 Python API and write it with its sidecar."""
    output = Path(output)
    if not overwrite:
        for path in (output, sidecar_path(output)):
            refuse_existing(path)
    trt = import_tensorrt()
    import torch

    platform = current_platform()
    key = engine_key(onnx_path, precision, platform)
    info = read_onnx_info(onnx_path)
    if precision == "int8" and calibration_images is None:
        raise ValueError("int8 needs --calibration-images: a folder of representative camera frames")

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _entropy_calibrator(trt, torch, calibration_batches(calibration_images, info))
    cache_bytes = Path(timing_cache).read_bytes() if timing_cache and Path(timing_cache).is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=True)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    write_engine(output, bytes(serialized), key, info, onnx_path, overwrite)
    if timing_cache:
        from ..files import write_bytes

        write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()), overwrite=True)
    log.info("built %s engine %s for %s (compute %s, TensorRT %s)", precision, output, *platform[1:], platform[0])
    return output


def write_engine(
    output: Path, engine: bytes, key: EngineKey, info: ModelInfo, onnx_path, overwrite: bool = False
) -> None:
    """The engine and its sidecar, staged together: the engine is renamed first, then the sidecar
    naming its hash, so a reader in between sees a mismatch, never a wrong description."""
    description = {
        "key": asdict(key),
        "info": asdict(info),
        "onnx": str(Path(onnx_path).resolve()),
        "engine_sha256": hashlib.sha256(engine).hexdigest(),
    }
    with staged_files([output, sidecar_path(output)], overwrite) as staged:
        staged[output].write_bytes(engine)
        staged[sidecar_path(output)].write_text(json.dumps(description, indent=2))


def _entropy_calibrator(trt, torch, batches):
    """An IInt8EntropyCalibrator2 over pre-processed batches (defined lazily: it subclasses TensorRT)."""

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.batches = iter(batches)
            self.device_batch = None

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            batch = next(self.batches, None)
            if batch is None:
                return None
            self.device_batch = torch.from_numpy(batch).cuda()
            return [int(self.device_batch.data_ptr())]

        def read_calibration_cache(self):
            return None

        def write_calibration_cache(self, cache):
            return None

    return Calibrator()


class TensorRTBackend(Backend):
    """Runs a serialized engine: tensors bound by name, executed on a CUDA stream."""

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike, cache: EngineCache | None = None):
        trt = import_tensorrt()
        import torch

        path = resolve_engine(path, cache=cache)
        _, info, _ = read_sidecar(path)
        super().__init__(info)
        self.torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ValueError(f"{path}: TensorRT {trt.__version__} cannot deserialize this engine (corrupt or foreign)")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.buffers = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            self.buffers[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, self.buffers[name].data_ptr())
        missing = {"image", *info.outputs} - set(self.buffers)
        if missing:
            raise ValueError(f"{path}: engine lacks tensors {sorted(missing)}")

    @property
    def device(self) -> str:
        return "cuda"

    @property
    def torch_device(self):
        return self.torch.device("cuda")

    def forward(self, x):
        """(batch, 3, H, W) float32 CUDA tensor → the engine's outputs as float32 CUDA tensors, run on
        the current stream (the device path's pre/post-processing wraps engines this way too).
        The outputs alias the engine's buffers: use them before the next call."""
        torch = self.torch
        self.buffers["image"].copy_(x)
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return {k: self.buffers[k].float() for k in self.info.outputs}

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        torch = self.torch
        with torch.cuda.stream(self.stream):
            self.buffers["image"].copy_(torch.from_numpy(self.check_batch(batch)), non_blocking=True)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            out = {k: self.buffers[k].float().cpu() for k in self.info.outputs}
        self.stream.synchronize()
        return {k: v.numpy() for k, v in out.items()}
