"""Depth networks: one module per architecture, a registry (``build_model``), and checkpoints that
rebuild themselves."""

from depth_estimation_ros.core.models.acan import ACAN
from depth_estimation_ros.core.models.base import DepthNet
from depth_estimation_ros.core.models.checkpoint import (
    load_checkpoint,
    load_model,
    model_from_checkpoint,
    save_checkpoint,
)
from depth_estimation_ros.core.models.msfnet import MSFNet
from depth_estimation_ros.core.models.registry import build_model, list_models, model_class, register_model

__all__ = [
    "ACAN",
    "DepthNet",
    "MSFNet",
    "build_model",
    "list_models",
    "load_checkpoint",
    "load_model",
    "model_class",
    "model_from_checkpoint",
    "register_model",
    "save_checkpoint",
]
