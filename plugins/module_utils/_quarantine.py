# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking jobs off the queue without losing them, and putting them back.

A job is never deleted: it moves, in one atomic step on the server, from its
queue list into the quarantine list, wrapped in a record of why, when and
from where. If a worker takes the job first, nothing moves and the job is
reported as no longer queued. `restore` moves the record's job back to the
consumer's end of the list it came from.

Few jobs near the consumers' end move one by one (an LREM that stops after
a few hundred items). Many jobs, or any deep in the list - pausing a tenant
that holds k of a million jobs - move in one sweep over the list
(`_sweep`): one pass, no command longer than a few milliseconds, instead of k
LREMs of up to 90 ms each.

Nothing is half-done: every selected record is checked before the first
move (a record without its job refuses the whole restore), each script checks
the list it pushes to before it removes anything (Redis does not undo a
script's first write when its second fails), and a move that fails midway
reports exactly which jobs had moved before it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils import _queue, _redis, _sweep
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

# Beyond this many jobs, or this deep from the consumers' end, jobs move in one sweep.
SWEEP_ABOVE_JOBS = 50
SWEEP_FROM_DEPTH = 20000
# The selection's read pages: half the info scan's, since a deep LRANGE also walks the list to its start.
SELECT_PAGE_BYTES = 128 << 10

# Which end the consumer takes from: plain jobs are LPOPed, Celery's BRPOPed;
# producers push at the other end ("back").
CONSUMER_END = {"plain": {"lrem": 1, "push": "LPUSH", "back": "RPUSH", "side": "L"},
                "celery": {"lrem": -1, "push": "RPUSH", "back": "LPUSH", "side": "R"}}


def _other(side: str) -> str:
    return "R" if side == "L" else "L"


def needs_sweep(depths: list[int]) -> bool:
    """Whether moving jobs at these depths (from the consumers' end) one by one would cost too much."""
    return len(depths) > SWEEP_ABOVE_JOBS or max(depths, default=0) >= SWEEP_FROM_DEPTH


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
                limit: int, tenant_ids: frozenset[str] = frozenset()
                ) -> list[tuple[str, bytes, dict[str, Any] | None, int]]:
    """(list key, raw item, parsed job, depth from the consumers' end) for each selected job still queued."""
    parse_page = _queue.PAGE_PARSERS[fmt]
    keys = [key for key, kind in _queue.key_types(client, _queue.priority_keys(queue)).items() if kind == "list"]
    selected: list[tuple[str, bytes, dict[str, Any] | None, int]] = []
    if oldest:
        base = queue if queue in keys else None
        if base:
            items = client.lrange(base, 0, oldest - 1) if fmt == "plain" else client.lrange(base, -oldest, -1)[::-1]
            selected += [(base, raw, job, depth) for depth, (raw, job) in enumerate(zip(items, parse_page(items)))]
    if ticket_ids or task_ids or tenant_ids:
        for key in keys:
            depth = 0
            for items in _pages_away_from_producers(client, key, fmt):
                for raw, job in zip(items, parse_page(items)):
                    if _matches(job, ticket_ids, task_ids, tenant_ids):
                        selected.append((key, raw, job, depth))
                    depth += 1
                if len(selected) >= limit:
                    break
    return selected[:limit]


def _pages_away_from_producers(client, key: str, fmt: str):
    """Pages of `key` from the consumers' end, indexed from that end.

    Plain producers RPUSH, so positive indexes stay put under them; Celery's
    LPUSH, so we count from the tail. Consumers taking jobs meanwhile shift the
    pages: a job may be skipped, never read twice. Moving is exact all the
    same - a skipped job is not selected, a selected one taken meanwhile is
    reported `gone`.
    """
    depth = client.llen(key)
    done, page = 0, _queue.first_page_size([client.lindex(key, 0), client.lindex(key, -1)], SELECT_PAGE_BYTES)
    while done < depth:
        if fmt == "plain":
            items = client.lrange(key, done, done + page - 1)
        else:
            items = client.lrange(key, -(done + page), -(done + 1))
        if not items:
            return
        yield items
        done += len(items)
        page = _queue.page_size_for(items, page, SELECT_PAGE_BYTES)


