# The two commands the README promises: `make demo` and `make test`.
# Both bootstrap first (a no-op when nothing is missing).
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export VENV

.PHONY: demo test bootstrap lint sanity molecule molecule-kubernetes pytest pytest-docker pytest-kubernetes pytest-local build clean sandbox-up sandbox-down kube-build ee

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

# The gates every change must pass. After the quick ones, the two platforms'
# gates run side by side: the Docker sandbox and the Kubernetes one share
# nothing but the machine's two cores, and one after the other they would not
# fit CI's 90 minutes. The Docker chain prints as it goes; the Kubernetes
# chain's steps and results show live, prefixed "[kubernetes]", and its whole
# output (in $(KUBE_LOG)) is printed once both are done.
KUBE_LOG ?= reports/make-test/kubernetes.log
# The scenarios `make test` runs on the cluster: every one (KUBE_SCENARIOS).
# Measured from a fresh clone beside the Docker chain: see CHANGELOG.md.
TEST_KUBE_SCENARIOS ?= $(KUBE_SCENARIOS)
# Tests that need no platform: under `make test` they run in the Kubernetes
# chain (pytest-local), beside the longer Docker chain.
PLATFORM_FREE_TESTS ?= tests/unit tests/integration
PYTEST_DOCKER_SKIP ?=
test: bootstrap lint sanity kube-build sandbox-up
	$(STEP)
	@mkdir -p $(dir $(KUBE_LOG)); rm -f $(KUBE_LOG).rc
	@{ { $(MAKE) --no-print-directory -k molecule-kubernetes pytest-kubernetes pytest-local \
	       KUBE_SCENARIOS="$(TEST_KUBE_SCENARIOS)"; \
	     echo $$? > $(KUBE_LOG).rc; \
	     echo "==== step kubernetes-done $$(date -u +%s) $$(date -u +%T)"; } 2>&1 | tee $(KUBE_LOG) \
	   | grep --line-buffered -E '^==== step|^molecule-kubernetes:|Molecule executed|^(PASSED|FAILED|ERROR) |[0-9]+ (passed|failed)' \
	   | sed -u 's/^/[kubernetes] /'; } & \
	$(MAKE) --no-print-directory -k molecule pytest-docker PYTEST_DOCKER_SKIP="$(PLATFORM_FREE_TESTS)"; docker=$$?; \
	echo "==== step docker-done $$(date -u +%s) $$(date -u +%T)"; \
	wait; kubernetes=$$(cat $(KUBE_LOG).rc 2>/dev/null || echo 1); \
	echo "==== the Kubernetes chain's output ($(KUBE_LOG)) ===="; cat $(KUBE_LOG); \
	echo "make test: Docker chain exit $$docker, Kubernetes chain exit $$kubernetes"; \
	[[ $$docker -eq 0 && $$kubernetes -eq 0 ]] && echo "make test: all gates passed"

# Under `make test` the cluster goes down as soon as the Kubernetes tests are
# done: the Docker tests still running get both cores.
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
# has Celery's layout, so high_queue_depth covers that layout here. Each
# scenario keeps its Molecule state apart from the Docker run's, which may be
# running at the same time (`make test`).
KUBE_SCENARIOS ?= high_queue_depth worker_failures database_connection_issues api_timeout tenant_onboarding
KUBE_MOLECULE_TMP ?= $(HOME)/.ansible/tmp/molecule-kubernetes
molecule-kubernetes:
	$(STEP)
	sandbox/bin/sandbox up --platform kubernetes
	failed=""; for scenario in $(KUBE_SCENARIOS); do \
	  start=$$(date +%s); result=passed; \
	  RUNBOOKS_SANDBOX_INVENTORY=inventories/sandbox_kubernetes \
	  MOLECULE_EPHEMERAL_DIRECTORY=$(KUBE_MOLECULE_TMP)/$$scenario \
	    molecule test -s $$scenario || { failed="$$failed $$scenario"; result=FAILED; }; \
	  echo "molecule-kubernetes: $$scenario $$result in $$(( $$(date +%s) - start )) s"; \
	done; \
	if [[ -n "$$failed" ]]; then echo "molecule-kubernetes: failed:$$failed"; exit 1; fi

pytest:
	$(STEP)
	python -m pytest

# The two halves of `pytest`, for the two chains of `make test`; the
# Kubernetes half keeps its cache and temporary files apart.
pytest-docker:
	$(STEP)
	python -m pytest --ignore=tests/kubernetes $(addprefix --ignore=,$(PYTEST_DOCKER_SKIP))

pytest-kubernetes:
	$(STEP)
	python -m pytest tests/kubernetes -p no:cacheprovider --basetemp=$(KUBE_MOLECULE_TMP)/pytest

# The tests that need no platform (their own Redis and PostgreSQL on
# loopback). `make test` runs them at the end of the Kubernetes chain, which
# is the shorter one, instead of in pytest-docker.
pytest-local:
	$(STEP)
	python -m pytest $(PLATFORM_FREE_TESTS) -p no:cacheprovider --basetemp=$(KUBE_MOLECULE_TMP)/pytest-local

build:
	ansible-galaxy collection build --force

# The execution environment (execution-environment.yml) as a Docker image,
# built here from the sandbox's base image; tests/kubernetes builds it too.
ee:
	$(STEP)
	scripts/build-ee

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
