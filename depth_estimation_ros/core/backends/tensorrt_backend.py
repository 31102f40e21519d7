"""TensorRT 10.x and 11.x: one strongly typed build path, an engine cache, and the runtime.

TensorRT is imported only when an engine is built or run; without it these functions raise one
clear ``RuntimeError`` and the rest of the package works.

**Precision is a property of the ONNX graph.** TensorRT 11 removed weak typing (the FP16/INT8
builder flags, the INT8 calibrators, precision constraints); 10.x builds the same way when the
network is created ``STRONGLY_TYPED``. So every engine here is built from a strongly typed network
and gets the precision its graph has: an fp32 graph gives an fp32 engine, an fp16 graph
(``depth-estimation export --precision fp16``: float16 weights and compute, float32 I/O and
decoding) an fp16 engine, a Q/DQ graph (``--precision int8``, calibrated on camera frames) an int8
one. :func:`graph_precision` reads it from the graph; the builder sets no precision flag.

The few calls that differ between TensorRT versions go through the compatibility functions in the
section so named below (one per call, chosen by ``tensorrt.__version__``); nothing else in this
module touches a version-specific name, and no name TensorRT 11 removed is used at all.

An engine only runs on the TensorRT version and GPU it was built for. Every engine is written with
a JSON sidecar (``<engine>.json``) holding its :class:`EngineKey` (ONNX hash, TensorRT major.minor,
GPU name and compute capability, the graph's precision, input shape), the full TensorRT version
that built it, the model's :class:`ModelInfo` and the engine file's own SHA-256, so a sidecar never
passes for another engine's. Both files are staged and renamed when complete; an existing engine
is replaced only when asked (or by the cache). Loading compares the key with the running machine;
a stale engine is rebuilt from its ONNX file when that is at hand (with a log line saying why),
otherwise the error names what differs. An engine of another TensorRT major version (a 10.x engine
on 11.x) is never handed to the runtime: the error names both versions and the rebuild command.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from depth_estimation_ros.core import graph_io
from depth_estimation_ros.core.backends.base import Backend, DependencyError, ModelInfo
from depth_estimation_ros.core.backends.onnxruntime_backend import read_onnx_info
from depth_estimation_ros.core.card import ModelCard
from depth_estimation_ros.core.errors import signal_pipe
from depth_estimation_ros.core.files import refuse_existing, staged_files
from depth_estimation_ros.core.validation import read_json

if TYPE_CHECKING:  # the 10.13 API stubs (tensorrt-stubs) type-check this module: make lint
    import tensorrt

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
PRECISION_KEY = "depth_estimation_ros.precision"  # ONNX metadata_props: the precision export gave the graph
SUPPORTED_MAJORS = (10, 11)
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "depth_estimation_ros" / "engines"
NO_TENSORRT = (
    "TensorRT is not installed: install the tensorrt Python package (JetPack ships it on Jetson), "
    "or use the onnxruntime or torch backend."
)
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise DependencyError(NO_TENSORRT) from None
    if not hasattr(tensorrt, "__version__"):  # e.g. a folder of type stubs only (tensorrt-stubs)
        raise DependencyError(NO_TENSORRT)
    return tensorrt


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- TensorRT versions --------------------------------------------------------------------------


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of a TensorRT version string such as ``10.3.0.30`` or ``11.4``."""
    match = re.match(r"^\s*(\d+)\.(\d+)", str(version))
    if not match:
        raise ValueError(f"not a TensorRT version: {version!r}")
    return int(match[1]), int(match[2])


def major_minor(version: str) -> str:
    """``10.3.0.30`` → ``10.3``: what engines are keyed on (see :class:`EngineKey`)."""
    return "{}.{}".format(*version_tuple(version))


def supported_version(version: str) -> tuple[int, int]:
    """(major, minor) of ``version``, which must be a TensorRT this module builds with (10.x, 11.x)."""
    major, minor = version_tuple(version)
    if major not in SUPPORTED_MAJORS:
        raise DependencyError(
            f"TensorRT {version} is not supported: this package builds strongly typed networks with TensorRT "
            f"{' or '.join(f'{m}.x' for m in SUPPORTED_MAJORS)}"
        )
    return major, minor


