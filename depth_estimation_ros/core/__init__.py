"""The inference core: camera model, model cards, ordinal bins, networks and checkpoints, backends,
the estimator, metric anchoring, point clouds and metrics. No ROS, no commands, no training.

The public home of the Python API that scripts and ML users import:

    from depth_estimation_ros.core import DepthEstimator, CameraModel, build_model, load_model
"""

from depth_estimation_ros._lazy import exports

PUBLIC = {
    "Anchor": "anchoring",
    "CameraModel": "camera",
    "DepthEstimator": "estimator",
    "ModelCard": "card",
    "OrdinalBins": "ordinal",
    "build_model": "models",
    "compute_metrics": "metrics",
    "depth_to_points": "pointcloud",
    "list_models": "models",
    "load_model": "models",
    "render_scene": "scenes",
    "save_checkpoint": "models",
    "save_layout": "models.transformers_layouts",
}
__all__ = sorted(PUBLIC)
__getattr__, __dir__ = exports(__name__, PUBLIC)
