"""jaeger_traces_info against the sandbox's Jaeger query API stand-in, with traces of known shape."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from tests.harness.servers import free_port
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
