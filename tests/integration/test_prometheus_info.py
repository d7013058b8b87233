"""prometheus_info against a real Prometheus scraping the platform's metric names."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import forms
from tests.harness.prometheus import Exporter, PrometheusServer
from tests.harness.servers import free_port, make_workdir
from tests.harness.chaos import canned
from tests.harness.slow import silent_server, timed, trickle_server

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


# --- Issue 14: bounded time, no secret anywhere, no crash on any input -------------------------------------------

@pytest.mark.parametrize("server", [trickle_server, silent_server])
def test_a_trickling_or_silent_prometheus_costs_the_timeout_and_no_more(run_module, server):
    """Eleven requests (queries, trend, alerts, rules) share one deadline: the module's timeout bounds them all."""
    baseline = timed(run_module, MODULE, {"url": f"http://127.0.0.1:{free_port()}", "timeout": 2})[0]
    with server() as slow:
        wall, run = timed(run_module, MODULE, {"url": f"http://127.0.0.1:{slow.port}", "timeout": 2})
        assert slow.connections >= 1
    baseline = max(baseline, timed(run_module, MODULE, {"url": f"http://127.0.0.1:{free_port()}", "timeout": 2})[0])
    assert run.rc == 0, run.stdout
    assert run.result["reachable"] is False
    assert [f["id"] for f in run.result["findings"]] == ["prometheus_unreachable"]
    assert "no complete answer within 2 s" in run.result["findings"][0]["summary"]
    assert wall - baseline <= 2.0 + 1.5, (wall, baseline)


@pytest.mark.parametrize(("args", "message"), [
    ({"timeout": 0}, "query prometheus: timeout must be above 0, got 0.0"),
    ({"timeout": "inf"}, "query prometheus: timeout must be a finite number, got inf"),
    ({"timeout": 1000}, "query prometheus: timeout must be at most 300, got 1000.0"),
    ({"trend_window": -900}, "query prometheus: trend_window must be above 0, got -900.0"),
    ({"trend_step": 0}, "query prometheus: trend_step must be above 0, got 0.0"),
    ({"trend_window": 900, "trend_step": 0.01}, "query prometheus: trend_step must be at least 0.0818182, got 0.01 "
                                                "(Prometheus gives at most 11000 points over trend_window)"),
    ({"trend_window": 10 ** 7}, "query prometheus: trend_window must be at most 604800, got 10000000.0"),
    ({"trend_min_change": "nan"}, "query prometheus: trend_min_change must be a finite number, got nan"),
    ({"url": "http://127.0.0.1:99999"}, "query prometheus: url port must be from 1 to 65535, got '99999'"),
    ({"url": "ftp://prometheus.example"}, "query prometheus: url must be http(s)://host[:port]/path, "
                                          "got 'ftp://prometheus.example'"),
])
def test_out_of_range_options_are_refused_naming_the_option(run_module, args, message):
    run = run_module(MODULE, {"url": "http://127.0.0.1:9", **args})
    assert run.rc != 0 and run.result["msg"] == message
    assert "Traceback" not in run.stdout


@pytest.mark.parametrize(("body", "status", "expected"), [
    (b"<html>proxy login</html>", 200, "the answer is not JSON"),
    (b"[1, 2]", 200, "the answer is not the JSON Prometheus gives"),
    (b"Service Unavailable", 503, "HTTP 503"),
    (json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"value": "x"}]}}).encode(), 200,
     "the answer is not the JSON Prometheus gives"),
    (json.dumps({"status": "success", "data": {"resultType": "vector",
                                               "result": [{"metric": {}, "value": [1, "abc"]}]}}).encode(), 200,
     "the answer is not the JSON Prometheus gives"),
    (json.dumps({"status": "success", "data": {"alerts": [{"labels": None}], "groups": [{"rules": None}]}}).encode(),
     200, "the answer is not the JSON Prometheus gives"),
])
def test_a_malformed_answer_is_one_clear_message(run_module, body, status, expected):
    with canned(body, status) as url:
        run = run_module(MODULE, {"url": url, "include": ["queue_depth"], "timeout": 5})
    assert run.rc == 0, run.stdout
    assert "Traceback" not in run.stdout
    summaries = [f["summary"] for f in run.result["findings"]]
    assert summaries and all(expected in summary for summary in summaries), summaries


PROM_PASSWORD = "PROMPASS-4e8b1c9d7a"
PROM_TOKEN = "PROMTOKEN-0c5e2a9f6b"


def test_credentials_in_the_url_appear_nowhere(platform, run_module):
    """Userinfo and a query token in the URL: not in findings, messages, results or -vvv output."""
    _exporter, prometheus = platform
    host = prometheus.url.split("://", 1)[1]
    closed = free_port()
    runs = [run_module(MODULE, {"url": f"http://ops:{PROM_PASSWORD}@{host}/?token={PROM_TOKEN}",
                                "include": ["worker_memory_bytes"], "trend_window": 30}, verbosity=3),
            run_module(MODULE, {"url": f"http://ops:{PROM_PASSWORD}@127.0.0.1:{closed}/?token={PROM_TOKEN}"},
                       verbosity=3),
            run_module(MODULE, {"url": f"http://ops:{PROM_PASSWORD}@127.0.0.1:{closed}/?token={PROM_TOKEN}",
                                "timeout": -1}, verbosity=3)]
    assert [run.rc == 0 for run in runs] == [True, True, False]
    assert [f["id"] for f in runs[0].result["findings"]] == ["metric_no_data"]  # reached, with the credentials
    assert runs[0].result["findings"][0]["evidence"]["prometheus"] == f"http://{host}/?token=***"
    assert [f["id"] for f in runs[1].result["findings"]] == ["prometheus_unreachable"]
    assert runs[1].result["findings"][0]["evidence"]["prometheus"] == f"http://127.0.0.1:{closed}/?token=***"
    every_form = {form for secret in (PROM_PASSWORD, PROM_TOKEN) for form in forms(secret)}
    for run in runs:
        text = run.stdout + json.dumps(run.results)
        assert [form for form in every_form if form in text] == []
