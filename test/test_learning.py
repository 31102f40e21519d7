"""End to end: a small ACAN trained for a minute on generated scenes beats the best constant depth.

The full-size version of this check (more data, more epochs) is ``python -m benchmarks.learning_check``,
whose numbers are in docs/benchmarks.md.
"""

from depth_estimation_ros.core.estimator import DepthEstimator
from training.datasets.synthetic import SyntheticDataset
from training.evaluate import evaluate, evaluate_constant, median_depth
from training.train import Trainer, load_config

CONFIG = [
    "data.train={length: 256, kind: indoor, height: 64, width: 96, seed: 0}",
    "data.val={length: 8, kind: indoor, height: 64, width: 96, seed: 900000}",
    "data.input_size=[64, 96]",
    "train.epochs=5",
    "train.batch_size=8",
]


def test_short_cpu_training_beats_a_constant_depth_predictor_on_held_out_frames(tmp_path):
    config = load_config("config/train/synthetic_acan.yaml", [*CONFIG, f"output={tmp_path}"])
    Trainer(config).fit()
    held_out = SyntheticDataset(24, kind="indoor", height=64, width=96, seed=2_000_000)
    constant = evaluate_constant(median_depth(SyntheticDataset(**config["data"]["train"])), held_out, crop=None)
    model = evaluate(DepthEstimator(tmp_path / "best.pt", "torch"), held_out, crop=None)["metrics"]
    assert model["abs_rel"] < 0.8 * constant["abs_rel"], (model, constant)
    assert model["d1"] > constant["d1"] + 0.1, (model, constant)
