# Two commands do everything on a fresh machine (see README.md):
#   make run    -- the pipeline on the real dataset (creates .venv first if needed)
#   make test   -- the whole test suite (creates .venv first if needed)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION := $(shell cat .python-version)
# pyenv's shim honours .python-version; fall back to the versioned binary name.
BOOTSTRAP_PYTHON ?= $(shell command -v python$(basename $(PYTHON_VERSION)) || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.synced
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements.lock)

DATA_DIR ?= data
OUTPUT_DIR ?= output
RUN_ARGS ?=
TEST_ARGS ?=

export TF_CPP_MIN_LOG_LEVEL ?= 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help env run test browser bench bench-ingest bench-train bench-generalisation lock clean predict

help:
	@echo "make run   DATA_DIR=data OUTPUT_DIR=output RUN_ARGS='--stop-after validate'"
	@echo "make test  TEST_ARGS='-k ingest'"
	@echo "make bench | make lock | make clean"

env: $(STAMP)

# The environment is rebuilt whenever the lock changes. Everything comes from
# requirements.lock; the repository root is put on the path with a .pth file so
# dotted paths such as trainer.run.run_fn resolve in Beam workers too.
# Bytecode is compiled once, at install: uv does not by default, and nothing
# may write it later (PYTHONDONTWRITEBYTECODE), so every process would compile
# TF and TFX from source again (~10 s more per start; README, bench/stages).
$(STAMP): requirements.lock .python-version
	@test -n "$(BOOTSTRAP_PYTHON)" || { echo "Python $(PYTHON_VERSION) not found (install it with pyenv)"; exit 1; }
	@$(BOOTSTRAP_PYTHON) -c 'import sys; v="$(PYTHON_VERSION)".split("."); sys.exit(0 if list(map(str, sys.version_info[:2])) == v[:2] else "need Python $(PYTHON_VERSION), found " + sys.version.split()[0])'
	test -x $(PY) || $(BOOTSTRAP_PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) requirements.lock
	$(PY) -c 'import site, os; open(os.path.join(site.getsitepackages()[0], "pneumonia_pipeline.pth"), "w").write(os.getcwd() + "\n")'
	touch $(STAMP)

run: $(STAMP)
	$(PY) local_runner.py --data-dir "$(DATA_DIR)" --output-dir "$(OUTPUT_DIR)" $(RUN_ARGS)

test: $(STAMP) browser
	$(PY) -m pytest $(TEST_ARGS)

# Headless Chromium, for the run report's browser test (testing/browser.py).
# Installed from Debian's packages when we are root; otherwise explained.
browser:
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "chromium: $$(command -v chromium)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update && apt-get install -y --no-install-recommends chromium; \
	else \
	  echo "chromium not found: install it with 'sudo apt-get install -y --no-install-recommends chromium'"; \
	  echo "(Debian/Ubuntu), or put a Chromium binary named chromium on PATH; without it the browser test is skipped (and fails when CI=true)."; \
	fi

# Classify images with the newest pushed model: make predict IMAGES="a.jpeg b.png"
predict: $(STAMP)
	$(PY) predict.py --output-dir "$(OUTPUT_DIR)" $(IMAGES)

bench: bench-ingest bench-train

bench-ingest: $(STAMP)
	$(PY) -m bench.ingest

bench-train: $(STAMP)
	$(PY) -m bench.train

# Recipe variants scored on the external cohort (hours; --quick: minutes).
BENCH_ARGS ?= --quick
bench-generalisation: $(STAMP)
	$(PY) -m bench.generalisation $(BENCH_ARGS)

# Re-resolve the pins after editing requirements.in.
lock: $(STAMP)
	$(UV) pip compile requirements.in -o requirements.lock --python-version $(PYTHON_VERSION) --python-platform x86_64-manylinux_2_28

clean:
	rm -rf $(VENV) .pytest_cache
