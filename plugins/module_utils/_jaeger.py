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
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from ansible.module_utils.urls import open_url
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

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


def search(url: str, params: dict[str, Any], timeout: float, validate_certs: bool) -> list[dict[str, Any]]:
    address = f"{url.rstrip('/')}/api/traces?{urlencode(params)}"
    try:
        answer = json.loads(open_url(address, timeout=timeout, validate_certs=validate_certs).read())
    except Exception as exc:
        body = getattr(exc, "read", None)
        detail = f"HTTP {exc.code}" if hasattr(exc, "code") else f"unreachable ({getattr(exc, 'reason', exc)})"
        if body is not None:
            try:
                errors = json.loads(body()).get("errors") or []
                detail += ": " + "; ".join(error.get("msg", "") for error in errors)
            except ValueError:
                pass
        raise RunbookError("search traces in", f"jaeger at {url}", detail) from None
    if answer.get("errors"):
        raise RunbookError("search traces in", f"jaeger at {url}", "; ".join(e.get("msg", "") for e in answer["errors"]))
    return answer.get("data") or []


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag.get("value") for tag in span.get("tags") or []}


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
