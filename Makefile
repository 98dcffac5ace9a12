# Two commands do all the set-up on a fresh clone:
#   make quickstart   create .venv, install Mentor (CPU torch 2.13.0) and run `mentor run quickstart`
#   make test         the same set-up plus the dev tools, then the whole test suite
#   make test-newest  the test suite again in .venv-newest, on the newest torch this machine's pip offers
#                     (NEWEST), with torchvision and timm (their PyPI wheels need that torch, not the CPU 2.13.0)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
PIP := $(PY) -m pip install --disable-pip-version-check --quiet
NEWEST ?= torch==2.14.1 torchvision==0.29.1
NEWEST_VENV ?= .venv-newest
NEWEST_PY := $(NEWEST_VENV)/bin/python

.PHONY: quickstart test test-newest lint docs data clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.mentor: pyproject.toml | $(PY)
	$(PIP) "$(TORCH)"
	$(PIP) -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.mentor
	$(PIP) -e ".[dev]"
	@touch $@

quickstart: $(VENV)/.mentor
	$(VENV)/bin/mentor run quickstart

test: $(VENV)/.dev
	$(PY) -m pytest

$(NEWEST_VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_PY) -m pip install --disable-pip-version-check --quiet $(NEWEST)
	$(NEWEST_PY) -m pip install --disable-pip-version-check --quiet -e ".[dev,timm,torchvision]"
	@touch $@

test-newest: $(NEWEST_VENV)/.dev
	$(NEWEST_PY) -c "import torch; print('torch', torch.__version__)"
	$(NEWEST_PY) -m pytest

lint: $(VENV)/.dev
	$(PY) -m ruff check src tests

docs: $(VENV)/.dev
	$(VENV)/bin/mkdocs build --strict --site-dir site

# Fashion-MNIST for the benchmarks (Debian package; needs root)
data:
	apt-get install -y dataset-fashion-mnist

clean:
	rm -rf $(VENV) $(NEWEST_VENV) build src/*.egg-info
