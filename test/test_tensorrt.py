"""The TensorRT engine cache and its checks, exercised without TensorRT (it cannot be installed here).

Building needs TensorRT and a GPU; the cache policy (when to reuse, when to rebuild and why, what
to refuse) is plain Python and is tested with a builder that records its calls.
"""

import importlib.util
import json
import logging
from dataclasses import asdict

import pytest

from depth_estimation_ros.backends import open_backend
from depth_estimation_ros.backends.base import DependencyError
from depth_estimation_ros.backends.tensorrt_backend import (
    NO_TENSORRT,
    EngineCache,
    EngineKey,
    engine_key,
    import_tensorrt,
    read_onnx_info,
    read_sidecar,
    resolve_engine,
    sidecar_path,
    write_engine,
)
from depth_estimation_ros.cli import main

HERE = ("10.3.0", "NVIDIA Jetson AGX Orin", "8.7")
needs_no_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT present")


class RecordingBuilder:
    """Writes what build_engine would write (an engine file and its sidecar) and records each call."""

    def __init__(self, platform):
        self.platform, self.calls = platform, []

    def __call__(self, onnx_path, output, precision="fp16", **options):
        self.calls.append((str(onnx_path), str(output), precision))
        key = engine_key(onnx_path, precision, self.platform)
        write_engine(output, b"serialized engine", key, read_onnx_info(onnx_path), onnx_path, overwrite=True)
        return output


def test_engine_key_covers_graph_platform_precision_and_shape(deployed):
    _, path = deployed["acan"]
    key = engine_key(path, "fp16", HERE)
    assert key.input_shape == (1, 3, 64, 96)
    assert len(key.onnx_sha256) == 64
    other = engine_key(path, "int8", ("10.0.1", "NVIDIA GeForce RTX 4090", "8.9"))
    assert key.differences(other) == [
        "tensorrt_version 10.3.0 != 10.0.1",
        "gpu_name NVIDIA Jetson AGX Orin != NVIDIA GeForce RTX 4090",
        "compute_capability 8.7 != 8.9",
        "precision fp16 != int8",
    ]
    assert EngineKey.from_dict(asdict(key)) == key
    with pytest.raises(ValueError, match="precision must be one of"):
        engine_key(path, "fp8", HERE)


def test_cache_builds_once_then_reuses(deployed, tmp_path):
    _, path = deployed["acan"]
    build = RecordingBuilder(HERE)
    cache = EngineCache(tmp_path / "engines")
    first = cache.engine_for(path, "fp16", HERE, build=build)
    second = cache.engine_for(path, "fp16", HERE, build=build)
    assert first == second
    assert len(build.calls) == 1
    cache.engine_for(path, "fp32", HERE, build=build)  # another precision is another engine
    assert len(build.calls) == 2


def test_cache_rebuilds_a_stale_engine_and_says_why(deployed, tmp_path, caplog):
    _, path = deployed["acan"]
    cache = EngineCache(tmp_path / "engines")
    cache.engine_for(path, "fp16", HERE, build=RecordingBuilder(HERE))
    upgraded = ("10.7.0", *HERE[1:])
    build = RecordingBuilder(upgraded)
    with caplog.at_level(logging.WARNING):
        engine = cache.engine_for(path, "fp16", upgraded, build=build)
    assert len(build.calls) == 1
    assert "rebuilding stale TensorRT engine" in caplog.text
    assert "tensorrt_version 10.3.0 != 10.7.0" in caplog.text
    assert read_sidecar(engine)[0].tensorrt_version == "10.7.0"


def test_an_engine_from_another_machine_is_rebuilt_from_its_onnx(deployed, tmp_path, caplog):
    _, path = deployed["acan"]
    foreign = RecordingBuilder(("10.3.0", "NVIDIA GeForce RTX 3080", "8.6"))(path, tmp_path / "model.engine")
    build = RecordingBuilder(HERE)
    with caplog.at_level(logging.WARNING):
        engine = resolve_engine(foreign, HERE, EngineCache(tmp_path / "cache"), build=build)
    assert engine.parent == tmp_path / "cache"
    assert build.calls == [(str(path), str(engine), "fp16")]
    assert "gpu_name NVIDIA GeForce RTX 3080 != NVIDIA Jetson AGX Orin" in caplog.text
    assert read_sidecar(engine)[0].gpu_name == HERE[1]


def test_an_engine_that_cannot_run_here_and_cannot_be_rebuilt_is_refused(deployed, tmp_path):
    _, path = deployed["acan"]
    engine = RecordingBuilder(("8.6.1", *HERE[1:]))(path, tmp_path / "old.engine")
    description = json.loads(sidecar_path(engine).read_text())
    description["onnx"] = str(tmp_path / "gone.onnx")
    sidecar_path(engine).write_text(json.dumps(description))
    with pytest.raises(ValueError, match=r"old\.engine cannot run here: tensorrt_version 8\.6\.1 != 10\.3\.0"):
        resolve_engine(engine, HERE)
    assert resolve_engine(RecordingBuilder(HERE)(path, tmp_path / "ok.engine"), HERE) == tmp_path / "ok.engine"


def test_an_engine_without_its_description_is_refused(tmp_path):
    engine = tmp_path / "mystery.engine"
    engine.write_bytes(b"ftrt....")
    with pytest.raises(ValueError, match=r"mystery\.engine: no mystery\.engine\.json beside it"):
        read_sidecar(engine)


@needs_no_tensorrt
def test_without_tensorrt_the_commands_fail_with_one_clear_sentence(deployed, tmp_path, capsys):
    _, path = deployed["acan"]
    with pytest.raises(DependencyError, match="TensorRT is not installed"):
        import_tensorrt()
    assert main(["build-engine", "--onnx", str(path), "--output", str(tmp_path / "m.engine")]) == 1
    assert capsys.readouterr().err.strip() == f"depth-estimation build-engine: error: {NO_TENSORRT}"
    engine = RecordingBuilder(HERE)(path, tmp_path / "m.engine")
    with pytest.raises(DependencyError, match="TensorRT is not installed"):
        open_backend(engine)
