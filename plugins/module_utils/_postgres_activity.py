# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection health of a PostgreSQL server: slots, idle leaks, long queries, lock chains - and the
guarded termination of one diagnosed backend."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding, sort_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._postgres import (
    STATEMENT_TIMEOUT_MAX,
    iso,
    option_error,
    seconds_error,
)

RUNBOOK = "database_connection_issues"
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")

# One statement: settings and every client backend. pg_blocking_pids() only for backends waiting on a lock.
ACTIVITY_SQL = """
SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'version', current_setting('server_version'),
  'own_pid', pg_backend_pid(),
  'max_connections', current_setting('max_connections')::int,
  'superuser_reserved', current_setting('superuser_reserved_connections')::int,
  'reserved', coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int,
  'data_checksums', current_setting('data_checksums')::bool,
  'freeze_max_age', current_setting('autovacuum_freeze_max_age')::bigint,
  'xid_ages', (SELECT coalesce(json_agg(json_build_object(
      'database', d.datname, 'age', age(d.datfrozenxid), 'connectable', d.datallowconn)
      ORDER BY age(d.datfrozenxid) DESC), '[]') FROM pg_database d),
  'checksum_failures', (SELECT coalesce(json_agg(json_build_object(
      'database', coalesce(s.datname, '(shared catalogs)'), 'failures', s.failures,
      'last_failure', s.stats->>'checksum_last_failure') ORDER BY s.datname), '[]')
    FROM (SELECT d.datname, to_jsonb(d) AS stats, coalesce((to_jsonb(d)->>'checksum_failures')::bigint, 0) AS failures
          FROM pg_stat_database d) s  -- through jsonb: before PostgreSQL 12 the columns do not exist
    WHERE s.failures > 0),
  'backends', (SELECT coalesce(json_agg(json_build_object(
      'pid', a.pid, 'user', a.usename, 'database', a.datname, 'application', a.application_name,
      'client', host(a.client_addr), 'state', a.state,
      'query_start', a.query_start, 'xact_start', a.xact_start,
      'query_seconds', round(extract(epoch FROM now() - a.query_start)::numeric, 3),
      'state_seconds', round(extract(epoch FROM now() - a.state_change)::numeric, 3),
      'wait_event_type', a.wait_event_type, 'wait_event', a.wait_event,
      'blocked_by', CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END,
      'query', left(a.query, %(query_chars)s)) ORDER BY a.pid), '[]')
    FROM pg_stat_activity a WHERE a.backend_type = 'client backend')
)
"""

DEFAULT_THRESHOLDS = {
    "long_query_seconds": 300.0,
    "saturation_ratio": 0.9,
    "idle_leak_count": 20,
    "idle_in_transaction_seconds": 300.0,
    "lock_wait_seconds": 30.0,
    "xid_age_high": 1_000_000_000,
}
# Transaction ids (PostgreSQL's "Preventing Transaction ID Wraparound Failures"): the oldest unfrozen xid of a
# database may be at most 2^31 transactions old; PostgreSQL warns from 40 million left (100 million from
# PostgreSQL 19) and refuses to assign new ones - every write fails - with 3 million left.
XID_WRAP = 2 ** 31
XID_WARN_LEFT = 40_000_000
XID_STOP_LEFT = 3_000_000
# What each threshold may be: a count of idle connections from 1, a share of the slots, seconds from 0.
THRESHOLD_LIMITS = {
    "long_query_seconds": {"minimum": 0},
    "saturation_ratio": {"minimum": 0, "maximum": 1},
    "idle_leak_count": {"minimum": 1},
    "idle_in_transaction_seconds": {"minimum": 0},
    "lock_wait_seconds": {"minimum": 0},
    "xid_age_high": {"minimum": 0, "maximum": XID_WRAP},
}
QUERY_CHARS_MAX = 1048576  # PostgreSQL keeps at most track_activity_query_size (<= 1 MB) of a query


def threshold_error(thresholds: dict[str, Any]) -> str | None:
    """The first threshold out of its range (NaN and infinities included), or None."""
    for name, limits in THRESHOLD_LIMITS.items():
        problem = out_of_range(f"thresholds.{name}", thresholds.get(name), **limits)
        if problem:
            return problem
    return None


