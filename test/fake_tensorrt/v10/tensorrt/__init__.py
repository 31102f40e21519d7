"""A fake TensorRT 10.x Python module (see ../../api.py): for tests, on sys.path only through them."""

import importlib.util
import os
import sys

_spec = importlib.util.spec_from_file_location(
    "_fake_tensorrt_api", os.path.join(os.path.dirname(__file__), "..", "..", "api.py")
)
_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api)
_api.build(globals(), os.environ.get("FAKE_TENSORRT_VERSION", "10.3.0.30"))
sys.modules[__name__].__class__ = _api.RecordingModule
