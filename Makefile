# Verdict: `make demo` serves a seeded study; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The Compose specification's JSON schema ships inside this wheel; tests validate
# docker-compose.yml against it (no Docker engine is needed).
COMPOSE_SCHEMA_WHEEL := docker-compose==1.29.2

.PHONY: demo test test-embedded lint fmt bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip download -q --no-deps --dest $(VENV)/vendor $(COMPOSE_SCHEMA_WHEEL)
	touch $@

demo: $(VENV)/.runtime
	./scripts/demo.sh

test: $(VENV)/.test
	$(BIN)/python scripts/run_tests.py $(ARGS)

# The suite on SQLite and the file broker, whatever servers this machine has.
test-embedded: $(VENV)/.test
	VERDICT_TEST_EMBEDDED=1 $(BIN)/python scripts/run_tests.py $(ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/python manage.py makemigrations --check --dry-run

fmt: $(VENV)/.test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(VENV)/.bench: pyproject.toml $(VENV)/.test
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script $(ARGS) || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
