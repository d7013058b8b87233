# The two commands the README promises: `make demo` and `make test`.
# Both bootstrap first (a no-op when nothing is missing).
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export VENV

.PHONY: demo test bootstrap lint sanity molecule pytest build clean sandbox-up sandbox-down

# The main job on the embedded default: the sandbox platform comes up (images
# built locally on first run, ~3 min), shows its health, and the controller
# checks it can run the runbooks.
demo: bootstrap
	sandbox/bin/sandbox up
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

sandbox-up:
	sandbox/bin/sandbox up

sandbox-down:
	sandbox/bin/sandbox down

clean:
	rm -rf reports tests/output .pytest_cache aiagents-runbooks-*.tar.gz
