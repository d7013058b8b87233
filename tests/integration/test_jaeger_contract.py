"""Jaeger's query APIs: the stand-in answers as Jaeger documents them, and jaeger_traces_info
reads either, whichever this Jaeger release serves.

Documents followed:
  [API]    https://www.jaegertracing.io/docs/1.76/apis/   (legacy HTTP JSON /api/traces: start/end in
           microseconds, minDuration/maxDuration as Go durations, tags as a JSON map of strings)
  [GO]     https://pkg.go.dev/time#ParseDuration          ("ns", "us", "ms", "s", "m", "h"; no days)
  [V3]     https://github.com/jaegertracing/jaeger-idl/blob/main/swagger/api_v3/query_service.openapi.yaml
           (/api/v3/traces: query.service_name, start_time_min/max RFC 3339 required, duration_min,
           attributes as a JSON string map; {"result": TracesData}; errors {"error": {httpCode, message}})
  [V2]     https://www.jaegertracing.io/docs/2.0/apis/    (Jaeger v2 serves the api_v3 query API)
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

import pytest

from tests.harness.standins import running

MODULE = "aiagents.runbooks.jaeger_traces_info"
SERVICE = "ai-agents-worker"
HOUR_US = 3_600_000_000


def ingest(jaeger, trace_id: str, started_us: int, seconds: float, tags: dict) -> None:
    spans = [{"traceID": trace_id, "spanID": f"{trace_id[-8:]}0001", "parentSpanID": None,
              "operationName": "llm_synthesis", "startTime": started_us, "duration": int(seconds * 1e6),
              "tags": {"tenant_id": "acme-corp", "ticket_id": f"T-{trace_id}", **tags}}]
    request = urllib.request.Request(f"{jaeger.url}/api/ingest", method="POST",
                                     data=json.dumps({"service": SERVICE, "spans": spans}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    with running("jaeger", tmp_path_factory.mktemp("secrets")) as standin:
        now = int(time.time() * 1e6)
        ingest(standin, "00000000000000a1", now - 60_000_000, 40.0, {"slow_trace": True})    # a minute ago, slow
        ingest(standin, "00000000000000a2", now - 30 * HOUR_US, 12.0, {"slow_trace": True})  # 30 hours ago
        ingest(standin, "00000000000000a3", now - 120_000_000, 0.8, {})                       # fast
        yield standin


@pytest.fixture(autouse=True)
def both_apis(jaeger):
    jaeger.control("DELETE", "/apis")
    yield
    jaeger.control("DELETE", "/apis")


def get(jaeger, path, **params):
    """(status, JSON or text answer) of one GET."""
    url = f"{jaeger.url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body)
        except ValueError:
            return error.code, body.decode()


def ids(answer):
    return sorted(trace["traceID"] for trace in answer["data"])


def rfc3339(epoch_us: int) -> str:
    return datetime.fromtimestamp(epoch_us / 1e6, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------- the contract --

def test_legacy_search_has_no_lookback_and_defaults_to_48_hours(jaeger):
    # [API] start/end are microseconds; `lookback` is the UI's, not the API's: it is ignored.
    status, answer = get(jaeger, "/api/traces", service=SERVICE, lookback="1h")
    assert status == 200 and ids(answer) == ["00000000000000a1", "00000000000000a2", "00000000000000a3"]
    now = int(time.time() * 1e6)
    status, answer = get(jaeger, "/api/traces", service=SERVICE, start=now - HOUR_US, end=now)
    assert ids(answer) == ["00000000000000a1", "00000000000000a3"]


def test_legacy_durations_are_go_durations(jaeger):
    # [GO] 1.5s and 500ms parse; days do not exist in Go's syntax.
    assert ids(get(jaeger, "/api/traces", service=SERVICE, minDuration="1.5s")[1]) == \
        ["00000000000000a1", "00000000000000a2"]
    assert ids(get(jaeger, "/api/traces", service=SERVICE, minDuration="30s", maxDuration="1m")[1]) == \
        ["00000000000000a1"]
    status, answer = get(jaeger, "/api/traces", service=SERVICE, minDuration="2d")
    assert status == 400 and "invalid duration" in answer["errors"][0]["msg"]


def test_tags_match_as_exact_strings(jaeger):
    # [API] tags are a JSON map of strings; a boolean tag reads "true".
    assert ids(get(jaeger, "/api/traces", service=SERVICE, tags=json.dumps({"slow_trace": "true"}))[1]) == \
        ["00000000000000a1", "00000000000000a2"]
    assert ids(get(jaeger, "/api/traces", service=SERVICE, tags=json.dumps({"slow_trace": "True"}))[1]) == []


def test_the_v3_api_answers_otlp_in_a_result_envelope(jaeger):
    # [V3] start_time_min/max are required, RFC 3339; the answer is {"result": {"resourceSpans": [...]}}.
    now = int(time.time() * 1e6)
    status, answer = get(jaeger, "/api/v3/traces", **{"query.service_name": SERVICE})
    assert status == 400 and answer["error"]["httpCode"] == 400
    window = {"query.service_name": SERVICE, "query.start_time_min": rfc3339(now - HOUR_US),
              "query.start_time_max": rfc3339(now + 1_000_000)}
    wanted = {"query.duration_min": "10s", "query.attributes": '{"slow_trace":"true"}'}
    status, answer = get(jaeger, "/api/v3/traces", **window, **wanted)
    assert status == 200
    [resource] = answer["result"]["resourceSpans"]
    assert resource["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": SERVICE}}]
    [span] = resource["scopeSpans"][0]["spans"]
    assert span["traceId"] == "00000000000000a1" and span["name"] == "llm_synthesis"
    assert int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"]) == 40 * 10**9
    assert {"key": "slow_trace", "value": {"boolValue": True}} in span["attributes"]
    # camelCase spellings are the same parameters; nothing found is a 404 in the error envelope.
    status, answer = get(jaeger, "/api/v3/traces", **{"query.serviceName": SERVICE,
                                                      "query.startTimeMin": window["query.start_time_min"],
                                                      "query.startTimeMax": window["query.start_time_max"],
                                                      "query.durationMin": "100s"})
    assert status == 404 and answer["error"]["message"] == "No traces found"


def test_a_release_serves_one_api_or_both(jaeger):
    # [V2] v2 serves /api/v3 and newer releases drop the legacy search; v1 has no /api/v3.
    jaeger.control("POST", "/apis", {"legacy": False})
    assert get(jaeger, "/api/traces", service=SERVICE) == (404, "404 page not found\n")
    jaeger.control("POST", "/apis", {"legacy": True, "v3": False})
    assert get(jaeger, "/api/v3/traces", **{"query.service_name": SERVICE}) == (404, "404 page not found\n")


# --------------------------------------------------------- the collection --

@pytest.mark.parametrize(("served", "api"), [({}, "v3"), ({"v3": False}, "legacy"), ({"legacy": False}, "v3")],
                         ids=["v2-both", "v1", "v2-legacy-dropped"])
def test_the_module_reads_whichever_api_is_served_to_the_same_result(jaeger, run_module, served, api):
    jaeger.control("POST", "/apis", served)
    run = run_module(MODULE, {"url": jaeger.url, "lookback": "2h", "tags": {"slow_trace": True},
                              "min_duration": "10s"})
    assert run.rc == 0, run.stdout
    result = run.result
    assert result["api"] == api
    assert [(t["trace_id"], t["duration_seconds"], t["bottleneck"]) for t in result["slowest"]] == \
        [("00000000000000a1", 40.0, "llm_synthesis")]
    assert sorted(f["id"] for f in result["findings"]) == ["traces_incomplete", "traces_slow_llm_synthesis"]


def test_lookback_in_days_is_sent_as_a_start_time(jaeger, run_module):
    result = run_module(MODULE, {"url": jaeger.url, "lookback": "2d", "api": "legacy"}).result
    assert result["traces_examined"] == 3 and result["findings"] != []
    result = run_module(MODULE, {"url": jaeger.url, "lookback": "1d", "api": "v3"}).result
    assert result["traces_examined"] == 2  # the trace 30 hours old is outside a day


def test_an_api_this_release_lacks_is_named_not_called_jaeger_down(jaeger, run_module):
    jaeger.control("POST", "/apis", {"v3": False})
    [found] = run_module(MODULE, {"url": jaeger.url, "api": "v3"}).result["findings"]
    assert found["id"] == "jaeger_unreachable"
    assert "serves no trace search at /api/v3/traces (HTTP 404)" in found["summary"]
    # auto finds the legacy API instead, and an empty v3 search (its 404) is no failure either.
    jaeger.control("DELETE", "/apis")
    result = run_module(MODULE, {"url": jaeger.url, "min_duration": "100s"}).result
    assert (result["api"], result["traces_examined"], result["findings"]) == ("v3", 0, [])
