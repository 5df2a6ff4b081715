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
# missing tool, builds the test image and the course image (scripts/course-image; the first time
# about 15 minutes), then runs the docker-marked tests.
test-docker: setup
	@scripts/setup-podman
	@PYTHON=$(CURDIR)/$(BIN)/python scripts/podman-test-image
	@PYTHON=$(CURDIR)/$(BIN)/python scripts/course-image
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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache gradebook.db
