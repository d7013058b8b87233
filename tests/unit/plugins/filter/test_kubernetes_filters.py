"""The filters the Kubernetes provider builds its patches with."""

from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import (
    env_list, projected_secrets, projected_source, rollout_status)


def test_settings_become_env_entries_with_string_values():
    assert env_list({"HTTPX_TIMEOUT": 60, "DEBUG": True, "NAME": "x"}) == [
        {"name": "HTTPX_TIMEOUT", "value": "60"}, {"name": "DEBUG", "value": "true"}, {"name": "NAME", "value": "x"}]
    with pytest.raises(ValueError, match="settings must be a mapping"):
        env_list(["HTTPX_TIMEOUT=60"])


def deployment(mode=256, read_only=True, mounted="credentials"):
    return {"spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "volumeMounts": [{"name": "other"}]},
                       {"name": "celery-worker", "volumeMounts": [{"name": mounted, "readOnly": read_only}]}],
        "volumes": [{"name": "scratch", "emptyDir": {}},
                    {"name": "other", "projected": {"sources": [{"secret": {"name": "not-the-workers"}}]}},
                    {"name": "credentials", "projected": {"defaultMode": mode, "sources": [
                        {"secret": {"name": "sdp-credentials"}}, {"configMap": {"name": "cm"}},
                        {"secret": {"name": "tenant-acme-corp-sdp"}}]}}]}}}}


def test_the_workers_secret_volume_is_the_projected_one_their_container_mounts():
    assert projected_secrets(deployment(), "celery-worker") == {
        "index": 2, "name": "credentials", "sources": ["sdp-credentials", "tenant-acme-corp-sdp"],
        "default_mode": 256, "read_only": True}
    assert projected_secrets(deployment(read_only=False, mode=420), "celery-worker")["read_only"] is False
    assert projected_secrets(deployment(mounted="elsewhere"), "celery-worker") is None
    assert projected_secrets({}, "celery-worker") is None


def test_a_new_secret_is_mounted_in_the_platforms_layout():
    items = [{"key": "api_key", "path": "tenant-initech-sdp/api_key"},
             {"key": "webhook_secret", "path": "tenant-initech-sdp/webhook_secret"}]
    assert projected_source("tenant-initech-sdp", ["api_key", "webhook_secret"]) == {
        "secret": {"name": "tenant-initech-sdp", "items": items}}


def rolled(generation=2, observed=2, wanted=2, updated=2, replicas=2, available=2, conditions=()):
    return {"metadata": {"generation": generation}, "spec": {"replicas": wanted},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": replicas,
                       "availableReplicas": available, "conditions": list(conditions)}}


@pytest.mark.parametrize(("deployment_now", "state", "reason"), [
    # Just patched: the status still describes the old pods, all available.
    (rolled(generation=3), "progressing", "not seen the latest spec"),
    # Recreate, first sync: the old ReplicaSet scaled down, the new one not created yet.
    (rolled(updated=0, replicas=1, available=1, wanted=1), "progressing", "0 of 1 replicas updated"),
    (rolled(updated=2, replicas=3, available=2), "progressing", "1 old replicas pending termination"),
    (rolled(available=1), "progressing", "1 of 2 updated replicas available"),
    (rolled(), "complete", "2 replicas updated and available"),
    (rolled(wanted=0, updated=0, replicas=0, available=0), "complete", "0 replicas"),
    (rolled(available=0, conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded",
                                      "message": "ReplicaSet \"w-1\" has timed out progressing."}]),
     "failed", "missed its progress deadline: ReplicaSet \"w-1\" has timed out"),
    (None, "failed", "does not exist"),
])
def test_a_rollout_is_complete_as_kubectl_rollout_status_says(deployment_now, state, reason):
    judged = rollout_status(deployment_now)
    assert judged["state"] == state and reason in judged["reason"]
