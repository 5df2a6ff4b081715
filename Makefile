# The two commands in README.md: `make demo` (the main job) and `make test` (the tests).
# Both set up everything first; a second run skips what is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.introdl-installed

.PHONY: setup system demo hub test test-docker test-slow lint format releases data calibrate benchmark clean

setup: system $(STAMP)

system:
	@scripts/setup-system

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml scripts/setup-python
	@PYTHON=$(PYTHON) scripts/setup-python $(VENV)
	@touch $@

demo: setup
	@$(BIN)/introdl demo

# A real JupyterHub on loopback for the demo course (root: it makes Unix accounts). Ctrl-C stops it.
HUB_PORT ?= 8000
hub: setup
	@$(BIN)/introdl hub --port $(HUB_PORT)

test: setup
	@$(BIN)/ruff format --check .
	@$(BIN)/ruff check .
	@$(BIN)/mypy
	@INTRODL_BUDGET=smoke $(BIN)/pytest -m "not slow and not docker" $(PYTEST_ARGS)

# The docker backend and the course image against podman's Docker-compatible API: installs each
# missing tool, builds the test image, the course image (scripts/course-image; the first time
# about 15 minutes) and the grading workers' image on it (scripts/grader-image; seconds), then runs
# the docker-marked tests.
test-docker: setup
	@scripts/setup-podman
	@PYTHON=$(CURDIR)/$(BIN)/python scripts/podman-test-image
	@PYTHON=$(CURDIR)/$(BIN)/python scripts/course-image
	@PYTHON=$(CURDIR)/$(BIN)/python scripts/grader-image
	@$(BIN)/pytest -m docker $(PYTEST_ARGS)

test-slow: setup
	@$(BIN)/pytest -m slow $(PYTEST_ARGS)

lint: setup
	@$(BIN)/ruff format --check . && $(BIN)/ruff check . && $(BIN)/mypy

format: setup
	@$(BIN)/nbstripout --keep-id $$(git ls-files "*.ipynb") && $(BIN)/ruff format . && $(BIN)/ruff check --fix .

releases: setup
	@$(BIN)/introdl release all

data: setup
	@$(BIN)/introdl data fetch all

# Many-seed calibration of one lab's hidden tests, by the kit's one runner for every lab:
# make calibrate LAB=lab2_mnist ARGS="[MODE] --seeds 3". It runs a mode of grader_tests/<lab>/calibrate.py
# and prints the numbers that lab's CALIBRATION.md records (docs/hidden-tests.md, section 8).
calibrate: setup
	@test -n "$(LAB)" || { echo "usage: make calibrate LAB=<lab id> [ARGS=\"[MODE] --seeds N\"]; labs: $$(ls grader_tests/*/calibrate.py | cut -d/ -f2 | tr '\n' ' ')"; exit 2; }
	@test -f grader_tests/$(LAB)/calibrate.py || { echo "grader_tests/$(LAB)/calibrate.py: no such lab (every lab's grading folder has one)"; exit 2; }
	@PYTHONPATH=$(CURDIR) TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m introdl.grading.authoring $(LAB) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache gradebook.db