def find_quarantined(client, quarantine_key: str, queue: str, ticket_ids: set[str], task_ids: set[str],
                     tenant_ids: frozenset[str] = frozenset(), reason: str | None = None
                     ) -> list[tuple[bytes, dict[str, Any], int]]:
    """(raw record, record, position in the quarantine list) for each quarantined job of `queue` that is
    selected (and, when `reason` is given, was quarantined for exactly that reason)."""
    found = []
    sources = set(_queue.priority_keys(queue))
    start, page = 0, _queue.first_page_size([client.lindex(quarantine_key, 0)], SELECT_PAGE_BYTES)
    depth = client.llen(quarantine_key)
    while start < depth:
        items = client.lrange(quarantine_key, start, start + page - 1)
        if not items:
            break
        page = _queue.page_size_for(items, page, SELECT_PAGE_BYTES)
        for position, raw in enumerate(items, start):
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
                found.append((raw, record, position))
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
    now = time.time()
    if check_mode:
        return [summary(job, source) for source, _raw, job, _depth in selected], []
    if needs_sweep([depth for _source, _raw, _job, depth in selected]):
        return _quarantine_by_sweep(client, quarantine_key, fmt, selected, reason, now, target)
    moved, gone = [], []
    move = client.register_script(MOVE_OUT)
    for source, raw, job, _depth in selected:
        described = summary(job, source)
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


def _oldest_first_swept(tags: list[tuple[int, int, dict[str, Any]]], fmt: str) -> list[dict[str, Any]]:
    """What a sweep from the producers' end took, oldest first. Tags are (window number, index in the
    window, described): windows come newest first; inside one, a plain list runs oldest to newest and a
    Celery one newest to oldest."""
    sign = 1 if CONSUMER_END[fmt]["side"] == "L" else -1
    return [described for _window, _index, described in sorted(tags, key=lambda tag: (-tag[0], sign * tag[1]))]


