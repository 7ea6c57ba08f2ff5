# Two entry points for a newcomer: `make check` and `make test`.
# Each sets up .venv (once, again when pyproject.toml changes) and runs its job.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: check test serve bench clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## check: the contract check against the built-in mock (the main job)
check: $(STAMP)
	$(BIN)/zammad-cti check

## test: the whole test suite (the inspector's browser test needs Debian's chromium)
test: $(STAMP) chromium
	$(BIN)/python -m pytest

# Playwright drives the system's Chromium (no browser downloads here). As root on
# Debian it is installed on the spot; otherwise say what to run.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "the browser test needs Chromium: sudo apt-get install chromium" >&2; exit 1; \
	  fi; }

## serve: run the mock on 127.0.0.1:3000 with the documented configuration
serve: $(STAMP)
	$(BIN)/zammad-cti serve

## bench: mock vs Prism vs a bare WSGI app (and the mock's rules alone) under wrk (needs wrk and npm)
bench: $(STAMP)
	cd benchmarks && npm ci --no-audit --no-fund
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
