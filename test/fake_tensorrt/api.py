"""Fake ``tensorrt`` modules for 10.x and 11.x, written from NVIDIA's documented Python API.

``build(namespace, version)`` fills a module namespace with the classes and enums the build and
run paths use, as 10.x has them or as 11.x has them. On 11.x every name on the "Removed Python
APIs and Replacements" list of "Migrating from TensorRT 10.x to 11.x" (TensorRT 11.0-11.4 docs)
is absent, so touching one raises AttributeError as the real module does; on 10.x they exist.
Every public attribute the code under test reads (module level and on the fakes' objects) is
recorded in ``accessed`` and every call in ``calls``, so a test can tell exactly which API a path
touched. Nothing here runs a network: the "engine" is a JSON description of what was built.

Uncertain points (no TensorRT on these machines to compare with) are marked as such below.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import signal
import types

# The 11.x removal list (Python), by owner. Sources: "Removed Python APIs and Replacements"
# (TensorRT 11.x migration guide) and the 10.x deprecation list it finalises.
REMOVED_IN_11 = {
    "BuilderFlag": {"FP16", "INT8", "FP8", "BF16", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                    "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO"},
    "IBuilderConfig": {"int8_calibrator", "set_calibration_profile", "get_calibration_profile",
                       "set_quantization_flag", "get_quantization_flag", "quantization_flags",
                       "clear_quantization_flag", "algorithm_selector"},
    "ICudaEngine": {"device_memory_size", "get_device_memory_size_for_profile"},
    "Builder": {"platform_has_fast_fp16", "platform_has_fast_int8"},
    "tensorrt": {"IInt8Calibrator", "IInt8LegacyCalibrator", "IInt8EntropyCalibrator", "IInt8EntropyCalibrator2",
                 "IInt8MinMaxCalibrator", "CalibrationAlgoType", "QuantizationFlag", "IAlgorithm",
                 "IAlgorithmContext", "IAlgorithmIOInfo", "IAlgorithmSelector", "IAlgorithmVariant"},
}  # fmt: skip
REMOVED_NAMES = {f"{owner}.{name}" for owner, names in REMOVED_IN_11.items() for name in names}


def build(namespace: dict, version: str) -> None:
    major, minor = (int(p) for p in version.split(".")[:2])
    eleven = major >= 11
    calls: list[tuple[str, tuple]] = []
    accessed: list[str] = []

    def removed(owner: str, name: str) -> bool:
        return eleven and name in REMOVED_IN_11.get(owner, ())

    class Recorded:
        """Records reads of public attributes; names removed in 11.x do not exist there."""

        _owner = "object"

        def __getattribute__(self, name):
            if not name.startswith("_"):
                owner = type(self)._owner
                accessed.append(f"{owner}.{name}")
                if removed(owner, name):
                    raise AttributeError(f"'tensorrt.{owner}' object has no attribute '{name}'")
            return object.__getattribute__(self, name)

        def __setattr__(self, name, value):
            owner = type(self)._owner
            if not name.startswith("_"):
                accessed.append(f"{owner}.{name}=")
                if removed(owner, name):
                    raise AttributeError(f"'tensorrt.{owner}' object has no attribute '{name}'")
            object.__setattr__(self, name, value)

    def call(name, *args):
        calls.append((name, args))

    steps: list[int] = []  # build steps reported to the progress monitor

    @contextlib.contextmanager
    def native_call():
        """Python-level SIGINT/SIGTERM handlers held until the block ends (the C-level handler still
        writes to the wakeup fd, as during a C++ call), then the signals that came are delivered."""
        held, previous = [], {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda s, f: held.append(s))
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for signum in held:
                signal.raise_signal(signum)

    class IProgressMonitor:
        """The application-implemented interface: phase_start, step_complete (False cancels), phase_finish."""

        def __init__(self):
            pass

    # --- enums (pybind11 enums: members with .name and int()) ------------------------------------
    builder_flags = ["FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
                     "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                     "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8",
                     "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "WEIGHTLESS", "STRIP_PLAN",
                     "REFIT_IDENTICAL", "WEIGHT_STREAMING", "INT4", "REFIT_INDIVIDUAL", "STRICT_NANS",
                     "MONITOR_MEMORY", "FP4", "EDITABLE_TIMING_CACHE"]  # fmt: skip
    if eleven:
        builder_flags = [f for f in builder_flags if f not in REMOVED_IN_11["BuilderFlag"]]
    BuilderFlag = enum.IntEnum("BuilderFlag", [(f, i) for i, f in enumerate(builder_flags)])
    # 10.x: EXPLICIT_BATCH = 0 (ignored), STRONGLY_TYPED = 1. 11.x: strongly typed is the only mode; the
    # flag is kept (deprecated, ignored) and EXPLICIT_BATCH is gone, so STRONGLY_TYPED's value is 0 (as
    # the 11.x C++ enum reads, per a binding generated from the 11.x headers; unverified in Python).
    creation = [("STRONGLY_TYPED", 0)] if eleven else [("EXPLICIT_BATCH", 0), ("STRONGLY_TYPED", 1)]
    creation += [("PREFER_AOT_PYTHON_PLUGINS", len(creation)), ("PREFER_JIT_PYTHON_PLUGINS", len(creation) + 1)]
    NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", creation)
    MemoryPoolType = enum.IntEnum("MemoryPoolType", [("WORKSPACE", 0), ("DLA_MANAGED_SRAM", 1),
                                                     ("DLA_LOCAL_DRAM", 2), ("DLA_GLOBAL_DRAM", 3), ("TACTIC_DRAM", 4),
                                                     ("TACTIC_SHARED_MEMORY", 5)])  # fmt: skip
    DataType = enum.IntEnum("DataType", [("FLOAT", 0), ("HALF", 1), ("INT8", 2), ("INT32", 3), ("BOOL", 4),
                                         ("UINT8", 5), ("FP8", 6), ("BF16", 7), ("INT64", 8), ("INT4", 9)])  # fmt: skip

    def flag_names(flags: int) -> list[str]:
        return sorted(f.name for f in NetworkDefinitionCreationFlag if flags & (1 << int(f)))

    class Logger(Recorded):
        _owner = "Logger"
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self, severity=1):
            call("Logger", severity)

    class INetworkDefinition(Recorded):
        _owner = "INetworkDefinition"

        def __init__(self, flags):
            self._flags = flags
            self._parsed = None

    class ITimingCache(Recorded):
        _owner = "ITimingCache"

        def __init__(self, blob):
            self._blob = bytes(blob)

        def serialize(self):
            call("ITimingCache.serialize")
            return self._blob or b"timing cache"

    class IBuilderConfig(Recorded):
        _owner = "IBuilderConfig"

        def __init__(self):
            self._flags = set()
            self._cache = None
            self._pools = {}
            self._monitor = None

        @property
        def progress_monitor(self):
            return self._monitor

        @progress_monitor.setter
        def progress_monitor(self, monitor):
            self._monitor = monitor

        def set_memory_pool_limit(self, pool, size):
            call("IBuilderConfig.set_memory_pool_limit", pool.name, size)
            self._pools[pool.name] = size

        def set_flag(self, flag):
            call("IBuilderConfig.set_flag", flag.name)
            self._flags.add(flag.name)

        def clear_flag(self, flag):
            call("IBuilderConfig.clear_flag", flag.name)

        def get_flag(self, flag):
            return flag.name in self._flags

        def create_timing_cache(self, blob):
            call("IBuilderConfig.create_timing_cache", len(blob))
            return ITimingCache(blob)

        def set_timing_cache(self, cache, ignore_mismatch):
            call("IBuilderConfig.set_timing_cache", ignore_mismatch)
            self._cache = cache
            return True

        def get_timing_cache(self):
            return self._cache

        # 10.x weak typing and implicit quantisation (absent from 11.x: see Recorded)
        int8_calibrator = None
        quantization_flags = 0
        algorithm_selector = None

        def set_calibration_profile(self, profile):
            call("IBuilderConfig.set_calibration_profile")

        def get_calibration_profile(self):
            return None

        def set_quantization_flag(self, flag):
            call("IBuilderConfig.set_quantization_flag")

        def get_quantization_flag(self, flag):
            return False

        def clear_quantization_flag(self, flag):
            call("IBuilderConfig.clear_quantization_flag")

    class IHostMemory(Recorded):
        _owner = "IHostMemory"

        def __init__(self, data: bytes):
            self._data = data

        def __buffer__(self, flags):
            return memoryview(self._data)

        def __bytes__(self):
            return self._data

    class Builder(Recorded):
        _owner = "Builder"

        def __init__(self, logger):
            call("Builder", type(logger).__name__)

        def create_network(self, flags=0):
            call("Builder.create_network", flag_names(flags))
            return INetworkDefinition(flags)

        def create_builder_config(self):
            call("Builder.create_builder_config")
            return IBuilderConfig()

        def build_serialized_network(self, network, config):
            """FAKE_TENSORRT_BUILD_STEPS steps (default 3), each reported to the config's progress
            monitor, which may cancel (None is returned, as TensorRT does); FAKE_TENSORRT_SIGNAL_AT_STEP
            sends this process SIGTERM at that step. Python's signal handlers run only once the build
            has returned, as around TensorRT's C++ build."""
            call("Builder.build_serialized_network")
            total = int(os.environ.get("FAKE_TENSORRT_BUILD_STEPS", "3"))
            signal_at = int(os.environ.get("FAKE_TENSORRT_SIGNAL_AT_STEP", "-1"))
            monitor = config._monitor
            with native_call():
                if monitor is not None:
                    monitor.phase_start("Building engine", None, total)
                for step in range(total):
                    if step == signal_at:
                        os.kill(os.getpid(), signal.SIGTERM)
                    steps.append(step)
                    if monitor is not None and not monitor.step_complete("Building engine", step):
                        monitor.phase_finish("Building engine")
                        return None
                if monitor is not None:
                    monitor.phase_finish("Building engine")
            plan = {"tensorrt": version, "network_flags": flag_names(network._flags),
                    "builder_flags": sorted(config._flags), "onnx_bytes": network._parsed}  # fmt: skip
            return IHostMemory(b"fake-plan" + json.dumps(plan).encode())

        @property
        def platform_has_fast_fp16(self):
            return True

        @property
        def platform_has_fast_int8(self):
            return True

    class OnnxParser(Recorded):
        _owner = "OnnxParser"

        def __init__(self, network, logger):
            call("OnnxParser")
            self._network = network

        def parse(self, model, path=None):
            call("OnnxParser.parse", len(model), path)
            self._network._parsed = len(model)
            return True

        num_errors = 0

        def get_error(self, index):
            return None

    class ICudaEngine(Recorded):
        _owner = "ICudaEngine"

        def __init__(self, plan):
            self._plan = plan

        @property
        def device_memory_size(self):
            return 1 << 20

        @property
        def device_memory_size_v2(self):
            if (major, minor) < (10, 1):
                raise AttributeError("'tensorrt.ICudaEngine' object has no attribute 'device_memory_size_v2'")
            return 1 << 20

        def get_device_memory_size_for_profile(self, index):
            return 1 << 20

        def get_device_memory_size_for_profile_v2(self, index):
            return 1 << 20

    class Runtime(Recorded):
        _owner = "Runtime"

        def __init__(self, logger):
            call("Runtime")

        def deserialize_cuda_engine(self, data):
            call("Runtime.deserialize_cuda_engine", len(data))
            data = bytes(data)
            if not data.startswith(b"fake-plan"):
                return None
            plan = json.loads(data[len(b"fake-plan") :])
            if plan["tensorrt"].split(".")[:2] != version.split(".")[:2]:  # plans do not cross versions
                return None
            return ICudaEngine(plan)

    names = dict(
        __version__=version,
        Logger=Logger,
        Builder=Builder,
        OnnxParser=OnnxParser,
        Runtime=Runtime,
        ICudaEngine=ICudaEngine,
        IBuilderConfig=IBuilderConfig,
        IProgressMonitor=IProgressMonitor,
        INetworkDefinition=INetworkDefinition,
        ITimingCache=ITimingCache,
        IHostMemory=IHostMemory,
        BuilderFlag=BuilderFlag,
        NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag,
        MemoryPoolType=MemoryPoolType,
        DataType=DataType,
        calls=calls,
        accessed=accessed,
        steps=steps,
        REMOVED_NAMES=REMOVED_NAMES,
    )
    if not eleven:  # the weak-typing API of 10.x (deprecated there since 10.1, gone in 11.x)
        for name in REMOVED_IN_11["tensorrt"]:
            names[name] = type(name, (), {})
    namespace.update(names)


class RecordingModule(types.ModuleType):
    """A module whose public attribute reads are recorded in its ``accessed`` list."""

    def __getattribute__(self, name):
        if not name.startswith("_") and name not in ("calls", "accessed", "REMOVED_NAMES"):
            types.ModuleType.__getattribute__(self, "accessed").append(f"tensorrt.{name}")
        return types.ModuleType.__getattribute__(self, name)