def _quarantine_by_sweep(client, quarantine_key: str, fmt: str, selected, reason: str, now: float,
                         target: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One sweep per source list, from the producers' end; the taken jobs join the quarantine list in
    their queue order when the sweep ends."""
    moved, gone = [], []
    for source in dict.fromkeys(key for key, _raw, _job, _depth in selected):
        wanted: dict[bytes, list[dict[str, Any] | None]] = {}
        for key, raw, job, _depth in selected:
            if key == source:
                wanted.setdefault(raw, []).append(job)

        decide = functools.partial(_choose_listed, wanted=wanted, source=source, fmt=fmt, reason=reason, now=now,
                                   windows=[0])
        landed, missed = _sweep_into_quarantine(client, source, quarantine_key, fmt, decide, now, target)
        moved += landed
        gone += missed + [summary(job, source) for jobs in wanted.values() for job in jobs]
    return moved, gone


def _sweep_into_quarantine(client, source: str, quarantine_key: str, fmt: str, decide, now: float,
                           target: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One sweep of `source` from the producers' end; what `decide` chooses joins the quarantine list in
    queue order when it ends. (moved, taken by a worker first), oldest first."""
    consume = CONSUMER_END[fmt]["side"]
    push = _other(consume)
    sweep = _sweep.Sweep(client, source, sweep=push, push=push, sink=_sweep.taken_key(source),
                         sink_side=consume, drain=(quarantine_key, consume, consume == "R"),
                         operation="quarantine jobs of", target=target)
    for _seen in sweep.run(decide):
        pass
    return ([{**described, "quarantined_at": _queue.iso(now)} for described in _oldest_first_swept(sweep.landed, fmt)],
            _oldest_first_swept(sweep.missed, fmt))


def plan_restore(records, queue: str, quarantine_key: str, fmt: str, target: str) -> list[dict[str, Any]]:
    """What each record's restore does - or RunbookError, before anything moves, if one cannot be restored."""
    planned, broken = [], []
    for raw_record, record, _position in records:
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
        planned.append({"raw": raw_record, "job": job, "source": record["source"], "layout": layout,
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
    back = position == "back"
    if check_mode:
        return [plan["described"] for plan in planned]
    if needs_sweep([record_position for _raw, _record, record_position in records]):
        return _restore_by_sweep(client, quarantine_key, planned, back, target)
    restored: list[dict[str, Any]] = []
    move = client.register_script(MOVE_BACK)

    def in_order(done: list) -> list:
        return done if back else done[::-1]

    for plan in planned if back else reversed(planned):
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


def _restore_by_sweep(client, quarantine_key: str, planned: list[dict[str, Any]], back: bool,
                      target: str) -> list[dict[str, Any]]:
    """One sweep of the quarantine list per (queue list, layout): from its oldest record when the jobs go
    behind the work queued meanwhile, from its newest when they go to the front - so each job is pushed
    in the order that keeps the original one."""
    restored: list[dict[str, Any]] = []
    for source, layout in dict.fromkeys((plan["source"], plan["layout"]) for plan in planned):
        consume = CONSUMER_END[layout]["side"]
        wanted: dict[bytes, list[dict[str, Any]]] = {}
        for plan in planned:
            if (plan["source"], plan["layout"]) == (source, layout):
                wanted.setdefault(plan["raw"], []).append(plan)

        decide = functools.partial(_choose_records, wanted=wanted)

        # Records are RPUSHed: the quarantine list's oldest end is the left.
        if back:
            sweep = _sweep.Sweep(client, quarantine_key, sweep="L", push="R", sink=source, sink_side=_other(consume),
                                 sink_flip=consume == "R", operation="restore jobs to", target=target)
        else:
            sweep = _sweep.Sweep(client, quarantine_key, sweep="R", push="R", sink=source, sink_side=consume,
                                 sink_flip=consume == "R", operation="restore jobs to", target=target)
        for _seen in sweep.run(decide):
            pass
        # Newest-first sweeps find the jobs in reverse: report them oldest first either way.
        restored += sweep.landed if back else _oldest_first(sweep.landed, planned)
    return restored


def _oldest_first(landed: list[dict[str, Any]], planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {id(plan["described"]): n for n, plan in enumerate(planned)}
    return sorted(landed, key=lambda described: rank[id(described)])


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
    # A sweep a dead run left behind holds jobs aside: finish it before reading anything.
    recovered = [_queue.display_key(key) for key in [*_queue.priority_keys(queue), qkey]
                 if _sweep.finish_abandoned(client, key, operation, target)]
    fmt = params["format"]
    if fmt == "auto":
        fmt = _queue.detect_format(_queue.first_item(client, _lists(client, queue)) or b"") or "plain"
    before = {"queue_depth": depth(client, queue), "quarantine_depth": client.llen(qkey)}
    if quarantining and tenant_ids and not params["oldest"] and not check_mode \
            and before["queue_depth"] >= SWEEP_FROM_DEPTH:
        # Pausing a tenant in a deep queue: one sweep selects and moves; nothing reads the list's middle.
        moved, gone, seen = _select_by_sweep(client, queue, qkey, fmt, ticket_ids, task_ids, tenant_ids,
                                             params["max_jobs"], params["reason"], target)
        after = {"queue_depth": depth(client, queue), "quarantine_depth": client.llen(qkey)}
        return _result(moved, gone, (ticket_ids | task_ids | tenant_ids) - seen, qkey, "one sweep per list",
                       recovered, before, after)
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
        swept = needs_sweep([depth for _key, _raw, _job, depth in selected])
        moved, gone = quarantine(client, queue, qkey, fmt, selected, params["reason"], check_mode, target)
        seen = {_queue.job_fields(job)[field] for _key, _raw, job, _depth in selected if job
                for field in ("ticket_id", "task_id", "tenant_id")}
    else:
        position = params.get("position") or ("back" if tenant_ids else "front")
        swept = needs_sweep([record_position for _raw, _record, record_position in records])
        moved, gone = restore(client, qkey, fmt, records, check_mode, queue, target, position), []
        seen = {record.get(field) for _raw, record, _position in records for field in ("ticket_id", "task_id", "tenant_id")
                if isinstance(record.get(field), str)}
    after = {"queue_depth": depth(client, queue), "quarantine_depth": client.llen(qkey)}
    if check_mode:
        delta = len(moved) if quarantining else -len(moved)
        after = {"queue_depth": before["queue_depth"] - delta, "quarantine_depth": before["quarantine_depth"] + delta}
    return _result(moved, gone, (ticket_ids | task_ids | tenant_ids) - seen, qkey,
                   ("one sweep per list" if swept else "one by one"), recovered, before, after)


def _result(moved, gone, not_found, qkey, how, recovered, before, after) -> dict[str, Any]:
    return {
        "changed": bool(moved),
        "moved": moved,
        "gone": gone,
        "not_found": sorted(not_found),
        "quarantine_key": qkey,
        "moved_by": how if moved else "nothing moved",
        "recovered": recovered,
        "diff": {"before": before, "after": {**after, "moved": [job["ticket_id"] or job["task_id"] for job in moved]}},
        **after,
    }


class OverLimit(RunbookError):
    """A sweep met more matching jobs than max_jobs: it took max_jobs and left the others queued, in place."""

    def __init__(self, target: str, moved: list[dict[str, Any]], max_jobs: int, more: int) -> None:
        self.moved = moved
        super().__init__("quarantine jobs of", target, (
            f"the selection matches more than max_jobs={max_jobs} jobs: {len(moved)} were taken in the one "
            f"pass over the queue (the newest first) and {more} more were left queued, in place. Restore the "
            "taken ones (state=restored, same reason), or run again with a larger max_jobs to take the rest"))


def _select_by_sweep(client, queue: str, qkey: str, fmt: str, ticket_ids: set[str], task_ids: set[str],
                     tenant_ids: frozenset[str], max_jobs: int, reason: str, target: str
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
    """Select and move in the same sweep of each list; at most max_jobs move (OverLimit past them)."""
    now = time.time()
    moved: list[dict[str, Any]] = []
    gone: list[dict[str, Any]] = []
    tally = {"seen": set(), "taken": 0, "more": 0, "max_jobs": max_jobs}
    for source in _lists(client, queue):
        decide = functools.partial(_choose_matching, ids=(ticket_ids, task_ids, tenant_ids), source=source, fmt=fmt,
                                   reason=reason, now=now, windows=[0], tally=tally)
        landed, missed = _sweep_into_quarantine(client, source, qkey, fmt, decide, now, target)
        moved += landed
        gone += missed
    if tally["more"]:
        raise OverLimit(target, moved, max_jobs, tally["more"])
    return moved, gone, tally["seen"]


def _choose_listed(window: list[bytes], wanted, source: str, fmt: str, reason: str, now: float,
                   windows: list[int]) -> list[tuple[int, bytes, Any]]:
    """A sweep's choice: the jobs the read pass selected (byte for byte), each with its record."""
    chosen = []
    windows[0] += 1
    for index, raw in enumerate(window, 1):
        jobs = wanted.get(raw)
        if jobs:
            job = jobs.pop()
            chosen.append((index, make_record(raw, job, source, fmt, reason, now), (windows[0], index, summary(job, source))))
    return chosen


def _choose_records(window: list[bytes], wanted) -> list[tuple[int, bytes, Any]]:
    """A restore sweep's choice: the planned records, each giving back its job."""
    chosen = []
    for index, raw in enumerate(window, 1):
        plans = wanted.get(raw)
        if plans:
            plan = plans.pop()
            chosen.append((index, plan["job"], plan["described"]))
    return chosen


def _choose_matching(window: list[bytes], ids, source: str, fmt: str, reason: str, now: float,
                     windows: list[int], tally: dict[str, Any]) -> list[tuple[int, bytes, Any]]:
    """A selecting sweep's choice: the jobs matching the ids, until max_jobs are taken (the others counted)."""
    chosen = []
    windows[0] += 1
    for index, (raw, job) in enumerate(zip(window, _queue.PAGE_PARSERS[fmt](window)), 1):
        if not _matches(job, *ids):
            continue
        fields = _queue.job_fields(job)
        tally["seen"].update(value for value in (fields["ticket_id"], fields["task_id"], fields["tenant_id"]) if value)
        if tally["taken"] >= tally["max_jobs"]:
            tally["more"] += 1
            continue
        tally["taken"] += 1
        chosen.append((index, make_record(raw, job, source, fmt, reason, now), (windows[0], index, summary(job, source))))
    return chosen
