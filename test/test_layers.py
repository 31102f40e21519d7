"""The layers of docs/architecture.md, read from the code's own imports (every import statement,
those inside functions included, relative ones resolved), with no exception list:

    benchmarks  →  commands  →  training  →  ros | deploy  →  core  →  the package root

Each layer imports only the layers below it (``ros`` and ``deploy`` are peers and import neither
each other), nothing outside ``commands`` and ``benchmarks`` imports ``training``, and no circle of
imports exists between modules anywhere. Old module paths still import, with a warning.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("depth_estimation_ros", "training", "benchmarks")
# layer → rank; a module may import ranks below its own, and its own layer.
LAYERS = {
    "root": 0,  # depth_estimation_ros/__init__.py and its private helpers (_aliases, _lazy)
    "core": 1,
    "ros": 2,
    "deploy": 2,
    "training": 3,
    "commands": 4,
    "benchmarks": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def layer_of(module: str) -> str:
    top, _, rest = module.partition(".")
    if top != "depth_estimation_ros":
        return top
    sub = rest.split(".")[0]
    return sub if sub in LAYERS else "root"


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports: ``from a.b import c`` is ``a.b.c`` when that is a
    module, else ``a.b``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return {name for name in found if name.split(".")[0] in PACKAGES and name != module}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_every_module_imports_only_the_layers_below_its_own(graph):
    upward = []
    for module, targets in graph.items():
        mine = layer_of(module)
        for target in targets:
            theirs = layer_of(target)
            if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                upward.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not upward, "imports that run up or across the layers:\n" + "\n".join(sorted(upward))


def test_the_layering_check_sees_an_upward_import(tmp_path):
    """The check itself can fail: a core module importing the ROS layer (inside a function, relatively)."""
    path = tmp_path / "depth_estimation_ros" / "core" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text("def f():\n    from ..ros import node\n")
    known = {"depth_estimation_ros.ros.node": path}
    targets = imports_of("depth_estimation_ros.core.probe", path, known)
    assert targets == {"depth_estimation_ros.ros.node"}
    assert LAYERS[layer_of("depth_estimation_ros.ros.node")] > LAYERS[layer_of("depth_estimation_ros.core.probe")]


def test_no_module_outside_the_commands_and_benchmarks_imports_training(graph):
    importers = {m for m, targets in graph.items() if any(layer_of(t) == "training" for t in targets)}
    assert {layer_of(m) for m in importers} <= {"training", "commands", "benchmarks"}, sorted(importers)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_circle_of_imports_anywhere(graph):
    assert circles(graph) == []


def test_the_circle_check_finds_a_package_and_its_submodule_importing_each_other():
    assert circles({"p": {"p.a"}, "p.a": {"p"}, "q": set()}) == [["p", "p.a"]]


def test_old_module_paths_import_the_moved_module_with_a_deprecation_warning():
    """Every path of the flat 0.1 layout (and training's deployment modules) still imports, as the
    same module object, with one DeprecationWarning naming the new home; run in a fresh interpreter
    so no earlier import hides the warning."""
    from depth_estimation_ros._aliases import MOVED, new_home

    old_paths = [*MOVED, "depth_estimation_ros.models.acan", "depth_estimation_ros.backends.base"]
    code = f"""
import importlib, warnings
import depth_estimation_ros
from depth_estimation_ros._aliases import new_home
for old in {old_paths!r}:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    new = new_home(old)
    assert module is importlib.import_module(new), old
    assert module.__name__ == new and module.__spec__.name == new, old
    assert [str(w.message) for w in caught if w.category is DeprecationWarning] == [
        f"{{old}} moved to {{new}}; the old path goes in 0.3"], (old, [str(w.message) for w in caught])
from depth_estimation_ros.models import build_model
from depth_estimation_ros.core.models import build_model as new
assert build_model is new
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
    assert new_home("depth_estimation_ros.core.camera") is None  # new paths are not aliases


def test_the_public_api_has_one_home_per_name():
    import depth_estimation_ros.core as core
    import depth_estimation_ros.deploy as deploy
    import depth_estimation_ros.ros as ros

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for layer in (core, deploy, ros):
            for name in layer.__all__:
                assert getattr(layer, name).__module__.startswith(layer.__name__), (layer.__name__, name)
        with pytest.raises(AttributeError, match="no attribute 'Missing'"):
            _ = core.Missing
