# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the runbooks' "open Jaeger and look" means, as data.

One trace per enhancement: stages webhook_receipt, context_gathering (DB),
llm_synthesis (OpenAI) and ticket_update (SDP); a trace without ticket_update
means the worker died mid-job. The slowest stage of a slow trace says which
runbook to follow.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import redact_url

STAGES = ("webhook_receipt", "context_gathering", "llm_synthesis", "ticket_update")
API_SPAN_LIMITS = {"llm.openai.completion": 30.0, "api.servicedesk_plus.get_ticket": 2.0,
                   "api.servicedesk_plus.update_ticket": 5.0}
# bottleneck stage -> (finding id, runbook to follow, why)
STAGE_RUNBOOK = {
    "context_gathering": ("traces_slow_context_gathering", "database_connection_issues",
                          "context gathering reads PostgreSQL: check slow queries, locks and the pool"),
    "llm_synthesis": ("traces_slow_llm_synthesis", "api_timeout", "LLM synthesis waits on OpenAI"),
    "ticket_update": ("traces_slow_ticket_update", "api_timeout", "ticket update waits on ServiceDesk Plus"),
}
MAX_LIMIT = 10000  # traces per search
MAX_SECONDS = 86400.0  # slow_seconds and each API span limit
# Jaeger's (Go) durations: 500ms, 10s, 1h30m; "d" for days as the Jaeger UI writes lookbacks.
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|\u00b5s|ms|s|m|h|d))+$")
NOT_JAEGER = "the answer is not the JSON Jaeger gives"


def check_options(params: dict[str, Any]) -> str | None:
    """The message refusing an out-of-range or malformed option, or None."""
    problem = (_http.check_timeout("timeout", params.get("timeout"))
               or out_of_range("slow_seconds", params.get("slow_seconds"), above=0, maximum=MAX_SECONDS)
               or out_of_range("limit", params.get("limit"), minimum=1, maximum=MAX_LIMIT))
    for name, limit in (params.get("api_span_limits") or {}).items():
        problem = problem or out_of_range(f"api_span_limits.{name}", limit, above=0, maximum=MAX_SECONDS)
    for option, example in (("lookback", "30m, 1h or 2d"), ("min_duration", "500ms or 10s")):
        value = params.get(option)
        if not problem and value is not None and not _DURATION.match(str(value)):
            problem = f"{option} must be a duration such as {example}, got {value!r}"
    return f"search traces: {problem}" if problem else None


_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
                 "d": 86400.0}
APIS = ("auto", "v3", "legacy")


def duration_seconds(text: str) -> float:
    """One of the module's durations (Go's syntax, plus d for days) in seconds."""
    return sum(float(number) * _UNIT_SECONDS[unit]
               for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h|d)", text))


def go_duration(seconds: float) -> str:
    """Seconds as a duration both query APIs accept (Go's syntax, and api_v3's "<seconds>s" pattern)."""
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"{text or '0'}s"


