# alarmhub — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell command -v $(PYTHON))

.PHONY: run test install proto lint typecheck clean bench k8s conformance drills fault-drills backup-drill

# Install: uv into a private tool venv, then the locked workspace into .venv; Debian packages the
# tests need (chromium, fonts, sip-tester, prometheus) through scripts/install-system.sh.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv>=0.5,<1"

install: $(UV)
	$(UV) sync --all-packages --frozen

run: install
	$(VENV)/bin/alarmhub-dev up

test: install lint typecheck
	bash scripts/install-system.sh
	$(VENV)/bin/alarmhub-proto --check
	$(VENV)/bin/pytest -m "not drill"

# Drills: long disaster-recovery exercises, run by CI after `make test` (docs/operations.md lists them).
drills: fault-drills backup-drill

# The long fault tests (marked `drill`; docs/operations.md lists them): brokers, Redis and PostgreSQL
# restarted or unreachable, consumers killed, receivers killed, replicas racing.
fault-drills: install
	bash scripts/install-system.sh
	$(VENV)/bin/pytest -m drill

# pgBackRest full backup, crash, point-in-time and end-of-archive restores on a private PostgreSQL 15
# cluster of its own (never the shared server); prints the measured RPO/RTO.
backup-drill: install
	bash scripts/install-system.sh
	$(VENV)/bin/python scripts/backup_drill.py

# Benchmarks: what they need beyond the tests (PostGIS for bench/routing.py's baseline); run the scripts
# under bench/ afterwards (docs/capacity.md lists them with their figures).
bench: install
	bash scripts/install-system.sh
	bash scripts/install-bench.sh

# The conformance corpus (tests/conformance): public decoders' frames through ours; writes docs/conformance.md.
conformance: install
	$(VENV)/bin/python tests/conformance/runner.py

# Kubernetes manifests of the example site (tests/deploy/test_k8s.py validates them and checks they are current)
k8s: install
	$(VENV)/bin/python deploy/k8s/render.py deploy/k8s/site.example.yaml > deploy/k8s/rendered/example.yaml

proto: install
	$(VENV)/bin/alarmhub-proto

# ruff; no module over 600 lines nor function over 80 (scripts/check_sizes.py, its exceptions listed there);
# dispatch's SQL only in store/ (scripts/check_sql_in_store.py, its exceptions listed there);
# no logic copied across services and libs (pylint duplicate-code, settings in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python scripts/check_sizes.py
	$(VENV)/bin/python scripts/check_sql_in_store.py
	$(VENV)/bin/pylint services/*/src/alarmhub_* libs/*/src/alarmhub_*

# mypy over libs, services, tools (simulator, admin) and bench; per-module exceptions: pyproject.toml
# [[tool.mypy.overrides]] only. bench/ runs apart: its scripts' module names (triage, dispatch…) are top-level.
typecheck: install
	$(VENV)/bin/mypy libs/*/src services/*/src tools/*/src
	$(VENV)/bin/mypy bench

clean:
	rm -rf $(VENV) $(TOOLS) .devstack artifacts
