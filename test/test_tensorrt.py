"""The TensorRT engine cache and its checks, exercised without TensorRT (it cannot be installed here).

Building needs TensorRT and a GPU; the cache policy (when to reuse, when to rebuild and why, what
to refuse) is plain Python and is tested with a builder that records its calls. The build path
itself runs against fake TensorRT 10.x and 11.x modules in test_tensorrt_api.py.
"""

import importlib.util
import json
import logging
from dataclasses import asdict

import pytest

from depth_estimation_ros.commands import main
from depth_estimation_ros.core.backends import open_backend
from depth_estimation_ros.core.backends.base import DependencyError
from depth_estimation_ros.core.backends.tensorrt_backend import (
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

HERE = ("10.3.0", "NVIDIA Jetson AGX Orin", "8.7")


def _real_tensorrt() -> bool:
    """TensorRT itself, not a namespace folder of type stubs (tensorrt-stubs installs tensorrt/*.pyi)."""
    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin is not None


needs_no_tensorrt = pytest.mark.skipif(_real_tensorrt(), reason="TensorRT present")


class RecordingBuilder:
    """Writes what build_engine would write (an engine file and its sidecar) and records each call."""

    def __init__(self, platform):
        self.platform, self.calls = platform, []

    def __call__(self, onnx_path, output, **options):
        key = engine_key(onnx_path, self.platform)
        self.calls.append((str(onnx_path), str(output), key.precision))
        write_engine(output, b"serialized engine", key, read_onnx_info(onnx_path), onnx_path, overwrite=True,
                     tensorrt_build=self.platform[0])  # fmt: skip
        return output


@pytest.fixture(scope="module")
def fp16_graph(deployed, tmp_path_factory):
    from depth_estimation_ros.deploy.export import export_onnx

    checkpoint, _ = deployed["acan"]
    return export_onnx(checkpoint, tmp_path_factory.mktemp("fp16") / "acan-fp16.onnx", precision="fp16")


def test_engine_key_covers_graph_platform_precision_and_shape(deployed, fp16_graph):
    _, path = deployed["acan"]
    key = engine_key(path, HERE)
    assert key.input_shape == (1, 3, 64, 96)
    assert len(key.onnx_sha256) == 64
    assert key.tensorrt_version == "10.3"  # major.minor: patch releases read each other's engines
    assert key.precision == "fp32"  # the graph's own precision
    other = engine_key(fp16_graph, ("10.0.1", "NVIDIA GeForce RTX 4090", "8.9"))
    assert other.precision == "fp16"
    assert key.differences(other)[1:] == [
        "tensorrt_version 10.3 != 10.0",
        "gpu_name NVIDIA Jetson AGX Orin != NVIDIA GeForce RTX 4090",
        "compute_capability 8.7 != 8.9",
        "precision fp32 != fp16",
    ]
    assert EngineKey.from_dict(asdict(key)) == key
    assert EngineKey.from_dict({**asdict(key), "tensorrt_version": "10.3.0"}) == key  # sidecars of full versions
    assert engine_key(path, ("10.3.1.5", *HERE[1:])) == key


def test_cache_builds_once_then_reuses(deployed, fp16_graph, tmp_path):
    _, path = deployed["acan"]
    build = RecordingBuilder(HERE)
    cache = EngineCache(tmp_path / "engines")
    first = cache.engine_for(path, None, HERE, build=build)
    second = cache.engine_for(path, None, HERE, build=build)
    assert first == second
    assert len(build.calls) == 1
    fp16 = cache.engine_for(fp16_graph, None, HERE, build=build)  # another precision is another graph and engine
    assert len(build.calls) == 2
    assert fp16 != first
    assert "-fp16-" in fp16.name
    assert read_sidecar(fp16)[0].precision == "fp16"


def test_the_precision_asked_for_is_checked_against_the_graph(deployed, tmp_path, caplog):
    _, path = deployed["acan"]
    build = RecordingBuilder(HERE)
    with caplog.at_level(logging.WARNING):
        engine = EngineCache(tmp_path / "engines").engine_for(path, "fp16", HERE, build=build)  # the node's default
    assert read_sidecar(engine)[0].precision == "fp32"
    assert "is an fp32 graph" in caplog.text
    assert "depth-estimation export --precision fp16" in caplog.text


def test_cache_rebuilds_a_stale_engine_and_says_why(deployed, tmp_path, caplog):
    _, path = deployed["acan"]
    cache = EngineCache(tmp_path / "engines")
    cache.engine_for(path, None, HERE, build=RecordingBuilder(HERE))
    patched = ("10.3.1", *HERE[1:])  # a patch release keeps the engine
    assert cache.engine_for(path, None, patched, build=RecordingBuilder(patched)) == cache.path_for(
        path, engine_key(path, HERE)
    )
    upgraded = ("10.7.0", *HERE[1:])
    build = RecordingBuilder(upgraded)
    with caplog.at_level(logging.WARNING):
        engine = cache.engine_for(path, None, upgraded, build=build)
    assert len(build.calls) == 1
    assert "rebuilding stale TensorRT engine" in caplog.text
    assert "tensorrt_version 10.3 != 10.7" in caplog.text
    assert read_sidecar(engine)[0].tensorrt_version == "10.7"


def test_an_engine_from_another_machine_is_rebuilt_from_its_onnx(deployed, tmp_path, caplog):
    _, path = deployed["acan"]
    foreign = RecordingBuilder(("10.3.0", "NVIDIA GeForce RTX 3080", "8.6"))(path, tmp_path / "model.engine")
    build = RecordingBuilder(HERE)
    with caplog.at_level(logging.WARNING):
        engine = resolve_engine(foreign, HERE, EngineCache(tmp_path / "cache"), build=build)
    assert engine.parent == tmp_path / "cache"
    assert build.calls == [(str(path), str(engine), "fp32")]
    assert "gpu_name NVIDIA GeForce RTX 3080 != NVIDIA Jetson AGX Orin" in caplog.text
    assert read_sidecar(engine)[0].gpu_name == HERE[1]


def test_an_engine_that_cannot_run_here_and_cannot_be_rebuilt_is_refused(deployed, tmp_path):
    _, path = deployed["acan"]
    engine = RecordingBuilder(("10.1.0", *HERE[1:]))(path, tmp_path / "old.engine")
    description = json.loads(sidecar_path(engine).read_text())
    description["onnx"] = str(tmp_path / "gone.onnx")
    sidecar_path(engine).write_text(json.dumps(description))
    with pytest.raises(ValueError, match=r"old\.engine cannot run here: tensorrt_version 10\.1 != 10\.3"):
        resolve_engine(engine, HERE)
    assert resolve_engine(RecordingBuilder(HERE)(path, tmp_path / "ok.engine"), HERE) == tmp_path / "ok.engine"


def test_an_engine_without_its_description_is_refused(tmp_path):
    engine = tmp_path / "mystery.engine"
    engine.write_bytes(b"ftrt....")
    with pytest.raises(ValueError, match=r"mystery\.engine: no mystery\.engine\.json beside it"):
        read_sidecar(engine)


def test_an_engine_description_with_a_duplicate_key_or_nan_is_refused_naming_it(deployed, tmp_path):
    _, path = deployed["acan"]
    engine = RecordingBuilder(HERE)(path, tmp_path / "m.engine")
    text = sidecar_path(engine).read_text()
    sidecar_path(engine).write_text(text.replace("{", '{"onnx": "a.onnx", ', 1))
    with pytest.raises(ValueError, match=r"m\.engine\.json: duplicate key 'onnx'"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(text.replace('"max_depth": 10.0', '"max_depth": NaN'))
    with pytest.raises(ValueError, match=r"m\.engine\.json: info\.max_depth is not finite"):
        read_sidecar(engine)


@needs_no_tensorrt
def test_without_tensorrt_the_commands_fail_with_one_clear_sentence(deployed, tmp_path, capsys):
    _, path = deployed["acan"]
    with pytest.raises(DependencyError, match="TensorRT is not installed"):
        import_tensorrt()
    assert main(["build-engine", "--onnx", str(path), "--output", str(tmp_path / "m.engine")]) == 1
    assert capsys.readouterr().err.strip() == f"depth-estimation build-engine: error: {NO_TENSORRT}"
    argv = ["build-engine", "--onnx", str(path), "--output", str(tmp_path / "m.engine"), "--precision", "fp16"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "is an fp32 graph" in err
    assert "export --precision fp16" in err
    engine = RecordingBuilder(HERE)(path, tmp_path / "m.engine")
    with pytest.raises(DependencyError, match="TensorRT is not installed"):
        open_backend(engine)
