# bot4: `make demo` and `make test` work on a fresh machine with Python 3.11 and the
# package registries. The virtual environment comes from uv.lock and is rebuilt when the
# lock or pyproject.toml changes. uv never downloads a Python.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.bot4-synced
UV := $(PYTHON) -m uv

export UV_PYTHON_DOWNLOADS := never
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help demo test lint typecheck pytest venv clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): uv.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

venv: $(STAMP)  ## create or refresh the virtual environment from uv.lock

demo: $(STAMP)  ## start every server on loopback, round-trip through each, trade, stop them
	$(VENV)/bin/bot4 demo

test: lint typecheck pytest  ## lint, type checks and the whole test suite

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)  ## mypy (strict)
	$(VENV)/bin/mypy

pytest: $(STAMP)  ## the test suite (integration tests start real servers)
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=30

clean:  ## remove the virtual environment and caches (not ./var)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
