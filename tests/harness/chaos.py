"""An HTTP server on loopback that answers as Prometheus, Jaeger or a webhook
receiver would - or in any of the broken ways they have been seen to answer.

``answer`` picks the answer for every request (the fuzz harness draws one per
call); ``"by-path"`` answers each API on its own path, as the real services do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What the chaos server answers, drawn per call: valid and broken shapes of the APIs the modules read.
ANSWERS = {
    "prometheus": (200, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"pod": "celery-worker-1"}, "value": [1.0, "3"]}]}}),
    "prometheus-matrix": (200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[1.0, "1"], [2.0, "x"]]}]}}),
    "prometheus-alerts": (200, {"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "QueueDepthHigh", "severity": "warning"}, "state": "firing",
         "activeAt": "2026-11-29T10:00:00Z", "value": "150"}]}}),
    "prometheus-rules": (200, {"status": "success", "data": {"groups": [
        {"name": "ai-agents", "rules": [{"name": "QueueDepthHigh", "type": "alerting"}]}]}}),
    "prometheus-error": (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
    # Jaeger's query API (/api/traces): microsecond startTime and duration, per span.
    "jaeger": (200, {"data": [{"traceID": "t1", "spans": [
        {"traceID": "t1", "spanID": "s1", "operationName": "llm.openai.completion", "references": [],
         "startTime": 1_795_000_000_000_000, "duration": 45_000_000, "tags": [], "processID": "p1"}],
        "processes": {"p1": {"serviceName": "ai-agents-worker", "tags": []}}}], "errors": None}),
    "jaeger-errors": (200, {"data": None, "errors": [{"code": 500, "msg": "backend down"}]}),
    # Jaeger v2's /api/v3/traces: OTLP spans in a result envelope, times in nanoseconds as strings.
    "jaeger-v3": (200, {"result": {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ai-agents-worker"}}]},
        "scopeSpans": [{"scope": {}, "spans": [
            {"traceId": "t1", "spanId": "s1", "name": "llm.openai.completion", "kind": 1,
             "startTimeUnixNano": "1795000000000000000", "endTimeUnixNano": "1795000045000000000",
             "attributes": [], "status": {}}]}]}]}}),
    "wrong-shape": (200, {"data": "surprise", "status": "success"}),
    "list": (200, [1, 2, 3]),
    "not-json": (200, "<html>maintenance</html>"),
    "empty": (200, ""),
    "server-error": (503, {"error": "overloaded"}),
    "accepted": (202, {"queued": True}),
}


class ChaosServer:
    """An HTTP server on loopback answering whatever the current example chose."""

    def __init__(self) -> None:
        self.answer = "by-path"
        chaos = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, 1 << 20))
                status, body = ANSWERS[chaos.answer if chaos.answer != "by-path" else _by_path(self.path)]
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_PUT = _answer  # noqa: N815 (http.server's names)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# The answer each real API gives on its own path (first matching prefix).
_PATHS = (("/api/v1/query_range", "prometheus-matrix"), ("/api/v1/alerts", "prometheus-alerts"),
          ("/api/v1/rules", "prometheus-rules"), ("/api/v1/", "prometheus"), ("/api/v3/traces", "jaeger-v3"),
          ("/api/traces", "jaeger"),
          ("/webhook", "accepted"))


def _by_path(path: str) -> str:
    return next((answer for prefix, answer in _PATHS if path.startswith(prefix)), "list")


@contextmanager
def http_server(answer) -> Iterator[str]:
    """An HTTP server on loopback calling ``answer(request) -> (status, content_type, body)`` for every
    GET, POST and PUT (the request's body already read into ``request.body``); yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, content_type, body = answer(self)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's naming

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def canned(body: bytes, status: int = 200, content_type: str = "application/json"):
    """An HTTP server answering every request with the same status and body; yields its URL."""
    return http_server(lambda _request: (status, content_type, body))
