"""A minimal tracer: spans are posted to the Jaeger stand-in as each stage
finishes, like a real exporter flushing, so a worker that dies mid-job leaves a
trace without its later stages (and without the root span)."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

SERVICE = "ai-agents-worker"
log = logging.getLogger(__name__)


class Trace:
    def __init__(self, url: str, tags: dict[str, Any]) -> None:
        self.url = url
        self.trace_id = os.urandom(16).hex()
        self.root_id = os.urandom(8).hex()
        self.tags = tags
        self.start_us = int(time.time() * 1_000_000)
        self.pending: list[dict[str, Any]] = []
        self.stack: list[str] = [self.root_id]

    @contextmanager
    def span(self, operation: str, **tags: Any) -> Iterator[dict[str, Any]]:
        span_id = os.urandom(8).hex()
        span = {"traceID": self.trace_id, "spanID": span_id, "parentSpanID": self.stack[-1],
                "operationName": operation, "startTime": int(time.time() * 1_000_000),
                "tags": {**self.tags, **tags}}
        self.stack.append(span_id)
        try:
            yield span
        except BaseException:
            span["tags"]["error"] = True
            raise
        finally:
            self.stack.pop()
            span["duration"] = int(time.time() * 1_000_000) - span["startTime"]
            self.pending.append(span)
            if len(self.stack) == 1:  # a stage ended: flush it
                self.flush()

    def finish(self, error: bool, slow_after_s: float) -> float:
        duration_us = int(time.time() * 1_000_000) - self.start_us
        tags = dict(self.tags)
        if error:
            tags["error"] = True
        if duration_us >= slow_after_s * 1_000_000:
            tags["slow_trace"] = True
        self.pending.append({"traceID": self.trace_id, "spanID": self.root_id, "parentSpanID": None,
                             "operationName": "enhance_ticket", "startTime": self.start_us,
                             "duration": duration_us, "tags": tags})
        self.flush()
        return duration_us / 1_000_000

    def flush(self) -> None:
        spans, self.pending = self.pending, []
        try:
            requests.post(self.url, json={"service": SERVICE, "spans": spans}, timeout=2)
        except requests.RequestException as exc:  # tracing never fails a job
            log.warning("trace export failed: %s", exc)
