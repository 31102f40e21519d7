"""The TensorRT build path against fake TensorRT 10.x and 11.x modules (test/fake_tensorrt/).

TensorRT cannot be installed on these machines. The fakes are written from NVIDIA's documented
Python API: the 11.x one lacks every name the 10.x → 11.x migration guide lists as removed (so
touching one raises AttributeError, as it would on a desktop with ``pip install tensorrt``), and
both record which attributes the code read and which calls it made. What is checked: one
strongly typed build path, identical on both versions, that touches no removed name; the sidecar
records the TensorRT major.minor and the graph's precision; an engine built by 10.x is refused on
11.x with a message naming both versions and how to rebuild. What is not: that the real libraries
parse and build these graphs (that needs TensorRT and a GPU).
"""

import importlib.util
import json
import logging
import sys
from pathlib import Path

import cv2
import pytest
import torch

from depth_estimation_ros.commands import main
from depth_estimation_ros.core.backends import open_backend
from depth_estimation_ros.core.backends.base import DependencyError
from depth_estimation_ros.core.backends.tensorrt_backend import (
    EngineCache,
    TensorRTBackend,
    build_engine,
    current_platform,
    device_memory_size,
    network_flags,
    read_sidecar,
    sidecar_path,
)
from depth_estimation_ros.deploy.export import export_onnx
from depth_estimation_ros.deploy.quantize import quantize, synthetic_frames

FAKES = Path(__file__).parent / "fake_tensorrt"
VERSIONS = {"10": "10.3.0.30", "11": "11.4.0.106"}
GPU = ("NVIDIA GeForce RTX 4090", (8, 9))


def load_fake(monkeypatch, major: str, version: str | None = None):
    """Install the fake TensorRT ``major``.x as ``tensorrt`` (and a visible CUDA GPU) for one test."""
    monkeypatch.setenv("FAKE_TENSORRT_VERSION", version or VERSIONS[major])
    spec = importlib.util.spec_from_file_location(
        "tensorrt", FAKES / f"v{major}" / "tensorrt" / "__init__.py", submodule_search_locations=[]
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: GPU[0])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: GPU[1])
    return sys.modules["tensorrt"]


@pytest.fixture(scope="module")
def graphs(deployed, tmp_path_factory):
    """fp32, fp16 and int8 (TensorRT Q/DQ) graphs of the small ACAN, and an ONNX Runtime CPU int8 one."""
    checkpoint, fp32 = deployed["acan"]
    root = tmp_path_factory.mktemp("precisions")
    frames = root / "frames"
    frames.mkdir()
    for i, rgb in enumerate(synthetic_frames("indoor", 4, 64, 96)):
        cv2.imwrite(str(frames / f"{i}.png"), rgb[..., ::-1])
    return {
        "fp32": fp32,
        "fp16": export_onnx(checkpoint, root / "fp16.onnx", precision="fp16"),
        "int8": export_onnx(checkpoint, root / "int8.onnx", precision="int8", calibration_images=frames),
        "int8-cpu": quantize(fp32, root / "int8-cpu.onnx", synthetic_frames("indoor", 2, 64, 96)),
    }


def touched_removed(trt) -> set[str]:
    """Removed-in-11 names the code read, module-level (``tensorrt.X``) or on objects (``Owner.attr``)."""
    return {name.rstrip("=") for name in trt.accessed} & trt.REMOVED_NAMES


def call_names(trt) -> list[str]:
    return [name for name, _ in trt.calls]


