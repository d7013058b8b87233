"""jaeger_traces_info against the sandbox's Jaeger query API stand-in, with traces of known shape."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import forms
from tests.harness.servers import free_port
from tests.harness.chaos import canned
from tests.harness.slow import silent_server, timed, trickle_server
from tests.harness.standins import StandIn

MODULE = "aiagents.runbooks.jaeger_traces_info"
SERVICE = "ai-agents-worker"


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    standin = StandIn("jaeger", tmp_path_factory.mktemp("secrets"))
    now = int(time.time() * 1e6)
    # name: stage seconds (None: the stage never ran), plus API spans and tags
    traces = {
        "db-bound": ({"webhook_receipt": 0.01, "context_gathering": 12.0, "llm_synthesis": 2.0, "ticket_update": 0.5},
                     {}, {"slow_trace": True}),
        "llm-bound": ({"webhook_receipt": 0.01, "context_gathering": 0.3, "llm_synthesis": 40.0, "ticket_update": 0.4},
                      {"llm.openai.completion": 39.5}, {"slow_trace": True}),
        "llm-bound-2": ({"webhook_receipt": 0.01, "context_gathering": 0.3, "llm_synthesis": 25.0, "ticket_update": 0.4},
                        {"llm.openai.completion": 24.0}, {}),
        # Slow through ServiceDesk Plus: ticket_update dominates (no slow_trace tag: slow by its 16 s alone).
        "sdp-bound": ({"webhook_receipt": 0.01, "context_gathering": 0.4, "llm_synthesis": 1.2, "ticket_update": 14.5},
                      {"api.servicedesk_plus.update_ticket": 14.2}, {}),
        "died": ({"webhook_receipt": 0.01, "context_gathering": 0.2, "llm_synthesis": 1.0}, {}, {"error": True}),
        "healthy": ({"webhook_receipt": 0.01, "context_gathering": 0.2, "llm_synthesis": 1.5, "ticket_update": 0.3},
                    {"api.servicedesk_plus.update_ticket": 0.25}, {}),
    }
    for number, (name, (stages, api, tags)) in enumerate(traces.items()):
        spans, start = [], now - 120_000_000
        trace_id = f"{number + 1:016x}"
        for stage, seconds in stages.items():
            span_id = os.urandom(8).hex()
            spans.append({"traceID": trace_id, "spanID": span_id, "parentSpanID": None, "operationName": stage,
                          "startTime": start, "duration": int(seconds * 1e6),
                          "tags": {"tenant_id": "acme-corp", "ticket_id": f"TICKET-{name}", **tags}})
            for operation, api_seconds in api.items():
                if operation.startswith("llm") == (stage == "llm_synthesis") and stage in ("llm_synthesis", "ticket_update"):
                    spans.append({"traceID": trace_id, "spanID": os.urandom(8).hex(), "parentSpanID": span_id,
                                  "operationName": operation, "startTime": start,
                                  "duration": int(api_seconds * 1e6), "tags": {}})
            start += int(seconds * 1e6)
        request = urllib.request.Request(f"{standin.url}/api/ingest", method="POST",
                                         data=json.dumps({"service": SERVICE, "spans": spans}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).close()
    yield standin
    standin.stop()


def test_bottlenecks_incomplete_and_slow_api_spans(jaeger, run_module):
    result = run_module(MODULE, {"url": jaeger.url}).result
    assert result["traces_examined"] == 6
    by_ticket = {item["ticket_id"]: item for item in result["slowest"]}
    assert by_ticket["TICKET-db-bound"]["bottleneck"] == "context_gathering"
    assert by_ticket["TICKET-llm-bound"]["bottleneck"] == "llm_synthesis"
    assert by_ticket["TICKET-sdp-bound"]["bottleneck"] == "ticket_update"
    assert by_ticket["TICKET-sdp-bound"]["stages"]["ticket_update"] == 14.5
    assert result["slowest"][0]["ticket_id"] == "TICKET-llm-bound"  # the slowest first
    assert result["bottlenecks"] == {"context_gathering": 1, "llm_synthesis": 2, "ticket_update": 1}
    assert [item["ticket_id"] for item in result["incomplete"]] == ["TICKET-died"]
    assert sorted((span["operation"], span["seconds"]) for span in result["slow_api_spans"]) == [
        ("api.servicedesk_plus.update_ticket", 14.2), ("llm.openai.completion", 39.5)]
    findings = {f["id"]: f for f in result["findings"]}
    assert set(findings) == {"traces_slow_llm_synthesis", "traces_slow_context_gathering",
                             "traces_slow_ticket_update", "traces_incomplete"}
    assert findings["traces_slow_llm_synthesis"]["runbook"] == "api_timeout"
    assert findings["traces_slow_context_gathering"]["runbook"] == "database_connection_issues"
    assert findings["traces_incomplete"]["runbook"] == "worker_failures"
    # A slow ticket update waits on ServiceDesk Plus: the api_timeout runbook, with that trace as its evidence.
    slow_update = findings["traces_slow_ticket_update"]
    assert (slow_update["runbook"], slow_update["severity"]) == ("api_timeout", "medium")
    assert "Follow the api_timeout runbook" in slow_update["resolution"]
    assert slow_update["summary"].startswith("1 of 4 slow traces spend most time in ticket_update")
    assert "ServiceDesk Plus" in slow_update["summary"]
    assert [trace["ticket_id"] for trace in slow_update["evidence"]["traces"]] == ["TICKET-sdp-bound"]
    assert result["findings"][0]["id"] == "traces_incomplete"  # high before medium


def test_tag_and_duration_filters_reach_jaeger(jaeger, run_module):
    tagged = run_module(MODULE, {"url": jaeger.url, "tags": {"slow_trace": "true"}}).result
    assert sorted(item["ticket_id"] for item in tagged["slowest"]) == ["TICKET-db-bound", "TICKET-llm-bound"]
    long_only = run_module(MODULE, {"url": jaeger.url, "min_duration": "20s"}).result
    assert sorted(item["ticket_id"] for item in long_only["slowest"]) == ["TICKET-llm-bound", "TICKET-llm-bound-2"]


def test_unreachable_and_failing_jaeger_are_findings(jaeger, run_module):
    down = run_module(MODULE, {"url": f"http://127.0.0.1:{free_port()}"})
    assert down.rc == 0 and [f["id"] for f in down.result["findings"]] == ["jaeger_unreachable"]
    jaeger.fault(status=503)
    try:
        failing = run_module(MODULE, {"url": jaeger.url})
    finally:
        jaeger.heal()
    assert failing.rc == 0
    assert failing.result["findings"][0]["id"] == "jaeger_unreachable"
    assert "HTTP 503" in failing.result["findings"][0]["summary"]


# --- Issue 14: bounded time, no secret anywhere, no crash on any input -------------------------------------------

@pytest.mark.parametrize("server", [trickle_server, silent_server])
def test_a_trickling_or_silent_jaeger_costs_the_timeout_and_no_more(run_module, server):
    baseline = timed(run_module, MODULE, {"url": f"http://127.0.0.1:{free_port()}", "timeout": 2})[0]
    with server() as slow:
        wall, run = timed(run_module, MODULE, {"url": f"http://127.0.0.1:{slow.port}", "timeout": 2})
        assert slow.connections == 1
    baseline = max(baseline, timed(run_module, MODULE, {"url": f"http://127.0.0.1:{free_port()}", "timeout": 2})[0])
    assert run.rc == 0, run.stdout
    assert [f["id"] for f in run.result["findings"]] == ["jaeger_unreachable"]
    assert run.result["findings"][0]["summary"].endswith(": no complete answer within 2 s")
    assert wall - baseline <= 2.0 + 1.5, (wall, baseline)


@pytest.mark.parametrize(("args", "message"), [
    ({"timeout": 0}, "search traces: timeout must be above 0, got 0.0"),
    ({"timeout": 301}, "search traces: timeout must be at most 300, got 301.0"),
    ({"slow_seconds": "-inf"}, "search traces: slow_seconds must be a finite number, got -inf"),
    ({"slow_seconds": -3}, "search traces: slow_seconds must be above 0, got -3.0"),
    ({"limit": 0}, "search traces: limit must be at least 1, got 0"),
    ({"api_span_limits": {"llm.openai.completion": "slow"}},
     "search traces: api_span_limits.llm.openai.completion must be a number, got 'slow'"),
    ({"api_span_limits": {"llm.openai.completion": -1}},
     "search traces: api_span_limits.llm.openai.completion must be above 0, got -1"),
    ({"lookback": "forever"}, "search traces: lookback must be a duration such as 30m, 1h or 2d, got 'forever'"),
    ({"min_duration": "10 s"}, "search traces: min_duration must be a duration such as 500ms or 10s, got '10 s'"),
    ({"url": "http://127.0.0.1:0"}, "search traces: url port must be from 1 to 65535, got '0'"),
])
def test_bad_options_are_refused_naming_the_option(run_module, args, message):
    run = run_module(MODULE, {"url": "http://127.0.0.1:9", **args})
    assert run.rc != 0 and run.result["msg"] == message
    assert "Traceback" not in run.stdout


@pytest.mark.parametrize(("body", "status", "expected"), [
    (b"<html>login</html>", 200, "the answer is not JSON"),
    (b"[]", 200, "the answer is not the JSON Jaeger gives"),
    (b'{"data": "nope"}', 200, "the answer is not the JSON Jaeger gives"),
    (b'{"data": [null]}', 200, "the answer is not the JSON Jaeger gives"),
    (b'{"data": [{"traceID": "1", "spans": [{"operationName": "ticket_update"}]}]}', 200,
     "the answer is not the JSON Jaeger gives"),
    (b'{"data": [{"traceID": "1", "spans": [{"operationName": "x", "startTime": 1, "duration": 2, "tags": 7}]}]}',
     200, "the answer is not the JSON Jaeger gives"),
    (b'{"errors": [{"msg": 5}]}', 500, "HTTP 500"),
])
def test_a_malformed_answer_is_one_clear_message(run_module, body, status, expected):
    with canned(body, status) as url:
        run = run_module(MODULE, {"url": url})
    assert run.rc == 0, run.stdout
    assert "Traceback" not in run.stdout
    assert [f["id"] for f in run.result["findings"]] == ["jaeger_unreachable"]
    assert expected in run.result["findings"][0]["summary"], run.result["findings"][0]["summary"]


JAEGER_PASSWORD = "JAEGERPASS-7d2f9a1c4e"
JAEGER_TOKEN = "JAEGERTOKEN-3a8c6e0b5d"


def test_credentials_in_the_url_appear_nowhere(jaeger, run_module):
    host = jaeger.url.split("://", 1)[1]
    closed = free_port()
    runs = [run_module(MODULE, {"url": f"http://ops:{JAEGER_PASSWORD}@{host}/?token={JAEGER_TOKEN}"}, verbosity=3),
            run_module(MODULE, {"url": f"http://ops:{JAEGER_PASSWORD}@127.0.0.1:{closed}?token={JAEGER_TOKEN}"},
                       verbosity=3),
            run_module(MODULE, {"url": f"http://ops:{JAEGER_PASSWORD}@{host}/?token={JAEGER_TOKEN}", "limit": -1},
                       verbosity=3)]
    assert [run.rc == 0 for run in runs] == [True, True, False]
    assert runs[0].result["traces_examined"] == 6  # reached with the credentials
    down = runs[1].result["findings"][0]
    assert down["id"] == "jaeger_unreachable" and down["evidence"]["jaeger"] == f"http://127.0.0.1:{closed}?token=***"
    every_form = {form for secret in (JAEGER_PASSWORD, JAEGER_TOKEN) for form in forms(secret)}
    for run in runs:
        text = run.stdout + json.dumps(run.results)
        assert [form for form in every_form if form in text] == []
