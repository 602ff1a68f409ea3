# netcron: `make run` brings the whole system up on embedded servers, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test browser lint typecheck check bench chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)            ## start PostgreSQL, NATS, Temporal, api, worker and executor
	$(BIN)/netcron dev $(ARGS)

test: $(STAMP) browser   ## lint, type-check and run the whole test suite
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/pytest $(ARGS)

# The console's browser tests drive Debian's Chromium; installed here only when it is
# missing and apt-get can run. Without it those tests skip, saying why.
browser:                 ## the system Chromium the console's browser tests use
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium for the console's browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "chromium could not be installed: the browser tests will be skipped"; \
	fi

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
