"""The evidence modules against the running sandbox: the real Prometheus that
scrapes the platform, and the platform's own Redis queue."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.sandbox


DEPTH = 'queue_depth{queue="enhancement_queue"}'


def test_prometheus_info_reads_what_the_platform_exports(healed, run_module):
    sandbox = healed
    sandbox.cli("fault", "workers-stopped")
    try:
        # An empty queue for a while, then a flood: the last 30 s of history rise.
        sandbox.wait_for(lambda: sandbox.prom("sum(queue_depth)") == 0, 60, 1, "prometheus depth 0")
        time.sleep(12)
        sandbox.cli("fault", "queue-flood", "120", "0.8", "10")
        sandbox.wait_for(lambda: sandbox.metrics().get(DEPTH) == 120, 30, 1, "exporter depth 120")
        sandbox.wait_for(lambda: sandbox.prom("queue_depth") == 120, 30, 1, "prometheus depth 120")
        result = run_module("aiagents.runbooks.prometheus_info", {"url": sandbox.url("prometheus"),
                                                                  "trend_window": 30, "trend_step": 1}).result
        metrics = result["metrics"]
        assert metrics["queue_depth"]["value"] == sandbox.metrics()[DEPTH] == 120
        assert metrics["worker_active_count"]["value"] == sandbox.metrics()["worker_active_count"] == 0
        assert sorted(result["alert_rules"]) == ["EnhancementSuccessRateLow", "HighLatency", "QueueDepthHigh", "WorkerDown"]
        # The depth went from 0 to 120 within the window: rising.
        assert result["queue_trend"]["classification"] == "rising", result["queue_trend"]
    finally:
        sandbox.cli("heal")


def test_redis_queue_info_agrees_with_the_platform_queue(healed, run_module):
    sandbox = healed
    sandbox.cli("fault", "workers-stopped")
    try:
        sandbox.cli("fault", "queue-flood", "60", "1.0", "40")
        result = run_module("aiagents.runbooks.redis_queue_info",
                            {"url": f"redis://127.0.0.1:{sandbox.port('redis')}/0"}).result
        assert result["depth"] == sandbox.redis().llen("enhancement_queue") == 60
        assert result["tenants"][0] == {"tenant_id": "acme-corp", "jobs": 60, "share": 1.0}
        assert {f["id"] for f in result["findings"]} >= {"queue_depth_elevated", "queue_oldest_job_stale",
                                                         "queue_tenant_flood"}
    finally:
        sandbox.cli("heal")


def test_docker_service_info_describes_the_workers_and_reads_logs_since_a_moment(healed, run_module):
    sandbox = healed
    module = "aiagents.runbooks.docker_service_info"
    everything = run_module(module, {"project": "aiagents", "service": "worker", "log_lines": 200}).result
    workers = {w["Name"].lstrip("/"): w for w in sandbox.workers()}
    assert sorted(c["name"] for c in everything["containers"]) == sorted(workers)
    assert everything["running"] == len(workers) and everything["changed"] is False
    for container in everything["containers"]:
        assert container["restart_count"] == workers[container["name"]]["RestartCount"]
        assert container["started_at"] == workers[container["name"]]["State"]["StartedAt"]
    assert all(c["log_tail"] for c in everything["containers"])  # each has logged, its start at least

    moment = int(time.time()) + 1
    time.sleep(2)
    sandbox.cli("fault", "queue-flood", "1", "1", "0")
    sandbox.wait_for(lambda: "job succeeded tenant_id=acme-corp ticket_id=FLOOD-00000" in
                     "".join(sandbox.logs(name) for name in workers), 30, 1, "a worker doing the job")
    since = run_module(module, {"project": "aiagents", "service": "worker", "log_lines": 200,
                                "log_since": moment}).result
    lines = [line for c in since["containers"] for line in c["log_tail"]]
    assert any("FLOOD-00000" in line for line in lines), lines
    # Nothing from before the moment: only that job's lines.
    assert all("FLOOD-00000" in line for line in lines if "ticket_id=" in line), lines
    assert len(lines) < 20 and not any("ready" in line for line in lines), lines
    assert sum(c["signals"]["jobs_succeeded"] for c in since["containers"]) == 1


def test_the_docker_provider_returns_exactly_the_worker_record(healed, run_module):
    """platform_workers.containers is written down once (_workers.WORKER_RECORD); the provider returns it."""
    from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import WORKER_RECORD

    result = run_module("aiagents.runbooks.docker_service_info",
                        {"project": "aiagents", "service": "worker", "log_lines": 50, "env_keys": ["HTTPX_TIMEOUT"],
                         "findings": True}).result
    assert result["containers"], "no worker container to describe"
    for record in result["containers"]:
        assert set(record) == set(WORKER_RECORD), set(record) ^ set(WORKER_RECORD)
        for field, (types, _meaning) in WORKER_RECORD.items():
            assert isinstance(record[field], types), (field, record[field])
        assert record["running"] and record["restarts_last_hour"] == 0 and record["memory_limit_bytes"] > 0
