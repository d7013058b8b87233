"""worker_hung: a worker that runs but answers nothing (frozen, stuck in a call)."""
from __future__ import annotations

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import hung_findings

NOW = 1795992288.0  # 2026-11-29T22:44:48Z


def container(name, hostname, started="2026-11-29T22:30:00.123456789Z", running=True, last_job=None):
    return {"name": name, "hostname": hostname, "id": f"id-{name}", "running": running, "started_at": started,
            "signals": {"last_job": last_job}}


def broker(*hostnames):
    return {"worker_count": len(hostnames), "workers": [{"name": f"worker@{host}"} for host in hostnames]}


def test_a_running_worker_that_does_not_answer_is_hung_and_named():
    workers = [container("w1", "aaa", last_job="[22:31] job succeeded ticket_id=T-1"), container("w2", "bbb")]
    workers[1]["hostname"] = "vm"  # host networking: the host's name; Celery names the node after the id
    workers[1]["id"] = "bbb"
    found = hung_findings(workers, broker("bbb"), grace_seconds=60, now=NOW)
    assert [item["id"] for item in found] == ["worker_hung"]
    hung = found[0]["evidence"]["workers"]
    assert [item["name"] for item in hung] == ["w1"] and hung[0]["last_job"].endswith("ticket_id=T-1")
    assert "w1 (last job: [22:31] job succeeded" in found[0]["summary"]


def test_every_answering_stopped_or_just_started_worker_is_not_hung():
    workers = [container("w1", "aaa"), container("w2", "bbb", running=False),
               container("w3", "ccc", started="2026-11-29T22:44:20Z")]  # 28 s ago
    assert hung_findings(workers, broker("aaa"), grace_seconds=60, now=NOW) == []


def test_a_worker_silent_since_its_start_says_for_how_long():
    found = hung_findings([container("w1", "aaa")], broker(), grace_seconds=60, now=NOW)
    assert found[0]["evidence"]["workers"][0]["silent_for_s"] == 888


def test_a_broker_that_could_not_be_asked_proves_nothing():
    workers = [container("w1", "aaa")]
    assert hung_findings(workers, {"failed": True, "msg": "unreachable"}, now=NOW) == []
    assert hung_findings(workers, None, now=NOW) == []
