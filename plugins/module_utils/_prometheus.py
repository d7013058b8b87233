# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbooks' PromQL, run against Prometheus' HTTP API, with honest results.

A query that errors or returns nothing says so (status `error` / `empty`):
the quarterly review exists to notice a query that stopped returning data.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any
from urllib.parse import urlencode

from ansible.module_utils.urls import open_url
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

# name -> PromQL, exactly as the runbooks and alert rules use them.
RUNBOOK_QUERIES = {
    "queue_depth": "sum(queue_depth)",
    "worker_active_count": "sum(worker_active_count)",
    "success_per_second": 'sum(rate(enhancement_requests_total{status="success"}[5m]))',
    # No failure series yet means no failures: 0, not "no data" (success_per_second still says if the metric is gone).
    "failure_per_second": 'sum(rate(enhancement_requests_total{status="failure"}[5m])) or vector(0)',
    "success_rate_percent": "avg(enhancement_success_rate)",
    "p95_latency_seconds": "histogram_quantile(0.95, sum by (le) (rate(enhancement_duration_seconds_bucket[5m])))",
    "worker_memory_bytes": 'sum by (pod) (container_memory_usage_bytes{pod=~"celery-worker.*"})',
    "worker_memory_limit_bytes": 'sum by (pod) (container_spec_memory_limit_bytes{pod=~"celery-worker.*"})',
}
ALERTS = ("EnhancementSuccessRateLow", "QueueDepthHigh", "WorkerDown", "HighLatency")


class Prometheus:
    def __init__(self, url: str, timeout: float, validate_certs: bool = True, headers: dict | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.headers = headers or {}

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """The API's JSON answer; HTTP errors with a Prometheus error body are answers too."""
        address = f"{self.url}{path}?{urlencode(params)}"
        try:
            response = open_url(address, timeout=self.timeout, validate_certs=self.validate_certs,
                                headers=self.headers)
            return json.loads(response.read())
        except Exception as exc:  # HTTPError carries Prometheus' own error JSON (bad_data, ...)
            body = getattr(exc, "read", None)
            if body is not None:
                try:
                    return json.loads(body())
                except ValueError:
                    pass
            raise RunbookError("query", f"prometheus at {self.url}", _reason(exc)) from None

    def instant(self, query: str) -> dict[str, Any]:
        return shape(self.get("/api/v1/query", {"query": query}), query)

    def range(self, query: str, window_seconds: float, step_seconds: float) -> dict[str, Any]:
        end = time.time()
        answer = self.get("/api/v1/query_range", {"query": query, "start": end - window_seconds, "end": end,
                                                  "step": step_seconds})
        return shape(answer, query)

    def alerts(self) -> list[dict[str, Any]]:
        answer = self.get("/api/v1/alerts", {})
        return [{"name": alert["labels"].get("alertname"), "state": alert.get("state"),
                 "severity": alert["labels"].get("severity"), "active_at": alert.get("activeAt"),
                 "value": alert.get("value")} for alert in (answer.get("data") or {}).get("alerts", [])]

    def rules(self) -> list[str]:
        answer = self.get("/api/v1/rules", {"type": "alert"})
        return sorted(rule["name"] for group in (answer.get("data") or {}).get("groups", []) for rule in group["rules"])


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"unreachable ({reason})" if not hasattr(exc, "code") else f"HTTP {exc.code}"


def shape(answer: dict[str, Any], query: str) -> dict[str, Any]:
    """{status: ok|empty|error, value, series, error} from a query answer."""
    if answer.get("status") != "success":
        return {"query": query, "status": "error", "value": None, "series": [],
                "error": f"{answer.get('errorType', 'error')}: {answer.get('error', 'unknown error')}"}
    data = answer["data"]
    series = []
    for item in data.get("result", []):
        if "values" in item:
            points = [(float(ts), _number(value)) for ts, value in item["values"]]
            series.append({"labels": item.get("metric", {}), "points": points})
        elif "value" in item:
            series.append({"labels": item.get("metric", {}), "value": _number(item["value"][1])})
    if data.get("resultType") == "scalar":
        series = [{"labels": {}, "value": _number(data["result"][1])}]
    if not series:
        return {"query": query, "status": "empty", "value": None, "series": [], "error": None}
    value = series[0].get("value") if len(series) == 1 else None
    return {"query": query, "status": "ok", "value": value, "series": series, "error": None}


def _number(text: str) -> float | None:
    number = float(text)
    return None if math.isnan(number) else number


def trend(points: list[tuple[float, float | None]], min_change: float = 5.0) -> dict[str, Any]:
    """rising / falling / spiky / stable, from a least-squares line through the points.

    rising or falling: the line moves by more than max(min_change, 20% of the mean) over the window.
    spiky: otherwise, but points stray from the line by more than max(min_change, 25% of the mean).
    """
    values = [(ts, value) for ts, value in points if value is not None]
    if len(values) < 3:
        return {"classification": "unknown", "points": len(values), "reason": "fewer than 3 samples"}
    xs = [ts - values[0][0] for ts, _value in values]
    ys = [value for _ts, value in values]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs) or 1.0
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread
    change = slope * (xs[-1] - xs[0])
    residual = statistics.pstdev([y - (mean_y + slope * (x - mean_x)) for x, y in zip(xs, ys)])
    moved = max(min_change, 0.2 * abs(mean_y))
    if change > moved:
        label = "rising"
    elif change < -moved:
        label = "falling"
    elif residual > max(min_change, 0.25 * abs(mean_y)):
        label = "spiky"
    else:
        label = "stable"
    return {"classification": label, "points": len(values), "first": ys[0], "last": ys[-1],
            "min": min(ys), "max": max(ys), "change": round(change, 3), "per_minute": round(slope * 60, 3),
            "residual_stddev": round(residual, 3)}


def query_findings(url: str, results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for name, result in results.items():
        if result["status"] == "error":
            found.append(finding("metric_query_failed", "medium", f"Prometheus query {name} failed: {result['error']}",
                                 {"name": name, "query": result["query"], "prometheus": url},
                                 "Fix the query or the recording rule it depends on; the runbook is blind without it."))
        elif result["status"] == "empty":
            found.append(finding("metric_no_data", "low", f"Prometheus query {name} returned no data",
                                 {"name": name, "query": result["query"], "prometheus": url},
                                 "Check the exporter is scraped (targets page) and the metric name is unchanged."))
    return found
