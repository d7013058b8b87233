# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Celery workers as the broker sees them, with nothing but the broker URL."""

from __future__ import annotations

import re
import ssl
from typing import Any
from urllib.parse import quote

from ansible_collections.aiagents.runbooks.plugins.module_utils import _redis
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

try:
    from celery import Celery
except ImportError:  # reported by the module with a clear message
    Celery = None


def broker_url(found) -> str:
    """A redis:// URL for kombu from checked connection settings (_redis.Settings).

    Built, never passed through: kombu's parser would cut a password at an
    unencoded "/" or "#", so every part is percent-encoded here. The URL
    carries the password: never log it.
    """
    auth = ""
    if found.password:
        auth = f"{quote(found.username or '', safe='')}:{quote(found.password, safe='')}@"
    host = f"[{found.host}]" if ":" in found.host else found.host
    return f"{'rediss' if found.tls else 'redis'}://{auth}{host}:{found.port}/{found.db}"


def inspect_budget(connect_timeout: float, timeout: float, confirm_timeout: float) -> float:
    """The most inspect_workers may take: connecting, two pings, and three follow-up calls."""
    return connect_timeout + 4 * timeout + confirm_timeout


def inspect_workers(found, timeout: float, confirm_timeout: float = 0.0,
                    expected: int = 0) -> tuple[dict[str, dict[str, Any]], int]:
    """Broadcast ping, then ask only the workers that answered for the rest.

    The ping waits the whole timeout unless the caller knows how many workers
    run (`expected`, from their containers or pods): then it ends once that
    many answered. Runbooks keep the timeout short; when nobody answers in it, one more ping waits
    `confirm_timeout` before "no workers" (a page) is concluded. The
    follow-up calls stop as soon as every pinged worker has replied. The
    whole call is bounded by inspect_budget(): kombu's own waits are not
    trusted to add up. Returns the workers and how many pings were sent.
    """
    app = Celery("aiagents_runbooks_inspect", broker=broker_url(found), set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False
    app.conf.broker_connection_max_retries = 1
    app.conf.broker_connection_timeout = found.timeout
    app.conf.broker_transport_options = {"socket_timeout": found.timeout, "socket_connect_timeout": found.timeout,
                                         "retry_on_timeout": False}
    if found.tls:  # kombu's default for rediss:// is not to verify the certificate at all
        app.conf.broker_use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": found.ca_cert}
    try:
        with _redis.deadline(inspect_budget(found.timeout, timeout, confirm_timeout), "answer from the broker"):
            control = app.control
            pinged, pings = control.inspect(timeout=timeout, limit=expected or None).ping() or {}, 1
            if not pinged and confirm_timeout > 0:
                pinged, pings = control.inspect(timeout=confirm_timeout).ping() or {}, 2
            if not pinged:
                return {}, pings
            inspect = control.inspect(timeout=timeout, limit=len(pinged), destination=list(pinged))
            active, stats, queues = inspect.active() or {}, inspect.stats() or {}, inspect.active_queues() or {}
            reports = inspect.report() or {}
    finally:
        app.close()
    return {name: {"ping": pinged.get(name), "active": active.get(name) or [], "stats": stats.get(name) or {},
                   "queues": queues.get(name) or [], "report": reports.get(name) or {}}
            for name in sorted(pinged)}, pings


_SOFTWARE = re.compile(r"^software\s*->\s*(.*?)(?=^\S+\s*->|\Z)", re.MULTILINE | re.DOTALL)
_VERSION = re.compile(r"([A-Za-z][\w.-]*):(\d[^\s)]*)")


def software(report: dict[str, Any]) -> dict[str, str]:
    """The versions in the `software ->` section of a worker's report (celery, kombu, py, billiard,
    the transport's library). Only that section is read: the rest holds the worker's settings."""
    text = report.get("ok") if isinstance(report, dict) else None
    match = _SOFTWARE.search(text) if isinstance(text, str) else None
    return dict(_VERSION.findall(match.group(1))) if match else {}


MAX_WAIT = 300.0


def refusal(params: dict[str, Any]) -> str | None:
    """The message refusing a wait or threshold out of range (naming the option), or None."""
    for name, limits in (("timeout", {"above": 0, "maximum": MAX_WAIT}),
                         ("confirm_timeout", {"minimum": 0, "maximum": MAX_WAIT}),
                         ("long_task_seconds", {"minimum": 0}),
                         ("expected_workers", {"minimum": 0})):
        refused = out_of_range(name, params.get(name), **limits)
        if refused:
            return refused
    return None


def describe_workers(raw: dict[str, dict[str, Any]], now: float) -> list[dict[str, Any]]:
    workers = []
    for name, info in raw.items():
        stats = info["stats"]
        pool = stats.get("pool") or {}
        active = []
        for task in info["active"]:
            started = task.get("time_start")
            kwargs = task.get("kwargs") if isinstance(task.get("kwargs"), dict) else {}
            active.append({
                "id": task.get("id"),
                "name": task.get("name") or task.get("type"),
                "runtime_seconds": round(now - started, 3) if isinstance(started, (int, float)) else None,
                "tenant_id": kwargs.get("tenant_id"),
                "ticket_id": kwargs.get("ticket_id"),
                "worker_pid": task.get("worker_pid"),
            })
        workers.append({
            "name": name,
            "ping": (info["ping"] or {}).get("ok") == "pong",
            "active": active,
            "pool": {"implementation": pool.get("implementation"), "max_concurrency": pool.get("max-concurrency"),
                     "processes": pool.get("processes") or []},
            "processed": stats.get("total") or {},
            "processed_total": sum((stats.get("total") or {}).values()),
            "uptime_seconds": stats.get("uptime"),
            "pid": stats.get("pid"),
            "queues": sorted(queue.get("name") for queue in info["queues"] if queue.get("name")),
            "software": software(info.get("report") or {}),
        })
    return workers


def worker_findings(workers: list[dict[str, Any]], queue: str, long_task_seconds: float,
                    check_queue_consumed: bool = False) -> list[dict[str, Any]]:
    found = []
    if not workers:
        found.append(finding(
            "queue_no_workers", "critical",
            "no Celery worker answered a ping through the broker: nothing is processing the queue",
            {"workers": 0},
            "Follow the worker_failures runbook: check worker containers/pods, restarts and termination reasons.",
            runbook="worker_failures",
        ))
        return found
    consuming = [worker["name"] for worker in workers if queue in worker["queues"]]
    if check_queue_consumed and not consuming:
        found.append(finding(
            "queue_not_consumed", "high",
            f"{len(workers)} workers answer but none consumes {queue!r}",
            {"workers": {worker["name"]: worker["queues"] for worker in workers}},
            f"Check the workers' -Q setting; restart them consuming {queue}.",
            runbook="worker_failures",
        ))
    stuck = [dict(task, worker=worker["name"]) for worker in workers for task in worker["active"]
             if task["runtime_seconds"] is not None and task["runtime_seconds"] > long_task_seconds]
    if stuck:
        found.append(finding(
            "worker_task_long_running", "medium",
            f"{len(stuck)} tasks have run longer than {int(long_task_seconds)} s",
            {"tasks": stuck[:10]},
            "Look up their ticket ids in the worker logs and traces; slow context_gathering points to the "
            "database runbook, slow llm_synthesis to api_timeout.",
        ))
    return found
