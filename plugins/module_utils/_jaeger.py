# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the runbooks' "open Jaeger and look" means, as data.

One trace per enhancement: stages webhook_receipt, context_gathering (DB),
llm_synthesis (OpenAI) and ticket_update (SDP); a trace without ticket_update
means the worker died mid-job. The slowest stage of a slow trace says which
runbook to follow.
"""

from __future__ import annotations

import math
import re
from collections import Counter
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


def search(url: str, params: dict[str, Any], timeout: float, validate_certs: bool) -> list[dict[str, Any]]:
    """The traces Jaeger finds, each checked to be the shape summarise() reads; RunbookError otherwise."""
    target = f"jaeger at {redact_url(url)}"
    try:
        prepared = _http.prepare(_http.join_url(url, "/api/traces", params), validate_certs=validate_certs)
        status, answer = _http.get_json(prepared, timeout)
    except (_http.HttpError, _http.HttpInputError) as exc:
        raise RunbookError("search traces in", target, exc) from None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    messages = "; ".join(str(error.get("msg", "")) if isinstance(error, dict) else str(error)
                         for error in errors) if isinstance(errors, list) else ""
    messages = " ".join(messages.split())[:300]  # one line, whatever Jaeger wrote
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