def input_error(params: dict[str, Any], thresholds: dict[str, Any]) -> str | None:
    """postgresql_activity_info's options out of range, before any connection."""
    return (option_error(params)
            or seconds_error("statement_timeout", params["statement_timeout"], STATEMENT_TIMEOUT_MAX)
            or out_of_range("query_chars", params["query_chars"], minimum=0, maximum=QUERY_CHARS_MAX)
            or threshold_error(thresholds))


def unreachable_findings(failure, params: dict) -> list[dict]:
    """The connection could not be made: say why, as a finding."""
    where = {"host": params.get("login_host") or params.get("login_unix_socket") or "local socket",
             "port": params.get("login_port"), "database": params.get("login_db"), "user": params.get("login_user"),
             "error": failure.cause}
    if failure.kind == "auth":
        return [finding("db_auth_failed", "high", f"PostgreSQL refuses the login of {where['user']!r}: {failure.cause}",
                        where, "Check the credentials in the inventory / the workers' secret against the role "
                        "(password, pg_hba.conf rule, LOGIN attribute); rotate the secret if it changed.",
                        runbook=RUNBOOK)]
    if failure.kind == "database":
        return [finding("db_database_missing", "critical",
                        f"database {where['database']!r} does not exist on the server", where,
                        "Check the database name; if it was dropped or lost, stop writes and escalate to the DBA "
                        "(critical) - do not recreate it empty.", runbook=RUNBOOK)]
    if failure.kind == "saturated":
        return [finding("db_connections_saturated", "critical",
                        f"PostgreSQL refuses new connections: {failure.cause}", where,
                        "Every usable slot is taken: find the role holding them (a superuser can still log in to "
                        "look), fix the idle leak or lower the workers' pool, restart the leaking workers.",
                        runbook=RUNBOOK)]
    return [finding("db_unreachable", "critical", f"PostgreSQL at {where['host']}:{where['port']} is unreachable: "
                    f"{failure.cause}", where,
                    "Check the postgres container/pod; restart it (Kubernetes: rollout restart statefulset/postgres, "
                    "wait Ready <= 300 s; Docker: restart postgres), then confirm the workers reconnect. "
                    "Unresponsive 5+ min: page the DBA and on-call (critical).", runbook=RUNBOOK)]


def xid_findings(xids: dict, thresholds: dict) -> list[dict]:
    """db_xid_wraparound: the oldest unfrozen transaction id of a database against the wraparound point - high
    from the threshold's age, critical once PostgreSQL warns, and refusing writes at its stop limit."""
    oldest = xids.get("oldest")
    if not oldest or oldest["age"] < min(thresholds["xid_age_high"], XID_WRAP - XID_WARN_LEFT):
        return []
    left = XID_WRAP - oldest["age"]
    if left <= XID_STOP_LEFT:
        severity, state = "critical", "PostgreSQL refuses new transaction ids: every write fails"
    elif left <= XID_WARN_LEFT:
        severity, state = "critical", f"PostgreSQL refuses every write within {left:,} transactions"
    else:
        severity, state = "high", f"{left:,} transactions left before PostgreSQL refuses writes"
    where = oldest["database"]
    return [finding(
        "db_xid_wraparound", severity,
        f"database {where}'s oldest unfrozen transaction id is {oldest['age']:,} transactions old: {state}",
        {**oldest, "left": left, "threshold": thresholds["xid_age_high"],
         "autovacuum_freeze_max_age": xids.get("autovacuum_freeze_max_age")},
        f"Page the DBA. Find what holds the freeze horizon back (a long or prepared transaction, a replication "
        f"slot), end it, then run a database-wide VACUUM (FREEZE) in {where}"
        + ("" if oldest.get("connectable", True) else " (it takes no connections: allow them for the vacuum)")
        + ". Never reset the transaction counter: that loses data.", runbook=RUNBOOK)]


