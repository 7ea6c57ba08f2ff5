# Two entry points for a newcomer: `make check` and `make test`.
# Each sets up .venv (once, again when pyproject.toml changes) and runs its job.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: check test serve bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## check: the contract check against the built-in mock (the main job)
check: $(STAMP)
	$(BIN)/zammad-cti check

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## serve: run the mock on 127.0.0.1:3000 with the documented configuration
serve: $(STAMP)
	$(BIN)/zammad-cti serve

## bench: mock vs Prism vs a bare WSGI app under wrk (needs wrk and npm)
bench: $(STAMP)
	cd benchmarks && npm ci --no-audit --no-fund
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
