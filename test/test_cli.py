import json
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

from depth_estimation_ros import __version__
from depth_estimation_ros.commands import main
from depth_estimation_ros.commands.demo import SHIPPED_MODEL


def test_console_script_is_installed_and_lists_its_subcommands():
    exe = Path(sys.executable).with_name("depth-estimation")  # console scripts live beside the interpreter
    assert exe.is_file(), f"{exe} missing: is the package installed (pip install -e .)?"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "demo" in result.stdout
    assert "models" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "depth_estimation_ros.commands", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in result.stdout


def test_models_command_reports_parameters_and_macs(capsys):
    assert main(["models", "acan:resnet18", "--height", "64", "--width", "64", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["model"] == "acan"
    assert row["backbone"] == "resnet18"
    assert 10 < row["parameters_M"] < 20
    assert row["GMACs"] > 0


def test_models_command_names_a_bad_model(capsys):
    assert main(["models", "nonet"]) == 2
    assert "unknown model 'nonet'" in capsys.readouterr().err


def test_demo_runs_the_node_in_a_graph_and_leaves_bags_logs_previews_and_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out), "--frames", "3"]) == 0  # the shipped model
    assert (out / "input_bag" / "metadata.yaml").is_file()
    assert (out / "output_bag" / "metadata.yaml").is_file()  # recorded from the live node
    assert {"node.log", "player.log", "recorder.log"} <= {p.name for p in out.glob("*.log")}
    assert len(list(out.glob("preview_*.png"))) >= 1
    assert len(list(out.glob("cloud_*.png"))) >= 1
    report = json.loads((out / "metrics.json").read_text())
    assert report["model"] == str(SHIPPED_MODEL)  # the packaged checkpoint, not a fresh training run
    assert SHIPPED_MODEL.is_file()
    assert report["graph"]["node_exit_status"] == 0
    # Every published frame is scored; one may be dropped (newest-frame handoff) while the first inference warms up.
    assert report["metrics"]["count"] == report["frames_published"] >= 2
    assert report["metrics"]["d1"] > report["constant_baseline"]["metrics"]["d1"]
    assert "AbsRel" in capsys.readouterr().out
    # --train: a model of its own (tiny here), replacing the demo's own earlier folder
    assert main(["demo", "--output", str(out), "--frames", "2", "--train", "--epochs", "1", "--train-frames", "8"]) == 0
    assert (out / "model" / "best.pt").is_file()
    (tmp_path / "mine").mkdir()
    assert main(["demo", "--output", str(tmp_path / "mine")]) == 1  # never wipes a folder it did not make


def test_package_xml_is_a_valid_ament_python_package():
    package = parse_package("package.xml")
    package.validate()
    assert package.name == "depth_estimation_ros"
    assert package.package_format == 3
    assert package.get_build_type() == "ament_python"
    exec_depends = {d.name for d in package.exec_depends}
    assert {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "launch", "launch_ros"} <= exec_depends


def test_train_and_synth_subcommands_take_their_own_options(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    assert "--resume" in capsys.readouterr().out
    assert main(["synth", str(tmp_path / "frames"), "-n", "2", "--height", "32", "--width", "48"]) == 0
    assert len(list((tmp_path / "frames" / "rgb").glob("*.png"))) == 2


def test_eval_scores_a_checkpoint_on_held_out_synthetic_frames(deployed, tmp_path, capsys):
    checkpoint, _ = deployed["acan"]
    report = tmp_path / "eval.json"
    args = ["eval", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--count", "3"]
    assert main([*args, "--height", "64", "--width", "96", "--flip", "--output-json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "| δ1 | δ2 | δ3 | AbsRel |" in out
    assert "flip on" in out
    assert "latency per image" in out
    result = json.loads(report.read_text())
    assert result["metrics"]["count"] == 3
    assert len(result["per_image"]) == 3
    assert result["flip"] is True
    assert main(["eval", "--checkpoint", str(checkpoint), "--dataset", "nyu"]) == 2
    assert "--dataset nyu needs --nyu-mat" in capsys.readouterr().err