def read_activity(client, query_chars: int) -> dict:
    started = time.monotonic()
    data = client.execute(ACTIVITY_SQL, {"query_chars": query_chars}, label="activity", fetch="one")[0]
    data["query_seconds"] = round(time.monotonic() - started, 4)
    return data


def summarise(data: dict, thresholds: dict) -> dict[str, Any]:
    backends = data["backends"]
    own = data["own_pid"]
    usable = data["max_connections"] - data["superuser_reserved"] - data["reserved"]
    by_user: dict[str, Counter] = defaultdict(Counter)
    for backend in backends:
        by_user[backend["user"] or "?"][backend["state"] or "unknown"] += 1
    others = [backend for backend in backends if backend["pid"] != own]
    return {
        "server_version": data["version"],
        "server_version_num": data["version_num"],
        "connections": {
            "used": len(backends),
            "usable": usable,
            "max_connections": data["max_connections"],
            "superuser_reserved_connections": data["superuser_reserved"],
            "reserved_connections": data["reserved"],
            "ratio": round(len(backends) / usable, 4) if usable > 0 else None,
            "by_state": dict(Counter(backend["state"] or "unknown" for backend in backends)),
            "by_user": sorted(({"user": user, "total": sum(states.values()), "states": dict(states)}
                               for user, states in by_user.items()), key=lambda item: (-item["total"], item["user"])),
        },
        "idle_in_transaction": [_brief(backend) for backend in others if backend["state"] in IDLE_IN_TRANSACTION],
        "long_running": [_brief(backend) for backend in others if backend["state"] == "active"
                         and (backend["query_seconds"] or 0) > thresholds["long_query_seconds"]],
        "blocking": lock_chains(others),
        "integrity": {"data_checksums": data["data_checksums"], "checksum_failures": data["checksum_failures"]},
        "transaction_ids": {"oldest": (data.get("xid_ages") or [None])[0],
                            "autovacuum_freeze_max_age": data.get("freeze_max_age")},
        "own_pid": own,
    }


def _brief(backend: dict) -> dict:
    keys = ("pid", "user", "database", "application", "client", "state", "query_start", "xact_start",
            "query_seconds", "state_seconds", "wait_event_type", "wait_event", "query")
    return {key: float(backend[key]) if key.endswith("_seconds") and backend[key] is not None else backend[key]
            for key in keys}


def lock_chains(backends: list[dict]) -> list[dict]:
    """Group blocked backends under the root blockers (those not blocked themselves)."""
    by_pid = {backend["pid"]: backend for backend in backends}
    blocked = {backend["pid"]: set(backend["blocked_by"] or []) for backend in backends if backend["blocked_by"]}
    if not blocked:
        return []
    chains: dict[int, set[int]] = defaultdict(set)
    for pid in blocked:
        # Walk up to the roots of this waiter (a deadlock cycle has none; PostgreSQL breaks those itself).
        seen, stack = set(), [pid]
        while stack:
            current = stack.pop()
            for blocker in blocked.get(current, ()):
                if blocker in seen:
                    continue
                seen.add(blocker)
                if blocker in blocked:
                    stack.append(blocker)
                else:
                    chains[blocker].add(pid)
    out = []
    for root, waiters in sorted(chains.items()):
        waiting = [_brief(by_pid[pid]) | {"blocked_by": sorted(blocked[pid])} for pid in sorted(waiters) if pid in by_pid]
        out.append({
            "blocker": _brief(by_pid[root]) if root in by_pid else {"pid": root},
            "blocked": waiting,
            "longest_wait_seconds": max((item["query_seconds"] or 0 for item in waiting), default=0),
        })
    return out


