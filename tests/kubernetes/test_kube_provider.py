"""The platform role's Kubernetes provider on the sandbox cluster, through kubernetes.core, with the
runbooks' least-privilege account (inventories/sandbox_kubernetes): each operation, and what it changed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import WORKER_RECORD
from tests.harness.ansible import REPO, run_module, run_playbook
from tests.harness.sandbox import SANDBOX

if TYPE_CHECKING:
    from conftest import KubeSandbox

pytestmark = pytest.mark.kubernetes

NAMESPACE = "ai-agents"
KUBE_STATE = SANDBOX / "state" / "kube"
INVENTORY = REPO / "inventories" / "sandbox_kubernetes"
PLAYBOOK = REPO / "tests" / "kubernetes" / "playbooks" / "provider.yml"


def operation(op: str, show: list[str] | None = None, **extravars: Any) -> dict[str, Any]:
    """Run one platform operation; returns {fact: value} for the facts asked for."""
    run = run_playbook(PLAYBOOK, {"op": op, "show": show or [], **extravars}, inventory=str(INVENTORY))
    assert run.rc == 0, run.stdout[-3000:]
    for result in run.results:
        if result.get("_task") == "Show a fact the operation set":
            return {item["item"]: item[item["item"]] for item in result.get("results", [])}
    return {}


def workers(kube: KubeSandbox, **args: Any) -> dict[str, Any]:
    run = run_module("aiagents.runbooks.kubernetes_workers_info", {
        "deployment": "celery-worker", "namespace": NAMESPACE, "kubeconfig": str(KUBE_STATE / "runbooks.kubeconfig"),
        "env_keys": ["DATABASE_POOL_SIZE", "HTTPX_TIMEOUT", "CELERY_CONCURRENCY"], "findings": True, **args})
    assert run.rc == 0, run.stdout[-2000:]
    return run.result


def test_workers_from_pods_are_the_record_every_provider_returns(kube_healed: KubeSandbox) -> None:
    # A job done, so that the logs hold what the runbooks read in them.
    ticket = f"PODS-{time.time_ns()}"
    assert kube_healed.signed_webhook("acme-corp", ticket).status_code == 202
    kube_healed.wait_for(lambda: kube_healed.notes(ticket), 60, what="the job processed")
    result = workers(kube_healed)
    assert len(result["containers"]) == 2 and result["running"] == 2
    for record in result["containers"]:
        assert set(record) == set(WORKER_RECORD), set(record) ^ set(WORKER_RECORD)
        for field, (types, _meaning) in WORKER_RECORD.items():
            assert isinstance(record[field], types), (field, record[field])
        assert record["state"] == "running" and record["health"] == "healthy"
        assert record["memory_limit_bytes"] == 2 * 2**30
        # Settings the pod gets from the platform's ConfigMap (envFrom).
        assert record["env"] == {"DATABASE_POOL_SIZE": "5", "HTTPX_TIMEOUT": "30", "CELERY_CONCURRENCY": "4"}
        # Log lines, one by one (the client alone would give the repr of the body's bytes, one line).
        assert len(record["log_tail"]) > 1 and not any(line.startswith("b'") for line in record["log_tail"])
    assert any(ticket in str(record["signals"]["last_job"]) for record in result["containers"])
    assert sum(record["signals"]["jobs_succeeded"] for record in result["containers"]) >= 1
    assert result["deployment"]["replicas"] == 2 and result["deployment"]["ready_replicas"] == 2
    assert [finding["id"] for finding in result["findings"]] == []


def test_an_oom_killed_worker_reads_as_it_does_on_docker(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    name = kube.pods("app=celery-worker")[0].metadata.name
    kube.cli("fault", "worker-oom")

    seen_dead = []

    def restarted():
        record = next(r for r in workers(kube, log_lines=200)["containers"] if r["name"] == name)
        if record["oom_killed"] and record["restart_count"] == 0:
            seen_dead.append(record)  # killed, not yet restarted by the kubelet
        return record if record["oom_killed"] and record["restart_count"] >= 1 else None
    record = kube.wait_for(restarted, 180, 3, "the worker's OOM kill and restart, seen by the runbooks' account")
    assert all(dead["state"] == "exited" and not dead["running"] for dead in seen_dead)
    assert record["exit_code"] == 137
    # The pods are younger than an hour: their restarts in the hour are exact.
    assert record["restarts_last_hour"] == record["restart_count"]
    result = workers(kube, log_lines=200)
    oom = next(finding for finding in result["findings"] if finding["id"] == "worker_oom_killed")
    assert name in oom["summary"] and oom["severity"] == "high"
    # The provider replaces that pod alone; the new one has no past, and the others are untouched.
    kube.cli("heal", "worker-oom")
    operation("restart_workers", platform_worker_names=[name])
    assert [f["id"] for f in workers(kube)["findings"]] == []


def test_scale_and_restart_the_workers(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    before = {pod.metadata.name for pod in kube.pods("app=celery-worker")}
    operation("scale_workers", platform_workers_replicas=3)
    assert kube.apps().read_namespaced_deployment("celery-worker", NAMESPACE).status.ready_replicas == 3
    operation("scale_workers", platform_workers_replicas=2)
    ready = kube.apps().read_namespaced_deployment("celery-worker", NAMESPACE).status
    assert ready.ready_replicas == 2 and ready.replicas == 2
    # One named worker alone: replaced, the other untouched.
    one = sorted(before)[0]
    operation("restart_workers", platform_worker_names=[one])
    after = {pod.metadata.name for pod in kube.pods("app=celery-worker") if not pod.metadata.deletion_timestamp}
    assert one not in after and (before - {one}) <= after and len(after) == 2
    # All of them, rolling: every pod new, the rollout finished when the task returns.
    operation("restart_workers")
    deployment = kube.apps().read_namespaced_deployment("celery-worker", NAMESPACE)
    assert "kubectl.kubernetes.io/restartedAt" in deployment.spec.template.metadata.annotations
    assert deployment.status.updated_replicas == 2 and deployment.status.ready_replicas == 2
    # A replaced pod may still be finishing its job (terminating): it is no longer a worker.
    running = {pod.metadata.name for pod in kube.pods("app=celery-worker") if not pod.metadata.deletion_timestamp}
    assert len(running) == 2 and not after & running


def test_a_setting_and_the_memory_limit_roll_the_workers_onto_them(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    operation("set_worker_env", platform_worker_env={"HTTPX_TIMEOUT": 60})
    operation("set_worker_memory_limit", platform_worker_memory_limit_bytes=3 * 2**30)
    records = workers(kube)["containers"]
    assert len(records) == 2 and all(r["running"] for r in records)
    assert {r["env"]["HTTPX_TIMEOUT"] for r in records} == {"60"}
    assert {r["memory_limit_bytes"] for r in records} == {3 * 2**30}
    # A runbook's change outlives a re-apply of the manifests (another field manager owns it); heal undoes it.
    kube.cli("heal")
    assert {r["env"]["HTTPX_TIMEOUT"] for r in workers(kube)["containers"]} == {"30"}


def test_a_database_restart_replaces_postgres_0_and_waits_until_ready(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    uid = kube.core().read_namespaced_pod("postgres-0", NAMESPACE).metadata.uid
    started = time.monotonic()
    operation("restart_service", platform_service="postgres")
    took = time.monotonic() - started
    pod = kube.core().read_namespaced_pod("postgres-0", NAMESPACE)
    assert pod.metadata.uid != uid and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    assert took <= 300


def test_a_secret_is_written_mounted_read_and_removed(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    secret = {"platform_secret_name": "tenant-provider-test-sdp", "platform_secret_keys": ["api_key", "webhook_secret"],
              "platform_secret_data": {"api_key": "k-123", "webhook_secret": "w-456"}}
    operation("write_secret", **secret)
    shown = operation("secret_info", ["platform_secret"], **secret)["platform_secret"]
    assert shown["exists"] and shown["mounted"] and shown["strict"] and shown["matches"]
    assert shown["present_keys"] == ["api_key", "webhook_secret"]
    # Where the platform reads it: the workers (the API key) and the intake (the webhook signature).
    for app in ("celery-worker", "api"):
        pod = next(p.metadata.name for p in kube.pods(f"app={app}") if not p.metadata.deletion_timestamp)
        assert kube.exec(pod, ["cat", "/run/secrets/aiagents/tenant-provider-test-sdp/webhook_secret"]) == "w-456"
    other = operation("secret_info", ["platform_secret"], **{**secret, "platform_secret_data": {"api_key": "x"}})
    assert other["platform_secret"]["matches"] is False
    operation("remove_secret", **secret)
    gone = operation("secret_info", ["platform_secret"], **secret)["platform_secret"]
    assert not gone["exists"] and not gone["mounted"] and gone["present_keys"] == []
    for app in ("celery-worker", "api"):
        deployment = kube.apps().read_namespaced_deployment(app, NAMESPACE)
        sources = [source.secret.name for volume in deployment.spec.template.spec.volumes if volume.projected
                   for source in volume.projected.sources if source.secret]
        assert "tenant-provider-test-sdp" not in sources, app


def test_a_stop_keeps_what_to_resume_to_and_its_pause_is_seen_by_every_runbook(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    pause = {"target": "api", "reason": "intake paused: provider rate-limits us", "runbook": "api_timeout"}
    operation("stop_service", platform_service="api")
    api = kube.apps().read_namespaced_deployment("api", NAMESPACE)
    assert api.spec.replicas == 0 and api.metadata.annotations["runbooks.aiagents.io/replicas-before-stop"] == "1"
    operation("record_pause", platform_pause=pause)
    found = operation("pauses_info", ["platform_pauses", "platform_pause_findings"])
    assert [p["target"] for p in found["platform_pauses"]] == ["api"]
    assert found["platform_pause_findings"][0]["id"] == "platform_paused"
    operation("restart_service", platform_service="api")
    assert kube.apps().read_namespaced_deployment("api", NAMESPACE).status.ready_replicas == 1
    # Started again by hand (or here): the pause is over even before it is cleared.
    assert operation("pauses_info", ["platform_pauses"])["platform_pauses"] == []
    operation("clear_pause", platform_pause_target="api")