# --- Compatibility: every call whose name differs between TensorRT 10.x and 11.x -------------------
#
# One function per call, chosen by ``tensorrt.__version__``. Sources: NVIDIA's "Migrating from
# TensorRT 10.x to 11.x" and its list of removed Python APIs (TensorRT 11.0-11.4 documentation).
# The 10.13 stubs type-check the 10.x branches; a name that exists only in 11.x would take a
# targeted ``# type: ignore[attr-defined]`` here and nowhere else.


def network_flags() -> int:
    """Network creation flags: strongly typed on every version.

    10.x: opt in with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (available since 10.0; weak
    typing is the 10.x default). 11.x: every network is strongly typed and ``STRONGLY_TYPED`` is
    kept, deprecated and ignored (per the 11.x API notes; its enum value may differ from 10.x's, so
    it is looked up, never hard-coded). Should a later 11.x drop the name, 0 is the same network.
    """
    import tensorrt as trt

    major, _ = supported_version(trt.__version__)
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        if major >= 11:
            return 0  # strongly typed is the only mode
        raise DependencyError(f"TensorRT {trt.__version__} has no strongly typed networks (10.0 or later needed)")
    return 1 << int(flag)


def create_network(builder: tensorrt.Builder) -> tensorrt.INetworkDefinition:
    """A strongly typed network definition (explicit batch is the only mode on 10.x and 11.x)."""
    return builder.create_network(network_flags())


def device_memory_size(engine: tensorrt.ICudaEngine) -> int:
    """Bytes of device memory an execution context of ``engine`` needs.

    ``device_memory_size`` is deprecated since 10.1 and removed in 11.x; ``device_memory_size_v2``
    (10.1 and later) replaces it.
    """
    import tensorrt as trt

    if supported_version(trt.__version__) >= (10, 1):
        return int(engine.device_memory_size_v2)
    return int(engine.device_memory_size)  # 10.0 only


# --- Graph precision ----------------------------------------------------------------------------


def _load_graph(onnx_path: str | os.PathLike):
    import onnx

    try:
        return onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:
        raise ValueError(f"{onnx_path} is not a readable ONNX file: {exc}") from None


def detect_precision(model) -> str:
    """The precision of an ONNX model proto: ``int8`` (Q/DQ nodes), ``fp16`` (float16 tensors or
    casts to float16), else ``fp32``."""
    from onnx import TensorProto

    nodes = list(model.graph.node)
    if any(node.op_type in QDQ_OPS for node in nodes):
        return "int8"
    half = TensorProto.FLOAT16
    if any(t.data_type == half for t in model.graph.initializer):
        return "fp16"
    values = [*model.graph.value_info, *model.graph.input, *model.graph.output]
    if any(v.type.tensor_type.elem_type == half for v in values):
        return "fp16"
    for node in nodes:
        for attr in node.attribute:
            if (node.op_type == "Cast" and attr.name == "to" and attr.i == half) or (
                attr.name == "value" and attr.t.data_type == half
            ):
                return "fp16"
    return "fp32"


def graph_precision(onnx_path: str | os.PathLike) -> str:
    """The precision the graph itself has (what a strongly typed TensorRT builds), checked against
    the precision ``depth-estimation export`` recorded in its metadata when there is one."""
    model = _load_graph(onnx_path)
    precision = detect_precision(model)
    recorded = {p.key: p.value for p in model.metadata_props}.get(PRECISION_KEY)
    if recorded is not None and recorded != precision:
        log.warning("%s: metadata says %s, the graph is %s; using the graph's", onnx_path, recorded, precision)
    return precision


def tensorrt_qdq_problems(onnx_path: str | os.PathLike) -> list[str]:
    """Why the Q/DQ nodes of a graph are not explicit quantisation TensorRT builds: TensorRT takes
    int8 Q/DQ with a zero point of 0 (symmetric); ONNX Runtime's CPU format uses uint8 activations
    with zero points."""
    from onnx import TensorProto, numpy_helper

    model = _load_graph(onnx_path)
    constants = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = attr.t
    problems = set()
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS or len(node.input) < 3 or not node.input[2]:
            continue
        zero_point = constants.get(node.input[2])
        if zero_point is None:
            continue
        if zero_point.data_type != TensorProto.INT8:
            problems.add(f"{TensorProto.DataType.Name(zero_point.data_type).lower()} quantised tensors (int8 needed)")
        elif np.any(numpy_helper.to_array(zero_point) != 0):
            problems.add("non-zero zero points (symmetric quantisation needed)")
    return sorted(problems)