def tag_text(value: Any) -> str:
    """A tag value as Jaeger matches it, an exact string: booleans are "true"/"false", never "True"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Absent(Exception):
    """The query API asked for is not served here (an unknown route's 404)."""


def search(url: str, query: dict[str, Any], timeout: float, validate_certs: bool,
           api: str = "auto", now: float | None = None) -> tuple[list[dict[str, Any]], str]:
    """The traces Jaeger finds (in the legacy shape summarise() reads) and the API that found them.

    `query`: service, tags (a dict), min_duration and lookback (durations), limit. Jaeger v2's /api/v3 is
    asked first (api=auto): a 404 that is not its JSON error means this Jaeger does not serve it, and the
    legacy /api/traces is asked instead - a 404 says which API is missing, never that Jaeger is down.
    """
    target = f"jaeger at {redact_url(url)}"
    end = time.time() if now is None else now
    start = end - duration_seconds(query["lookback"])
    deadline = time.monotonic() + timeout
    tried = []
    for which in (("v3", "legacy") if api == "auto" else (api,)):
        try:
            if which == "v3":
                return _search_v3(url, query, start, end, timeout, deadline, validate_certs, target), "v3"
            return _search_legacy(url, query, start, end, timeout, deadline, validate_certs, target), "legacy"
        except _Absent:
            tried.append("/api/v3/traces" if which == "v3" else "/api/traces")
    raise RunbookError("search traces in", target, f"it serves no trace search at {' nor '.join(tried)} (HTTP 404): "
                       "is this Jaeger's query service (port 16686)?")


def _get(url: str, path: str, params: dict[str, Any], timeout: float, deadline: float, validate_certs: bool,
         target: str) -> tuple[int, Any]:
    try:
        prepared = _http.prepare(_http.join_url(url, path, params), validate_certs=validate_certs)
        return _http.get_json(prepared, timeout, deadline)
    except (_http.HttpError, _http.HttpInputError) as exc:
        raise RunbookError("search traces in", target, exc) from None


def _search_v3(url: str, query: dict[str, Any], start: float, end: float, timeout: float, deadline: float,
               validate_certs: bool, target: str) -> list[dict[str, Any]]:
    params = {"query.service_name": query["service"], "query.start_time_min": _rfc3339(start),
              "query.start_time_max": _rfc3339(end), "query.search_depth": query["limit"]}
    if query.get("min_duration"):
        params["query.duration_min"] = go_duration(duration_seconds(query["min_duration"]))
    if query.get("tags"):
        params["query.attributes"] = json.dumps({str(k): tag_text(v) for k, v in query["tags"].items()})
    status, answer = _get(url, "/api/v3/traces", params, timeout, deadline, validate_certs, target)
    error = answer.get("error") if isinstance(answer, dict) else None
    if status == 404 and not isinstance(error, dict):
        raise _Absent()
    if isinstance(error, dict):
        message = " ".join(str(error.get("message") or "").split())[:300]
        if status == 404 or error.get("httpCode") == 404:  # api_v3 answers an empty search with 404
            return []
        raise RunbookError("search traces in", target, f"HTTP {status}" + (f": {message}" if message else ""))
    if status >= 400:
        raise RunbookError("search traces in", target, f"HTTP {status}")
    if answer is None:
        raise RunbookError("search traces in", target, f"the answer is not JSON (HTTP {status})")
    traces, problem = from_otlp(answer)
    if problem:
        raise RunbookError("search traces in", target, f"{NOT_JAEGER} ({problem})")
    return traces


def _search_legacy(url: str, query: dict[str, Any], start: float, end: float, timeout: float, deadline: float,
                   validate_certs: bool, target: str) -> list[dict[str, Any]]:
    params = {"service": query["service"], "start": int(start * 1e6), "end": int(end * 1e6), "limit": query["limit"]}
    if query.get("tags"):
        params["tags"] = json.dumps({str(k): tag_text(v) for k, v in query["tags"].items()})
    if query.get("min_duration"):
        params["minDuration"] = go_duration(duration_seconds(query["min_duration"]))
    status, answer = _get(url, "/api/traces", params, timeout, deadline, validate_certs, target)
    errors = answer.get("errors") if isinstance(answer, dict) else None
    messages = "; ".join(str(error.get("msg", "")) if isinstance(error, dict) else str(error)
                         for error in errors) if isinstance(errors, list) else ""
    messages = " ".join(messages.split())[:300]  # one line, whatever Jaeger wrote
    if status == 404 and not isinstance(answer, dict):
        raise _Absent()
    if status >= 400:
        raise RunbookError("search traces in", target, f"HTTP {status}" + (f": {messages}" if messages else ""))
    if answer is None:
        raise RunbookError("search traces in", target, f"the answer is not JSON (HTTP {status})")
    if messages:
        raise RunbookError("search traces in", target, messages)
    problem = _shape_problem(answer)
    if problem:
        raise RunbookError("search traces in", target, f"{NOT_JAEGER} ({problem})")
    return answer.get("data") or []


def _otlp_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    return None


def from_otlp(answer: Any) -> tuple[list[dict[str, Any]], str | None]:
    """api_v3's {"result": {"resourceSpans": [...]}} as legacy-shaped traces, or what could not be read."""
    result = answer.get("result") if isinstance(answer, dict) else None
    resources = result.get("resourceSpans") if isinstance(result, dict) else None
    if not isinstance(resources, list):
        return [], "no result.resourceSpans list"
    traces: dict[str, dict[str, Any]] = {}
    for resource in resources:
        scopes = resource.get("scopeSpans") if isinstance(resource, dict) else None
        if not isinstance(scopes, list):
            return [], "a resourceSpans entry without a scopeSpans list"
        for scope in scopes:
            spans = scope.get("spans") if isinstance(scope, dict) else None
            if not isinstance(spans, list):
                return [], "a scopeSpans entry without a spans list"
            for span in spans:
                if not isinstance(span, dict) or not isinstance(span.get("name"), str):
                    return [], "a span without a name"
                try:
                    started, ended = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
                except (KeyError, TypeError, ValueError):
                    return [], "a span without numeric startTimeUnixNano and endTimeUnixNano"
                attributes = span.get("attributes") or []
                if not isinstance(attributes, list) or not all(isinstance(a, dict) and "key" in a for a in attributes):
                    return [], "a span whose attributes are not a list of key/value objects"
                trace_id = str(span.get("traceId") or "")
                traces.setdefault(trace_id, {"traceID": trace_id, "spans": []})["spans"].append({
                    "operationName": span["name"], "startTime": started // 1000,
                    "duration": max(0, ended - started) // 1000,
                    "tags": [{"key": str(a["key"]), "value": _otlp_value(a.get("value"))} for a in attributes]})
    return list(traces.values()), None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shape_problem(answer: Any) -> str | None:
    """What in the answer summarise() could not read, or None."""
    if not isinstance(answer, dict):
        return "not an object"
    traces = answer.get("data")
    if traces is None:
        return None
    if not isinstance(traces, list):
        return "data is not a list of traces"
    for number, trace in enumerate(traces):
        if not isinstance(trace, dict) or not isinstance(trace.get("spans") or [], list):
            return f"trace {number} is not an object with a list of spans"
        for span in trace.get("spans") or []:
            if not isinstance(span, dict) or not isinstance(span.get("operationName"), str):
                return f"trace {number} has a span without an operationName"
            if not _is_number(span.get("startTime")) or not _is_number(span.get("duration")):
                return f"trace {number} has a span without a numeric startTime and duration"
            tags = span.get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(tag, dict) and "key" in tag for tag in tags):
                return f"trace {number} has a span whose tags are not a list of key/value objects"
    return None


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {str(tag["key"]): tag.get("value") for tag in span.get("tags") or []}


