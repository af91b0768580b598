# The front door. `make` lists the targets; `make run` and `make test` are all a new user needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
# One venv per platform line (docs/platforms.md): `make setup-spark35` is `make setup` with these two
# set to the EMR 7.x pins.
VENV := .venv
CONSTRAINTS := constraints.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.py featurestore-local/setup.py $(CONSTRAINTS) | cksum | cut -d' ' -f1)
AS_OF ?= 2026-10-31T00:00:00Z
CONF ?= conf/local.yaml

# Spark 4.0 needs Java 17; prefer the system JDK 17 when JAVA_HOME is not set.
JAVA17 := $(firstword $(wildcard /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/temurin-17-jdk-amd64))
export JAVA_HOME ?= $(JAVA17)
# No PYSPARK_PYTHON here: under a local master the session starts its workers on the driver's own
# interpreter (features/session.py), so `make run` and `make test` exercise what a new user's shell
# does (tests/test_readme.py runs the README's commands with no PYSPARK_* set).
# Local Spark binds to loopback only.
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: help setup setup-spark35 services run sample test test-spark35 lint typecheck bench bench-backfill bench-training clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): setup.py featurestore-local/setup.py $(CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11" >&2; exit 1; }
	@test -x "$$JAVA_HOME/bin/java" || command -v java >/dev/null || { echo "error: Java 17 not found; install openjdk-17-jre-headless" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,dev]" -e featurestore-local
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## create .venv: the project with pinned dependencies, test/dev tools, the local Feature Store runtime

services: ## install what the tests start or run: PostgreSQL, MariaDB, shellcheck, Chromium (Debian; needs root)
	@if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && [ -x /usr/sbin/mariadbd ] && command -v shellcheck >/dev/null && command -v chromium >/dev/null; then \
		echo "postgresql, mariadb, shellcheck and chromium already installed"; \
	else \
		set -e; apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql mariadb-server shellcheck chromium >/dev/null; \
		service postgresql stop >/dev/null 2>&1 || true; service mariadb stop >/dev/null 2>&1 || true; \
	fi

sample: $(STAMP) ## generate the deterministic sample data under data/sample
	$(BIN)/feature-pipeline generate-sample --out data/sample

run: sample ## run the whole pipeline on the sample data (all groups, fixed as-of time), the skew check, the HTML catalog
	$(BIN)/build-features --conf $(CONF) --group all --as-of $(AS_OF)
	$(BIN)/feature-pipeline skew-check --conf $(CONF) --group all --sample 500
	$(BIN)/feature-pipeline catalog html --conf $(CONF) --out out/catalog

test: $(STAMP) ## run the test suite
	$(BIN)/pytest

# The EMR 7.x line (Spark 3.5.6, Delta 3.3.2) in its own venv; the same suite must pass on both.
SPARK35 := VENV=.venv-spark35 CONSTRAINTS=constraints-spark35.txt

setup-spark35: ## create .venv-spark35: as `make setup`, pinned to EMR 7.x (Spark 3.5.6, Delta 3.3.2)
	$(MAKE) --no-print-directory setup $(SPARK35)

test-spark35: ## run the test suite on Spark 3.5.6 / Delta 3.3.2 (in .venv-spark35)
	$(MAKE) --no-print-directory test $(SPARK35)

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check features featurestore-local jobs tests bench bootstrap
	$(BIN)/ruff format --check features featurestore-local jobs tests bench bootstrap
	$(BIN)/mypy features featurestore-local/featurestore_local jobs bootstrap/package.py

bench: $(STAMP) ## run the benchmarks (~20 min; generates 1M and 10M events) -> bench/*RESULTS.md, bench/COST_MODEL.md
	$(BIN)/python bench/run_bench.py
	$(BIN)/python bench/push_bench.py
	$(BIN)/python bench/validate_bench.py
	$(BIN)/python bench/cost_model.py

bench-backfill: $(STAMP) ## backfill benchmark P2: 30 daily snapshots from tiles vs 30 single runs -> bench/BACKFILL_RESULTS.md
	$(BIN)/python bench/backfill_bench.py

bench-training: $(STAMP) ## training-set benchmark: 1M labels x 3 groups x 60 snapshots vs a naive range join -> bench/TRAINING_RESULTS.md
	$(BIN)/python bench/training_bench.py

# The artifacts EMR and EMR Serverless run (docs/packaging.md); the archive holds $(CONSTRAINTS)'s pins:
# `make package VENV=.venv-spark35 CONSTRAINTS=constraints-spark35.txt DIST=dist-emr7` builds EMR 7.x's.
.PHONY: package
DIST ?= dist

package: $(STAMP) ## build dist/: wheel, EMR Serverless venv archive, --py-files zip, jobs, manifest.json (~2 min)
	$(BIN)/python bootstrap/package.py build --dist $(DIST) --python $(PYTHON) --constraints $(CONSTRAINTS)

clean: ## remove generated data, outputs and caches (keeps .venv)
	rm -rf data out bench/data .pytest_cache .mypy_cache .ruff_cache spark-warehouse metastore_db derby.log
	find . -name __pycache__ -prune -exec rm -rf {} +