# --- Engine keys, sidecars and the cache --------------------------------------------------------


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; two engines with equal keys are interchangeable.

    ``tensorrt_version`` is the major.minor (patch releases of one minor read each other's engines;
    one that cannot is rebuilt when its deserialisation fails); ``precision`` is the graph's.
    """

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shape: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "tensorrt_version", major_minor(self.tensorrt_version))

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

    supported_version(trt.__version__)
    if not torch.cuda.is_available():
        raise DependencyError("TensorRT needs a CUDA GPU, and none is visible")
    major, minor = torch.cuda.get_device_capability()
    return trt.__version__, torch.cuda.get_device_name(), f"{major}.{minor}"


def graph_info(onnx_path: str | os.PathLike, card: ModelCard | None = None) -> ModelInfo:
    """What the graph computes: its card's description for a graph exported elsewhere, else its metadata."""
    return ModelInfo.from_card(card) if card is not None else read_onnx_info(onnx_path)


def engine_key(
    onnx_path: str | os.PathLike, platform: tuple[str, str, str], card: ModelCard | None = None
) -> EngineKey:
    """The key of the engine ``onnx_path`` gives on ``platform``; its precision is the graph's."""
    info = graph_info(onnx_path, card)
    shape = (info.batch, 3, info.input_height, info.input_width)
    return EngineKey(sha256_file(onnx_path), *platform, graph_precision(onnx_path), shape)


def check_requested_precision(onnx_path, requested: str | None, strict: bool) -> str:
    """The graph's precision; a different ``requested`` one is an error (``strict``) or a warning."""
    if requested is not None and requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    precision = graph_precision(onnx_path)
    if requested is None or requested == precision:
        return precision
    message = (
        f"{onnx_path} is an {precision} graph, and strongly typed TensorRT builds the precision the graph has; "
        f"for an {requested} engine export the graph with depth-estimation export --precision {requested}"
        f"{' --calibration-images FRAMES' if requested == 'int8' else ''}"
    )
    if strict:
        raise ValueError(message)
    log.warning("%s (building %s)", message, precision)
    return precision


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
    data = read_json(path, "engine description")  # bounded, duplicate keys and NaN refused, path named
    try:
        key, info, onnx, digest = (
            EngineKey.from_dict(data["key"]),
            ModelInfo(**data["info"]),
            data.get("onnx"),
            data["engine_sha256"],
        )
    except (KeyError, TypeError, ValueError) as exc:
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


def major_version_change(built: str, running: str) -> bool:
    return version_tuple(built)[0] != version_tuple(running)[0]


def foreign_major_message(engine_path, key: EngineKey, running: str, onnx_path: str | None) -> str:
    onnx_hint = onnx_path or "MODEL.onnx"
    return (
        f"{engine_path} was built by TensorRT {key.tensorrt_version} and this is TensorRT {major_minor(running)}: "
        f"an engine never crosses TensorRT major versions. Rebuild it here: depth-estimation build-engine "
        f"--onnx {onnx_hint} --output {engine_path} --overwrite (the engine has the graph's precision, "
        f"{key.precision}; an engine built with TensorRT 10's FP16/INT8 builder flags needs an fp16 or int8 graph "
        "first: depth-estimation export --precision fp16, or --precision int8 --calibration-images FRAMES)"
    )


class EngineCache:
    """Engines keyed by :class:`EngineKey`, under ``directory`` (``~/.cache/depth_estimation_ros/engines``)."""

    def __init__(self, directory: str | os.PathLike = DEFAULT_CACHE):
        self.directory = Path(directory)

    def path_for(self, onnx_path: str | os.PathLike, key: EngineKey) -> Path:
        """One slot per graph (hence precision) and shape; the platform is checked, not part of the
        name, so a TensorRT upgrade or another GPU finds the stale engine and says what changed."""
        shape = "x".join(map(str, key.input_shape))
        return self.directory / f"{Path(onnx_path).stem}-{key.onnx_sha256[:12]}-{key.precision}-{shape}.engine"

    def engine_for(
        self,
        onnx_path: str | os.PathLike,
        precision: str | None = None,
        platform: tuple[str, str, str] | None = None,
        build=None,
        card: ModelCard | None = None,
        **build_options,
    ) -> Path:
        """The cached engine of ``onnx_path``, building it if missing or stale.

        The engine has the graph's precision; ``precision`` is what the caller expects (the node's
        ``precision`` parameter): a graph of another precision is built as it is, with a warning
        saying how to export the one asked for. ``card``: a graph exported elsewhere is described
        by it, and its sidecar carries it.
        """
        platform = platform or current_platform()
        check_requested_precision(onnx_path, precision, strict=False)
        key = engine_key(onnx_path, platform, card)
        path = self.path_for(onnx_path, key)
        if path.is_file() and sidecar_path(path).is_file():
            reasons = check_engine(path, platform)
            if not reasons:
                return path
            log.warning("rebuilding stale TensorRT engine %s: %s", path, "; ".join(reasons))
        else:
            log.info("no cached TensorRT engine for %s (%s); building %s", onnx_path, key.precision, path)
        if build is None:
            build, build_options = build_engine, {**build_options, "overwrite": True}  # the cache's own files
        return build(onnx_path, path, **build_options, **({"card": card} if card is not None else {}))


