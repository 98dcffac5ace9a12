# Two commands do all the set-up on a fresh clone:
#   make quickstart   create .venv, install Mentor (CPU torch 2.13.0) and run `mentor run quickstart`
#   make test         the same set-up plus the dev tools, then the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
PIP := $(PY) -m pip install --disable-pip-version-check --quiet

.PHONY: quickstart test lint docs data clean

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

lint: $(VENV)/.dev
	$(PY) -m ruff check src tests

docs: $(VENV)/.dev
	$(VENV)/bin/mkdocs build --strict --site-dir site

# Fashion-MNIST for the benchmarks (Debian package; needs root)
data:
	apt-get install -y dataset-fashion-mnist

clean:
	rm -rf $(VENV) build src/*.egg-info
