"""The ROS 2 packaging, checked without ROS: the colcon install tree, package.xml's dependencies,
the parameter file, the launch file and docs/ros.md, each against the code it must agree with.

colcon (from PyPI) builds the ament_python package exactly as a ROS workspace does, so the layout
that ``ros2 launch`` and ``ros2 run`` look up is checked for real. launch/launch_ros are not
installable here: the launch file is read with ``ast``, and run only where launch_ros imports.
"""

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from catkin_pkg.package import parse_package

from depth_estimation_ros.ros.parameters import PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "depth_estimation_ros"
LAUNCH_FILE = ROOT / "launch" / "depth.launch.py"
PARAMS_FILE = ROOT / "config" / "depth.yaml"
ROS_DOC = ROOT / "docs" / "ros.md"
EXECUTABLES = ("depth_node", "depth-estimation")

# Launch arguments with literal defaults ("" for those that override the params file only when
# given); "params_file" is a substitution.
LAUNCH_DEFAULTS = {
    "model": "",
    "backend": "",
    "namespace": "",
    "image_topic": "/camera/image_raw",
    "camera_info_topic": "/camera/camera_info",
    "scale_source": "",
    "sparse_depth_topic": "/camera/sparse_depth",
    "sparse_points_topic": "/lidar/points",
    "odometry_topic": "/odom",
    "use_sim_time": "",
    "autostart": "",
    "node_name": "depth_estimation",
}
LAUNCH_ARGUMENTS = {"params_file", *LAUNCH_DEFAULTS}

# Top-level modules that only a ROS installation provides (besides *_msgs, *_srvs, *_interfaces).
ROS_MODULES = {
    "rclpy",
    "launch",
    "launch_ros",
    "launch_testing",
    "ament_index_python",
    "cv_bridge",
    "image_geometry",
    "message_filters",
    "sensor_msgs_py",
    "tf2_ros",
    "rosbag2_py",
}


# ------------------------------------------------------------------------------------------------
# colcon build


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory):
    """``colcon build`` of the checkout into a temporary workspace; returns its install base.

    A plain (non-symlink) ament_python build: setup.py runs with egg_info, build and install all
    pointed into the temporary workspace, so nothing is written into the checkout, and nothing is
    downloaded (no dependency installation, no build isolation).
    """
    pytest.importorskip("colcon_core", reason="install the dev extra (colcon-core, colcon-ros, ...)")
    # colcon's own entry point under this interpreter (its script may live in another environment)
    colcon = [sys.executable, "-c", "import sys; from colcon_core.command import main; sys.exit(main())"]
    workspace = tmp_path_factory.mktemp("colcon")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLCON_HOME": str(workspace / "colcon_home"),  # no user-level colcon defaults
    }
    env.pop("COLCON_DEFAULTS_FILE", None)
    artefacts = ("build", "install", "log", f"{PACKAGE}.egg-info")
    already_there = {name for name in artefacts if (ROOT / name).exists()}
    command = [
        *colcon, "--log-base", workspace / "log",
        "build", "--base-paths", ROOT, "--packages-select", PACKAGE,
        "--build-base", workspace / "build", "--install-base", workspace / "install",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout}\n{result.stderr}"
    written = {name for name in artefacts if (ROOT / name).exists()} - already_there
    assert not written, f"colcon build wrote {sorted(written)} into the checkout"
    return workspace / "install"


def test_colcon_build_lays_out_what_ros2_launch_and_ros2_run_look_up(colcon_install):
    prefix = colcon_install / PACKAGE
    share = prefix / "share" / PACKAGE
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    assert parse_package(str(share / "package.xml")).name == PACKAGE
    assert (share / "launch" / "depth.launch.py").read_bytes() == LAUNCH_FILE.read_bytes()
    assert (share / "config" / "depth.yaml").read_bytes() == PARAMS_FILE.read_bytes()
    for name in EXECUTABLES:  # ros2 run looks in lib/<package>
        executable = prefix / "lib" / PACKAGE / name
        assert executable.is_file(), f"{executable} missing"
        assert os.access(executable, os.X_OK), f"{executable} is not executable"
    # the launch file starts an executable that the install provides
    node = launch_node_call()
    assert keyword_literal(node, "package") == PACKAGE
    assert (prefix / "lib" / PACKAGE / keyword_literal(node, "executable")).is_file()


