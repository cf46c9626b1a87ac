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

.PHONY: help demo test lint typecheck pytest venv prometheus chromium kernels chaos soak clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): uv.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

venv: $(STAMP)  ## create or refresh the virtual environment from uv.lock

prometheus:  ## install Debian's prometheus + promtool when missing (as root; never fails)
	@bash infra/prometheus/install-debian.sh

chromium:  ## install Debian's chromium for the console's browser tests when missing (as root; never fails)
	@bash infra/chromium/install-debian.sh

demo: $(STAMP) prometheus kernels  ## start every server on loopback, round-trip through each, trade, stop them
	$(VENV)/bin/bot4 demo

test: lint typecheck pytest  ## lint, type checks and the whole test suite

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)  ## mypy (strict)
	$(VENV)/bin/mypy

pytest: $(STAMP) prometheus chromium kernels  ## the test suite (integration tests start real servers)
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=30

# Compile the engine's numba kernels into their on-disk cache once, before the suite's
# processes (two workers, dozens of engines) would each compile the same ones.
kernels: $(STAMP)  ## compile the engine's kernels into numba's cache (~30 s the first time)
	$(VENV)/bin/python -m engine.live.warmup

chaos: $(STAMP)  ## the chaos suite at length: 100 scenarios of a new seed (BOT4_CHAOS_SEED, _SCENARIOS, _MINUTES)
	BOT4_CHAOS_SEED=$${BOT4_CHAOS_SEED:-$$RANDOM$$RANDOM} BOT4_CHAOS_SCENARIOS=$${BOT4_CHAOS_SCENARIOS:-100} \
		$(VENV)/bin/pytest tests/chaos --durations=10

SOAK_MINUTES ?= 60
soak: $(STAMP)  ## trade for an hour under faults; RSS, fds, queues, p99 -> var/soak/soak.{png,json} (SOAK_MINUTES)
	$(VENV)/bin/python -m tests.chaos.soak --minutes $(SOAK_MINUTES) --out var/soak

clean:  ## remove the virtual environment and caches (not ./var)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
