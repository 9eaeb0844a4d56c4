# WindFlow: `make run` starts the embedded server, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST := $(BIN)/pytest
WEB := web
NODE_MODULES := $(WEB)/node_modules/.package-lock.json
BUNDLE := $(WEB)/dist/index.html
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) $(wildcard $(WEB)/*.html $(WEB)/*.ts $(WEB)/*.json)

.PHONY: install run test test-sqlite test-postgres test-web lint format clean lab-up lab-down lab-status web-types

install: $(STAMP) $(BUNDLE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The web app (web/): Node and npm from Debian when the machine has none (Vite needs Node >= 20.19),
# its packages exactly as package-lock.json says, then the bundle in web/dist, rebuilt when stale.
$(NODE_MODULES): $(WEB)/package-lock.json
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm)
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_MODULES)

$(BUNDLE): $(NODE_MODULES) $(WEB_SOURCES)
	cd $(WEB) && npm run --silent build:only
	touch $(BUNDLE)

# After an API change: the OpenAPI document and the web app's types generated from it.
web-types: $(STAMP) $(NODE_MODULES)
	$(BIN)/windflow openapi > $(WEB)/openapi.json
	cd $(WEB) && npx openapi-typescript openapi.json -o src/api/schema.d.ts

# Embedded mode: SQLite in ./data, a generated development secret key, no other service.
run: install
	WINDFLOW_ENV=$${WINDFLOW_ENV:-development} $(BIN)/windflow serve

# The web app's unit tests, the whole suite on SQLite (end-to-end browser tests included), then
# everything that touches the database again on PostgreSQL.
test: install
	cd $(WEB) && npx vitest run
	WINDFLOW_TEST_ENGINE=sqlite $(PYTEST) --cov=server --cov-report=
	WINDFLOW_TEST_ENGINE=postgres $(PYTEST) --cov=server --cov-append --cov-report=term:skip-covered --cov-fail-under=85

test-sqlite: install
	WINDFLOW_TEST_ENGINE=sqlite $(PYTEST)

test-postgres: install
	WINDFLOW_TEST_ENGINE=postgres $(PYTEST)

test-web: install
	cd $(WEB) && npx vitest run

lint: install
	$(BIN)/ruff check server tests
	$(BIN)/ruff format --check server tests
	$(BIN)/mypy --strict server
	$(BIN)/lint-imports
	cd $(WEB) && npx vue-tsc --noEmit && npx eslint .

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
