# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking jobs off the queue without losing them, and putting them back.

A job is never deleted: it moves, in one atomic step on the server, from its
queue list into the quarantine list, wrapped in a record of why, when and
from where. If a worker takes the job first, nothing moves and the job is
reported as no longer queued. `restore` moves the record's job back to the
consumer's end of the list it came from.

Nothing is half-done: every selected record is checked before the first
move (a record without its job refuses the whole restore), each script checks
the list it pushes to before it removes anything (Redis does not undo a
script's first write when its second fails), and a move that fails midway
reports exactly which jobs had moved before it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils import _queue, _redis
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range

# Atomic move: remove one occurrence of the exact bytes from the source list
# (searching from the end named by ARGV[3]) and only then push the record.
# Two commands, O(position) - no long-running script. -1: the quarantine key
# holds another type, so the push would fail after the job was removed.
MOVE_OUT = """
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'list' and kind ~= 'none' then
  return -1
end
local direction = tonumber(ARGV[3])
if redis.call('LREM', KEYS[1], direction, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# Restore: remove the exact record from quarantine, push the job back at the
# end asked for - where the consumer takes it next, or behind the work queued
# meanwhile (ARGV[3] = LPUSH or RPUSH); -1 as above.
MOVE_BACK = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'list' and kind ~= 'none' then
  return -1
end
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 1 then
  redis.call(ARGV[3], KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Which end the consumer takes from: plain jobs are LPOPed, Celery's BRPOPed;
# producers push at the other end ("back").
CONSUMER_END = {"plain": {"lrem": 1, "push": "LPUSH", "back": "RPUSH"},
                "celery": {"lrem": -1, "push": "RPUSH", "back": "LPUSH"}}


def default_quarantine_key(queue: str) -> str:
    return f"{queue}:quarantine"


def encode_job(raw: bytes) -> dict[str, str]:
    try:
        return {"job": raw.decode("utf-8"), "job_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"job": base64.b64encode(raw).decode(), "job_encoding": "base64"}


def decode_job(record: dict[str, Any]) -> bytes:
    """The job a record holds, byte for byte, or ValueError saying what is wrong with the record."""
    job = record.get("job")
    if job is None:
        raise ValueError("it has no job")
    if not isinstance(job, str):
        raise ValueError("its job is not text")
    encoding = record.get("job_encoding") or "utf-8"
    if encoding == "base64":
        try:
            return base64.b64decode(job, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("its job is not valid base64") from None
    if encoding != "utf-8":
        raise ValueError(f"its job_encoding {str(encoding)[:40]!r} is unknown")
    try:
        return job.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("its job is not valid UTF-8") from None


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
    sources = set(_queue.priority_keys(queue))
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
            # Exactly this queue's lists: "enhancement_queue_v2" is another queue, not a priority list.
            if not isinstance(record, dict) or not _among(record.get("source"), sources):
                continue
            if reason is not None and record.get("reason") != reason:
                continue
            if (_among(record.get("ticket_id"), ticket_ids) or _among(record.get("task_id"), task_ids)
                    or _among(record.get("tenant_id"), tenant_ids)):
                found.append((raw, record))
        start += len(items)
    return found


def _among(value: Any, wanted) -> bool:
    """`value in wanted`, for whatever JSON a record holds (a list is not hashable)."""
    return isinstance(value, str) and value in wanted


def summary(job: dict[str, Any] | None, source: str) -> dict[str, Any]:
    fields = _queue.job_fields(job) if job else {}
    return {"ticket_id": fields.get("ticket_id"), "tenant_id": fields.get("tenant_id"),
            "task_id": fields.get("task_id"), "source": _queue.display_key(source)}


class MoveFailed(RunbookError):
    """A move failed after others had been made: says exactly which jobs moved."""

    def __init__(self, operation: str, target: str, moved: list[dict[str, Any]], total: int,
                 failed: dict[str, Any], exc: BaseException | str) -> None:
        self.moved = moved
        lost = isinstance(exc, Exception) and _redis.redis is not None and isinstance(
            exc, (_redis.redis_exceptions.ConnectionError, _redis.redis_exceptions.TimeoutError))
        cause = exc if isinstance(exc, str) else _redis.translate(exc, operation, target).cause
        done = ", ".join(_who(job) for job in moved)
        text = f"moved {len(moved)} of {total} jobs" + (f" ({done})" if done else "")
        text += f", then {_who(failed)} failed: {cause}"
        if lost:
            text += f" - whether {_who(failed)} moved is unknown (the reply was lost)"
        text += f"; the other {total - len(moved) - 1} were not moved"
        super().__init__(operation, target, text)


def _who(job: dict[str, Any]) -> str:
    for field in ("ticket_id", "task_id", "tenant_id"):
        if job.get(field):
            return f"{field[:-3]} {str(job[field])[:60]!r}"
    return "a job without ids"


def _check_destinations(client, keys: list[str], operation: str, target: str, option: str) -> None:
    for key, kind in _queue.key_types(client, sorted(set(keys))).items():
        if kind not in ("list", "none"):
            raise RunbookError(operation, target, f"{option} '{_queue.display_key(key)}' holds a {kind}, "
                                                  "not a list; nothing was moved")


def quarantine(client, queue: str, quarantine_key: str, fmt: str, selected, reason: str,
               check_mode: bool, target: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Move each selected job; returns (moved, gone) where gone were taken by a worker first."""
    target = target or f"queue {queue!r}"
    _check_destinations(client, [quarantine_key], "quarantine jobs of", target, "quarantine_key")
    moved, gone = [], []
    move = client.register_script(MOVE_OUT)
    now = time.time()
    for source, raw, job in selected:
        described = summary(job, source)
        if check_mode:
            moved.append(described)
            continue
        record = make_record(raw, job, source, fmt, reason, now)
        try:
            done = move(keys=[source, quarantine_key], args=[raw, record, CONSUMER_END[fmt]["lrem"]])
        except Exception as exc:
            raise MoveFailed("quarantine jobs of", target, moved, len(selected), described, exc) from None
        if done == -1:
            raise MoveFailed("quarantine jobs of", target, moved, len(selected), described,
                             f"quarantine_key {quarantine_key!r} no longer holds a list")
        if done == 1:
            moved.append({**described, "quarantined_at": _queue.iso(now)})
        else:
            gone.append(described)
    return moved, gone


def plan_restore(records, queue: str, quarantine_key: str, fmt: str, target: str) -> list[dict[str, Any]]:
    """What each record's restore does - or RunbookError, before anything moves, if one cannot be restored."""
    planned, broken = [], []
    for raw_record, record in records:
        described = {"ticket_id": record.get("ticket_id"), "tenant_id": record.get("tenant_id"),
                     "task_id": record.get("task_id"), "source": _queue.display_key(record["source"]),
                     "reason": record.get("reason"), "quarantined_at": record.get("quarantined_at")}
        try:
            job = decode_job(record)
            layout = record.get("format") or fmt
            if layout not in CONSUMER_END:
                raise ValueError(f"its format {str(layout)[:40]!r} is neither plain nor celery")
        except ValueError as exc:
            broken.append(f"{_who(described)}: {exc}")
            continue
        planned.append({"raw": raw_record, "job": job, "source": record["source"],
                        "push": CONSUMER_END[layout]["push"], "back": CONSUMER_END[layout]["back"],
                        "described": described})
    if broken:
        raise RunbookError("restore jobs to", target, (
            f"quarantine_key {quarantine_key!r} holds {len(broken)} selected record(s) that cannot be restored "
            f"({'; '.join(broken[:3])}{'; ...' if len(broken) > 3 else ''}); nothing was moved - "
            "select the other jobs by ticket_ids or task_ids, or repair the record"))
    return planned


def restore(client, quarantine_key: str, fmt: str, records, check_mode: bool, queue: str = "",
            target: str = "", position: str = "front") -> list[dict[str, Any]]:
    """Each record's job back, keeping their order, the oldest first. ``front``: to the consumer's end (pushed
    newest first, the oldest to be taken next); ``back``: to the producers' end, behind the work queued
    meanwhile (pushed oldest first)."""
    target = target or f"queue {queue!r}"
    planned = plan_restore(records, queue, quarantine_key, fmt, target)
    _check_destinations(client, [plan["source"] for plan in planned], "restore jobs to", target, "queue")
    restored: list[dict[str, Any]] = []
    move = client.register_script(MOVE_BACK)
    back = position == "back"

    def in_order(done: list) -> list:
        return done if back else done[::-1]

    for plan in planned if back else reversed(planned):
        if check_mode:
            restored.append(plan["described"])
            continue
        try:
            done = move(keys=[plan["source"], quarantine_key],
                        args=[plan["raw"], plan["job"], plan["back"] if back else plan["push"]])
        except Exception as exc:
            raise MoveFailed("restore jobs to", target, in_order(restored), len(planned), plan["described"],
                             exc) from None
        if done == -1:
            raise MoveFailed("restore jobs to", target, in_order(restored), len(planned), plan["described"],
                             f"queue '{_queue.display_key(plan['source'])}' no longer holds a list")
        if done == 1:
            restored.append(plan["described"])
    return in_order(restored)


# ------------------------------------------------------------------ a run --

def check_options(params: dict[str, Any]) -> str | None:
    """The message refusing nonsense options (naming the option), or None."""
    queue = params["queue"]
    if not queue:
        return "queue must not be empty"
    qkey = params.get("quarantine_key")
    if qkey is not None and (not qkey or qkey in _queue.priority_keys(queue)):
        return f"quarantine_key must be a list of its own, not {qkey!r} (the queue's own lists)"
    for name, minimum in (("oldest", 0), ("max_jobs", 1)):
        refused = out_of_range(name, params.get(name), minimum=minimum)
        if refused:
            return refused
    if params["state"] == "quarantined" and not (params.get("reason") or "").strip():
        return "reason must say why the jobs are quarantined"
    if params["state"] == "restored" and params.get("oldest"):
        return "choose them by ticket_ids, task_ids or tenant_ids; oldest applies to quarantining"
    return None


def _lists(client, queue: str) -> list[str]:
    """The queue's keys that hold lists (one of another type is reported when a job would go there)."""
    return [key for key, kind in _queue.key_types(client, _queue.priority_keys(queue)).items() if kind == "list"]


def depth(client, queue: str) -> int:
    return sum(client.llen(key) for key in _lists(client, queue))


def run(client, params: dict[str, Any], check_mode: bool, target: str) -> dict[str, Any]:
    """The module's work: select, guard, move (or say what would move); the result to return."""
    queue = params["queue"]
    qkey = params["quarantine_key"] or default_quarantine_key(queue)
    quarantining = params["state"] == "quarantined"
    operation = "quarantine jobs of" if quarantining else "restore jobs to"
    ticket_ids, task_ids = set(params["ticket_ids"] or []), set(params["task_ids"] or [])
    tenant_ids = frozenset(params["tenant_ids"] or [])
    _check_destinations(client, [qkey], operation, target, "quarantine_key")
    fmt = params["format"]
    if fmt == "auto":
        fmt = _queue.detect_format(_queue.first_item(client, _lists(client, queue)) or b"") or "plain"
    before = {"queue_depth": depth(client, queue), "quarantine_depth": client.llen(qkey)}
    if quarantining:
        selected = find_queued(client, queue, fmt, ticket_ids, task_ids, params["oldest"] or 0,
                               params["max_jobs"] + 1, tenant_ids)
        count = len(selected)
    else:
        records = find_quarantined(client, qkey, queue, ticket_ids, task_ids, tenant_ids, params["reason"])
        count = len(records)
    if count > params["max_jobs"]:
        raise RunbookError(operation, repr(queue), f"the selection matches more than max_jobs={params['max_jobs']} "
                                                   "jobs; nothing was moved")
    if quarantining:
        moved, gone = quarantine(client, queue, qkey, fmt, selected, params["reason"], check_mode, target)
        seen = {_queue.job_fields(job)[field] for _key, _raw, job in selected if job
                for field in ("ticket_id", "task_id", "tenant_id")}
    else:
        position = params.get("position") or ("back" if tenant_ids else "front")
        moved, gone = restore(client, qkey, fmt, records, check_mode, queue, target, position), []
        seen = {record.get(field) for _raw, record in records for field in ("ticket_id", "task_id", "tenant_id")
                if isinstance(record.get(field), str)}
    after = {"queue_depth": depth(client, queue), "quarantine_depth": client.llen(qkey)}
    if check_mode:
        delta = len(moved) if quarantining else -len(moved)
        after = {"queue_depth": before["queue_depth"] - delta, "quarantine_depth": before["quarantine_depth"] + delta}
    return {
        "changed": bool(moved),
        "moved": moved,
        "gone": gone,
        "not_found": sorted((ticket_ids | task_ids | tenant_ids) - seen),
        "quarantine_key": qkey,
        "diff": {"before": before, "after": {**after, "moved": [job["ticket_id"] or job["task_id"] for job in moved]}},
        **after,
    }
