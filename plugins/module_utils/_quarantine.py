# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking jobs off the queue without losing them, and putting them back.

A job is never deleted: it moves, in one atomic step on the server, from its
queue list into the quarantine list, wrapped in a record of why, when and
from where. If a worker takes the job first, nothing moves and the job is
reported as no longer queued. `restore` moves the record's job back to the
consumer's end of the list it came from.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils import _queue

# Atomic move: remove one occurrence of the exact bytes from the source list
# (searching from the end named by ARGV[3]) and only then push the record.
# Two commands, O(position) - no long-running script.
MOVE_OUT = """
local direction = tonumber(ARGV[3])
if redis.call('LREM', KEYS[1], direction, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# Restore: remove the exact record from quarantine, push the job back where
# the consumer will take it next (ARGV[3] = LPUSH or RPUSH).
MOVE_BACK = """
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 1 then
  redis.call(ARGV[3], KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Which end the consumer takes from: plain jobs are LPOPed, Celery's BRPOPed.
CONSUMER_END = {"plain": {"lrem": 1, "push": "LPUSH"}, "celery": {"lrem": -1, "push": "RPUSH"}}


def default_quarantine_key(queue: str) -> str:
    return f"{queue}:quarantine"


def encode_job(raw: bytes) -> dict[str, str]:
    try:
        return {"job": raw.decode("utf-8"), "job_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"job": base64.b64encode(raw).decode(), "job_encoding": "base64"}


def decode_job(record: dict[str, Any]) -> bytes:
    if record.get("job_encoding") == "base64":
        return base64.b64decode(record["job"])
    return record["job"].encode("utf-8")


def make_record(raw: bytes, job: dict[str, Any] | None, source: str, fmt: str, reason: str, now: float) -> bytes:
    fields = _queue.job_fields(job) if job else {}
    record = {
        **encode_job(raw),
        "source": source,
        "format": fmt,
        "reason": reason,
        "quarantined_at": _queue.iso(now),
        "ticket_id": fields.get("ticket_id"),
        "tenant_id": fields.get("tenant_id"),
        "task_id": fields.get("task_id"),
        "by": "aiagents.runbooks.redis_queue_quarantine",
    }
    return json.dumps(record, sort_keys=True).encode()


def _matches(job: dict[str, Any] | None, ticket_ids: set[str], task_ids: set[str],
             tenant_ids: frozenset[str] = frozenset()) -> bool:
    if not job:
        return False
    fields = _queue.job_fields(job)
    return fields["ticket_id"] in ticket_ids or fields["task_id"] in task_ids or fields["tenant_id"] in tenant_ids


def find_queued(client, queue: str, fmt: str, ticket_ids: set[str], task_ids: set[str], oldest: int,
                limit: int, tenant_ids: frozenset[str] = frozenset()) -> list[tuple[str, bytes, dict[str, Any] | None]]:
    """(list key, raw item, parsed job) for each selected job still queued."""
    parse_page = _queue.PAGE_PARSERS[fmt]
    keys = [key for key, kind in _queue.key_types(client, _queue.priority_keys(queue)).items() if kind == "list"]
    selected: list[tuple[str, bytes, dict[str, Any] | None]] = []
    if oldest:
        base = queue if queue in keys else None
        if base:
            items = client.lrange(base, 0, oldest - 1) if fmt == "plain" else client.lrange(base, -oldest, -1)[::-1]
            selected += [(base, raw, job) for raw, job in zip(items, parse_page(items))]
    if ticket_ids or task_ids or tenant_ids:
        for key in keys:
            for items in _pages_away_from_producers(client, key, fmt):
                for raw, job in zip(items, parse_page(items)):
                    if _matches(job, ticket_ids, task_ids, tenant_ids):
                        selected.append((key, raw, job))
                if len(selected) >= limit:
                    break
    return selected[:limit]


def _pages_away_from_producers(client, key: str, fmt: str):
    """Pages of `key`, indexed from the end producers do not push to.

    Plain producers RPUSH, so positive indexes stay put under them; Celery's
    LPUSH, so we count from the tail. Consumers taking jobs meanwhile can only
    make us skip a job they took, never read one twice.
    """
    depth = client.llen(key)
    done, page = 0, 1000
    while done < depth:
        if fmt == "plain":
            items = client.lrange(key, done, done + page - 1)
        else:
            items = client.lrange(key, -(done + page), -(done + 1))
        if not items:
            return
        yield items
        done += len(items)
        page = _queue.page_size_for(items, page)


def find_quarantined(client, quarantine_key: str, queue: str, ticket_ids: set[str], task_ids: set[str],
                     tenant_ids: frozenset[str] = frozenset(), reason: str | None = None
                     ) -> list[tuple[bytes, dict[str, Any]]]:
    """(raw record, record) for each quarantined job of `queue` that is selected
    (and, when `reason` is given, was quarantined for exactly that reason)."""
    found = []
    start, page = 0, 500
    depth = client.llen(quarantine_key)
    while start < depth:
        items = client.lrange(quarantine_key, start, start + page - 1)
        if not items:
            break
        for raw in items:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict) or not str(record.get("source", "")).startswith(queue):
                continue
            if reason is not None and record.get("reason") != reason:
                continue
            if (record.get("ticket_id") in ticket_ids or record.get("task_id") in task_ids
                    or record.get("tenant_id") in tenant_ids):
                found.append((raw, record))
        start += len(items)
    return found


def summary(job: dict[str, Any] | None, source: str) -> dict[str, Any]:
    fields = _queue.job_fields(job) if job else {}
    return {"ticket_id": fields.get("ticket_id"), "tenant_id": fields.get("tenant_id"),
            "task_id": fields.get("task_id"), "source": _queue.display_key(source)}


def quarantine(client, queue: str, quarantine_key: str, fmt: str, selected, reason: str,
               check_mode: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Move each selected job; returns (moved, gone) where gone were taken by a worker first."""
    moved, gone = [], []
    move = client.register_script(MOVE_OUT)
    now = time.time()
    for source, raw, job in selected:
        described = summary(job, source)
        if check_mode:
            moved.append(described)
            continue
        record = make_record(raw, job, source, fmt, reason, now)
        if move(keys=[source, quarantine_key], args=[raw, record, CONSUMER_END[fmt]["lrem"]]) == 1:
            moved.append({**described, "quarantined_at": _queue.iso(now)})
        else:
            gone.append(described)
    return moved, gone


def restore(client, quarantine_key: str, fmt: str, records, check_mode: bool) -> list[dict[str, Any]]:
    """Each record's job back to the consumer's end. Newest first, so that
    several restored jobs keep their order, the oldest to be taken next."""
    restored = []
    move = client.register_script(MOVE_BACK)
    for raw_record, record in reversed(records):
        described = {"ticket_id": record.get("ticket_id"), "tenant_id": record.get("tenant_id"),
                     "task_id": record.get("task_id"), "source": _queue.display_key(record["source"]),
                     "reason": record.get("reason"), "quarantined_at": record.get("quarantined_at")}
        push = CONSUMER_END[record.get("format") or fmt]["push"]
        if check_mode or move(keys=[record["source"], quarantine_key], args=[raw_record, decode_job(record), push]) == 1:
            restored.append(described)
    return restored[::-1]
