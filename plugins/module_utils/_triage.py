# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Triage: the findings of the four diagnoses, as probable causes ranked across runbooks.

One fault shows in several runbooks at once. Redis stopped is `redis_unreachable`
to high_queue_depth, workers that answer nothing and log connection errors to
worker_failures, and a queue that does not drain: one cause, not four. Each
finding names what it can explain downstream (EXPLAINS); a finding that another
present finding explains is a symptom and is listed under its cause. The causes
left are ranked: the more they explain and the more severe, the higher.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import severity_rank

# Symptoms of a queue that is not being worked off: what any cause upstream of it explains.
_QUEUE = ("queue_depth_*", "queue_low_throughput", "queue_oldest_job_stale", "queue_not_consumed",
          "queue_unacked_stale", "queue_age_unknown")
# What a stopped or failing worker fleet explains.
_WORKERS = ("queue_no_workers", "queue_few_workers", *_QUEUE)
# Failing workers, for a cause that makes them fail.
_WORKER_FAILURES = ("workers_all_down", "worker_crash_loop", "worker_exception", "worker_dependency_unreachable",
                    "worker_hung", "worker_task_long_running", *_WORKERS)
# The layers, from the bottom of the stack up: on a tie, the lower layer ranks first.
LAYERS = ("redis_", "db_", "rls_", "platform_paused", "worker", "api_", "intake_", "queue_", "prometheus_", "metric_",
          "jaeger_", "traces_")

EXPLAINS: dict[str, tuple[str, ...]] = {
    # The broker: nothing is queued or taken, the workers cannot connect.
    "redis_unreachable": (*_WORKER_FAILURES, "intake_*"),
    # A broker that runs but refuses writes: no job is queued (the intake fails), acknowledged or answered for;
    # the platform's metrics, kept in Redis, stop too.
    "redis_read_only_replica": (*_WORKER_FAILURES, "metric_no_data", "intake_*"),
    "redis_memory_full": (*_WORKER_FAILURES, "metric_no_data", "intake_*"),
    "redis_persistence_failing": (*_WORKER_FAILURES, "metric_no_data", "intake_*"),
    # A broker volume with no room: its saves fail, and with them its writes (MISCONF).
    "redis_storage_near_full": ("redis_persistence_failing", *_WORKER_FAILURES, "metric_no_data",
                                "intake_enqueue_failing"),
    # No client slot left: a worker (re)starting, or the intake, cannot connect.
    "redis_clients_near_limit": ("worker_dependency_unreachable", "workers_all_down", "worker_crash_loop",
                                 "worker_exception", "intake_*", *_WORKERS),
    # Jobs that never reached the queue: tickets wait for an enhancement that will not come.
    "intake_enqueue_failing": ("queue_low_throughput",),
    "redis_evicting": ("queue_unacked_stale", "worker_exception"),
    # The database: workers fail their jobs or cannot start.
    "db_unreachable": (*_WORKER_FAILURES, "db_connections_saturated", "db_idle_*", "intake_server_errors"),
    "db_auth_failed": _WORKER_FAILURES,
    "db_database_missing": _WORKER_FAILURES,
    "db_corruption_suspected": _WORKER_FAILURES,
    # Transaction ids used up: every write fails, the workers' jobs with it.
    "db_xid_wraparound": ("worker_exception", "intake_server_errors", *_QUEUE),
    # No space left: every write that needs a page fails, as above.
    "db_storage_full": ("worker_exception", "intake_server_errors", *_QUEUE),
    "db_connections_saturated": ("worker_exception", "worker_dependency_unreachable", "worker_task_long_running",
                                 *_QUEUE),
    "db_pool_misconfigured": ("db_connections_saturated", "worker_exception", "worker_dependency_unreachable",
                              *_QUEUE),
    "db_blocking_locks": ("db_long_running_query", "worker_task_long_running", "worker_hung", *_QUEUE),
    "db_long_running_query": ("worker_task_long_running", *_QUEUE),
    # A deliberate stop (intake paused, workers stopped on purpose) explains the queue it leaves behind.
    "platform_paused": (*_WORKERS, "workers_all_down"),
    # The workers themselves.
    "workers_all_down": _WORKERS,
    "worker_config_invalid": ("workers_all_down", "worker_crash_loop", "worker_exception", *_WORKERS),
    "worker_poison_job": ("worker_crash_loop", "worker_oom_killed", "worker_segfault", "workers_all_down",
                          *_WORKERS),
    "worker_oom_killed": ("worker_crash_loop", "workers_all_down", *_WORKERS),
    "worker_segfault": ("worker_crash_loop", "workers_all_down", *_WORKERS),
    "worker_crash_loop": ("workers_all_down", *_WORKERS),
    "worker_hung": _WORKERS,
    # The external APIs: jobs fail or crawl, so the queue backs up.
    "api_unreachable": ("worker_exception", "worker_task_long_running", "traces_slow_*", *_QUEUE),
    "api_timeout": ("worker_exception", "worker_task_long_running", "traces_slow_*", "api_slow", *_QUEUE),
    "api_slow": ("worker_task_long_running", "traces_slow_*", *_QUEUE),
    "api_server_error": ("worker_exception", *_QUEUE),
    "api_rate_limited": ("worker_exception", "api_quota_exhausted", *_QUEUE),
    "api_quota_exhausted": ("worker_exception", *_QUEUE),
    "api_auth_invalid": ("worker_exception", *_QUEUE),
    "api_forbidden": ("worker_exception", *_QUEUE),
    "api_key_scopes_missing": ("worker_exception", *_QUEUE),
    # One tenant's flood is the depth.
    "queue_tenant_flood": ("queue_depth_*", "queue_low_throughput", "queue_oldest_job_stale"),
    # Prometheus down: its metrics read as missing.
    "prometheus_unreachable": ("metric_no_data", "metric_query_failed"),
}


