# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbooks' PromQL, run against Prometheus' HTTP API, with honest results.

A query that errors or returns nothing says so (status `error` / `empty`):
the quarterly review exists to notice a query that stopped returning data.
"""

from __future__ import annotations

import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import redact_url

# name -> PromQL, exactly as the runbooks and alert rules use them.
RUNBOOK_QUERIES = {
    "queue_depth": "sum(queue_depth)",
    "worker_active_count": "sum(worker_active_count)",
    "success_per_second": 'sum(rate(enhancement_requests_total{status="success"}[5m]))',
    # No failure series yet means no failures: 0, not "no data" (success_per_second still says if the metric is gone).
    "failure_per_second": 'sum(rate(enhancement_requests_total{status="failure"}[5m])) or vector(0)',
    "success_rate_percent": "avg(enhancement_success_rate)",
    "p95_latency_seconds": "histogram_quantile(0.95, sum by (le) (rate(enhancement_duration_seconds_bucket[5m])))",
    # The intake (the webhook API) over the last 2 minutes - now, not the past: webhooks answered 5xx, and
    # jobs the queue refused, by reason.
    "intake_per_second": "sum(rate(webhook_requests_total[2m]))",
    "intake_5xx_per_second": 'sum(rate(webhook_requests_total{code=~"5.."}[2m])) or vector(0)',
    "intake_enqueue_errors": "sum by (reason) (increase(webhook_enqueue_errors_total[2m]))",
    "worker_memory_bytes": 'sum by (pod) (container_memory_usage_bytes{pod=~"celery-worker.*"})',
    "worker_memory_limit_bytes": 'sum by (pod) (container_spec_memory_limit_bytes{pod=~"celery-worker.*"})',
}
ALERTS = ("EnhancementSuccessRateLow", "QueueDepthHigh", "WorkerDown", "HighLatency")
MAX_TREND_WINDOW = 7 * 86400.0  # seconds
MAX_POINTS = 11000  # Prometheus refuses a range query with more points per series
MAX_MIN_CHANGE = 1e12
NOT_PROMETHEUS = "the answer is not the JSON Prometheus gives"


class AnswerError(ValueError):
    """An answer that is JSON, but not in the shape Prometheus gives."""


def check_options(params: dict[str, Any]) -> str | None:
    """The message refusing an out-of-range number among the module's options, or None."""
    window = params.get("trend_window")
    problem = (_http.check_timeout("timeout", params.get("timeout"))
               or out_of_range("trend_window", window, above=0, maximum=MAX_TREND_WINDOW)
               or out_of_range("trend_step", params.get("trend_step"), above=0)
               or out_of_range("trend_min_change", params.get("trend_min_change"), minimum=0, maximum=MAX_MIN_CHANGE))
    if not problem and params.get("trend_step") is not None and window is not None:
        problem = out_of_range("trend_step", params["trend_step"], minimum=window / MAX_POINTS)
        if problem:
            problem += f" (Prometheus gives at most {MAX_POINTS} points over trend_window)"
    return f"query prometheus: {problem}" if problem else None


class Prometheus:
    """Prometheus' HTTP API through the one HTTP client; every request before one shared deadline."""

    def __init__(self, url: str, timeout: float, validate_certs: bool = True, headers: dict | None = None) -> None:
        _http.prepare(url, headers=headers, validate_certs=validate_certs)  # HttpInputError before any request
        self.url = url
        self.shown = redact_url(url)
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.headers = headers or {}
        self.deadline: float | None = None

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """The API's JSON answer; HTTP errors with a Prometheus error body are answers too."""
        prepared = _http.prepare(_http.join_url(self.url, path, params), headers=self.headers,
                                 validate_certs=self.validate_certs)
        try:
            status, answer = _http.get_json(prepared, self.timeout, self.deadline)
        except _http.HttpError as exc:
            raise RunbookError("query", f"prometheus at {self.shown}", exc.detail) from None
        if isinstance(answer, dict) and isinstance(answer.get("status"), str):
            return answer  # Prometheus' own error answers (bad_data, ...) come with 4xx/5xx
        if status >= 400:
            raise RunbookError("query", f"prometheus at {self.shown}", f"HTTP {status}")
        cause = "the answer is not JSON" if answer is None else NOT_PROMETHEUS
        raise RunbookError("query", f"prometheus at {self.shown}", f"{cause} (HTTP {status} on {path})")

    def instant(self, query: str) -> dict[str, Any]:
        return shape(self.get("/api/v1/query", {"query": query}), query)

    def range(self, query: str, window_seconds: float, step_seconds: float) -> dict[str, Any]:
        end = time.time()
        answer = self.get("/api/v1/query_range", {"query": query, "start": end - window_seconds, "end": end,
                                                  "step": step_seconds})
        return shape(answer, query)

    def alerts(self) -> list[dict[str, Any]]:
        alerts = _data(self.get("/api/v1/alerts", {}), "alerts", "/api/v1/alerts", self.shown)
        try:
            return [{"name": alert["labels"].get("alertname"), "state": alert.get("state"),
                     "severity": alert["labels"].get("severity"), "active_at": alert.get("activeAt"),
                     "value": alert.get("value")} for alert in alerts]
        except (AttributeError, KeyError, TypeError):
            raise RunbookError("read alerts from", f"prometheus at {self.shown}",
                               f"{NOT_PROMETHEUS} (an alert without labels)") from None

    def rules(self) -> list[str]:
        groups = _data(self.get("/api/v1/rules", {"type": "alert"}), "groups", "/api/v1/rules", self.shown)
        try:
            return sorted(str(rule["name"]) for group in groups for rule in group["rules"])
        except (KeyError, TypeError):
            raise RunbookError("read alert rules from", f"prometheus at {self.shown}",
                               f"{NOT_PROMETHEUS} (a rule group without rules)") from None