@pytest.mark.parametrize("major", ["10", "11"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_one_strongly_typed_build_path_touches_no_removed_api(major, precision, graphs, tmp_path, monkeypatch):
    trt = load_fake(monkeypatch, major)
    engine = build_engine(graphs[precision], tmp_path / "m.engine", timing_cache=tmp_path / "timing.cache")
    assert touched_removed(trt) == set()
    assert call_names(trt) == [
        "Logger", "Builder", "Builder.create_network", "OnnxParser", "OnnxParser.parse",
        "Builder.create_builder_config", "IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.create_timing_cache",
        "IBuilderConfig.set_timing_cache", "Builder.build_serialized_network", "ITimingCache.serialize",
    ]  # fmt: skip
    assert dict(trt.calls)["Builder.create_network"] == (["STRONGLY_TYPED"],)
    plan = json.loads(engine.read_bytes()[len(b"fake-plan") :])
    assert plan["builder_flags"] == []  # no precision flag: the graph carries the precision
    key, _, onnx = read_sidecar(engine)
    assert (key.tensorrt_version, key.precision, key.gpu_name, key.compute_capability) == (
        ".".join(VERSIONS[major].split(".")[:2]),
        precision,
        GPU[0],
        "8.9",
    )
    description = json.loads(sidecar_path(engine).read_text())
    assert description["tensorrt_build"] == VERSIONS[major]
    assert Path(onnx) == Path(graphs[precision]).resolve()


@pytest.mark.parametrize("major", ["10", "11"])
def test_sigterm_during_a_build_cancels_it_at_the_next_step_and_leaves_no_engine(
    major, graphs, tmp_path, monkeypatch, capsys
):
    """The build is one C++ call of minutes in which Python's handlers cannot run: the progress monitor
    sees the signal (through the interpreter's wakeup fd) and cancels at the next step."""
    trt = load_fake(monkeypatch, major)
    monkeypatch.setenv("FAKE_TENSORRT_BUILD_STEPS", "1000")
    monkeypatch.setenv("FAKE_TENSORRT_SIGNAL_AT_STEP", "5")
    engine = tmp_path / "m.engine"
    assert main(["build-engine", "--onnx", str(graphs["fp32"]), "--output", str(engine)]) == 143
    assert trt.steps == list(range(6))  # cancelled at the step the signal came in, of 1000
    assert "terminated" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no engine, sidecar or temporary


def test_the_network_flags_are_the_same_on_10_and_11(graphs, tmp_path, monkeypatch):
    seen = {}
    for major in VERSIONS:
        trt = load_fake(monkeypatch, major)
        build_engine(graphs["fp16"], tmp_path / f"{major}.engine")
        seen[major] = (dict(trt.calls)["Builder.create_network"], call_names(trt))
    assert seen["10"] == seen["11"]
    # the flag is looked up, not hard-coded: its bit differs between the two fakes' enums
    assert network_flags() == 1 << int(sys.modules["tensorrt"].NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def test_the_11_fake_lacks_every_removed_name(monkeypatch):
    trt = load_fake(monkeypatch, "11")
    objects = {
        "tensorrt": trt,
        "BuilderFlag": trt.BuilderFlag,
        "IBuilderConfig": trt.IBuilderConfig(),
        "ICudaEngine": trt.ICudaEngine({}),
        "Builder": trt.Builder(trt.Logger()),
    }
    for qualified in sorted(trt.REMOVED_NAMES):
        owner, name = qualified.split(".")
        with pytest.raises(AttributeError):
            getattr(objects[owner], name)
    with pytest.raises(AttributeError):
        objects["IBuilderConfig"].int8_calibrator = object()
    ten = load_fake(monkeypatch, "10")
    assert ten.BuilderFlag.FP16.name == "FP16"
    assert ten.IInt8EntropyCalibrator2 is not None


@pytest.mark.parametrize(("version", "attribute"), [("10.0.1", "device_memory_size"),
                                                    ("10.3.0", "device_memory_size_v2"),
                                                    ("11.4.0", "device_memory_size_v2")])  # fmt: skip
def test_device_memory_size_reads_the_name_each_version_has(version, attribute, monkeypatch):
    trt = load_fake(monkeypatch, version.split(".")[0], version)
    assert device_memory_size(trt.ICudaEngine({})) == 1 << 20
    assert f"ICudaEngine.{attribute}" in trt.accessed
    assert touched_removed(trt) == (set() if version >= "10.1" else {"ICudaEngine.device_memory_size"})


def test_an_engine_built_by_10_is_refused_on_11_naming_both_versions(graphs, tmp_path, monkeypatch):
    load_fake(monkeypatch, "10")
    engine = build_engine(graphs["fp16"], tmp_path / "robot.engine")
    trt11 = load_fake(monkeypatch, "11")
    with pytest.raises(ValueError, match=r"built by TensorRT 10\.3 and this is TensorRT 11\.4") as refused:
        TensorRTBackend(engine, cache=EngineCache(tmp_path / "cache"))
    message = str(refused.value)
    assert f"depth-estimation build-engine --onnx {Path(graphs['fp16']).resolve()} --output {engine} --overwrite" in (
        message
    )
    assert "export --precision" in message
    assert "Runtime.deserialize_cuda_engine" not in call_names(trt11)  # never handed to the 11.x runtime
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ValueError, match=r"built by TensorRT 10\.3 and this is TensorRT 11\.4"):
        open_backend(engine, "tensorrt")


def test_the_cache_rebuilds_a_10_engine_of_its_graph_on_11(graphs, tmp_path, monkeypatch, caplog):
    cache = EngineCache(tmp_path / "engines")
    load_fake(monkeypatch, "10")
    first = cache.engine_for(graphs["int8"])
    assert read_sidecar(first)[0].tensorrt_version == "10.3"
    trt11 = load_fake(monkeypatch, "11")
    with caplog.at_level(logging.WARNING):
        again = cache.engine_for(graphs["int8"])
    assert again == first
    assert "tensorrt_version 10.3 != 11.4" in caplog.text
    assert read_sidecar(again)[0].tensorrt_version == "11.4"
    assert read_sidecar(again)[0].precision == "int8"
    assert touched_removed(trt11) == set()


def test_onnx_runtime_cpu_int8_graphs_are_refused_before_building(graphs, tmp_path, monkeypatch, capsys):
    trt = load_fake(monkeypatch, "11")
    with pytest.raises(ValueError, match=r"ONNX Runtime's CPU quantisation .*uint8.*export --precision int8"):
        build_engine(graphs["int8-cpu"], tmp_path / "cpu.engine")
    assert "Builder" not in call_names(trt)
    argv = ["build-engine", "--onnx", str(graphs["fp32"]), "--output", str(tmp_path / "x.engine")]
    assert main([*argv, "--calibration-images", str(tmp_path)]) == 2
    assert "export --precision int8 --calibration-images" in capsys.readouterr().err
    assert main([*argv, "--precision", "int8"]) == 1
    assert "is an fp32 graph" in capsys.readouterr().err
    assert main([*argv, "--precision", "fp32"]) == 0
    assert read_sidecar(tmp_path / "x.engine")[0].precision == "fp32"


def test_unsupported_tensorrt_versions_and_stub_only_installs_say_so(monkeypatch, tmp_path):
    load_fake(monkeypatch, "10", "8.6.1")
    with pytest.raises(DependencyError, match=r"TensorRT 8\.6\.1 is not supported.*10\.x or 11\.x"):
        current_platform()
    stubs = tmp_path / "stubs" / "tensorrt"
    stubs.mkdir(parents=True)
    (stubs / "__init__.pyi").write_text("__version__: str\n")  # what tensorrt-stubs installs: no module
    monkeypatch.delitem(sys.modules, "tensorrt")
    monkeypatch.syspath_prepend(str(stubs.parent))
    with pytest.raises(DependencyError, match="TensorRT is not installed"):
        current_platform()


@pytest.mark.parametrize("major", ["10", "11"])
def test_an_engine_of_a_graph_exported_elsewhere_carries_its_card(major, tmp_path, monkeypatch, capsys):
    """build-engine --card: the sidecar describes the graph by its card (tensors, focal rule, sky), so
    the engine runs with the card's rules without being told again; the key has the card's input."""
    from foreign_graphs import export

    from depth_estimation_ros.core.backends import describe_model

    load_fake(monkeypatch, major)
    graph = export("depth_anything_3_metric", tmp_path / "da3.onnx")
    engine = tmp_path / "da3.engine"
    argv = ["build-engine", "--onnx", str(graph), "--output", str(engine), "--card", "depth_anything_3_metric"]
    assert main(argv) == 0, capsys.readouterr().err
    key, info, _ = read_sidecar(engine)
    assert key.input_shape == (1, 3, 280, 504)
    card = info.model_card
    assert (card.family, card.focal_rule, card.focal_length, card.focal_axis) == ("depth_anything_3_metric", "ratio",
                                                                                  300.0, "mean")  # fmt: skip
    assert (card.graph_io.image, card.graph_io.depth, card.graph_io.sky) == ("image", "depth", "sky")
    assert "sky" in describe_model(engine)["summary"]
