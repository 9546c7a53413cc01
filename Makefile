# The README's commands. `make run` brings up Neo4j and the API; `make test` runs every test.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench neo4j-start neo4j-stop neo4j-status clean

$(BIN)/python: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/python

run: $(BIN)/python
	$(BIN)/hopper-graph serve --port $(PORT)

test: $(BIN)/python
	$(BIN)/pytest

lint: $(BIN)/python
	$(BIN)/ruff check hopper_graph api tests bench
	$(BIN)/mypy

bench: $(BIN)/python
	$(BIN)/python -m bench

neo4j-start: $(BIN)/python
	scripts/neo4j-local start

neo4j-stop: $(BIN)/python
	scripts/neo4j-local stop

neo4j-status: $(BIN)/python
	scripts/neo4j-local status