def _data(answer: dict[str, Any], key: str, path: str, shown: str) -> list[Any]:
    """answer.data[key], a list, or a RunbookError saying the answer is not Prometheus'."""
    if answer.get("status") != "success":
        raise RunbookError("query", f"prometheus at {shown}",
                           f"{path} failed: {answer.get('errorType', 'error')}: {answer.get('error', 'unknown error')}")
    data = answer.get("data")
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise RunbookError("query", f"prometheus at {shown}", f"{NOT_PROMETHEUS} (no data.{key} list on {path})")
    return data[key]


def collect(prometheus: Prometheus, params: dict[str, Any]) -> dict[str, Any]:
    """The module's result: every request at once, all before one deadline (the module's timeout)."""
    names = params.get("include") or list(RUNBOOK_QUERIES)
    queries = {name: RUNBOOK_QUERIES[name] for name in names}
    queries.update(params.get("queries") or {})
    window = params["trend_window"]
    prometheus.deadline = time.monotonic() + prometheus.timeout
    # Every request at once: a dozen sequential round trips are most of this module's time.
    with ThreadPoolExecutor(max_workers=min(16, len(queries) + 3)) as pool:
        pending = {name: pool.submit(prometheus.instant, str(query)) for name, query in queries.items()}
        ranged_future = pool.submit(prometheus.range, RUNBOOK_QUERIES["queue_depth"], window,
                                    params.get("trend_step") or window / 60)
        alerts_future, rules_future = pool.submit(prometheus.alerts), pool.submit(prometheus.rules)
        results = {name: future.result() for name, future in pending.items()}
        ranged, all_alerts, rules = ranged_future.result(), alerts_future.result(), rules_future.result()
    points = ranged["series"][0].get("points", []) if ranged["status"] == "ok" else []
    queue_trend = {**trend(points, params["trend_min_change"]), "status": ranged["status"]}
    alerts = [alert for alert in all_alerts if alert["state"] in ("pending", "firing")]
    return {
        "reachable": True,
        "metrics": results,
        "queue_trend": queue_trend,
        "alerts": alerts,
        "alerts_firing": sorted({str(alert["name"]) for alert in alerts if alert["state"] == "firing"}),
        "alert_rules": rules,
        "findings": query_findings(prometheus.shown, results),
    }


def shape(answer: dict[str, Any], query: str) -> dict[str, Any]:
    """{status: ok|empty|error, value, series, error} from a query answer; a malformed one is an error."""
    if answer.get("status") != "success":
        return {"query": query, "status": "error", "value": None, "series": [],
                "error": f"{answer.get('errorType', 'error')}: {answer.get('error', 'unknown error')}"}
    try:
        series = _series(answer.get("data"))
    except AnswerError as exc:
        return {"query": query, "status": "error", "value": None, "series": [], "error": f"{NOT_PROMETHEUS} ({exc})"}
    if not series:
        return {"query": query, "status": "empty", "value": None, "series": [], "error": None}
    value = series[0].get("value") if len(series) == 1 else None
    return {"query": query, "status": "ok", "value": value, "series": series, "error": None}


def _series(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise AnswerError("no data.result list")
    if data.get("resultType") == "scalar":
        return [{"labels": {}, "value": _number(_sample(data["result"])[1])}]
    if data.get("resultType") == "string":
        raise AnswerError("a string result where a number was expected")
    series = []
    for item in data["result"]:
        if not isinstance(item, dict) or not isinstance(item.get("metric", {}), dict):
            raise AnswerError("a series that is not an object with metric labels")
        labels = item.get("metric", {})
        if "values" in item:
            if not isinstance(item["values"], list):
                raise AnswerError("values that are not a list")
            points = [(_timestamp(sample[0]), _number(sample[1])) for sample in map(_sample, item["values"])]
            series.append({"labels": labels, "points": points})
        elif "value" in item:
            series.append({"labels": labels, "value": _number(_sample(item["value"])[1])})
        else:
            raise AnswerError("a series without value or values")
    return series


def _sample(sample: Any) -> list[Any]:
    if not isinstance(sample, list) or len(sample) != 2:
        raise AnswerError(f"a sample that is not [time, value]: {str(sample)[:40]!r}")
    return sample


def _timestamp(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnswerError(f"a sample time that is not a number: {str(value)[:40]!r}")
    return float(value)


def _number(text: Any) -> float | None:
    """A sample value as Prometheus writes it ("1.5", "NaN", "+Inf"); NaN is no value."""
    if not isinstance(text, str):
        raise AnswerError(f"a sample value that is not a string: {str(text)[:40]!r}")
    try:
        number = float(text)
    except ValueError:
        raise AnswerError(f"a sample value that is not a number: {text[:40]!r}") from None
    return None if math.isnan(number) else number


def trend(points: list[tuple[float, float | None]], min_change: float = 5.0) -> dict[str, Any]:
    """rising / falling / spiky / stable, from a least-squares line through the points.

    rising or falling: the line moves by more than max(min_change, 20% of the mean) over the window.
    spiky: otherwise, but points stray from the line by more than max(min_change, 25% of the mean).
    """
    values = [(ts, value) for ts, value in points if value is not None and math.isfinite(value)]
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
