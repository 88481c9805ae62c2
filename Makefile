# Spaceport: `make up` starts the whole platform; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up down test test-fast test-random test-gpu lint format system cluster cluster-down \
	up-cluster down-cluster

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@echo "installing Spaceport and its Python dependencies into $(VENV) (first run: a few minutes)"
	$(BIN)/pip install -e '.[test,dev]'
	touch $(STAMP)

system:
	@bash scripts/install-system.sh

up: system $(STAMP)
	$(BIN)/spaceport up

down: $(STAMP)
	$(BIN)/spaceport down

# A real Swarm of NODES Docker engines on this machine, with a registry (spaceport.devcluster);
# cluster mode runs on it with its own data dir (.spaceport-cluster), same URLs and port.
NODES ?= 3
CLUSTER_ENV = eval "$$($(BIN)/spaceport cluster env)" && export SPACEPORT_DATA=$${SPACEPORT_DATA:-.spaceport-cluster} &&

cluster: system $(STAMP)
	EXTRA_PACKAGES=docker-registry bash scripts/install-system.sh
	$(BIN)/spaceport cluster up --nodes $(NODES)

cluster-down: $(STAMP)
	$(BIN)/spaceport cluster down

up-cluster: cluster
	$(CLUSTER_ENV) $(BIN)/spaceport up

down-cluster: $(STAMP)
	$(CLUSTER_ENV) $(BIN)/spaceport down

# Every test target first installs and starts the real parts the tests use
# (scripts/test-services.sh: Docker with gVisor, Redis, PostgreSQL, Chromium, nginx, wrk, ...),
# so a new machine's `make test` runs what CI runs and skips nothing.
TEST_ENV = pg=$$(bash scripts/test-services.sh) && export SPACEPORT_TEST_POSTGRES_URL="$$pg" &&

test: system $(STAMP)
	$(TEST_ENV) $(BIN)/pytest -p no:cacheprovider --durations=15 $(PYTEST_ARGS)

test-fast: system $(STAMP)
	$(TEST_ENV) $(BIN)/pytest -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

# Every test in a shuffled order (pytest-randomly): each passes alone and in any order. The
# seed is printed; PYTEST_ARGS="--randomly-seed=N" replays an order.
test-random: system $(STAMP)
	$(TEST_ENV) $(BIN)/pytest -p no:cacheprovider -p randomly $(PYTEST_ARGS)

test-gpu: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -m gpu $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
