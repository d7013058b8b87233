# The two commands the README promises: `make demo` and `make test`.
# Both bootstrap first (a no-op when nothing is missing).
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export VENV

.PHONY: demo test bootstrap lint sanity molecule molecule-kubernetes molecule-kubernetes-all pytest build clean sandbox-up sandbox-down kube-build

# Each gate says when it starts (.ci/run sums them up at the end).
STEP = @echo "==== step $@ $$(date -u +%s) $$(date -u +%T)"

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

test: bootstrap lint sanity kube-build sandbox-up molecule molecule-kubernetes pytest
	$(STEP)
	@echo "make test: all gates passed"

# Under `make test` the cluster that molecule-kubernetes left up goes down once
# the Kubernetes tests are done: the Docker tests after them get both cores.
test: export SANDBOX_KUBE_DOWN_AFTER = 1

bootstrap:
	$(STEP)
	@bash scripts/bootstrap.sh

# Molecule installs a copy of this collection into ~/.ansible/collections;
# a copy left from an earlier run would shadow the checkout for ansible-lint.
lint:
	$(STEP)
	rm -rf $(HOME)/.ansible/collections/ansible_collections/aiagents/runbooks
	ansible-lint

sanity:
	$(STEP)
	bash scripts/sanity.sh

molecule:
	$(STEP)
	molecule test --all

# The scenarios again, on the sandbox platform on the sandbox's own Kubernetes
# cluster: the same playbooks and assertions, the other inventory. Its queue
# has Celery's layout, so high_queue_depth covers that layout here. `make
# test` runs that one, within CI's 90 minutes; `make molecule-kubernetes-all`
# runs every scenario (about 45 minutes more).
KUBE_SCENARIOS ?= high_queue_depth
molecule-kubernetes:
	$(STEP)
	sandbox/bin/sandbox up --platform kubernetes
	for scenario in $(KUBE_SCENARIOS); do \
	  RUNBOOKS_SANDBOX_INVENTORY=inventories/sandbox_kubernetes molecule test -s $$scenario || exit 1; \
	done

molecule-kubernetes-all:
	$(MAKE) molecule-kubernetes \
	  KUBE_SCENARIOS="high_queue_depth worker_failures database_connection_issues api_timeout tenant_onboarding"

pytest:
	$(STEP)
	python -m pytest

build:
	ansible-galaxy collection build --force

# The Kubernetes sandbox's components (kube-apiserver, controller-manager,
# scheduler, kubelet, etcd, containerd), built once from the Go module proxy and
# cached outside the checkout: about 15 minutes the first time, nothing after.
# tests/kubernetes brings the cluster up with them.
kube-build:
	$(STEP)
	sandbox/kube/build.sh

# Molecule and the sandbox tests run on the sandbox platform; bringing it up
# as its own step (a no-op when it is up) shows its build and health plainly.
sandbox-up:
	$(STEP)
	sandbox/bin/sandbox up

sandbox-down:
	sandbox/bin/sandbox down

clean:
	rm -rf reports tests/output .pytest_cache aiagents-runbooks-*.tar.gz
