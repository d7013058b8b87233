"""Fixtures for the tests against the sandbox platform on the sandbox's own
Kubernetes cluster (a real API server, kubelet and containerd, built here).

The session fixture `kube` brings the cluster and the platform up through the
CLI (`sandbox up --platform kubernetes`) when they are not healthy, and takes
them down at the end unless they were already up or SANDBOX_KEEP=1.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.stream import stream

from tests.harness.sandbox import SANDBOX, heal_if_faulted, running
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
        return self.core().read_namespaced_pod_log(pod, NAMESPACE, previous=previous)


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeSandbox]:
    yield from running(KubeSandbox(read_kube_env()), "the Kubernetes components buildable (Go and the Go "
                       "module proxy) and Docker for the platform image", 3600)


@pytest.fixture()
def kube_healed(kube: KubeSandbox) -> Iterator[KubeSandbox]:
    """A test that injects faults ends with none active."""
    yield kube
    heal_if_faulted(kube)