def summarise(trace: dict[str, Any], slow_seconds: float) -> dict[str, Any]:
    spans = trace.get("spans") or []
    stages: dict[str, float] = {}
    tags: dict[str, Any] = {}
    api_spans = []
    for span in spans:
        span_tags = _tags(span)
        for key in ("tenant_id", "ticket_id"):
            if key in span_tags and key not in tags:
                tags[key] = span_tags[key]
        if span_tags.get("slow_trace") in (True, "true", "True"):
            tags["slow_trace"] = True
        if span_tags.get("error") in (True, "true", "True"):
            tags["error"] = True
        seconds = span["duration"] / 1e6
        if span["operationName"] in STAGES:
            stages[span["operationName"]] = max(seconds, stages.get(span["operationName"], 0.0))
        if span["operationName"] in API_SPAN_LIMITS:
            api_spans.append({"operation": span["operationName"], "seconds": round(seconds, 3)})
    start = min((span["startTime"] for span in spans), default=0)
    end = max((span["startTime"] + span["duration"] for span in spans), default=0)
    duration = (end - start) / 1e6
    bottleneck = max(stages, key=stages.get) if stages else None
    return {
        "trace_id": trace.get("traceID"),
        "duration_seconds": round(duration, 3),
        "tenant_id": tags.get("tenant_id"),
        "ticket_id": tags.get("ticket_id"),
        "stages": {stage: round(seconds, 3) for stage, seconds in stages.items()},
        "bottleneck": bottleneck,
        "complete": "ticket_update" in stages,
        "slow": bool(tags.get("slow_trace")) or duration >= slow_seconds,
        "error": bool(tags.get("error")),
        "api_spans": api_spans,
    }


def trace_findings(summaries: list[dict[str, Any]], limits: dict[str, float]) -> tuple[list[dict[str, Any]], list]:
    found = []
    slow = [item for item in summaries if item["slow"]]
    by_stage = Counter(item["bottleneck"] for item in slow if item["bottleneck"] in STAGE_RUNBOOK)
    for stage, count in by_stage.most_common():
        finding_id, runbook, why = STAGE_RUNBOOK[stage]
        examples = [item for item in slow if item["bottleneck"] == stage][:5]
        found.append(finding(
            finding_id, "medium",
            f"{count} of {len(slow)} slow traces spend most time in {stage} ({why})",
            {"traces": [{key: item[key] for key in ("trace_id", "duration_seconds", "tenant_id", "ticket_id", "stages")}
                        for item in examples]},
            f"Follow the {runbook} runbook.", runbook=runbook,
        ))
    incomplete = [item for item in summaries if not item["complete"]]
    if incomplete:
        found.append(finding(
            "traces_incomplete", "high",
            f"{len(incomplete)} traces never reached ticket_update: their worker died mid-job",
            {"traces": [{key: item[key] for key in ("trace_id", "tenant_id", "ticket_id", "stages")}
                        for item in incomplete[:10]]},
            "Follow the worker_failures runbook; the same ticket before each crash points to a poison job.",
            runbook="worker_failures",
        ))
    slow_api = [dict(span, trace_id=item["trace_id"], limit_seconds=limits[span["operation"]])
                for item in summaries for span in item["api_spans"] if span["seconds"] > limits[span["operation"]]]
    return found, slow_api
