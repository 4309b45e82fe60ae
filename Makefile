# Two entry points (README, Quickstart): `make demo` and `make test`. Each sets up .venv first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/vidrec demo

test: setup
	$(BIN)/python -m pytest -q
