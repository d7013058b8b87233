# The two commands the README promises: `make demo` and `make test`.
# Both bootstrap first (a no-op when nothing is missing).
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export VENV

.PHONY: demo test bootstrap lint sanity molecule pytest build clean

demo: bootstrap
	ansible-playbook playbooks/preflight.yml

test: bootstrap lint sanity molecule pytest
	@echo "make test: all gates passed"

bootstrap:
	@bash scripts/bootstrap.sh

lint:
	ansible-lint

sanity:
	bash scripts/sanity.sh

molecule:
	molecule test --all

pytest:
	python -m pytest

build:
	ansible-galaxy collection build --force

clean:
	rm -rf reports tests/output .pytest_cache aiagents-runbooks-*.tar.gz
