"""Triage's ranking: one fault seen by several runbooks is one cause, with its symptoms under it."""
from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding
from ansible_collections.aiagents.runbooks.plugins.module_utils._triage import EXPLAINS, rank

REPO = Path(__file__).resolve().parents[4]


def test_a_stopped_redis_is_one_cause_that_explains_what_the_other_runbooks_saw():
    found = [
        ("high_queue_depth", finding("redis_unreachable", "critical", "Redis refused the connection",
                                     resolution="Restore Redis", runbook="worker_failures")),
        ("high_queue_depth", finding("queue_no_workers", "critical", "no worker answers", runbook="worker_failures")),
        ("worker_failures", finding("worker_dependency_unreachable", "high", "workers cannot reach redis")),
        ("worker_failures", finding("workers_all_down", "critical", "no worker runs")),
        ("worker_failures", finding("worker_sigterm", "info", "a worker stopped normally")),
    ]
    causes = rank(found)
    assert [cause["id"] for cause in causes] == ["redis_unreachable"]
    top = causes[0]
    assert top["rank"] == 1 and top["severity"] == "critical" and top["runbook"] == "worker_failures"
    assert {item["id"] for item in top["explains"]} == {"queue_no_workers", "worker_dependency_unreachable",
                                                        "workers_all_down"}
    assert top["seen_by"] == ["high_queue_depth"]
    assert top["resolution"] == "Restore Redis"


def test_a_finding_two_runbooks_report_is_one_cause_seen_by_both():
    found = [("high_queue_depth", finding("redis_unreachable", "high", "Redis slow to answer")),
             ("worker_failures", finding("redis_unreachable", "critical", "Redis refused the connection"))]
    (cause,) = rank(found)
    assert cause["seen_by"] == ["high_queue_depth", "worker_failures"]
    assert cause["severity"] == "critical" and cause["summary"] == "Redis refused the connection"
    # without a pointer of its own, the runbook to follow is the first that saw it
    assert cause["runbook"] == "high_queue_depth"


def test_independent_causes_rank_by_severity_then_by_what_they_explain_then_by_layer():
    found = [
        ("api_timeout", finding("api_rate_limited", "medium", "OpenAI answers 429")),
        ("high_queue_depth", finding("queue_low_throughput", "medium", "0.2 jobs/s")),
        ("high_queue_depth", finding("queue_tenant_flood", "medium", "acme-corp holds 90%")),
        ("database_connection_issues", finding("db_long_running_query", "high", "a query runs 12 min")),
        ("worker_failures", finding("worker_task_long_running", "medium", "a task runs 12 min")),
    ]
    causes = rank(found)
    assert [cause["id"] for cause in causes] == ["db_long_running_query", "api_rate_limited", "queue_tenant_flood"]
    # a symptom two causes explain is listed under both
    assert [item["id"] for item in causes[1]["explains"]] == ["queue_low_throughput"]
    assert [item["id"] for item in causes[2]["explains"]] == ["queue_low_throughput"]
    assert {item["id"] for item in causes[0]["explains"]} == {"worker_task_long_running", "queue_low_throughput"}


def test_a_chain_of_causes_keeps_only_its_root_and_lists_everything_downstream():
    found = [("worker_failures", finding("worker_poison_job", "high", "the same ticket before each crash")),
             ("worker_failures", finding("worker_oom_killed", "high", "killed at its memory limit")),
             ("worker_failures", finding("worker_crash_loop", "high", "6 restarts in the last hour")),
             ("high_queue_depth", finding("queue_depth_high", "high", "340 jobs"))]
    (cause,) = rank(found)
    assert cause["id"] == "worker_poison_job"
    assert {item["id"] for item in cause["explains"]} == {"worker_oom_killed", "worker_crash_loop",
                                                          "queue_depth_high"}


def test_nothing_above_info_is_no_cause():
    assert rank([("worker_failures", finding("worker_sigterm", "info", "a worker stopped normally"))]) == []
    assert rank([]) == []


def test_every_id_the_ranking_names_is_one_a_runbook_reports():
    """A typo in EXPLAINS would silently explain nothing: every key and pattern names findings the roles and
    modules build (read from their source), or the runbooks' contract (spec ids in the README)."""
    sources = [path.read_text() for folder in ("roles", "plugins") for path in (REPO / folder).rglob("*")
               if path.is_file() and path.suffix in (".py", ".yml")]
    known = set(re.findall(r"['\"]([a-z]+_[a-z_]+)['\"]", "\n".join(sources)))
    known |= set(re.findall(r"`([a-z]+_[a-z_]+)`", (REPO / "README.md").read_text()))
    for cause, patterns in EXPLAINS.items():
        assert cause in known, cause
        for pattern in patterns:
            assert any(fnmatchcase(name, pattern) for name in known), (cause, pattern)


def test_a_broker_that_refuses_writes_ranks_above_everything_it_explains():
    found = [
        ("high_queue_depth", finding("redis_memory_full", "critical", "Redis refuses every write (OOM)")),
        ("worker_failures", finding("redis_memory_full", "critical", "Redis refuses every write (OOM)")),
        ("worker_failures", finding("worker_exception", "medium", "OutOfMemoryError in the workers' logs")),
        ("high_queue_depth", finding("metric_no_data", "low", "queue_depth returned no data")),
        ("high_queue_depth", finding("queue_depth_high", "high", "150 jobs queued")),
    ]
    (cause,) = rank(found)
    assert cause["id"] == "redis_memory_full" and cause["seen_by"] == ["high_queue_depth", "worker_failures"]
    assert {item["id"] for item in cause["explains"]} == {"worker_exception", "metric_no_data", "queue_depth_high"}


def test_the_intake_failing_is_listed_under_the_broker_that_refuses_its_jobs():
    found = [("high_queue_depth", finding("intake_enqueue_failing", "critical", "the API could not queue 6 jobs")),
             ("high_queue_depth", finding("redis_read_only_replica", "critical", "Redis is a read-only replica")),
             ("database_connection_issues", finding("db_long_running_query", "medium", "a query runs 6 min"))]
    causes = rank(found)
    assert [cause["id"] for cause in causes] == ["redis_read_only_replica", "db_long_running_query"]
    assert [item["id"] for item in causes[0]["explains"]] == ["intake_enqueue_failing"]


def test_a_full_disk_is_the_cause_of_the_failed_saves_and_writes_it_leads_to():
    broker = [("worker_failures", finding("redis_persistence_failing", "critical", "Redis refuses writes (MISCONF)")),
              ("database_connection_issues", finding("redis_storage_near_full", "critical", "a save failed: no space")),
              ("worker_failures", finding("worker_exception", "medium", "ResponseError MISCONF in the logs"))]
    (cause,) = rank(broker)
    assert cause["id"] == "redis_storage_near_full"
    assert {item["id"] for item in cause["explains"]} == {"redis_persistence_failing", "worker_exception"}
    database = [("database_connection_issues", finding("db_storage_full", "critical", "PostgreSQL refuses writes")),
                ("high_queue_depth", finding("intake_server_errors", "high", "the webhook API answers 5xx")),
                ("worker_failures", finding("worker_exception", "medium", "DiskFull in the logs"))]
    (cause,) = rank(database)
    assert cause["id"] == "db_storage_full"
    assert {item["id"] for item in cause["explains"]} == {"intake_server_errors", "worker_exception"}
