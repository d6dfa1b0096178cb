# Glassbox: `make run` serves the app with demo content; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test install install-dev browser-deps bootstrap serve bench clean help

help:
	@echo "make run    - set up and serve Glassbox on http://127.0.0.1:$${GLASSBOX_PORT:-8050}"
	@echo "make test   - set up and run the whole test suite (browser tests included)"
	@echo "make bench  - run the benchmarks and print their tables"

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): $(VENV)/bin/python requirements.txt pyproject.toml
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; else \
		echo "installing chromium and chromium-driver"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

bootstrap: install
	$(VENV)/bin/glassbox bootstrap

serve: install
	$(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:server

run: bootstrap
	@echo "Glassbox on http://127.0.0.1:$${GLASSBOX_PORT:-8050}  (Ctrl-C to stop)"
	$(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:server

test: install-dev browser-deps
	$(PY) -m pytest

bench: install-dev
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
