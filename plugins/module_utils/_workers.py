# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The worker_failures runbook's judgement, on provider-neutral worker records.

Providers (Docker, Kubernetes) describe each worker container/pod as
{name, state, running, restart_count, exit_code, oom_killed, started_at,
memory_limit_bytes, logs: [lines]}; everything below reads only that.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

OOM = re.compile(r"MemoryError|OOMKilled|out of memory|Killed process|signal 9 \(SIGKILL\)", re.I)
SEGFAULT = re.compile(r"Segmentation fault|SIGSEGV|signal 11", re.I)
EXCEPTION = re.compile(r"^(?:\S+\s+)*?([A-Za-z_][\w.]*(?:Error|Exception))(?::\s*(.*))?$")
DEPENDENCY = re.compile(r"(redis|postgres|psycopg2|kombu)[^\n]*(connection refused|could not connect|connection error|"
                        r"timeout expired|name or service not known|Error 111|server closed the connection)", re.I)
TICKET = re.compile(r"ticket_id[=: \"']+([A-Za-z0-9_-]+)")
STARTED = re.compile(r"celery@\S+ ready|worker starting|Connected to redis", re.I)
# Proof a dependency answers again: which dependencies each kind of line clears.
JOB_SUCCEEDED = re.compile(r"job succeeded", re.I)
RECOVERED = ((JOB_SUCCEEDED, ("redis", "postgres")),  # a job needs both
             (re.compile(r"celery@\S+ ready", re.I), ("redis", "postgres")),  # a new process: earlier errors were its predecessor's
             (re.compile(r"Connected to redis", re.I), ("redis",)))  # the broker (re)connected


def analyse_logs(lines: list[str]) -> dict[str, Any]:
    """What the logs say: OOM, segfaults, exceptions, unreachable dependencies, the job before each crash.

    A dependency's errors count only after the last sign it answers again (a
    broker connection for Redis; a worker start or a job that succeeded for
    both), so they describe now, not the past."""
    signals: dict[str, Any] = {"oom": 0, "segfault": 0, "exceptions": Counter(), "exception_lines": [],
                               "dependency_errors": [], "unreachable": [], "jobs_succeeded": 0,
                               "last_ticket_before_restart": []}
    errors: dict[str, list[str]] = {"redis": [], "postgres": []}
    last_ticket = None
    saw_start = False
    for line in lines:
        if STARTED.search(line):
            if saw_start and last_ticket:
                signals["last_ticket_before_restart"].append(last_ticket)
            saw_start, last_ticket = True, None
        ticket = TICKET.search(line)
        if ticket:
            last_ticket = ticket.group(1)
        if OOM.search(line):
            signals["oom"] += 1
        if SEGFAULT.search(line):
            signals["segfault"] += 1
        for pattern, cleared in RECOVERED:
            if pattern.search(line):
                for name in cleared:
                    errors[name] = []
        if JOB_SUCCEEDED.search(line):
            signals["jobs_succeeded"] += 1
        if DEPENDENCY.search(line):
            name = dependency_name(line)
            errors[name] = (errors[name] + [line.strip()[:300]])[-5:]
        stripped = line.strip()
        match = EXCEPTION.match(stripped)
        if match and not stripped.startswith(("File ", "Traceback")):
            signals["exceptions"][match.group(1)] += 1
            if len(signals["exception_lines"]) < 5 and stripped not in signals["exception_lines"]:
                signals["exception_lines"].append(stripped[:300])
    signals["exceptions"] = dict(signals["exceptions"])
    signals["dependency_errors"] = errors["redis"] + errors["postgres"]
    signals["unreachable"] = [name for name in ("postgres", "redis") if errors[name]]
    return signals


def dependency_name(line: str) -> str:
    """Which dependency a connection error is about: redis (Redis, kombu) or postgres (PostgreSQL, psycopg2)."""
    match = DEPENDENCY.search(line)
    return "redis" if match and match.group(1).lower() in ("redis", "kombu") else "postgres"