def _explains(cause: str, symptom: str) -> bool:
    return cause != symptom and any(fnmatchcase(symptom, pattern) for pattern in EXPLAINS.get(cause, ()))


def _layer(finding_id: str) -> int:
    return next((index for index, prefix in enumerate(LAYERS) if finding_id.startswith(prefix)), len(LAYERS))


def rank(found: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The probable causes, most probable first, from (runbook that found it, finding) pairs.

    Each cause: rank, id, severity, summary, the runbook to follow (the finding's own pointer, else the runbook
    that found it), the runbooks that saw it, the findings it explains (its symptoms, with the runbooks that saw
    them) and its resolution. Info findings are no cause. A finding two runbooks report is one cause."""
    merged: dict[str, dict[str, Any]] = {}
    for runbook, item in found:
        if severity_rank(item["severity"]) < severity_rank("low"):
            continue
        entry = merged.setdefault(item["id"], {"finding": item, "seen_by": []})
        if severity_rank(item["severity"]) > severity_rank(entry["finding"]["severity"]):
            entry["finding"] = item
        if runbook not in entry["seen_by"]:
            entry["seen_by"].append(runbook)
    present = set(merged)
    # A symptom belongs to every present cause that explains it; a finding explained by nothing is a cause.
    # Two findings that explain each other (none do today) would both stay causes.
    roots = [fid for fid in present if not any(_explains(other, fid) and not _explains(fid, other)
                                               for other in present)]

    def downstream(cause: str) -> list[str]:
        reached, frontier = set(), [cause]
        while frontier:
            current = frontier.pop()
            for other in present:
                if other not in reached and other != cause and _explains(current, other):
                    reached.add(other)
                    frontier.append(other)
        return sorted(reached, key=lambda fid: (-severity_rank(merged[fid]["finding"]["severity"]), fid))

    causes = []
    for fid in roots:
        item, explained = merged[fid]["finding"], downstream(fid)
        causes.append({
            "id": fid, "severity": item["severity"], "summary": item["summary"],
            "runbook": item.get("runbook") or merged[fid]["seen_by"][0],
            "seen_by": merged[fid]["seen_by"],
            "explains": [{"id": other, "severity": merged[other]["finding"]["severity"],
                          "seen_by": merged[other]["seen_by"]} for other in explained],
            "resolution": item.get("resolution", ""),
        })
    causes.sort(key=lambda cause: (-severity_rank(cause["severity"]), -len(cause["explains"]), _layer(cause["id"]),
                                   cause["id"]))
    for number, cause in enumerate(causes, 1):
        cause["rank"] = number
    return causes
