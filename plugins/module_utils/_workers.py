# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The worker_failures runbook's judgement, on provider-neutral worker records.

Providers (Docker, Kubernetes) describe each worker container/pod as one
WORKER_RECORD (below); the judgement reads only that. The Docker provider's
reading (``read_docker_service``) is at the end.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils import _storage
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import (
    MASK,
    is_secret_name,
    redact_url,
    url_secrets,
)

# The worker record every provider returns (platform_workers.containers): field -> (types, meaning).
WORKER_RECORD: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "the container (Docker) or pod (Kubernetes) name; what restart_workers takes"),
    "id": ((str,), "the platform's short id of it"),
    "hostname": ((str, type(None)), "the host name its processes see (with host networking, the host's)"),
    "state": ((str, type(None)), "the platform's word for its state (running, exited, restarting, paused...)"),
    "running": ((bool,), "its processes run now"),
    "health": ((str, type(None)), "the health check's verdict (healthy, unhealthy, starting), if it has one"),
    "restart_count": ((int,), "restarts over its life, as the platform counts them"),
    "restarts_last_hour": ((int, type(None)), "failures (not asked-for stops) in the last hour; None: unknown"),
    "exit_code": ((int, type(None)), "the exit code of its last run"),
    "oom_killed": ((bool,), "its last run was killed for memory"),
    "started_at": ((str, type(None)), "when its current run started (RFC 3339)"),
    "finished_at": ((str, type(None)), "when its last run ended (RFC 3339)"),
    "memory_limit_bytes": ((int, type(None)), "its memory limit in bytes; None: no limit"),
    "env": ((dict,), "the settings asked for (env_keys), secret-named ones masked"),
    "signals": ((dict,), "what its logs say (analyse_logs): oom, exceptions, unreachable dependencies, jobs..."),
    "log_tail": ((list,), "its last log lines (at most 20, 300 characters each), credentials in URLs masked"),
}

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


# The webhook API's own line for a job the queue refused (the sandbox's api logs it so; a platform that words it
# otherwise is read through its metrics alone).
ENQUEUE_FAILED = re.compile(r"enqueue failed tenant_id=(\S+) ticket_id=(\S+): (\w+)")
ENQUEUED = re.compile(r"webhook queued tenant_id=")


def analyse_logs(lines: list[str], died: bool = False) -> dict[str, Any]:
    """What the logs say: OOM, segfaults, exceptions, unreachable dependencies, the job before each crash.

    A dependency's errors count only after the last sign it answers again (a
    broker connection for Redis; a worker start or a job that succeeded for
    both), so they describe now, not the past. `died`: the last run in the
    lines ended in a crash and no new run has started (a container restarting,
    a pod in back-off) - its last job counts as the job before a crash too."""
    signals: dict[str, Any] = {"oom": 0, "segfault": 0, "exceptions": Counter(), "exception_lines": [],
                               "dependency_errors": [], "unreachable": [], "jobs_succeeded": 0,
                               "last_job": None, "last_ticket_before_restart": [],
                               "enqueue_failed": {"count": 0, "reasons": Counter(), "tickets": [], "since_queued": 0}}
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
            signals["last_job"] = line.strip()[:300]
        if DEPENDENCY.search(line):
            name = dependency_name(line)
            errors[name] = (errors[name] + [line.strip()[:300]])[-5:]
        if ENQUEUED.search(line):  # a job queued since: the refusals before it are past
            signals["enqueue_failed"]["since_queued"] = 0
        refused = ENQUEUE_FAILED.search(line)
        if refused:
            signals["enqueue_failed"]["count"] += 1
            signals["enqueue_failed"]["since_queued"] += 1
            signals["enqueue_failed"]["reasons"][refused.group(3)] += 1
            signals["enqueue_failed"]["tickets"] = (signals["enqueue_failed"]["tickets"]
                                                    + [{"tenant_id": refused.group(1),
                                                        "ticket_id": refused.group(2)}])[-20:]
            continue  # the api's own account of a refusal, not an exception of its own nor a lost dependency
        stripped = line.strip()
        match = EXCEPTION.match(stripped)
        if match and not stripped.startswith(("File ", "Traceback")):
            signals["exceptions"][match.group(1)] += 1
            if len(signals["exception_lines"]) < 5 and stripped not in signals["exception_lines"]:
                signals["exception_lines"].append(stripped[:300])
    if died and last_ticket:
        signals["last_ticket_before_restart"].append(last_ticket)
    signals["exceptions"] = dict(signals["exceptions"])
    signals["enqueue_failed"]["reasons"] = dict(signals["enqueue_failed"]["reasons"])
    signals["dependency_errors"] = errors["redis"] + errors["postgres"]
    signals["unreachable"] = [name for name in ("postgres", "redis") if errors[name]]
    signals["no_space"] = _storage.no_space(lines)  # a database's or broker's writes refused for lack of space
    return signals


