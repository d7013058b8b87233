"""The sandbox cluster is real: the components built here at their pinned
versions, TLS with the keys private, the platform's pods running the real
Redis, PostgreSQL, Celery and api, exec and logs through the API server, a
webhook processed end to end, and a worker OOM-killed by its memory limit.
"""
from __future__ import annotations

import re
import ssl
import stat
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from conftest import KubeSandbox

pytestmark = pytest.mark.kubernetes
NAMESPACE = "ai-agents"
# Pinned in sandbox/kube/build/*/go.mod.
KUBERNETES_VERSION = "v1.34.4"
CONTAINERD_VERSION = "2.1.9"


def unique_ticket() -> str:
    return f"KUBE-{uuid.uuid4().hex[:8].upper()}"


def container_command(kube: KubeSandbox, pod: str) -> str:
    """The command line of the container's first process, read in the pod."""
    return kube.exec(pod, ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"])


def test_components_are_the_ones_built_here(kube: KubeSandbox) -> None:
    assert client.VersionApi(kube.api()).get_code().git_version == KUBERNETES_VERSION
    node = kube.core().read_node("127.0.0.1")
    info = node.status.node_info
    assert info.kubelet_version == KUBERNETES_VERSION
    assert info.container_runtime_version == f"containerd://{CONTAINERD_VERSION}"
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "True", ready.message


def test_api_server_speaks_tls_only_and_wants_a_client(kube: KubeSandbox) -> None:
    pki = kube.state / "pki"
    for key in pki.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for kubeconfig in kube.state.glob("*.kubeconfig"):
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600, kubeconfig
    # Plain HTTP on the TLS port is refused.
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen("http://127.0.0.1:16443/version", timeout=5).read()
    assert plain.value.code == 400 and b"HTTPS server" in plain.value.read()
    # Anonymous requests are not authorised to list anything.
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen("https://127.0.0.1:16443/api/v1/namespaces/ai-agents/pods", context=context,
                               timeout=5)
    assert refused.value.code in (401, 403)


def test_every_pod_runs_the_real_program(kube: KubeSandbox) -> None:
    # the platform's pods; a Job's (the quarterly validation's) run the EE image to completion
    pods = [p for p in kube.core().list_namespaced_pod(NAMESPACE).items
            if not any(owner.kind == "Job" for owner in p.metadata.owner_references or [])]
    assert pods and all(p.status.phase == "Running" for p in pods), [(p.metadata.name, p.status.phase) for p in pods]
    for pod in pods:
        assert pod.spec.host_network is True
        assert {c.image_pull_policy for c in pod.spec.containers} == {"Never"}
    assert "redis-server" in container_command(kube, "redis-0")
    assert re.search(r"redis_version:\d", kube.exec("redis-0", ["redis-cli", "INFO", "server"]))
    version = kube.exec("postgres-0", ["psql", "-X", "-A", "-t", "-U", kube.env["POSTGRES_ADMIN_USER"],
                                       "-d", kube.env["POSTGRES_DB"], "-c", "SHOW server_version"])
    assert version.strip().startswith("15."), version
    api = kube.pods("app=api")[0].metadata.name
    assert "aiagents_sandbox.api" in container_command(kube, api)
    assert requests.get(kube.url("api", "/healthz"), timeout=5).status_code == 200
    workers = kube.pods("app=celery-worker")
    assert len(workers) == 2
    for worker in workers:
        processes = kube.exec(worker.metadata.name, ["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"])
        assert "celery -A aiagents_sandbox.worker worker" in processes
        assert f"-n worker@{worker.metadata.name}" in processes
    alertmanager = kube.pods("app=alertmanager")[0].metadata.name
    assert "prometheus-alertmanager --config.file" in container_command(kube, alertmanager)


def test_prometheus_sends_its_alerts_to_the_clusters_alertmanager(kube: KubeSandbox) -> None:
    active = requests.get(kube.url("prometheus", "/api/v1/alertmanagers"), timeout=10).json()["data"]
    assert [am["url"] for am in active["activeAlertmanagers"]] == \
        [f"http://127.0.0.1:{kube.port('alertmanager')}/api/v2/alerts"]
    config = requests.get(kube.url("alertmanager", "/api/v2/status"), timeout=10).json()["config"]["original"]
    assert f"url: http://127.0.0.1:{kube.port('eda_webhook')}/endpoint" in config


def test_worker_logs_are_read_by_label(kube: KubeSandbox) -> None:
    workers = kube.pods("app=celery-worker")
    for worker in workers:
        log = kube.log(worker.metadata.name)
        assert f"starting worker@{worker.metadata.name}" in log
        assert re.search(rf"worker@{re.escape(worker.metadata.name)} ready", log), log[-2000:]


def test_queue_length_through_exec_in_redis_0(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    kube.cli("fault", "workers-stopped")
    assert kube.pods("app=celery-worker") == []
    redis_client = kube.redis()
    before = redis_client.llen(kube.env["QUEUE_NAME"])
    kube.cli("fault", "queue-flood", "40")
    # The runbook's own command, run where the runbook runs it, with the
    # runbooks' (least-privilege) credentials.
    llen = kube.exec("redis-0", ["redis-cli", "LLEN", kube.env["QUEUE_NAME"]], who="runbooks")
    assert int(llen) == redis_client.llen(kube.env["QUEUE_NAME"]) >= before + 10
    kube.cli("heal")
    assert len(kube.pods("app=celery-worker")) == 2
    assert redis_client.llen(kube.env["QUEUE_NAME"]) == before


def test_signed_webhook_is_processed_end_to_end(kube: KubeSandbox) -> None:
    ticket = unique_ticket()
    response = kube.signed_webhook("acme-corp", ticket)
    assert response.status_code == 202, response.text
    notes = kube.wait_for(lambda: kube.notes(ticket), 60, what="work note in the ServiceDesk Plus stand-in")
    assert notes[0]["description"].startswith("AI summary:")
    # The worker records the job after it posts the note: wait for the row too.
    rows = kube.wait_for(lambda: kube.sql("SELECT status, worker FROM enhancement_history WHERE ticket_id = %s",
                                          (ticket,)), 10, what="enhancement_history row")
    assert rows[0][0] == "success"
    assert rows[0][1] in {f"worker@{p.metadata.name}" for p in kube.pods("app=celery-worker")}


def test_worker_oom_killed_by_its_memory_limit(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    worker = kube.pods("app=celery-worker")[0]  # the one the fault picks (first by name)
    name = worker.metadata.name
    limit = worker.spec.containers[0].resources.limits["memory"]
    restarts = worker.status.container_statuses[0].restart_count
    kube.cli("fault", "worker-oom")

    def killed():
        pod = kube.core().read_namespaced_pod(name, NAMESPACE)
        status = pod.status.container_statuses[0]
        return status if status.restart_count > restarts and status.last_state.terminated else None
    status = kube.wait_for(killed, 120, 1, "the worker's restart after the kill")
    assert status.last_state.terminated.reason == "OOMKilled"
    assert status.last_state.terminated.exit_code == 137
    assert "was OOMKilled" in kube.log(name, previous=True)
    assert limit == "2Gi"
    kube.cli("heal", "worker-oom")
    assert kube.cli("status").returncode == 0


def test_runbooks_identity_is_least_privilege(kube: KubeSandbox) -> None:
    core, apps = kube.core("runbooks"), kube.apps("runbooks")
    # What the runbooks do is allowed ...
    assert core.list_namespaced_pod(NAMESPACE, label_selector="app=celery-worker").items
    assert apps.read_namespaced_deployment_scale("celery-worker", NAMESPACE).spec.replicas == 2
    assert core.read_namespaced_secret("sdp-credentials", NAMESPACE).data["api_key"]
    # ... anything else is refused.
    refused = [
        lambda: core.delete_namespace(NAMESPACE),
        lambda: core.read_namespaced_secret("sdp-credentials", "kube-system"),
        lambda: core.list_namespaced_secret(NAMESPACE),
        lambda: core.list_namespaced_pod("kube-system"),
        core.list_node,
        lambda: apps.delete_namespaced_deployment("celery-worker", NAMESPACE),
    ]
    for call in refused:
        with pytest.raises(ApiException) as denied:
            call()
        assert denied.value.status == 403, denied.value.reason