def worker_findings(workers: list[dict[str, Any]], crash_loop_restarts: int = 5) -> list[dict[str, Any]]:
    found = []
    names = [worker["name"] for worker in workers]
    running = [worker for worker in workers if worker["running"]]
    if not running:
        found.append(finding(
            "workers_all_down", "critical",
            f"no worker is running ({len(workers)} worker containers, none up)" if workers else "no worker container exists",
            {"workers": [{key: worker.get(key) for key in ("name", "state", "exit_code", "restart_count")}
                         for worker in workers]},
            "Start the workers (check env, Redis/PostgreSQL reachability first); page on-call now.",
        ))
    looping = [worker for worker in workers if worker["restart_count"] > crash_loop_restarts
               or (worker["restart_count"] >= 3 and worker["state"] == "restarting")]
    if looping:
        found.append(finding(
            "worker_crash_loop", "high",
            f"{len(looping)} workers crash-loop: " + ", ".join(f"{w['name']} ({w['restart_count']} restarts)" for w in looping),
            {"workers": [{key: worker.get(key) for key in ("name", "state", "restart_count", "exit_code")} for worker in looping]},
            "Read the termination reason below; fix config (secret/env) and do a rolling restart, or roll back a bad deploy.",
        ))
    oom = [w for w in workers if w.get("oom_killed") or w.get("exit_code") == 137 or w["signals"]["oom"]]
    if oom:
        found.append(finding(
            "worker_oom_killed", "high",
            "worker memory exhausted: " + ", ".join(
                f"{w['name']} (OOMKilled={w.get('oom_killed')}, exit {w.get('exit_code')}, limit {w.get('memory_limit_bytes')})"
                for w in oom),
            {"workers": [{key: w.get(key) for key in ("name", "oom_killed", "exit_code", "memory_limit_bytes")} for w in oom]},
            "Raise the worker memory limit (2Gi -> 4Gi on Kubernetes; mem_limit on Docker) and watch the trend for a leak.",
        ))
    segv = [w for w in workers if w.get("exit_code") == 139 or w["signals"]["segfault"]]
    if segv:
        found.append(finding("worker_segfault", "high", f"{len(segv)} workers died of a segmentation fault",
                             {"workers": [w["name"] for w in segv]},
                             "Escalate to engineering with logs and library versions."))
    exceptions = [line for w in workers for line in w["signals"]["exception_lines"]]
    if exceptions:
        found.append(finding("worker_exception", "medium", f"workers log exceptions: {exceptions[0]}",
                             {"exceptions": exceptions[:5],
                              "counts": dict(sum((Counter(w["signals"]["exceptions"]) for w in workers), Counter()))},
                             "Fix the configuration or credential the exception names, then restart the workers."))
    sigterm = [w for w in workers if w.get("exit_code") == 143 and not w["running"]]
    if sigterm:
        found.append(finding("worker_sigterm", "info", f"{len(sigterm)} workers stopped normally (SIGTERM, exit 143)",
                             {"workers": [w["name"] for w in sigterm]}, "Start them if they should be running."))
    dependency = [line for w in workers for line in w["signals"]["dependency_errors"]]
    if dependency:
        unreachable = sorted({name for w in workers for name in w["signals"]["unreachable"]})
        found.append(finding("worker_dependency_unreachable", "high",
                             f"workers cannot reach {' and '.join(unreachable)}: {dependency[-1]}",
                             {"log_lines": dependency[-5:], "dependencies": unreachable,
                              "workers": [w["name"] for w in workers if w["signals"]["dependency_errors"]]},
                             f"Restore {' and '.join(unreachable)} (restart it), then restart the workers.",
                             runbook="database_connection_issues" if "postgres" in unreachable else "high_queue_depth"))
    tickets = Counter(ticket for w in workers for ticket in w["signals"]["last_ticket_before_restart"])
    poison = [ticket for ticket, count in tickets.items() if count >= 2]
    if poison:
        found.append(finding("worker_poison_job", "high",
                             f"ticket {poison[0]} was the last job before {tickets[poison[0]]} crashes: a poison job",
                             {"poison_tickets": poison, "tickets": dict(tickets), "workers": names},
                             f"Quarantine ticket {poison[0]} off the queue (never delete it), then restart the workers."))
    return found
