# The two commands of the README: `make test` and `make demo`. Both create or reuse two environments:
# DEPS, the dependencies, under ~/.cache keyed by the hash of requirements.lock, shared by every checkout
# (and CI) so that PyTorch is downloaded once; and VENV, this checkout's own (.venv, made in a moment by
# tools/checkout_env.py), which holds only this checkout and sees DEPS through a .pth file. Two checkouts
# therefore never run each other's code.
PYTHON ?= python3.11
LOCK := requirements.lock
DEPS_KEY := $(shell sha256sum $(LOCK) | cut -c1-16)
DEPS ?= $(HOME)/.cache/depth_estimation_ros/venv-$(DEPS_KEY)
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: deps develop test lint demo bench clean

deps: $(DEPS)/.ready

# .ready is written last: an interrupted install is detected and redone from scratch.
$(DEPS)/.ready: $(LOCK)
	@mkdir -p $(dir $(DEPS))
	@flock $(DEPS).lock sh -c '\
	  if [ ! -f $(DEPS)/.ready ]; then \
	    rm -rf $(DEPS) && $(PYTHON) -m venv $(DEPS) && \
	    $(DEPS)/bin/pip install -q -r $(LOCK) && touch $(DEPS)/.ready; \
	  fi'

# This checkout, editable, in its own environment (fast: no dependencies, no build isolation).
develop: deps
	@flock $(DEPS).lock $(PYTHON) tools/checkout_env.py $(DEPS) $(VENV)
	@PYTHONWARNINGS=ignore $(PY) -m pip install -q --no-deps --no-build-isolation -e . >/dev/null

# Type stubs of the TensorRT 10.13 Python API, to type-check the TensorRT backend without TensorRT. Installed
# into a folder of their own (not site-packages: they are a bare tensorrt/ folder that would import as an empty
# namespace package) with --no-deps (the package depends on tensorrt itself, which does not install here).
# The generated stubs have syntax slips (parameters named `in`, a non-default parameter after defaults),
# patched after install. Keyed by version: another pin is another folder.
TRT_STUBS_VERSION := 10.13.0.35.1
TRT_STUBS := $(DEPS)/typing/tensorrt-stubs-$(TRT_STUBS_VERSION)

$(TRT_STUBS)/.ready: $(DEPS)/.ready
	@rm -rf $(TRT_STUBS) && mkdir -p $(TRT_STUBS)
	@$(DEPS)/bin/pip install -q --no-deps --target $(TRT_STUBS) tensorrt-stubs==$(TRT_STUBS_VERSION)
	@sed -i -E 's/([(,] ?)in: /\1in_: /g; s/channel_axis: int\) -> IScaleLayer/channel_axis: int = ...) -> IScaleLayer/' \
	  $(TRT_STUBS)/tensorrt_bindings/tensorrt.pyi
	@touch $@

# Depth Anything 3's own code (ByteDance's depth-anything-3 from the registry), for the test that exports its real
# network from a tiny configuration with the ika export's signature. Its requirements pin a tangle the network
# never imports (numpy<2, xformers, open3d, pycolmap, fastapi, ...), so it goes with --no-deps into a folder of its
# own with only what its model code imports; only that test's export subprocess puts it on its path. Without a
# network the install fails, says so, and the test skips saying why (nothing else depends on it).
DA3_VERSION := 0.1.1
DA3 := $(DEPS)/foreign/depth-anything-3-$(DA3_VERSION)

$(DA3)/.ready: $(DEPS)/.ready
	@rm -rf $(DA3) && mkdir -p $(DA3)
	@$(DEPS)/bin/pip install -q --no-deps --target $(DA3) depth-anything-3==$(DA3_VERSION) addict==2.4.0 \
	  omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 einops==0.8.2 && touch $@ \
	  || echo "depth-anything-3 did not install: the test with its real network skips"

lint: deps $(TRT_STUBS)/.ready
	$(DEPS)/bin/ruff check .
	$(DEPS)/bin/ruff format --check .
	MYPYPATH=$(TRT_STUBS) $(DEPS)/bin/mypy  # files and settings: [tool.mypy] in pyproject.toml

test: develop lint $(DA3)/.ready
	DEPTH_ANYTHING_3_PATH=$(DA3) $(PY) -m pytest $(PYTEST_ARGS)

demo: develop
	$(VENV)/bin/depth-estimation demo

# OPEN3D_PYTHON: an interpreter with open3d for the per-frame and outlier-filter references
# (default: the venv's own for the first; the second is skipped without it).
bench: develop $(DA3)/.ready
	$(PY) -m benchmarks.learning_check --config config/train/synthetic_acan.yaml
	$(PY) -m benchmarks.learning_check --config config/train/synthetic_msfnet.yaml
	$(VENV)/bin/depth-estimation bench --checkpoint runs/synthetic_acan/best.pt \
	  $(if $(OPEN3D_PYTHON),--open3d-python $(OPEN3D_PYTHON))
	$(PY) -m benchmarks.ros_bench qos
	$(PY) -m benchmarks.ros_bench node --model depth_estimation_ros/data/demo_acan.pt
	$(PY) -m benchmarks.navigation $(if $(OPEN3D_PYTHON),--open3d-python $(OPEN3D_PYTHON))
	$(PY) -m benchmarks.ros_bench node --model depth_estimation_ros/data/demo_acan.pt \
	  --param publish_scan:=true --param scan_height:=20
	$(PY) -m benchmarks.bench_pretrained
	$(PY) -m benchmarks.ros_bench node --model runs/bench_pretrained/fastest
	DEPTH_ANYTHING_3_PATH=$(DA3) $(PY) -m benchmarks.bench_cards
	$(PY) -m benchmarks.bench_robot

clean:
	@if [ -f $(VENV)/.made-by-depth_estimation_ros ]; then rm -rf $(VENV); fi
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache demo_output
