# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data volumes of PostgreSQL and Redis: how full they are (`df` in the service's container or pod) and
whether the service refused to write for lack of space (its own log lines), judged as the
database_connection_issues runbook's storage findings."""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

RUNBOOK = "database_connection_issues"
THRESHOLDS = {"high": 0.85, "critical": 0.95}
# Below this much free space PostgreSQL cannot add a WAL segment (16 MiB by default): writes fail.
MIN_FREE_BYTES = 16 * 1024 * 1024
# PostgreSQL: "could not extend file ...: No space left on device" (SQLSTATE 53100, disk_full), "could not
# write to file ...: No space left on device"; Redis: "Write error saving DB on disk: No space left on device".
NO_SPACE = re.compile(r"No space left on device|could not extend file|\bdisk[_ ]full\b|\bENOSPC\b", re.I)


def no_space(lines: list[str] | None) -> dict[str, Any]:
    """How many log lines say a write failed for lack of space, and the last of them."""
    found = [line.strip() for line in lines or [] if NO_SPACE.search(line)]
    return {"count": len(found), "last": found[-1][:300] if found else None}


def parse_df(stdout: str) -> dict[str, Any]:
    """`df -P -B1 PATH`'s line for the filesystem holding PATH (POSIX output: one line per filesystem)."""
    rows = [line.split() for line in (stdout or "").splitlines()[1:] if line.strip()]
    if not rows or len(rows[-1]) < 6:
        raise ValueError(f"df printed no filesystem line: {stdout!r:.200}")
    fields = rows[-1]
    try:
        size, used, available = int(fields[1]), int(fields[2]), int(fields[3])
    except ValueError:
        raise ValueError(f"df's sizes are not numbers: {' '.join(fields)!r:.200}") from None
    # As df's own Capacity: blocks reserved for root are neither used nor available to the service.
    usable = used + available
    return {"filesystem": fields[0], "size": size, "used": used, "available": available,
            "ratio": round(used / usable, 4) if usable else None, "mounted_on": " ".join(fields[5:])}


def _mib(size: int) -> str:
    return f"{size / 1048576:,.0f} MiB"


def describe(volumes: list[dict], df_results: list[dict], log_results: list[dict]) -> list[dict[str, Any]]:
    """One record per data volume from what the platform read: `df_results` and `log_results` are the
    registered loop results of the df command and of the log read, in the order of `volumes`. A log read gives
    either the log's lines (`log_lines`: Kubernetes) or a service description whose containers carry the
    `no_space` signal (Docker)."""
    records = []
    for index, volume in enumerate(volumes or []):
        df = df_results[index] if index < len(df_results or []) else {}
        logs = (log_results or [])[index] if index < len(log_results or []) else {}
        record = {"service": volume.get("service"), "kind": volume.get("kind"), "path": volume.get("path"),
                  "usage": None, "error": None, "no_space": {"count": 0, "last": None}}
        rc = df.get("rc", df.get("return_code"))
        if df.get("skipped"):
            record["error"] = "not read: the service has no running container"
        elif rc not in (0, None) or df.get("failed") or not df.get("stdout"):
            record["error"] = (df.get("stderr") or df.get("msg") or f"df exited {rc}").strip()[:300]
        else:
            try:
                record["usage"] = parse_df(df["stdout"])
            except ValueError as exc:
                record["error"] = str(exc)
        if logs.get("log_lines") is not None:
            record["no_space"] = no_space(logs["log_lines"])
        else:
            signals = [(item.get("signals") or {}).get("no_space") or {} for item in logs.get("containers") or []]
            counted = [signal for signal in signals if signal.get("count")]
            record["no_space"] = {"count": sum(signal["count"] for signal in counted),
                                  "last": counted[-1]["last"] if counted else None}
        records.append(record)
    return records


def findings(records: list[dict], thresholds: dict | None = None) -> list[dict]:
    """db_storage_full when PostgreSQL refuses writes for lack of space (it said so in its log, or less than a
    WAL segment is free), else db_storage_near_full / redis_storage_near_full: high from `high` of the volume
    used, critical from `critical` (or, for Redis, once a save failed for lack of space)."""
    limits = {**THRESHOLDS, **{key: value for key, value in (thresholds or {}).items() if value is not None}}
    high, critical = float(limits["high"]), float(limits["critical"])
    results = []
    for record in records or []:
        usage, refused = record.get("usage"), record.get("no_space") or {}
        if not usage or usage["ratio"] is None:
            continue
        ratio, free = usage["ratio"], usage["available"]
        where = f"{record['service']}'s data volume ({record['path']}, {usage['filesystem']})"
        state = f"{ratio:.0%} used, {_mib(free)} free of {_mib(usage['size'])}"
        evidence = {**usage, "service": record["service"], "path": record["path"],
                    "threshold_high": high, "threshold_critical": critical,
                    "no_space_log_lines": refused.get("count", 0), "last_no_space_line": refused.get("last")}
        still_full = ratio >= high or free < MIN_FREE_BYTES
        if record.get("kind") == "database":
            if still_full and (refused.get("count") or free < MIN_FREE_BYTES):
                results.append(finding(
                    "db_storage_full", "critical",
                    f"PostgreSQL refuses writes for lack of space: {where} is {state}"
                    + (f"; its log: {refused['last']}" if refused.get("last") else ""), evidence,
                    "Page the DBA. Give the volume room first: grow it (on Kubernetes, a larger claim where its "
                    "StorageClass allows expansion) or move off what is not the database's. Then find what grew "
                    "(pg_database_size, pg_wal held back by a replication slot or failing archiving). Never delete "
                    "files under pg_wal or the data directory: that loses committed data.", runbook=RUNBOOK))
            elif ratio >= high:
                results.append(finding(
                    "db_storage_near_full", "critical" if ratio >= critical else "high",
                    f"{where} is {state}: PostgreSQL refuses writes once it is full", evidence,
                    "Escalate to the DBA to grow the volume before it fills; find what grows (pg_database_size, "
                    "pg_wal, bloated tables that VACUUM FULL or pg_repack would shrink). Never delete files under "
                    "the data directory.", runbook=RUNBOOK))
        elif ratio >= high or (still_full and refused.get("count")):
            results.append(finding(
                "redis_storage_near_full", "critical" if ratio >= critical or refused.get("count") else "high",
                f"{where} is {state}"
                + (f": a save failed for lack of space ({refused['last']})" if refused.get("count")
                   else ": the next save (a full copy of the data set) may not fit"), evidence,
                "Grow the broker's volume, or move old snapshots off it. A save that fails stops Redis taking "
                "writes (stop-writes-on-bgsave-error): see redis_persistence_failing. Never flush the queue to "
                "make room.", runbook=RUNBOOK))
    return results
