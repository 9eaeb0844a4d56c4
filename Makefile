# WindFlow: `make run` starts the embedded server, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST := $(BIN)/pytest

.PHONY: install run test test-sqlite test-postgres lint format clean lab-up lab-down lab-status

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Embedded mode: SQLite in ./data, a generated development secret key, no other service.
run: install
	WINDFLOW_ENV=$${WINDFLOW_ENV:-development} $(BIN)/windflow serve

# The whole suite on SQLite, then everything that touches the database again on PostgreSQL.
test: install
	WINDFLOW_TEST_ENGINE=sqlite $(PYTEST) --cov=server --cov-report=
	WINDFLOW_TEST_ENGINE=postgres $(PYTEST) --cov=server --cov-append --cov-report=term:skip-covered --cov-fail-under=85

test-sqlite: install
	WINDFLOW_TEST_ENGINE=sqlite $(PYTEST)

test-postgres: install
	WINDFLOW_TEST_ENGINE=postgres $(PYTEST)

lint: install
	$(BIN)/ruff check server tests
	$(BIN)/ruff format --check server tests
	$(BIN)/mypy --strict server
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format server tests
	$(BIN)/ruff check --fix server tests

# The target lab (Docker engine, SSH hosts, a VM, Kubernetes) for people and benchmarks;
# `lab-up` writes an Ansible inventory of all four kinds to .lab/inventory.yml.
lab-up: install
	$(BIN)/python -m tests.lab up

lab-down: install
	$(BIN)/python -m tests.lab down

lab-status: install
	$(BIN)/python -m tests.lab status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
