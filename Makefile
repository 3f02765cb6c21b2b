# Two commands do all set-up on a fresh machine:
#   make demo   -- create the environment and run the example analysis (Scale of Harm design:
#                  victims and offenders by municipality, maps and report in results/demo/)
#   make test   -- create the environment and run the tests (fast tier, then slow tier)
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
export PYTENSOR_FLAGS ?= compiledir=$(CURDIR)/.pytensor
export NUMBA_CACHE_DIR ?= $(CURDIR)/.pytensor/numba
export MPLBACKEND ?= Agg

.PHONY: setup browser demo test test-fast test-slow lint docs benchmarks clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@PY=$$(scripts/find_python.sh) || exit 1; \
	echo "using $$PY ($$($$PY --version))"; \
	[ -x $(BIN)/python ] || $$PY -m venv $(VENV); \
	$(BIN)/python -m pip install -q --upgrade pip && \
	$(BIN)/python -m pip install -q -e ".[test,docs,maps]" && touch $@

# The report test renders report.html in headless Chromium (Debian package); without it that
# one test is skipped with a message.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "chromium not installed: the browser rendering test will be skipped"

demo: setup
	$(BIN)/bayes-nsum demo --out results/demo

test: setup browser
	$(BIN)/python -m pytest -m "not slow" -q
	$(BIN)/python -m pytest -m slow -q

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: setup browser
	$(BIN)/python -m pytest -m slow -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

docs: setup
	$(BIN)/mkdocs build --strict

benchmarks: setup
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytensor results site
