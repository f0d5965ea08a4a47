# The two commands of the quickstart: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Serve http://127.0.0.1:8000/graphql, seeding the demo legacy databases when they are missing.
run: $(STAMP)
	$(BIN)/hub run --demo

CLIENTS := tests/clients/node_modules/.installed

# The JavaScript clients the tests drive the hub with, where Node is installed.
$(CLIENTS): tests/clients/package.json tests/clients/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/clients --silent --no-audit --no-fund && touch $(CLIENTS); \
	else echo "npm not found: the graphql-ws and Apollo Client tests will be skipped"; fi

## The whole test suite (SQLite always; PostgreSQL where a server answers).
test: $(STAMP) $(CLIENTS)
	$(BIN)/pytest -q

## Lint, the layering, strict types, the committed schema against the code, the contract, and
## breaking changes since the last release (CHANGELOG.md) and descriptions (tools/check_schema.py).
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/hub export-schema | diff -u schema.graphql -
	$(BIN)/python ../shared/tools/check_contract.py schema.graphql
	$(BIN)/python tools/check_schema.py

schema: $(STAMP)
	$(BIN)/hub export-schema > schema.graphql

PEER := bench/peer/node_modules/.installed

# The graphql-yoga peer bench/http_load.py measures the hub against (its own package-lock).
$(PEER): bench/peer/package.json bench/peer/package-lock.json
	npm ci --prefix bench/peer --silent --no-audit --no-fund && touch $(PEER)

## The in-process read benchmark, then the hub over HTTP beside the Node peer and the floor.
bench: $(STAMP) $(PEER)
	$(BIN)/python bench/read_graph.py
	$(BIN)/python bench/http_load.py

clean:
	rm -rf $(VENV) var
