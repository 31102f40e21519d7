"""Deployment steps, run where the model is deployed: ONNX export (fp32, fp16 and int8 graphs) and
static int8 quantisation. TensorRT engines are built by the TensorRT backend
(:func:`depth_estimation_ros.core.backends.tensorrt_backend.build_engine`). Imports the core only.
"""

from depth_estimation_ros._lazy import exports

PUBLIC = {"export_onnx": "export"}
__all__ = sorted(PUBLIC)
__getattr__, __dir__ = exports(__name__, PUBLIC)
