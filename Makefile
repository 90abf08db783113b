# Everything a user or CI runs goes through here; each target installs what it needs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
CDK_CLI_VERSION := 2.1148.1
CDK       := node_modules/.bin/cdk
ARGS      ?=
CLUSTER   ?=
REGION    ?=

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PYTHONPATH := $(CURDIR)/lambda_src:$(CURDIR)

# The Lambda runs Python 3.13: use it when this machine has it, else any Python >= 3.11.
find_python = for p in python3.13 $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3 2>/dev/null) python3.12 python3.11 python3; do \
	  if "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then echo "$$p"; break; fi; done

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt lambda_src/requirements.txt
	@py=$$($(find_python)); [ -n "$$py" ] || { echo "Python >= 3.11 is required (python3.13 preferred)" >&2; exit 1; }; \
	  echo "Creating $(VENV) with $$py"; "$$py" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(CDK): package.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create the virtualenv and install the pinned packages

.PHONY: demo
demo: $(STAMP) ## Run the collector on a simulated EKS Fargate cluster (ARGS="--format emf --pods N --cycles N")
	$(PY) -m fargate_insights demo $(ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy lambda_src/fargate_insights fargate_sim infra app.py bench

.PHONY: test
test: $(STAMP) $(CDK) lint ## All tests, lint and type checks
	$(VENV)/bin/pytest -q $(ARGS)

# First prerequisite of the targets that need a cluster: fails before anything is installed.
.PHONY: cluster-given
cluster-given:
	@[ -n "$(CLUSTER)" ] || { echo "usage: make $(MAKECMDGOALS) CLUSTER=<eks cluster name>$(if $(filter synth,$(MAKECMDGOALS)),, REGION=<region>)" >&2; exit 2; }

.PHONY: synth
synth: cluster-given $(STAMP) $(CDK) ## Write the CloudFormation template to cdk.out/ (CLUSTER=name)
	$(CDK) synth --quiet -c clusterName=$(CLUSTER) $(ARGS)

.PHONY: deploy
deploy: cluster-given $(STAMP) $(CDK) ## Deploy to your AWS account (CLUSTER=name REGION=region)
	AWS_REGION=$(or $(REGION),$$AWS_REGION) CDK_DEFAULT_REGION=$(or $(REGION),$$AWS_REGION) \
	  $(CDK) deploy -c clusterName=$(CLUSTER) $(ARGS)

.PHONY: destroy
destroy: cluster-given $(STAMP) $(CDK) ## Delete the stack (CLUSTER=name REGION=region); see "Remove" in the README
	AWS_REGION=$(or $(REGION),$$AWS_REGION) CDK_DEFAULT_REGION=$(or $(REGION),$$AWS_REGION) \
	  $(CDK) destroy -c clusterName=$(CLUSTER) $(ARGS)

.PHONY: bench
bench: $(STAMP) ## Benchmark one collection of many Fargate nodes (ARGS="--nodes N")
	$(PY) -m bench $(ARGS)

.PHONY: cpu-profile
cpu-profile: $(STAMP) ## Where the benchmark's measured run spends its CPU, from perf samples (ARGS as for bench; --by-function: by Python function too)
	$(PY) -m bench.cpu_profile $(ARGS)

.PHONY: instructions
instructions: $(STAMP) ## Instructions of the benchmark's measured run, counted by callgrind: repeatable A/B (ARGS as for bench)
	$(PY) -m bench.instructions $(ARGS)

.PHONY: clean
clean: ## Remove the virtualenv, node_modules and build output
	rm -rf $(VENV) node_modules cdk.out .build .mypy_cache .ruff_cache .pytest_cache
