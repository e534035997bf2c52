# The README's quick start: `make up` runs the whole system, `make test` runs every test.
# Both install what they need first; a fresh clone needs only python3 (3.11+), Java 17 and npm
# (and, for `make test`'s LocalStack lane, a Python 3.12+ such as python3.13).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
# uv from PATH when there is one; otherwise the copy `install` bootstraps into .local/uv.
UV ?= $(shell command -v uv 2>/dev/null || echo .local/uv/bin/uv)
VENV_PYTHON := .venv/bin/python
# Keep in step with WIREMOCK_NPM_VERSION in stack/wiremock_server.py, which installs it.
WIREMOCK_VERSION := 3.13.2
WIREMOCK_JAR := .local/wiremock/node_modules/wiremock/build/wiremock-standalone-$(WIREMOCK_VERSION).jar
PYTEST_ARGS ?=

.PHONY: help up test install localstack

help:
	@echo "make up       run the whole system in the foreground (Ctrl-C stops it)"
	@echo "make test     run the whole test suite (DATABASE_URL, when set, is the Postgres to test against)"
	@echo "make install  install uv if missing, the virtualenv (uv sync --frozen), the WireMock jar and promtool (as root)"
	@echo "make localstack  run LocalStack on port 4566 (installing it first); then AWS_ENDPOINT_URL=http://localhost:4566 make up"

up: install
	$(VENV_PYTHON) -m stack up

# Compiled once here, because PYTHONDONTWRITEBYTECODE (set on many machines, CI's included) would
# otherwise make every service process compile its imports again: seconds each, dozens of times per test run.
#
# The end-to-end tests run on LocalStack too. It is installed here, outside the tests' time limits
# (a minute the first time, then nothing), into .local/localstack; `install` leaves it out, since
# `make up` runs on moto. If it cannot be installed, say so and run the tests anyway: the LocalStack
# ones then fail, each with the reason, and the rest still report.
test: install
	@UV=$(UV) $(VENV_PYTHON) -m stack.localstack --install-only \
	  || echo "*** LocalStack could not be installed (above); its tests will fail ***" >&2
	$(UV) run --frozen python -m pytest $(PYTEST_ARGS)

install: $(UV)
	$(UV) sync --frozen --compile-bytecode
	@test -f $(WIREMOCK_JAR) || $(VENV_PYTHON) -c "from stack.wiremock_server import ensure_wiremock_jar as e; print(e())"
	@# promtool (Debian package prometheus) checks monitoring/alerts.yml in tests/infra/test_monitoring.py.
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "warning: promtool is missing; tests/infra/test_monitoring.py will fail. Install it: sudo apt-get install -y prometheus" >&2; \
	  fi; \
	}

localstack: install
	UV=$(UV) $(VENV_PYTHON) -m stack.localstack

.local/uv/bin/uv:
	$(PYTHON) -m venv .local/uv
	.local/uv/bin/pip install --quiet uv==$(UV_VERSION)
