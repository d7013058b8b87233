"""The platform's metrics. Workers are scaled replicas without ports of their
own, so they record into Redis and the api renders the Prometheus text
(`/metrics`) from there, adding what is measured at scrape time: queue depth
and the number of workers that answer a Celery ping."""
from __future__ import annotations

import time

import redis

from .config import HISTOGRAM_BUCKETS

COUNTER = "metrics:enhancement_requests_total"      # hash "status|tenant" -> count
HISTOGRAM = "metrics:enhancement_duration_seconds"  # hash "le" / "sum" / "count"
RECENT = "metrics:enhancement_recent"               # list "epoch|status", newest first
RECENT_KEEP = 2000
RENAMES = "metrics:renames"                          # hash old name -> new name (the metric-renamed fault)
SUCCESS_WINDOW_S = 300
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def record(client: redis.Redis, tenant_id: str, status: str, duration_s: float) -> None:
    pipe = client.pipeline()
    pipe.hincrby(COUNTER, f"{status}|{tenant_id}", 1)
    for le in HISTOGRAM_BUCKETS:
        if duration_s <= le:
            pipe.hincrby(HISTOGRAM, repr(le), 1)
    pipe.hincrby(HISTOGRAM, "+Inf", 1)
    pipe.hincrbyfloat(HISTOGRAM, "sum", duration_s)
    pipe.lpush(RECENT, f"{time.time():.3f}|{status}")
    pipe.ltrim(RECENT, 0, RECENT_KEEP - 1)
    pipe.execute()


def initialise(client: redis.Redis, tenants: list[str]) -> None:
    """Start each known tenant's outcome counters at 0 (Prometheus' advice for label
    values known in advance), so rate() answers from the first scrapes instead of
    "no data" until each tenant's first job has finished. Never lowers a count."""
    pipe = client.pipeline()
    for tenant in tenants:
        for status in ("success", "failure"):
            pipe.hsetnx(COUNTER, f"{status}|{tenant}", 0)
    pipe.execute()


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Depth over the plain list and Celery's priority siblings (reads in one round trip; no MULTI, which a
    Redis at maxmemory refuses even for reads)."""
    pipe = client.pipeline(transaction=False)
    for suffix in PRIORITY_SUFFIXES:
        pipe.llen(queue + suffix)
    return sum(pipe.execute())


def success_rate(client: redis.Redis) -> float:
    """Percent of successful jobs over the last five minutes; 100 when idle
    (no evidence of failure, so the alert stays quiet)."""
    cutoff = time.time() - SUCCESS_WINDOW_S
    recent = [entry.decode().split("|") for entry in client.lrange(RECENT, 0, -1)]
    window = [status for stamp, status in recent if float(stamp) >= cutoff]
    return 100.0 * window.count("success") / len(window) if window else 100.0


def render(client: redis.Redis, queue: str, workers: int) -> str:
    lines = [
        "# HELP queue_depth Jobs waiting in the enhancement queue (all priority lists).",
        "# TYPE queue_depth gauge",
        f'queue_depth{{queue="{queue}"}} {queue_depth(client, queue)}',
        "# HELP worker_active_count Celery workers answering a ping through the broker.",
        "# TYPE worker_active_count gauge",
        f"worker_active_count {workers}",
        "# HELP enhancement_requests_total Enhancement jobs finished, by outcome and tenant.",
        "# TYPE enhancement_requests_total counter",
    ]
    for field, value in sorted(client.hgetall(COUNTER).items()):
        status, tenant = field.decode().split("|", 1)
        lines.append(f'enhancement_requests_total{{status="{status}",tenant_id="{tenant}"}} {int(value)}')
    lines += ["# HELP enhancement_success_rate Percent of jobs that succeeded over the last 5 minutes.",
              "# TYPE enhancement_success_rate gauge",
              f"enhancement_success_rate {success_rate(client):.2f}",
              "# HELP enhancement_duration_seconds Duration of enhancement jobs.",
              "# TYPE enhancement_duration_seconds histogram"]
    hist = {k.decode(): v.decode() for k, v in client.hgetall(HISTOGRAM).items()}
    for le in HISTOGRAM_BUCKETS:
        lines.append(f'enhancement_duration_seconds_bucket{{le="{le}"}} {int(hist.get(repr(le), 0))}')
    count = int(hist.get("+Inf", 0))
    lines += [f'enhancement_duration_seconds_bucket{{le="+Inf"}} {count}',
              f"enhancement_duration_seconds_sum {float(hist.get('sum', 0)):.6f}",
              f"enhancement_duration_seconds_count {count}"]
    return "\n".join(renamed(lines, {k.decode(): v.decode() for k, v in client.hgetall(RENAMES).items()})) + "\n"


def renamed(lines: list[str], renames: dict[str, str]) -> list[str]:
    """The exposition with metrics renamed, as a release that renames a metric exports it."""
    out = []
    for line in lines:
        for old, new in renames.items():
            for prefix in ("# HELP ", "# TYPE ", ""):
                if line.startswith(prefix + old) and line[len(prefix + old):len(prefix + old) + 1] in ("{", " ", "_"):
                    line = prefix + new + line[len(prefix + old):]
                    break
        out.append(line)
    return out
