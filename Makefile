# The two commands of the README. Both create the virtual environment on first use:
# the CPU build of torch is installed explicitly first (on Linux a bare `torch` from PyPI is the
# CUDA build, several GB), then fanin itself with its extras. The CPU build is tried from the
# configured indexes first (a local mirror or wheel directory may have it), then from PyTorch's
# CPU index; macOS wheels carry no "+cpu" label, so the plain pin is the last resort.
# Everything after torch is installed under a constraint that keeps that torch (torchvision, which
# the test extra needs, would otherwise pull the torch release it was built for).
# Recipes are silent and pip is quiet, so that `make demo` prints only the demo's output (the
# README shows it whole, and tests/test_readme.py checks that it is what `fanin demo` prints).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP := $(PY) -m pip --quiet --quiet --disable-pip-version-check
STAMP := $(VENV)/.fanin-installed

.PHONY: demo test lint docs check venv build clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	@$(PIP) install "$(TORCH_PIN)+cpu" 2>/dev/null \
	  || $(PIP) install --extra-index-url $(TORCH_INDEX) "$(TORCH_PIN)+cpu" 2>/dev/null \
	  || $(PIP) install "$(TORCH_PIN)"
	@printf '%s\n' "$(TORCH_PIN)" > $(VENV)/torch-constraint.txt
	@$(PIP) install -c $(VENV)/torch-constraint.txt -e ".[plot,audit,test,dev]"
	@touch $(STAMP)

demo: $(STAMP)
	@$(VENV)/bin/fanin demo --plot depth.png

test: $(STAMP)
	@$(PY) -m pytest

# The toolchain CI runs besides the suite: ruff (lint and format), mypy, the API reference with
# warnings as errors.
lint: $(STAMP)
	@$(VENV)/bin/ruff check --quiet src tests benchmarks scripts examples
	@$(VENV)/bin/ruff format --check --quiet src tests benchmarks scripts examples
	@$(VENV)/bin/mypy

docs: $(STAMP)
	@$(VENV)/bin/mkdocs build --strict --quiet

check: lint docs test

build: $(STAMP)
	@$(PIP) install build
	@$(PY) -m build

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache depth.png
