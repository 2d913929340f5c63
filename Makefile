# One command sets up and runs each job on a fresh Debian machine: `make demo`, `make test`.
VENV        ?= .venv
PY          := $(VENV)/bin/python
OBSBUNDLE   := $(VENV)/bin/obsbundle
CONFIG      ?= obsbundle.yaml
PYTEST_ARGS ?=

# Real services the tests start on loopback; the peer exporters are for benchmarks/.
SYSTEM_PACKAGES := postgresql postgresql-contrib pgbouncer redis-server prometheus prometheus-alertmanager openssl \
                   prometheus-node-exporter chromium victoria-metrics
BENCH_PACKAGES  := prometheus-postgres-exporter prometheus-redis-exporter

.PHONY: help system system-bench venv test lint typecheck generate check demo bench clean

help:
	@echo "make test   install what is missing, then lint, check generated files and run the test suite"
	@echo "make demo   install what is missing, then run the demo (exporters + Prometheus on loopback)"
	@echo "make bench  run the benchmarks side by side with the Debian peer exporters (TENANTS=10000: the 10k case)"

system:
	@missing=""; for p in $(SYSTEM_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "installing:$$missing"; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$missing; \
	fi

system-bench:
	@$(MAKE) --no-print-directory system EXTRA_PACKAGES="$(BENCH_PACKAGES)"

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

generate: venv
	$(OBSBUNDLE) generate --config $(CONFIG)

check: venv
	$(OBSBUNDLE) check --config $(CONFIG)

test: system venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(OBSBUNDLE) check --config $(CONFIG)
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: system venv
	$(OBSBUNDLE) demo --config $(CONFIG)

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

# `make bench TENANTS=10000`: the 10,000-tenant PostgreSQL and Redis cases only (about 20 minutes)
bench: system-bench venv $(VENV)/.bench-installed
	$(PY) -m benchmarks $(if $(TENANTS),--tenants $(TENANTS))

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
