"""Monocular metric depth for robots, in layers (docs/architecture.md): ``core`` (camera model, model
cards, networks, backends, estimator, anchoring, clouds), ``deploy`` (ONNX export, int8, engines),
``ros`` (messages, the frame road, the node, bags), ``commands`` (the ``depth-estimation`` CLI)."""

__version__ = "0.1.0"

from depth_estimation_ros import _aliases

_aliases.install()
