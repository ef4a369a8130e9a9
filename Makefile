# The two commands of the README. Both create the virtual environment on first use:
# the CPU build of torch is installed explicitly first (a bare `torch` would pull a CUDA build),
# then fanin itself with its extras.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.fanin-installed

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[plot,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fanin demo --plot depth.png

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache depth.png