def activity_findings(summary: dict, data: dict, thresholds: dict) -> list[dict]:
    out = []
    conn = summary["connections"]
    if conn["ratio"] is not None and conn["ratio"] >= thresholds["saturation_ratio"]:
        full = conn["used"] >= conn["usable"]
        out.append(finding(
            "db_connections_saturated", "critical" if full else "high",
            f"{conn['used']} of {conn['usable']} usable connections in use ({conn['ratio']:.0%}; "
            f"max_connections {conn['max_connections']} minus {conn['usable'] and conn['max_connections'] - conn['usable']} reserved)",
            {key: conn[key] for key in ("used", "usable", "max_connections", "superuser_reserved_connections",
                                        "reserved_connections", "ratio", "by_user")},
            f"Top holder: {conn['by_user'][0]['user']} ({conn['by_user'][0]['total']}). If its connections are idle, "
            "it leaks (see db_idle_connection_leak); otherwise the pools outgrow the server: workers x "
            "(DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW) must stay below the usable slots.", runbook=RUNBOOK))
    for user in conn["by_user"]:
        idle = user["states"].get("idle", 0)
        if idle >= thresholds["idle_leak_count"]:
            mine = [backend for backend in data["backends"] if backend["user"] == user["user"] and backend["state"] == "idle"]
            out.append(finding(
                "db_idle_connection_leak", "medium",
                f"{user['user']} holds {idle} idle connections (threshold {thresholds['idle_leak_count']})",
                {"user": user["user"], "idle": idle, "total": user["total"],
                 "oldest_idle_seconds": max(float(backend["state_seconds"] or 0) for backend in mine),
                 "applications": dict(Counter(backend["application"] or "" for backend in mine))},
                "Compare with the workers' pool (DATABASE_POOL_SIZE 5-10, MAX_OVERFLOW 10-20 per process); connections "
                "not returned to the pool point to a leak in the worker - restart the leaking workers (rolling), "
                "then escalate to engineering with this evidence.", runbook=RUNBOOK))
    for backend in summary["idle_in_transaction"]:
        if (backend["state_seconds"] or 0) >= thresholds["idle_in_transaction_seconds"]:
            out.append(finding(
                "db_idle_in_transaction", "medium",
                f"backend {backend['pid']} ({backend['user']}) has sat idle in a transaction for "
                f"{backend['state_seconds']:.0f} s", backend,
                "An open transaction holds its locks and blocks vacuum: find the worker (application, client) and fix "
                "the code path; terminate this pid only with postgresql_backend_terminate (pid and query_start).",
                runbook=RUNBOOK))
    failures = summary["integrity"]["checksum_failures"]
    if failures:
        total = sum(item["failures"] for item in failures)
        out.append(finding(
            "db_corruption_suspected", "critical",
            f"{total} data page checksum failure(s) in " + ", ".join(
                f"{item['database']} ({item['failures']}, last {item['last_failure']})" for item in failures),
            {"checksum_failures": failures},
            "Corruption suspected: stop writes now (pause intake, stop the workers) and page the DBA and on-call. "
            "Do not restart, vacuum or reindex before the DBA has a copy of the data directory. The counter only "
            "grows: once the DBA has repaired and checked the database, clear it with SELECT pg_stat_reset() in "
            "each database named, then start intake and the workers again.", runbook=RUNBOOK))
    out.extend(xid_findings(summary["transaction_ids"], thresholds))
    blockers = {chain["blocker"]["pid"] for chain in summary["blocking"]}
    for backend in summary["long_running"]:
        out.append(finding(
            "db_long_running_query", "high" if backend["pid"] in blockers else "medium",
            f"query of {backend['user']} (pid {backend['pid']}) has run {backend['query_seconds']:.0f} s "
            f"(> {thresholds['long_query_seconds']:.0f} s): {(backend['query'] or '')[:80]}",
            backend,
            f"Check what it is (EXPLAIN, the worker's logs); if it is stuck, terminate that backend only: "
            f"postgresql_backend_terminate pid={backend['pid']} query_start={backend['query_start']}.",
            runbook=RUNBOOK))
    for chain in summary["blocking"]:
        if chain["longest_wait_seconds"] >= thresholds["lock_wait_seconds"]:
            blocker = chain["blocker"]
            out.append(finding(
                "db_blocking_locks", "high",
                f"backend {blocker['pid']} ({blocker.get('user')}, {blocker.get('state')}) blocks "
                f"{len(chain['blocked'])} backend(s) {[item['pid'] for item in chain['blocked']]} for up to "
                f"{chain['longest_wait_seconds']:.0f} s",
                {"blocker_pid": blocker["pid"], "blocked_pids": [item["pid"] for item in chain["blocked"]],
                 "blocker": blocker, "blocked": chain["blocked"], "longest_wait_seconds": chain["longest_wait_seconds"]},
                f"Find why {blocker['pid']} holds its lock (an open transaction, a migration); if it must go, terminate "
                f"that backend only: postgresql_backend_terminate pid={blocker['pid']} "
                f"query_start={blocker.get('query_start')}.", runbook=RUNBOOK))
    return sort_findings(out)


