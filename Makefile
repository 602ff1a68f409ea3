# netcron: `make run` brings the whole system up on embedded servers, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck check bench chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)            ## start PostgreSQL, NATS, Temporal, api, worker and executor
	$(BIN)/netcron dev $(ARGS)

test: $(STAMP)           ## lint, type-check and run the whole test suite
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)          ## measure the scheduler on the embedded stack (see README, Performance)
	$(BIN)/netcron bench $(ARGS)

chaos: $(STAMP)          ## kill, restart and freeze each part of the stack under load (see README, Reliability)
	$(BIN)/netcron chaos $(ARGS)

clean:
	rm -rf $(VENV) .netcron .pytest_cache .mypy_cache .ruff_cache
