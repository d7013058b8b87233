"""Jaeger query API stand-in: the legacy `/api/...` JSON the Jaeger UI reads, and
Jaeger v2's `/api/v3` query API (OTLP JSON), as Jaeger documents them.

Followed (each rule's case in tests/integration/test_jaeger_contract.py):
- Legacy search, `GET /api/traces` (https://www.jaegertracing.io/docs/1.76/apis/
  and jaeger's cmd/query HTTP handler): `service` required; `start`/`end` in
  microseconds since the epoch - there is no `lookback` parameter (the UI turns
  its lookback into `start`), and without `start` the last 48 hours are
  searched; `minDuration`/`maxDuration` in Go's duration syntax (`500ms`,
  `1.5s`, `2h45m`; no days); `tags` a JSON map whose values are matched as
  exact strings (a boolean tag is "true", never "True").
- Jaeger v2's query API, `GET /api/v3/traces` (jaeger-idl
  swagger/api_v3/query_service.openapi.yaml): `query.service_name`,
  `query.start_time_min`/`max` (RFC 3339, required), `query.duration_min`/
  `max` (Go durations), `query.attributes` (a JSON map of strings),
  `query.search_depth`; each also in its camelCase spelling. Answers wrap
  OTLP `resourceSpans` in `{"result": ...}`; errors are `{"error": {...}}`
  with `httpCode` and `message`, no traces found being a 404 of that shape.
- Newer releases drop the legacy endpoints and Jaeger v1 has no `/api/v3`:
  control `POST /apis {"legacy": false}` or `{"v3": false}` (DELETE: both),
  where the missing one answers a plain-text 404, as an unknown route does.

The worker posts finished spans to `POST /api/ingest` (our own simple shape:
{"service": ..., "spans": [{traceID, spanID, parentSpanID, operationName,
startTime (µs), duration (µs), tags: {k: v}}]}); queries group them into
traces. A trace matches when one of its spans satisfies every predicate.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

from .common import Request, Response, StandIn

MAX_TRACES = 5000


GO_DURATION = re.compile(r"^(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$")
GO_UNITS_US = {"ns": 0.001, "us": 1, "\u00b5s": 1, "\u03bcs": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000,
               "h": 3_600_000_000}
DEFAULT_SEARCH_US = 48 * 3_600_000_000  # no start given: the last 48 hours


def parse_duration_us(text: str) -> int:
    """A Go duration (time.ParseDuration) in microseconds: 1.5s, 500ms, 2h45m; no days, no bare numbers."""
    if not GO_DURATION.match(text):
        raise ValueError(f'time: invalid duration "{text}"')
    return int(sum(float(number) * GO_UNITS_US[unit]
                   for number, unit in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)", text)))


def tag_text(value: Any) -> str:
    """A tag's value as Jaeger matches it: booleans lower case, numbers as written, text as it is."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def rfc3339_us(text: str) -> int:
    """RFC 3339 (nanoseconds allowed, Z or an offset) to microseconds since the epoch."""
    match = re.match(r"^(.{19})(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        raise ValueError(f"parsing time {text!r} as RFC 3339")
    stamp = datetime.fromisoformat(match.group(1) + ("+00:00" if match.group(3) == "Z" else match.group(3)))
    return int(stamp.timestamp()) * 1_000_000 + int((match.group(2) or "0").ljust(9, "0")[:6])


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
        self.apis = {"legacy": True, "v3": True}  # which query APIs this "release" serves

    def error_body(self, status: int, code: str = "") -> Any:
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

    def matching(self, service: str, start: int, end: int, min_us: int, max_us: int | None,
                 operation: str | None, wanted: dict[str, str], limit: int) -> list[tuple[str, dict[str, Any]]]:
        """Traces of `service`, newest first, with a span that satisfies every predicate (tags as exact text)."""
        found = []
        with self.data_lock:
            items = list(self.traces.items())
        for trace_id, trace in reversed(items):
            if trace["service"] != service:
                continue
            for span in trace["spans"]:
                span_tags = {k: tag_text(v) for k, v in span.get("tags", {}).items()}
                if (start <= span["startTime"] < end and span["duration"] >= min_us
                        and (max_us is None or span["duration"] <= max_us)
                        and (not operation or span["operationName"] == operation)
                        and all(span_tags.get(k) == v for k, v in wanted.items())):
                    found.append((trace_id, trace))
                    break
            if len(found) >= limit:
                break
        return found

    def search(self, query: dict[str, str]) -> Response:
        service = query.get("service")
        if not service:
            return 400, _envelope(None, [{"code": 400, "msg": "parameter 'service' is required"}]), {}
        try:
            tags = json.loads(query.get("tags") or "{}")
            if not isinstance(tags, dict):
                raise ValueError("malformed 'tags' parameter: not a JSON map")
            min_us = parse_duration_us(query["minDuration"]) if query.get("minDuration") else 0
            max_us = parse_duration_us(query["maxDuration"]) if query.get("maxDuration") else None
            end = int(query["end"]) if query.get("end") else int(time.time() * 1_000_000)
            start = int(query["start"]) if query.get("start") else end - DEFAULT_SEARCH_US
            limit = int(query.get("limit") or 20)
        except (ValueError, KeyError) as exc:
            return 400, _envelope(None, [{"code": 400, "msg": str(exc)}]), {}
        found = self.matching(service, start, end + 1, min_us, max_us, query.get("operation"),
                              {str(k): str(v) for k, v in tags.items()}, limit)
        return 200, _envelope([self.render(trace_id, trace) for trace_id, trace in found]), {}

    # -- Jaeger v2's /api/v3 query API
    @staticmethod
    def v3_error(status: int, message: str) -> Response:
        codes = {400: 3, 404: 5, 500: 13, 503: 14}
        return status, {"error": {"grpcCode": codes.get(status, 2), "httpCode": status, "message": message,
                                  "httpStatus": {400: "Bad Request", 404: "Not Found"}.get(status, "Error")}}, {}

    def v3_search(self, query: dict[str, str]) -> Response:
        def param(name: str) -> str | None:
            camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)
            return query.get(f"query.{name}") or query.get(f"query.{camel}")

        service = param("service_name")
        try:
            if not param("start_time_min") or not param("start_time_max"):
                raise ValueError("start_time_min and start_time_max are required")
            start, end = rfc3339_us(param("start_time_min") or ""), rfc3339_us(param("start_time_max") or "")
            min_us = parse_duration_us(param("duration_min") or "0s")
            max_us = parse_duration_us(param("duration_max")) if param("duration_max") else None
            attributes = json.loads(param("attributes") or "{}")
            if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
                raise ValueError("attributes must be a JSON map of strings")
            limit = int(param("search_depth") or 20)
        except ValueError as exc:
            return self.v3_error(400, str(exc))
        if not service:
            return self.v3_error(400, "service_name is required")
        found = self.matching(service, start, end, min_us, max_us, param("operation_name"), attributes, limit)
        if not found:
            return self.v3_error(404, "No traces found")
        return 200, {"result": {"resourceSpans": [self.otlp(trace_id, trace) for trace_id, trace in found]}}, {}

    @staticmethod
    def otlp(trace_id: str, trace: dict[str, Any]) -> dict[str, Any]:
        def value(item: Any) -> dict[str, Any]:
            if isinstance(item, bool):
                return {"boolValue": item}
            if isinstance(item, int):
                return {"intValue": str(item)}  # proto3 JSON: 64-bit integers as strings
            if isinstance(item, float):
                return {"doubleValue": item}
            return {"stringValue": str(item)}

        spans = [{"traceId": trace_id, "spanId": span["spanID"], "parentSpanId": span.get("parentSpanID") or "",
                  "name": span["operationName"], "kind": 1,
                  "startTimeUnixNano": str(span["startTime"] * 1000),
                  "endTimeUnixNano": str((span["startTime"] + span["duration"]) * 1000),
                  "attributes": [{"key": k, "value": value(v)} for k, v in span.get("tags", {}).items()],
                  "status": {}} for span in trace["spans"]]
        return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": trace["service"]}}]},
                "scopeSpans": [{"scope": {}, "spans": spans}]}

    def handle(self, request: Request) -> Response:
        if request.path == "/api/ingest" and request.method == "POST":
            return 202, {"accepted": self.ingest(request.json())}, {}
        if request.path.startswith("/api/v3/"):
            if not self.apis["v3"]:
                return 404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"}
            if request.path == "/api/v3/traces":
                return self.v3_search(request.query)
            if request.path == "/api/v3/services":
                with self.data_lock:
                    return 200, {"services": sorted({t["service"] for t in self.traces.values()})}, {}
            if request.path.startswith("/api/v3/traces/"):
                trace_id = request.path.rsplit("/", 1)[1]
                with self.data_lock:
                    trace = self.traces.get(trace_id)
                if trace is None:
                    return self.v3_error(404, "trace not found")
                return 200, {"result": {"resourceSpans": [self.otlp(trace_id, trace)]}}, {}
            return 404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"}
        if not self.apis["legacy"]:
            return 404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"}
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

    def control(self, request: Request) -> Response | None:
        if request.path == "/apis":
            with self.lock:
                if request.method == "POST":
                    self.apis.update({k: bool(v) for k, v in request.json().items() if k in self.apis})
                elif request.method == "DELETE":
                    self.apis = {"legacy": True, "v3": True}
                return 200, dict(self.apis), {}
        return None

if __name__ == "__main__":
    Jaeger().serve()
