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