def dependency_name(line: str) -> str:
    """Which dependency a connection error is about: redis (Redis, kombu) or postgres (PostgreSQL, psycopg2)."""
    match = DEPENDENCY.search(line)
    return "redis" if match and match.group(1).lower() in ("redis", "kombu") else "postgres"


LOOP_FIELDS = ("name", "state", "restart_count", "restarts_last_hour", "exit_code")


def restarts_in_hour(worker: dict[str, Any]) -> int:
    """Restarts in the last hour (what the escalation rule counts); the lifetime count when the provider
    cannot tell when they happened."""
    recent = worker.get("restarts_last_hour")
    return int(worker["restart_count"] if recent is None else recent)


def worker_findings(workers: list[dict[str, Any]], crash_loop_restarts: int = 5) -> list[dict[str, Any]]:
    """The runbook's findings. A worker crash-loops with more than ``crash_loop_restarts`` restarts in the
    last hour, or 3 or more in it while it is restarting now (the escalation rule's "3+ an hour")."""
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
    looping = [worker for worker in workers if restarts_in_hour(worker) > crash_loop_restarts
               or (restarts_in_hour(worker) >= 3 and worker["state"] == "restarting")]
    if looping:
        found.append(finding(
            "worker_crash_loop", "high",
            f"{len(looping)} workers crash-loop: "
            + ", ".join(f"{w['name']} ({restarts_in_hour(w)} restarts in the last hour)" for w in looping),
            {"workers": [{key: worker.get(key) for key in LOOP_FIELDS} for worker in looping],
             "crash_loop_restarts": crash_loop_restarts},
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
            "Raise the worker memory limit (resolve: x1.5 from the current one, capped) and watch the trend for a leak.",
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


# --- Docker provider (docker_service_info) ------------------------------------------------------------

DOCKER_TIMEOUT_MAX = 600
LOG_LINES_MAX = 100000
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


# The options every provider's workers module takes, beside where the workers are.
READ_OPTIONS: dict[str, dict[str, Any]] = {
    "log_lines": {"type": "int", "default": 500},
    "log_since": {"type": "int", "default": 0},
    "fresh_since": {"type": "int", "default": 0},
    "env_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "findings": {"type": "bool", "default": False},
    "crash_loop_restarts": {"type": "int", "default": 5},
    "timeout": {"type": "float", "default": 30},
}


def read_options_error(params: dict[str, Any], timeout_max: float = DOCKER_TIMEOUT_MAX) -> str | None:
    """A workers module's options out of range, before the platform is asked anything."""
    return (out_of_range("timeout", params["timeout"], above=0, maximum=timeout_max)
            or out_of_range("log_lines", params["log_lines"], minimum=0, maximum=LOG_LINES_MAX)
            or out_of_range("log_since", params["log_since"], minimum=0)
            or out_of_range("fresh_since", params["fresh_since"], minimum=0)
            or out_of_range("crash_loop_restarts", params["crash_loop_restarts"], minimum=0))


def mask_urls(text: str) -> str:
    """The text with every URL that carries a credential (user info, a secret-named query value) redacted."""
    return _URL.sub(lambda match: redact_url(match.group(0)) if url_secrets(match.group(0)) else match.group(0), text)


def shown_env(env: dict[str, str], keys: list[str]) -> dict[str, str]:
    """The variables asked for; a secret-named one masked, a URL's credentials redacted."""
    return {key: MASK if is_secret_name(key) else mask_urls(env[key]) for key in keys if key in env}


def docker_time(text: str | None) -> float | None:
    """Unix seconds of an RFC 3339 time (Docker's, with nanoseconds; Kubernetes'); None for none or Docker's zero time."""
    if not text or text.startswith("0001-"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    seconds = datetime.fromisoformat(match.group(1) + zone).timestamp()
    return seconds + float("0." + (match.group(2) or "0")[:6])


def describe_container(container, log_lines: int, env_keys: list[str], log_since: int = 0,
                       fresh_since: int = 0, deaths: list[float] | None = None) -> dict:
    """One worker record. A container started at or after ``fresh_since`` (a resolve restarted it) is
    judged on its current run only - its logs and the crashes since - : what its predecessor did is no
    longer true of it. ``deaths``: when it died of a failure in the last hour (None: unknown)."""
    attrs = container.attrs
    state = attrs.get("State") or {}
    env = dict(item.split("=", 1) for item in (attrs.get("Config") or {}).get("Env") or [] if "=" in item)
    started = docker_time(state.get("StartedAt"))
    if fresh_since and started and started >= fresh_since:
        log_since = max(log_since, int(started))
        deaths = [moment for moment in deaths or [] if moment >= fresh_since]
    lines = []
    if log_lines:
        since = {"since": log_since} if log_since else {}
        text = container.logs(tail=log_lines, timestamps=False, **since).decode("utf-8", errors="replace")
        lines = [mask_urls(line) for line in text.splitlines()]
    return {
        "name": container.name,
        "id": container.short_id,
        # The host name the worker's processes see: Celery names its node after it (worker@<hostname>).
        "hostname": (attrs.get("Config") or {}).get("Hostname"),
        "state": state.get("Status"),
        "running": state.get("Status") == "running",
        "health": (state.get("Health") or {}).get("Status"),
        "restart_count": attrs.get("RestartCount", 0),
        "restarts_last_hour": None if deaths is None else len(deaths),
        "exit_code": state.get("ExitCode"),
        "oom_killed": bool(state.get("OOMKilled")),
        "started_at": state.get("StartedAt"),
        "finished_at": state.get("FinishedAt"),
        "memory_limit_bytes": (attrs.get("HostConfig") or {}).get("Memory") or None,
        "env": shown_env(env, env_keys),
        "signals": analyse_logs(lines, died=state.get("Status") in ("exited", "restarting", "dead")
                                and bool(state.get("OOMKilled") or state.get("ExitCode") not in (0, None))),
        "log_tail": [line[:300] for line in lines[-20:]],
    }


def deaths_last_hour(client, labels: list[str]) -> dict[str, list[float]]:
    """{container id: when it died of a failure in the last hour (Unix seconds)}, from the daemon's event
    log (one bounded read). A stop asked for (exit 0, or 143 for SIGTERM) is not a crash."""
    now = int(time.time())
    events = client.events(since=now - 3600, until=now, decode=True,
                           filters={"type": "container", "event": "die", "label": labels})
    deaths: dict[str, list[float]] = {}
    try:
        for event in events:
            actor = event.get("Actor") or {}
            if str((actor.get("Attributes") or {}).get("exitCode", "")) in ("0", "143"):
                continue
            moment = event.get("timeNano", 0) / 1e9 or float(event.get("time", 0))
            deaths.setdefault(event.get("id") or actor.get("ID"), []).append(moment)
    finally:
        close = getattr(events, "close", None)
        if close:
            close()
    return deaths


def read_docker_service(docker, params: dict[str, Any], target: str) -> list[dict]:
    """Every container of the service, described - all of it within ``timeout`` seconds.

    The SDK's timeout bounds each read only (a daemon that trickles its answer never trips it),
    so the reading runs in a thread the module stops waiting for at the deadline.
    """
    timeout = params["timeout"]
    daemon = params["docker_host"] or os.environ.get("DOCKER_HOST") or "the local socket"
    per_read = timeout + 1  # frees the thread's socket; the deadline below answers first
    box: dict[str, Any] = {}

    def read() -> None:
        try:
            client = (docker.DockerClient(base_url=params["docker_host"], timeout=per_read) if params["docker_host"]
                      else docker.from_env(timeout=per_read))
            labels = [f"com.docker.compose.project={params['project']}",
                      f"com.docker.compose.service={params['service']}"]
            containers = sorted(client.containers.list(all=True, filters={"label": labels}), key=lambda c: c.name)
            deaths = deaths_last_hour(client, labels)
            box["records"] = [describe_container(container, params["log_lines"], params["env_keys"],
                                                 params["log_since"], params["fresh_since"],
                                                 deaths.get(container.id, [])) for container in containers]
            client.close()
        except Exception as exc:  # reported by the caller, in one line
            box["error"] = exc

    thread = threading.Thread(target=read, name="docker_service_info", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():  # left behind: a daemon thread ends with the module
        shown = redact_url(daemon) if url_secrets(daemon) else daemon
        raise RunbookError("describe", target, f"the Docker daemon at {shown} did not answer within timeout "
                                               f"({timeout:g} s)")
    if "error" in box:
        exc = box["error"]
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RunbookError("describe", target, f"{type(exc).__name__}: {mask_urls(text)}")
    return box["records"]