# --- postgresql_backend_terminate -------------------------------------------------------------------

BACKEND_SQL = """
SELECT a.pid, a.usename, a.backend_type, a.query_start, a.state, left(a.query, 200), a.application_name,
       coalesce(r.rolsuper, false), a.pid = pg_backend_pid(),
       a.backend_type = 'walsender' OR EXISTS (SELECT 1 FROM pg_stat_replication s WHERE s.pid = a.pid),
       a.query_start = %(query_start)s::timestamptz
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid = %(pid)s
"""

# The guard and the act in one statement: nothing can change between the check and the signal.
TERMINATE_SQL = """
SELECT pg_terminate_backend(a.pid{timeout})
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid = %(pid)s AND a.query_start = %(query_start)s::timestamptz AND a.backend_type = 'client backend'
  AND NOT coalesce(r.rolsuper, false) AND a.pid <> pg_backend_pid()
"""


def inspect_backend(client, pid: int, query_start: str) -> dict | None:
    row = client.execute(BACKEND_SQL, {"pid": pid, "query_start": query_start}, label="inspect backend", fetch="one")
    if row is None:
        return None
    keys = ("pid", "user", "backend_type", "query_start", "state", "query", "application", "superuser", "own",
            "replication", "same_query")
    backend = dict(zip(keys, row))
    backend["query_start"] = iso(backend["query_start"])
    return backend


def terminate(client, pid: int, query_start: str, check_mode: bool, wait_seconds: float) -> dict[str, Any]:
    target = f"backend {pid}"
    backend = inspect_backend(client, pid, query_start)
    if backend is None:
        return {"changed": False, "status": "gone", "backend": None,
                "msg": f"backend {pid} is not running (already terminated or finished): nothing to do"}
    if backend["own"]:
        raise RunbookError("refuse to terminate", target, "it is this module's own connection")
    if backend["replication"] or backend["backend_type"] != "client backend":
        raise RunbookError("refuse to terminate", target, f"it is a {backend['backend_type']} backend "
                           "(replication or server process), not a client query")
    if backend["superuser"]:
        raise RunbookError("refuse to terminate", target, f"it belongs to superuser {backend['user']!r}")
    public = {key: backend[key] for key in ("pid", "user", "application", "state", "query_start", "query")}
    if not backend["same_query"]:
        return {"changed": False, "status": "query_changed", "backend": public,
                "msg": f"backend {pid} now runs a query started at {backend['query_start']}, not the one diagnosed "
                       f"({query_start}): left alone"}
    if check_mode:
        return {"changed": True, "status": "would_terminate", "backend": public,
                "msg": f"would terminate backend {pid} ({backend['user']})"}
    timeout = ", %(timeout)s" if client.server_version >= 140000 else ""
    row = client.execute(TERMINATE_SQL.format(timeout=timeout),
                         {"pid": pid, "query_start": query_start, "timeout": int(wait_seconds * 1000)},
                         label="terminate backend", fetch="one")
    if row is None:  # it finished or moved on between the two statements
        return {"changed": False, "status": "gone", "backend": public,
                "msg": f"backend {pid} finished its query before it could be terminated: nothing to do"}
    gone = bool(row[0]) and wait_for_exit(client, pid, wait_seconds)
    return {"changed": True, "status": "terminated" if gone else "signalled", "backend": public,
            "msg": f"terminated backend {pid} ({backend['user']})" if gone
            else f"sent the terminate signal to backend {pid}; it had not exited after {wait_seconds} s"}


def wait_for_exit(client, pid: int, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    while True:
        row = client.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid], label="wait for exit",
                             fetch="one")
        if row[0] == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
