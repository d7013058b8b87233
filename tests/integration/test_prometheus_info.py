"""prometheus_info against a real Prometheus scraping the platform's metric names."""

from __future__ import annotations

import time

import pytest

from tests.harness.prometheus import Exporter, PrometheusServer
from tests.harness.servers import free_port, make_workdir

MODULE = "aiagents.runbooks.prometheus_info"


@pytest.fixture(scope="module")
def platform():
    exporter = Exporter()
    prometheus = PrometheusServer(make_workdir("prometheus"), exporter)
    yield exporter, prometheus
    prometheus.stop()
    exporter.stop()


def exported(exporter: Exporter, name: str) -> float:
    """The value as the exporter itself serves it."""
    line = next(line for line in exporter.render().splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


def test_values_match_what_the_exporter_serves(platform, run_module):
    exporter, prometheus = platform
    exporter.set("queue_depth", 42)
    exporter.set("worker_active_count", 3)
    exporter.set("enhancement_success_rate", 97.5)
    prometheus.wait_for("queue_depth", lambda r: r and r[0]["value"][1] == "42")
    prometheus.wait_for("worker_active_count", lambda r: r and r[0]["value"][1] == "3")
    result = run_module(MODULE, {"url": prometheus.url, "trend_window": 30}).result
    values = {name: item["value"] for name, item in result["metrics"].items()}
    assert values["queue_depth"] == exported(exporter, "queue_depth") == 42
    assert values["worker_active_count"] == exported(exporter, "worker_active_count") == 3
    assert values["success_rate_percent"] == exported(exporter, "enhancement_success_rate") == 97.5
    assert result["metrics"]["worker_memory_bytes"]["status"] == "empty"  # no cAdvisor here: said, not zeroed
    assert sorted(result["alert_rules"]) == ["EnhancementSuccessRateLow", "HighLatency", "QueueDepthHigh", "WorkerDown"]
    assert {f["id"] for f in result["findings"]} == {"metric_no_data"}


def test_rates_and_p95_come_from_counters_and_buckets(platform, run_module):
    exporter, prometheus = platform
    for _step in range(12):
        with exporter.lock:
            exporter.requests[("success", "acme-corp")] += 10
            exporter.durations += [0.5] * 9 + [200.0]
        time.sleep(0.5)
    prometheus.wait_for('rate(enhancement_requests_total{status="success"}[5m])', lambda r: r and float(r[0]["value"][1]) > 0)
    result = run_module(MODULE, {"url": prometheus.url, "include": ["success_per_second", "p95_latency_seconds"],
                                 "trend_window": 30}).result
    assert result["metrics"]["success_per_second"]["value"] > 0
    p95 = result["metrics"]["p95_latency_seconds"]["value"]
    assert 120 < p95 <= 300  # one in ten took 200 s: the 95th percentile lands in the 120-300 s bucket


def test_a_rising_queue_is_classified_rising(platform, run_module):
    exporter, prometheus = platform
    for depth in range(10, 130, 10):
        exporter.set("queue_depth", depth)
        time.sleep(1)
    prometheus.wait_for("queue_depth", lambda r: r and r[0]["value"][1] == "120")
    result = run_module(MODULE, {"url": prometheus.url, "include": ["queue_depth"], "trend_window": 12,
                                 "trend_step": 1}).result
    assert result["queue_trend"]["classification"] == "rising", result["queue_trend"]
    assert result["queue_trend"]["last"] == 120


def test_a_broken_query_is_reported_not_fatal(platform, run_module):
    _exporter, prometheus = platform
    run = run_module(MODULE, {"url": prometheus.url, "include": ["queue_depth"],
                              "queries": {"broken": "sum(rate(queue_depth[5m]", "gone": "no_such_metric_total"}})
    assert run.rc == 0
    broken, gone = run.result["metrics"]["broken"], run.result["metrics"]["gone"]
    assert broken["status"] == "error" and broken["error"].startswith("bad_data:")
    assert gone["status"] == "empty" and gone["value"] is None
    ids = sorted(f["id"] for f in run.result["findings"])
    assert ids == ["metric_no_data", "metric_query_failed"]


def test_unreachable_prometheus_is_a_finding(run_module):
    run = run_module(MODULE, {"url": f"http://127.0.0.1:{free_port()}"})
    assert run.rc == 0
    assert run.result["reachable"] is False
    assert [f["id"] for f in run.result["findings"]] == ["prometheus_unreachable"]
