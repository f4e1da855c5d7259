# oms-auth: every target works from a fresh clone; the first one run creates .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Test files run on this many workers (most tests wait on servers, not on the CPU).
TEST_JOBS ?= 4
# Whole files per worker (a file's servers start once), longest files first (tests/conftest.py
# orders them; xdist would otherwise send the files with the most tests first).
TEST_DIST := --dist loadfile --no-loadscope-reorder
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run serve migrate test test-loaded test-fast lint fmt policy-lint policy-test bench load chaos install clean help

help:
	@echo "make run          create .venv, install, migrate, serve on http://127.0.0.1:8001"
	@echo "make test         install test tools, check services, lint, run the whole suite"
	@echo "make test-loaded  the same beside busy loops on every core (it must still pass)"
	@echo "make lint | fmt   ruff + mypy --strict | ruff format"
	@echo "make migrate      apply database migrations"
	@echo "make policy-lint  lint policies/ | make policy-test  run policies/tests/*_test.yaml"
	@echo "make bench        benchmarks (ratios against baselines measured in the same run)"
	@echo "make load         1000 simulated users on 2 instances + PostgreSQL + Redis (reports/)"
	@echo "make chaos        kill Redis / stop PostgreSQL under 2 instances, check, report (reports/)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

run: install
	$(BIN)/oms-auth migrate
	exec $(BIN)/oms-auth serve

migrate: install
	$(BIN)/oms-auth migrate

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

policy-lint: install
	$(BIN)/oms-auth policy lint --strict policies policies/examples/abac policies/examples/rbac_with_domains \
		policies/examples/authzen-todo policies/examples/authzen-gateway policies/examples/authzen-search

policy-test: install
	$(BIN)/oms-auth policy test policies

# mypy --strict runs beside the suite (the tests mostly wait on servers): its output is printed
# after the tests' and either failing fails the target.
test: install
	$(BIN)/python -m tests.services_check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory policy-lint policy-test
	@mkdir -p var; echo "$(BIN)/mypy > var/mypy.log (beside the tests)"; \
	$(BIN)/mypy > var/mypy.log 2>&1 & mypy=$$!; \
	echo "$(BIN)/pytest -q -n $(TEST_JOBS) $(TEST_DIST)"; \
	$(BIN)/pytest -q -n $(TEST_JOBS) $(TEST_DIST); tests=$$?; \
	wait $$mypy; types=$$?; \
	echo "--- mypy --strict (exit $$types):"; cat var/mypy.log; \
	test $$tests -eq 0 && test $$types -eq 0

# The whole suite beside busy loops of its own (one per core unless HOGS=N): it must pass.
HOGS ?= $(shell nproc 2>/dev/null || echo 2)
test-loaded: install
	$(BIN)/python -m tests.loaded --hogs $(HOGS) -- $(MAKE) --no-print-directory test

test-fast: install
	$(BIN)/pytest -q -x -m "not e2e and not slow"

bench: install
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench]'
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y -q wrk >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1) \
		|| echo "wrk could not be installed; the bench uses its asyncio load generator"
	$(BIN)/python -m bench

# LOAD_ARGS="--users 1000 --duration 60 [--no-redis] [--no-decision-cache]"
LOAD_ARGS ?= --users 1000 --duration 60
load: install
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python -m bench.scenario $(LOAD_ARGS)

# CHAOS_ARGS="--iterations 5 --window 10" (each fault lasts --window seconds)
CHAOS_ARGS ?= --iterations 5 --window 10
chaos: install
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
