"""The filters the Kubernetes provider builds its patches with."""

from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import env_list, projected_secrets, projected_source


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
