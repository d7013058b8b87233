"""Jaeger query API stand-in (the JSON the Jaeger UI's `/api/...` serves).

The worker posts finished spans to `POST /api/ingest` (our own simple shape:
{"service": ..., "spans": [{traceID, spanID, parentSpanID, operationName,
startTime (µs), duration (µs), tags: {k: v}}]}); queries group them into
traces. Search follows Jaeger: a trace matches when one of its spans has all
the `tags` and satisfies min/maxDuration.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from typing import Any

from .common import Request, Response, StandIn

MAX_TRACES = 5000
UNITS = {"us": 1, "µs": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000,
         "d": 86_400_000_000}


def parse_duration_us(text: str) -> int:
    """Go-style durations as Jaeger accepts them: 1.5s, 500ms, 2m, 1h30m."""
    total, matched = 0.0, False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h|d)", text):
        total += float(number) * UNITS[unit]
        matched = True
    if not matched:
        raise ValueError(f"unable to parse duration {text!r}")
    return int(total)


def _tag(key: str, value: Any) -> dict[str, Any]:
    kind = "bool" if isinstance(value, bool) else "int64" if isinstance(value, int) else \
        "float64" if isinstance(value, float) else "string"
    return {"key": key, "type": kind, "value": value}


def _envelope(data: Any, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"data": data, "total": len(data) if isinstance(data, list) else 0, "limit": 0, "offset": 0,
            "errors": errors}


class Jaeger(StandIn):
    name = "jaeger"

    def __init__(self) -> None:
        super().__init__("JAEGER_PORT", "JAEGER_CONTROL_PORT")
        self.traces: OrderedDict[str, dict[str, Any]] = OrderedDict()  # traceID -> {service, spans}
        self.data_lock = threading.Lock()

    def error_body(self, status: int) -> Any:
        return _envelope(None, [{"code": status, "msg": "injected fault"}])

    def ingest(self, payload: dict[str, Any]) -> int:
        with self.data_lock:
            for span in payload.get("spans", []):
                trace = self.traces.setdefault(span["traceID"], {"service": payload.get("service", "unknown"),
                                                                 "spans": []})
                trace["spans"].append(span)
                self.traces.move_to_end(span["traceID"])
            while len(self.traces) > MAX_TRACES:
                self.traces.popitem(last=False)
        return len(payload.get("spans", []))

    def render(self, trace_id: str, trace: dict[str, Any]) -> dict[str, Any]:
        spans = []
        for span in trace["spans"]:
            parent = span.get("parentSpanID")
            spans.append({
                "traceID": trace_id, "spanID": span["spanID"], "operationName": span["operationName"],
                "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}] if parent else [],
                "startTime": span["startTime"], "duration": span["duration"], "flags": 1,
                "tags": [_tag(k, v) for k, v in span.get("tags", {}).items()],
                "logs": [], "processID": "p1", "warnings": None})
        return {"traceID": trace_id, "spans": spans,
                "processes": {"p1": {"serviceName": trace["service"], "tags": []}}, "warnings": None}

    def search(self, query: dict[str, str]) -> Response:
        service = query.get("service")
        if not service:
            return 400, {"data": None, "total": 0, "limit": 0, "offset": 0,
                         "errors": [{"code": 400, "msg": "parameter 'service' is required"}]}, {}
        try:
            tags = json.loads(query.get("tags") or "{}")
            min_us = parse_duration_us(query["minDuration"]) if query.get("minDuration") else 0
            max_us = parse_duration_us(query["maxDuration"]) if query.get("maxDuration") else None
            now_us = int(time.time() * 1_000_000)
            end = int(query.get("end") or now_us)
            lookback = query.get("lookback", "1h")
            start = int(query["start"]) if query.get("start") or lookback == "custom" else \
                end - parse_duration_us(lookback)
            limit = int(query.get("limit") or 20)
        except (ValueError, KeyError) as exc:
            return 400, _envelope(None, [{"code": 400, "msg": str(exc)}]), {}
        operation = query.get("operation")
        wanted = {k: str(v).lower() for k, v in tags.items()}
        found = []
        with self.data_lock:
            items = list(self.traces.items())
        for trace_id, trace in reversed(items):  # newest first
            if trace["service"] != service:
                continue
            for span in trace["spans"]:
                span_tags = {k: str(v).lower() for k, v in span.get("tags", {}).items()}
                if (start <= span["startTime"] <= end and span["duration"] >= min_us
                        and (max_us is None or span["duration"] <= max_us)
                        and (not operation or span["operationName"] == operation)
                        and all(span_tags.get(k) == v for k, v in wanted.items())):
                    found.append(self.render(trace_id, trace))
                    break
            if len(found) >= limit:
                break
        return 200, _envelope(found), {}

    def handle(self, request: Request) -> Response:
        if request.path == "/api/ingest" and request.method == "POST":
            return 202, {"accepted": self.ingest(request.json())}, {}
        if request.path == "/api/services":
            with self.data_lock:
                services = sorted({t["service"] for t in self.traces.values()})
            return 200, _envelope(services), {}
        if request.path == "/api/traces":
            return self.search(request.query)
        if request.path.startswith("/api/traces/"):
            trace_id = request.path.rsplit("/", 1)[1]
            with self.data_lock:
                trace = self.traces.get(trace_id)
            if trace is None:
                return 404, _envelope(None, [{"code": 404, "msg": "trace not found"}]), {}
            return 200, _envelope([self.render(trace_id, trace)]), {}
        if request.path.startswith("/api/services/") and request.path.endswith("/operations"):
            service = request.path.split("/")[3]
            with self.data_lock:
                ops = sorted({s["operationName"] for t in self.traces.values() if t["service"] == service
                              for s in t["spans"]})
            return 200, _envelope(ops), {}
        return 404, _envelope(None, [{"code": 404, "msg": "404 page not found"}]), {}


if __name__ == "__main__":
    Jaeger().serve()
