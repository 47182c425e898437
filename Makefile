# driftmon — every target does its own setup.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install tools lint format test demo serve bench clean

help:
	@echo "make demo   - set up, start driftmon on an embedded Redis, send drifting traffic, show the verdict"
	@echo "make test   - set up, lint (ruff, mypy --strict), run the test suite"
	@echo "make serve  - set up and run the service in the foreground"
	@echo "make bench  - print performance figures"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# promtool comes from Debian's prometheus package; tests run it against real scrapes.
tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing promtool (Debian package prometheus)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) tools lint
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/driftmon demo

serve: $(STAMP)
	$(BIN)/driftmon serve

bench: $(STAMP)
	$(BIN)/python -m bench.window_bench

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
