# One entry point for a fresh machine: `make quickstart` sets up and runs the example job,
# `make test` sets up and runs the test suite (CI runs exactly that).
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $@

.PHONY: setup quickstart test bench
setup: $(VENV)/.installed

quickstart: setup
	$(VENV)/bin/pipeline run examples/quickstart.yaml

# Installing needs the network; the tests run without it (a network namespace with only
# loopback up, where the machine allows one), so "nothing is downloaded" stays true.
test: setup
	RAY_AUTH_MODE=disabled bash scripts/without_network.sh $(VENV)/bin/pytest -q

bench: setup
	$(VENV)/bin/python benchmarks/runner_overhead.py
