"""The sandbox's faults on the Kubernetes cluster: each one takes effect the way
it does on Kubernetes (a crash-looping rollout, a StatefulSet scaled to zero,
a page failing its checksum on the claim's volume ...) and heals."""
from __future__ import annotations

import base64
import re
import subprocess
from typing import TYPE_CHECKING

import psycopg2
import pytest
import requests

from tests.harness.storage_faults import check_disk_faults, check_xid_fault

if TYPE_CHECKING:
    from conftest import KubeSandbox

pytestmark = pytest.mark.kubernetes
NAMESPACE = "ai-agents"


def test_faults_listed_are_the_docker_ones(kube: KubeSandbox) -> None:
    listed = kube.cli("faults").stdout
    docker = subprocess.run([str(kube.root / "bin" / "sandbox"), "faults"], capture_output=True, text=True,
                            check=True).stdout
    names = re.findall(r"^[ *] (\S+)", listed, re.M)
    assert names == re.findall(r"^[ *] (\S+)", docker, re.M)
    assert {"worker-oom", "worker-crash-loop", "workers-stopped", "redis-down", "db-down", "queue-flood",
            "rls-disabled", "sdp-429", "openai-hang"} <= set(names)


def test_crash_loop_is_a_rollout_that_never_becomes_ready(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    before = {p.metadata.name for p in kube.pods("app=celery-worker")}
    kube.cli("fault", "worker-crash-loop")

    def crash_looping() -> list[str]:
        reasons = []
        for pod in kube.pods("app=celery-worker"):
            for status in pod.status.container_statuses or []:
                if status.state.waiting and status.state.waiting.reason == "CrashLoopBackOff":
                    reasons.append(pod.metadata.name)
        return reasons
    crashing = kube.wait_for(crash_looping, 120, 1, "a worker in CrashLoopBackOff")
    assert "invalid DATABASE_POOL_SIZE='ten'" in kube.log(crashing[0], previous=True)
    # maxUnavailable 0: the old workers keep serving while the new one crashes.
    assert before <= {p.metadata.name for p in kube.pods("app=celery-worker")}
    kube.cli("heal", "worker-crash-loop")
    workers = kube.pods("app=celery-worker")
    assert {p.metadata.name for p in workers} == before
    env = kube.apps().read_namespaced_deployment("celery-worker", NAMESPACE).spec.template.spec.containers[0].env
    assert "DATABASE_POOL_SIZE" not in {e.name for e in env}


@pytest.mark.parametrize(("fault", "service", "pod"), [
    ("redis-down", "redis", "redis-0"),
    ("db-down", "postgres", "postgres-0"),
])
def test_stopping_a_statefulset_and_healing_it(kube_healed: KubeSandbox, fault: str, service: str, pod: str) -> None:
    kube = kube_healed
    tenants = kube.sql("SELECT count(*) FROM tenants")[0][0]
    kube.cli("fault", fault)
    assert kube.apps().read_namespaced_stateful_set(service, NAMESPACE).spec.replicas == 0
    assert kube.pods(f"app={service}") == []
    if service == "postgres":
        with pytest.raises(psycopg2.OperationalError):
            kube.pg(admin=True)
    else:
        with pytest.raises(Exception, match="Connection refused|Error 111"):
            kube.redis().ping()
    kube.cli("heal", fault)
    assert [p.metadata.name for p in kube.pods(f"app={service}")] == [pod]
    # The database's claim outlives its pod.
    assert kube.sql("SELECT count(*) FROM tenants")[0][0] == tenants
    assert kube.redis().ping()


def test_corrupt_page_on_the_claims_volume(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    kube.cli("fault", "db-corrupt-page")
    with pytest.raises(psycopg2.Error, match="invalid page"):
        kube.sql("SELECT count(*) FROM corruption_probe")
    assert kube.sql("SELECT checksum_failures FROM pg_stat_database WHERE datname = current_database()")[0][0] >= 1
    kube.cli("heal", "db-corrupt-page")
    assert kube.sql("SELECT to_regclass('corruption_probe')") == [(None,)]


def test_long_query_holder_is_a_pod_and_heal_removes_it(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    kube.cli("fault", "db-long-query", "600")
    holders = kube.core().list_namespaced_pod(NAMESPACE, label_selector="aiagents.sandbox/fault").items
    assert [p.metadata.name for p in holders] == ["aiagents-fault-long-query"]
    assert kube.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'aiagents-fault-long-query' "
                    "AND state = 'active'")[0][0] == 1
    kube.cli("heal", "db-long-query")
    assert kube.core().list_namespaced_pod(NAMESPACE, label_selector="aiagents.sandbox/fault").items == []
    assert kube.sql("SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'aiagents-fault-%'")[0][0] == 0


def test_rls_fault_and_heal(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    assert set(kube.visible_rows("acme-corp")) <= {"acme-corp"}
    kube.cli("fault", "rls-disabled")
    assert kube.sql("SELECT relrowsecurity FROM pg_class WHERE relname = 'ticket_history'") == [(False,)]
    kube.cli("heal", "rls-disabled")
    assert kube.sql("SELECT relrowsecurity FROM pg_class WHERE relname = 'ticket_history'") == [(True,)]
    assert set(kube.visible_rows("acme-corp")) <= {"acme-corp"}


def test_api_fault_on_the_standin(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    key = kube.secret("openai-credentials", "api_key")
    url = kube.url("openai", "/v1/models")
    assert requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code == 200
    kube.cli("fault", "openai-429")
    assert requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code == 429
    kube.cli("heal", "openai-429")
    assert requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code == 200


def test_heal_puts_back_a_rotated_secret_and_its_pods_restart_onto_it(kube_healed: KubeSandbox) -> None:
    """api_timeout rotates a key into the Secret; the sandbox's files (what its inventory probes with) keep
    the sandbox's own. Heal puts that back, and the pods that mount it restart onto it."""
    kube = kube_healed
    own = kube.secret("openai-credentials", "api_key")
    before = {pod.metadata.name for pod in kube.pods("app=openai")}
    rotated = {"stringData": {"api_key": "sk-rotated-" + "x" * 40}}
    kube.core().patch_namespaced_secret("openai-credentials", NAMESPACE, rotated)
    kube.cli("heal")
    data = kube.core().read_namespaced_secret("openai-credentials", NAMESPACE).data
    assert base64.b64decode(data["api_key"]).decode() == own
    assert not before & {pod.metadata.name for pod in kube.pods("app=openai")}  # restarted onto it
    answer = requests.get(kube.url("openai", "/v1/models"), headers={"Authorization": f"Bearer {own}"}, timeout=10)
    assert answer.status_code == 200, answer.text[:200]


def test_heal_all_restores_the_manifests(kube_healed: KubeSandbox) -> None:
    kube = kube_healed
    kube.cli("fault", "workers-stopped")
    kube.cli("fault", "worker-bad-api-key")
    kube.cli("fault", "queue-flood", "20")
    # Scaled up as high_queue_depth's resolve does: heal puts back the sandbox's two workers.
    kube.apps().patch_namespaced_deployment_scale("celery-worker", NAMESPACE, {"spec": {"replicas": 3}})
    kube.cli("heal")
    assert kube.active_faults() == {}
    assert kube.cli("status").returncode == 0
    assert len(kube.pods("app=celery-worker")) == 2
    env = kube.apps().read_namespaced_deployment("celery-worker", NAMESPACE).spec.template.spec.containers[0].env
    assert {e.name for e in env} == {"SANDBOX_ROLE", "WORKER_NODE_ID"}


def test_the_claims_volumes_fill_and_postgresql_refuses_writes_until_healed(kube_healed: KubeSandbox) -> None:
    """data-postgres-0 and data-redis-0 are small filesystems of the node's: the same faults as on Docker."""
    kube = kube_healed
    claims = {claim.metadata.name: claim.status.phase
              for claim in kube.core().list_namespaced_persistent_volume_claim(NAMESPACE).items}
    assert claims.items() >= {"data-postgres-0": "Bound", "data-redis-0": "Bound"}.items()
    check_disk_faults(kube, kube.state / "volumes")


def test_transaction_ids_near_wraparound_on_the_claims_volume_and_healed(kube_healed: KubeSandbox) -> None:
    check_xid_fault(kube_healed)
