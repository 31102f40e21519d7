"""Install profiles that match the layers (setup.py): the robot's install (``pip install .``, colcon)
runs the node and the runtime commands without the training dependencies; ``.[training]`` adds them.

Checked two ways: the third-party imports of every runtime module against the distributions
setup.py declares for the runtime, and a fresh virtual environment holding only the runtime
profile (the declared requirements' closure, read from the installed distributions' metadata, so
nothing is downloaded) that imports the node, prints the command's help and predicts depth.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from test_layers import LAYERS, ROOT, layer_of, modules

RUNTIME_LAYERS = {name for name, rank in LAYERS.items() if rank <= LAYERS["ros"]} | {"commands"}
RUNTIME_EXTRAS = ("onnx", "tensorrt", "openvino", "transformers", "ros", "rclpy")  # what a robot may add
SHIPPED_MODEL = ROOT / "depth_estimation_ros" / "data" / "demo_acan.pt"


def declared() -> tuple[list[str], dict[str, list[str]]]:
    """setup.py's RUNTIME list and extras, read from its source (running it would build)."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            names[node.targets[0].id] = node.value
    runtime, training = ast.literal_eval(names["RUNTIME"]), ast.literal_eval(names["TRAINING"])
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    extras_node = next(k.value for k in call.keywords if k.arg == "extras_require")
    # Literals and the two named lists only: no builtins, nothing else of setup.py runs.
    extras = eval(compile(ast.Expression(extras_node), "setup.py", "eval"), {"__builtins__": {}, "TRAINING": training})
    assert extras["training"] == training
    return runtime, extras


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    ours = {"depth_estimation_ros", "training", "benchmarks", "__future__"}  # the layering test's business
    return {m for m in found if m not in sys.stdlib_module_names and m not in ours}


def test_runtime_modules_import_only_what_the_runtime_profile_installs():
    """What a runtime module imports comes with the runtime requirements or a runtime extra (or what
    they require in turn); nothing comes only with the training extra."""
    runtime, extras = declared()
    requirements = [*runtime, *(r for extra in RUNTIME_EXTRAS for r in extras[extra])]
    allowed = closure(requirements) | {canonical(Requirement(r).name) for r in requirements}  # tensorrt: not here
    training_only = {canonical(Requirement(r).name) for r in extras["training"]} - allowed
    providers = importlib.metadata.packages_distributions()
    problems = []
    for module, path in modules().items():
        if layer_of(module) not in RUNTIME_LAYERS:
            continue
        for name in sorted(third_party_imports(path)):
            dists = {canonical(d) for d in providers.get(name, [name])}
            if dists & training_only:
                problems.append(f"{module} imports {name}, which only the training extra installs")
            elif not dists & allowed:
                problems.append(
                    f"{module} imports {name} ({', '.join(sorted(dists))}), declared nowhere for the runtime"
                )
    assert not problems, "\n".join(problems)


def closure(requirements: list[str]) -> set[str]:
    """The installed distributions these requirements need, transitively (markers evaluated here)."""
    seen, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        env = default_environment()
        if requirement.marker and not any(
            requirement.marker.evaluate({**env, "extra": e}) for e in ("", *requirement.extras)
        ):
            continue
        name = canonical(requirement.name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional one this machine lacks (tensorrt): the profile is what is here
        key = (name, tuple(sorted(requirement.extras)))
        if key in seen:
            continue
        seen.add(key)
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({**env, "extra": e}) for e in ("", *requirement.extras)):
                todo.append(sub)
    return {name for name, _ in seen}


@pytest.fixture(scope="module")
def runtime_env(tmp_path_factory) -> dict[str, str]:
    """A fresh venv whose site-packages holds only the runtime profile's distributions (linked from
    this environment) and the ``depth_estimation_ros`` package: no training, no benchmarks, no
    h5py, scipy or tensorboard unless the runtime itself needed them."""
    runtime, extras = declared()
    wanted = closure([*runtime, *(r for extra in ("onnx", "ros", "rclpy") for r in extras[extra])])
    training_only = {canonical(Requirement(r).name) for r in extras["training"]}
    assert not wanted & training_only, f"the runtime profile pulls in {sorted(wanted & training_only)}"
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    for name in sorted(wanted):
        dist = importlib.metadata.distribution(name)
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not top.startswith("..") and not (site / top).exists():
                (site / top).symlink_to(source)
    (site / "depth_estimation_ros").symlink_to(ROOT / "depth_estimation_ros")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "VIRTUAL_ENV": str(venv), "PYTHON": str(venv / "bin" / "python"), "PYTHONNOUSERSITE": "1"}


def run_in(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([env["PYTHON"], *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_runtime_profile_lacks_the_training_dependencies(runtime_env, tmp_path):
    done = run_in(runtime_env, "-c", "import importlib.util as u; print([m for m in ('training', 'benchmarks', "
                  "'h5py', 'scipy', 'tensorboard') if u.find_spec(m)])", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_runtime_profile_runs_the_node_import_the_help_and_predict(runtime_env, tmp_path):
    node = run_in(
        runtime_env, "-c", "import depth_estimation_ros.ros.node, depth_estimation_ros.commands.bag", cwd=tmp_path
    )
    assert node.returncode == 0, node.stderr[-2000:]
    for command in ([], ["predict"], ["bag"], ["models"], ["export"], ["build-engine"], ["quantize"]):
        done = run_in(runtime_env, "-m", "depth_estimation_ros.commands", *command, "--help", cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert "usage: depth-estimation" in done.stdout
    import cv2
    import numpy as np

    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    done = run_in(runtime_env, "-m", "depth_estimation_ros.commands", "predict", "--model", str(SHIPPED_MODEL),
                  "--input", str(image), "--output", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "frame_depth.npy").is_file()


def test_a_training_command_on_the_runtime_profile_names_the_extra_it_needs(runtime_env, tmp_path):
    done = run_in(runtime_env, "-m", "depth_estimation_ros.commands", "train", "--help", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "depth-estimation train: error: needs 'training', which is not installed (training and evaluation: "
        "pip install 'depth_estimation_ros[training]'; bench: run from a checkout, make bench)"
    ]
