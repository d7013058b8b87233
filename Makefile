# The two commands the README promises: `make demo` and `make test`.
# Both bootstrap first (a no-op when nothing is missing).
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export VENV

.PHONY: demo test bootstrap lint sanity molecule pytest build clean sandbox-up sandbox-down kube-build

# The main job on the embedded default: the sandbox platform comes up (images
# built locally on first run, ~3 min) and shows its health, its queue is
# flooded, and the high_queue_depth runbook diagnoses it; the Markdown report
# it wrote (what goes into the incident ticket) is printed.
demo: bootstrap
	sandbox/bin/sandbox up
	sandbox/bin/sandbox heal
	sandbox/bin/sandbox fault queue-flood 300 0.8 45
	ansible-playbook playbooks/high_queue_depth.yml --tags diagnose
	cat reports/high_queue_depth/latest.md

test: bootstrap lint sanity kube-build sandbox-up molecule pytest
	@echo "make test: all gates passed"

bootstrap:
	@bash scripts/bootstrap.sh

# Molecule installs a copy of this collection into ~/.ansible/collections;
# a copy left from an earlier run would shadow the checkout for ansible-lint.
lint:
	rm -rf $(HOME)/.ansible/collections/ansible_collections/aiagents/runbooks
	ansible-lint

sanity:
	bash scripts/sanity.sh

molecule:
	molecule test --all

pytest:
	python -m pytest

build:
	ansible-galaxy collection build --force

# The Kubernetes sandbox's components (kube-apiserver, controller-manager,
# scheduler, kubelet, etcd, containerd), built once from the Go module proxy and
# cached outside the checkout: about 15 minutes the first time, nothing after.
# tests/kubernetes brings the cluster up with them.
kube-build:
	sandbox/kube/build.sh

# Molecule and the sandbox tests run on the sandbox platform; bringing it up
# as its own step (a no-op when it is up) shows its build and health plainly.
sandbox-up:
	sandbox/bin/sandbox up

sandbox-down:
	sandbox/bin/sandbox down

clean:
	rm -rf reports tests/output .pytest_cache aiagents-runbooks-*.tar.gz
