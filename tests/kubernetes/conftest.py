"""Fixtures for the tests against the sandbox platform on the sandbox's own
Kubernetes cluster (a real API server, kubelet and containerd, built here).

The session fixture `kube` brings the cluster and the platform up through the
CLI (`sandbox up --platform kubernetes`) when they are not healthy, and takes
them down after the last test here unless they were already up (or
SANDBOX_KUBE_DOWN_AFTER=1: down even then, as `make test` wants) or
SANDBOX_KEEP=1.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.stream import stream

from tests.harness.sandbox import SANDBOX, bring_up, heal_if_faulted, take_down
from tests.harness.sandbox import Sandbox as PlatformSandbox

KUBE_STATE = SANDBOX / "state" / "kube"
NAMESPACE = "ai-agents"


def read_kube_env() -> dict[str, str]:
    """The platform's settings on the cluster: its ConfigMap (own ports)."""
    docs = yaml.safe_load_all((SANDBOX / "k8s" / "config.yaml").read_text())
    data = next(doc for doc in docs if doc and doc["kind"] == "ConfigMap")["data"]
    return {key: str(value) for key, value in data.items()}


@dataclass
class KubeSandbox(PlatformSandbox):
    """The sandbox on Kubernetes: the API through the admin's kubeconfig, or
    the runbooks' least-privilege one."""

    platform_args: tuple[str, ...] = ("--platform", "kubernetes")
    state: Path = field(default=KUBE_STATE)

    def api(self, who: str = "admin") -> client.ApiClient:
        return config.new_client_from_config(config_file=str(KUBE_STATE / f"{who}.kubeconfig"))

    def core(self, who: str = "admin") -> client.CoreV1Api:
        return client.CoreV1Api(self.api(who))

    def apps(self, who: str = "admin") -> client.AppsV1Api:
        return client.AppsV1Api(self.api(who))

    def pods(self, label: str) -> list[client.V1Pod]:
        pods = self.core().list_namespaced_pod(NAMESPACE, label_selector=label).items
        return sorted(pods, key=lambda p: p.metadata.name)

    def exec(self, pod: str, argv: list[str], who: str = "admin") -> str:
        """stdout of a command run in the pod through the API server's exec."""
        return stream(self.core(who).connect_get_namespaced_pod_exec, pod, NAMESPACE, command=argv,
                      stderr=True, stdin=False, stdout=True, tty=False)

    def log(self, pod: str, previous: bool = False) -> str:
        # Unparsed: the client would hand back the repr of the bytes.
        return self.core().read_namespaced_pod_log(pod, NAMESPACE, previous=previous,
                                                   _preload_content=False).data.decode()


# What to do once the last test of this directory is done.
_AFTER_LAST_TEST: list[Callable[[], None]] = []


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The cluster this session brought up goes down as soon as the Kubernetes
    tests are done, not at the end of the session: the tests that follow should
    not share the machine's two cores with it."""
    here = Path(__file__).parent
    if Path(item.path).parent == here and (nextitem is None or Path(nextitem.path).parent != here):
        while _AFTER_LAST_TEST:
            _AFTER_LAST_TEST.pop()()


@pytest.fixture(scope="session")
def kube() -> KubeSandbox:
    box = KubeSandbox(read_kube_env())
    brought_up = bring_up(box, "the Kubernetes components buildable (Go and the Go module proxy) and Docker for "
                          "the platform image", 3600)
    if brought_up or os.environ.get("SANDBOX_KUBE_DOWN_AFTER") == "1":
        _AFTER_LAST_TEST.append(lambda: take_down(box))
    return box


@pytest.fixture()
def kube_healed(kube: KubeSandbox) -> Iterator[KubeSandbox]:
    """A test that injects faults ends with none active."""
    yield kube
    heal_if_faulted(kube)