def resolve_engine(
    engine_path: str | os.PathLike,
    platform: tuple[str, str, str] | None = None,
    cache: EngineCache | None = None,
    build=None,
) -> Path:
    """An engine that runs here: ``engine_path`` itself, or a rebuild from its ONNX file if it is stale.

    An engine of another TensorRT major version is refused (the error names both versions and how
    to rebuild): its precision may have come from builder flags that the graph does not carry.
    """
    platform = platform or current_platform()
    reasons = check_engine(engine_path, platform)
    if not reasons:
        return Path(engine_path)
    key, info, onnx_path = read_sidecar(engine_path)
    if major_version_change(key.tensorrt_version, platform[0]):
        raise ValueError(foreign_major_message(engine_path, key, platform[0], onnx_path))
    if onnx_path and Path(onnx_path).is_file() and sha256_file(onnx_path) == key.onnx_sha256:
        log.warning("engine %s was built for another platform (%s); rebuilding from %s",
                    engine_path, "; ".join(reasons), onnx_path)  # fmt: skip
        card = info.model_card if info.card and info.model_card.graph else None  # a graph exported elsewhere
        return (cache or EngineCache()).engine_for(onnx_path, platform=platform, build=build, card=card)
    raise ValueError(
        f"{engine_path} cannot run here: {'; '.join(reasons)}. Rebuild it on this machine with "
        "depth-estimation build-engine (its ONNX file is not available to rebuild automatically)"
    )


# --- Building -----------------------------------------------------------------------------------


def check_buildable(onnx_path: str | os.PathLike) -> str:
    """The graph's precision, after refusing Q/DQ graphs TensorRT does not build."""
    precision = graph_precision(onnx_path)
    if precision == "int8" and (problems := tensorrt_qdq_problems(onnx_path)):
        raise ValueError(
            f"{onnx_path}: its Q/DQ nodes are ONNX Runtime's CPU quantisation ({'; '.join(problems)}), which "
            "TensorRT does not build; make the TensorRT int8 graph from the fp32 one with depth-estimation "
            "export --precision int8 --calibration-images FRAMES (or depth-estimation quantize --target tensorrt)"
        )
    return precision


def _cancel_on_signal(arrived):
    """A TensorRT progress monitor (10.x and 11.x: ``IProgressMonitor``) whose ``step_complete``
    answers False, which cancels the build, once ``arrived()`` says Ctrl-C or SIGTERM has come."""
    import tensorrt as trt

    class CancelOnSignal(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            pass

        def step_complete(self, phase_name, step):
            return not arrived()

        def phase_finish(self, phase_name):
            pass

    return CancelOnSignal()


def build_engine(
    onnx_path: str | os.PathLike,
    output: str | os.PathLike,
    timing_cache: str | os.PathLike | None = None,
    workspace_gib: float = 4.0,
    overwrite: bool = False,
    precision: str | None = None,
    card: ModelCard | None = None,
) -> Path:
    """Parse ``onnx_path`` into a strongly typed network, build it and write the engine with its sidecar.

    No precision flag is set: the engine has the graph's precision. ``precision``, when given, is
    checked against it (a mismatch is an error saying how to export the graph of that precision).
    ``card``: the model card of a graph exported elsewhere; the sidecar carries it, so the engine runs
    with the same rules without being told again.
    """
    output = Path(output)
    if not overwrite:
        for path in (output, sidecar_path(output)):
            refuse_existing(path)
    check_requested_precision(onnx_path, precision, strict=True)
    check_buildable(onnx_path)
    import_tensorrt()
    import tensorrt as trt

    platform = current_platform()
    info = graph_info(onnx_path, card)
    key = engine_key(onnx_path, platform, card)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = create_network(builder)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes(), str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    cache_bytes = Path(timing_cache).read_bytes() if timing_cache and Path(timing_cache).is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=True)

    with signal_pipe() as arrived:
        # The build is one C++ call of minutes: Python's signal handlers wait for its end, but the
        # progress monitor is called between steps (any thread) and cancels it when one has come.
        config.progress_monitor = _cancel_on_signal(arrived)
        serialized = builder.build_serialized_network(network, config)
        cancelled = arrived()
    if serialized is None and cancelled:
        raise KeyboardInterrupt()  # the pending handler usually raises first (Terminated for SIGTERM)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    write_engine(output, bytes(serialized), key, info, onnx_path, overwrite, tensorrt_build=trt.__version__)
    if timing_cache:
        from depth_estimation_ros.core.files import write_bytes

        write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()), overwrite=True)
    log.info("built %s engine %s for %s (compute %s, TensorRT %s)", key.precision, output, *platform[1:], platform[0])
    return output