def test_colcon_install_ships_the_demo_checkpoint_as_package_data(colcon_install):
    installed = list((colcon_install / PACKAGE).glob(f"lib/python*/site-packages/{PACKAGE}/data/demo_acan.pt"))
    assert len(installed) == 1, "the demo checkpoint is not installed beside the package"
    assert installed[0].read_bytes() == (ROOT / PACKAGE / "data" / "demo_acan.pt").read_bytes()


def test_installed_console_scripts_point_at_the_node_and_the_cli(colcon_install):
    prefix = colcon_install / PACKAGE
    (site_packages,) = prefix.glob("lib/python3*/site-packages")
    (entry_points,) = site_packages.glob(f"{PACKAGE}-*.egg-info/entry_points.txt")
    scripts = dict(re.findall(r"^\s*(\S+)\s*=\s*(\S+)\s*$", entry_points.read_text(), re.MULTILINE))
    assert scripts["depth_node"] == f"{PACKAGE}.ros.node:main"
    assert scripts["depth-estimation"] == f"{PACKAGE}.commands:main"
    # What `source install/setup.bash && ros2 run depth_estimation_ros depth-estimation` runs:
    # the installed wrapper, importing the installed package (not the checkout).
    env = {**os.environ, "PYTHONPATH": str(site_packages)}
    result = subprocess.run(
        [prefix / "lib" / PACKAGE / "depth-estimation", "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "usage: depth-estimation" in result.stdout
    where = subprocess.run(
        [sys.executable, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        env=env, capture_output=True, text=True, check=True, timeout=120, cwd=colcon_install,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(site_packages)


# ------------------------------------------------------------------------------------------------
# package.xml


def ros_imports(path: Path) -> set[str]:
    """Top-level ROS packages a Python file imports (anywhere in it, lazily imported ones too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in ROS_MODULES or top.endswith(("_msgs", "_srvs", "_interfaces")):
                found.add(top)
    return found


def test_package_xml_exec_depends_cover_every_ros_package_the_node_and_launch_file_import():
    exec_depends = {d.name for d in parse_package(str(ROOT / "package.xml")).exec_depends}
    required = {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "lifecycle_msgs", "launch", "launch_ros"}
    assert required <= exec_depends, f"missing exec_depend: {sorted(required - exec_depends)}"
    sources = [*sorted((ROOT / PACKAGE).rglob("*.py")), *sorted((ROOT / "launch").glob("*.launch.py"))]
    imported = {}
    for path in sources:
        for name in ros_imports(path):
            imported.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert {"launch", "launch_ros"} <= set(imported)  # the scan sees the launch file
    missing = {name: files for name, files in imported.items() if name not in exec_depends}
    assert not missing, f"imported but not an <exec_depend> in package.xml: {missing}"


# ------------------------------------------------------------------------------------------------
# config/depth.yaml


def test_params_file_lists_exactly_the_node_parameters_with_their_defaults():
    document = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    assert list(document) == ["/**"], "parameters must apply to the node whatever its name and namespace"
    assert list(document["/**"]) == ["ros__parameters"]
    values = document["/**"]["ros__parameters"]
    assert list(values) == [p.name for p in PARAMETERS]  # same names, same order as the code
    for p in PARAMETERS:
        # ROS 2 parameters are strictly typed: 1 for a double, or 1.0 for an integer, fails to load.
        assert type(values[p.name]) is type(p.default), f"{p.name}: {values[p.name]!r} vs default {p.default!r}"
        assert values[p.name] == p.default, f"{p.name}: {values[p.name]!r} vs default {p.default!r}"


# ------------------------------------------------------------------------------------------------
# launch/depth.launch.py


def call_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def launch_calls(name: str) -> list[ast.Call]:
    tree = ast.parse(LAUNCH_FILE.read_text(encoding="utf-8"), filename=str(LAUNCH_FILE))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and call_name(n) == name]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def keyword_literal(call: ast.Call, name: str):
    return ast.literal_eval(keyword(call, name))


def launch_node_call() -> ast.Call:
    (node,) = launch_calls("LifecycleNode")
    return node


def test_launch_file_declares_the_documented_arguments_and_defaults():
    tree = ast.parse(LAUNCH_FILE.read_text(encoding="utf-8"))
    (function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"]
    assert not function.args.args, "ros2 launch calls generate_launch_description() without arguments"
    declared = {}
    for call in launch_calls("DeclareLaunchArgument"):
        name = ast.literal_eval(call.args[0] if call.args else keyword(call, "name"))
        assert name not in declared, f"launch argument {name} declared twice"
        assert keyword(call, "description") is not None, f"launch argument {name} has no description"
        declared[name] = keyword(call, "default_value")
    assert set(declared) == LAUNCH_ARGUMENTS
    for name, default in LAUNCH_DEFAULTS.items():
        assert ast.literal_eval(declared[name]) == default, name
    params_default = ast.unparse(declared["params_file"])
    assert f"FindPackageShare('{PACKAGE}')" in params_default
    assert "'config'" in params_default
    assert "'depth.yaml'" in params_default


def test_launch_file_starts_the_lifecycle_node_with_params_overrides_only_when_given_and_remappings():
    node = launch_node_call()
    assert keyword_literal(node, "package") == PACKAGE
    assert keyword_literal(node, "executable") == "depth_node"
    remapped = {ast.literal_eval(pair.elts[0]) for pair in keyword(node, "remappings").elts}
    from depth_estimation_ros.ros.inputs import FRAME_INPUTS

    assert remapped == {"image", "camera_info", "sparse_depth", "sparse_points", "odometry"}  # compressed: image's
    assert remapped == {"image", "camera_info", "odometry", *FRAME_INPUTS}  # every input topic is remappable
    assert {f"{name}_topic" for name in FRAME_INPUTS} <= LAUNCH_ARGUMENTS
    parameters = ast.unparse(keyword(node, "parameters"))
    assert parameters == "[LaunchConfiguration('params_file'), overrides]"  # the file first, so overrides win
    tree = ast.parse(LAUNCH_FILE.read_text(encoding="utf-8"))
    (overrides,) = [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "OVERRIDES"
    ]
    overridden = {ast.literal_eval(k) for k in overrides.keys}
    assert overridden == {"model", "backend", "scale_source", "use_sim_time", "autostart"}
    assert "!= ''" in ast.unparse(tree), "an override applies only when its argument is given"
    # The node starts itself (autostart); the launch file never drives transitions (no double configure).
    assert not launch_calls("ChangeState")
    assert not launch_calls("OnStateTransition")


def test_launch_description_builds_with_launch_ros():
    pytest.importorskip("launch_ros", reason="launch_ros comes with a ROS 2 installation")
    from launch.launch_description import LaunchDescription
    from launch_ros.actions import LifecycleNode

    spec = importlib.util.spec_from_file_location("depth_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    arguments = {a.name: a for a in description.get_launch_arguments()}
    assert set(arguments) == LAUNCH_ARGUMENTS
    assert sum(isinstance(e, LifecycleNode) for e in description.entities) == 1


# ------------------------------------------------------------------------------------------------
# docs/ros.md


def markdown_section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no '## {title}' section"
    return match.group(1)


def test_ros_docs_describe_every_parameter_launch_argument_and_topic():
    from depth_estimation_ros.ros.inputs import FRAME_INPUTS
    from depth_estimation_ros.ros.outputs import TOPICS

    text = ROS_DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|", markdown_section(text, "Parameters"), re.MULTILINE)
    assert sorted(rows) == sorted(p.name for p in PARAMETERS), "the parameters table must match parameters.py"
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|", markdown_section(text, "Install and run"), re.MULTILINE)
    assert sorted(rows) == sorted(LAUNCH_ARGUMENTS), "the launch arguments table must match the launch file"
    rows = set(re.findall(r"^\|\s*`([^`]+)`\s*\|", markdown_section(text, "Topics"), re.MULTILINE))
    inputs = {"image", "image/compressed", "camera_info", "sparse_depth", "sparse_points", "odometry"}
    assert {*inputs, "/diagnostics", *TOPICS} == rows
    assert {"image", "image/compressed", "camera_info", "odometry", *FRAME_INPUTS, "/diagnostics", *TOPICS} == rows