def write_engine(
    output: Path,
    engine: bytes,
    key: EngineKey,
    info: ModelInfo,
    onnx_path,
    overwrite: bool = False,
    tensorrt_build: str | None = None,
) -> None:
    """The engine and its sidecar, staged together: the engine is renamed first, then the sidecar
    naming its hash, so a reader in between sees a mismatch, never a wrong description."""
    description: dict[str, Any] = {
        "key": asdict(key),
        "tensorrt_build": tensorrt_build or key.tensorrt_version,  # the full version, for people
        "info": asdict(info),
        "onnx": str(Path(onnx_path).resolve()),
        "engine_sha256": hashlib.sha256(engine).hexdigest(),
    }
    with staged_files([output, sidecar_path(output)], overwrite) as staged:
        staged[output].write_bytes(engine)
        staged[sidecar_path(output)].write_text(json.dumps(description, indent=2))


# --- Running ------------------------------------------------------------------------------------

TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "UINT8": "uint8",
                "INT32": "int32", "INT64": "int64", "BOOL": "bool"}  # fmt: skip


class TensorRTBackend(Backend):
    """Runs a serialized engine: tensors bound by name, executed on a CUDA stream."""

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike, cache: EngineCache | None = None, card: ModelCard | None = None):
        import_tensorrt()
        import tensorrt as trt
        import torch

        path = resolve_engine(path, cache=cache)
        key, info, _ = read_sidecar(path)
        super().__init__(ModelInfo.from_card(card) if card is not None else info)
        self.io = self.info.model_card.graph_io if self.info.card else None  # a graph exported elsewhere
        self.torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ValueError(
                f"{path}: TensorRT {trt.__version__} cannot deserialize this engine (built by TensorRT "
                f"{key.tensorrt_version}; corrupt, or from another build): rebuild it with depth-estimation "
                "build-engine --overwrite"
            )
        log.info("TensorRT %s engine %s (%s): %.1f MiB of device memory per context",
                 trt.__version__, path, key.precision, device_memory_size(self.engine) / 2**20)  # fmt: skip
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.buffers = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            dims = self.engine.get_tensor_shape(name)
            shape = tuple(dims[d] for d in range(len(dims)))
            dtype = getattr(torch, TORCH_DTYPES[self.engine.get_tensor_dtype(name).name])
            self.buffers[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, self.buffers[name].data_ptr())
        wanted = [*self.io.input_names, *self.io.output_names] if self.io else ["image", *self.info.outputs]
        missing = set(wanted) - set(self.buffers)
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

    def __call__(self, batch: np.ndarray, K: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``K``: the network input's camera matrix, for a card-described graph that needs it."""
        torch = self.torch
        batch = self.check_batch(batch)
        feeds = {"image": batch} if self.io is None else graph_io.feeds(self.io, batch, self.info.normalization, K)
        names = list(self.info.outputs) if self.io is None else self.io.output_names
        with torch.cuda.stream(self.stream):
            for name, values in feeds.items():  # cast to the engine's own input type (fp16 graphs)
                self.buffers[name].copy_(torch.from_numpy(values), non_blocking=True)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            out = {k: self.buffers[k].float().cpu() for k in names}
        self.stream.synchronize()
        raw = {k: v.numpy() for k, v in out.items()}
        return raw if self.io is None else graph_io.outputs(self.io, raw, batch.shape[2:], K)
