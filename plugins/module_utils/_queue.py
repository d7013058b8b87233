# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the enhancement queue in either of its two layouts.

plain   JSON jobs {"ticket_id", "tenant_id", "created_at"} pushed with RPUSH:
        the oldest job is at index 0 and consumers LPOP it.
celery  Celery/kombu envelopes pushed with LPUSH: the oldest is at index -1.
        `body` is base64 of [args, kwargs, embed]; priorities live in sibling
        lists "<queue>\\x06\\x16<n>"; delivered-but-unacked messages sit in the
        hash `unacked`, their delivery time in the sorted set `unacked_index`.
        A Celery message carries no enqueue time: age comes from a
        `created_at` in kwargs or headers, else it is unknown (never guessed).

Everything here is read-only and pages through lists, so memory stays
bounded whatever the queue's size.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
import os
import pickle
import signal
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable, NamedTuple

from ansible_collections.aiagents.runbooks.plugins.module_utils import _sweep
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

try:  # orjson reads a job several times faster than json, which is the fallback
    from orjson import loads as _loads
except ImportError:
    def _refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    _loads = partial(json.loads, parse_constant=_refuse_constant)  # NaN and Infinity are not JSON, as with orjson

# Strict base64 (only the alphabet, right padding); Python 3.11 does it in C, before 3.11 b64decode's check does it.
_B64DECODE = (partial(binascii.a2b_base64, strict_mode=True) if sys.version_info >= (3, 11)
              else partial(base64.b64decode, validate=True))

PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
FORMATS = ("auto", "plain", "celery")

# Age bands of the distribution, in seconds: label applies from its edge up.
AGE_EDGES = (0, 60, 300, 900, 1800, 3600, 21600)
AGE_LABELS = ("<1m", "1-5m", "5-15m", "15-30m", "30-60m", "1-6h", ">6h")

DEFAULT_THRESHOLDS = {
    "depth_elevated": 50,      # below the alert, worth a look (runbook: 50-100)
    "depth_capacity": 75,      # >75 every day means capacity planning (medium)
    "depth_high": 100,         # QueueDepthHigh territory
    "depth_page": 500,         # page on-call
    "stale_seconds": 1800,     # oldest job older than 30 min: page
    "flood_share": 0.5,        # one tenant holding half the queue dominates it
    "flood_min_depth": 50,     # ...once the queue is worth worrying about
}

MAX_TENANTS = 10000            # distinct tenants counted exactly; the rest pooled
SAMPLE_SIZE = 5
PREVIEW_BYTES = 120
PAGE_TARGET_BYTES = 256 << 10  # about 256 KiB per LRANGE reply: 0.2-0.5 ms inside Redis (median), p99 under 2 ms
PAGE_MIN, PAGE_MAX = 10, 4000


def priority_keys(queue: str) -> list[str]:
    """The base list first, then the priority lists kombu uses."""
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def display_key(key: str) -> str:
    """Priority list names contain control characters; show them readably."""
    return key.replace(PRIORITY_SEPARATOR, "\\x06\\x16")


# ---------------------------------------------------------------- parsing --
#
# Every item is read on its own, so an item is a job exactly when it would be
# one alone: pasting a page together for one parse (a quarter faster on plain
# jobs) lets invalid neighbours join into valid JSON - '{"tenant_id": "a' and
# 'b"}' make one object, '{...},{...}' makes two - and no cheap check proves
# that the pieces of such a parse are the items. orjson reads a kilobyte
# envelope in a few microseconds; a page costs one C call per item.
#
# An item is a job when it is JSON (RFC 8259, UTF-8; with orjson: no NaN, no
# lone surrogate, numbers within double range) whose value is an object; for
# Celery, an envelope whose body is [args, kwargs, embed] or a protocol 1
# message. A parsed job is a dict with tenant_id, ticket_id and created_at
# (plain jobs are already such dicts; Celery envelopes are reduced to one) or None.

JOB_FIELDS = ("tenant_id", "ticket_id", "created_at", "task_id", "task")
_READ_ERRORS = (ValueError, TypeError, RecursionError)  # binascii.Error and JSONDecodeError are ValueErrors


def _loads_or_none(item: bytes | str) -> Any:
    try:
        return _loads(item)
    except _READ_ERRORS:
        return None


def parse_plain_page(items: list[bytes]) -> list[dict[str, Any] | None]:
    try:
        docs = list(map(_loads, items))  # one C call per item; an error sends the page to the careful path
    except _READ_ERRORS:
        docs = [_loads_or_none(item) for item in items]
    return [doc if doc.__class__ is dict else None for doc in docs]


def parse_celery_page(items: list[bytes]) -> list[dict[str, Any] | None]:
    """Celery envelopes to jobs, each read whole on its own (see above)."""
    return [_celery_item(raw) for raw in items]


def _celery_item(raw: bytes) -> dict[str, Any] | None:
    """One envelope's job. kombu's usual shape (base64 body [args, kwargs, embed] with the job in
    kwargs) is read inline, any other by _envelope_job, to the same result: a fifth of the time an
    envelope takes goes to Python between its two JSON reads, so each call and lookup saved counts."""
    try:
        envelope = _loads(raw)
    except _READ_ERRORS:
        return None
    if envelope.__class__ is dict:
        body, properties = envelope.get("body"), envelope.get("properties")
        if body.__class__ is str and properties.__class__ is dict and properties.get("body_encoding") == "base64":
            try:
                payload = _loads(_B64DECODE(body))
            except _READ_ERRORS:
                return None
            if payload.__class__ is list and len(payload) >= 2:
                args, kwargs = payload[0], payload[1]
                if kwargs.__class__ is dict and not (args.__class__ is list and args and args[0].__class__ is dict):
                    headers = envelope.get("headers")
                    headers = headers if headers.__class__ is dict else {}
                    created = kwargs.get("created_at")
                    return {"tenant_id": kwargs.get("tenant_id"), "ticket_id": kwargs.get("ticket_id"),
                            "created_at": headers.get("created_at") if created is None else created,
                            "task_id": headers.get("id"), "task": headers.get("task")}
    return _envelope_job(envelope)


def _envelope_job(envelope: Any) -> dict[str, Any] | None:
    if envelope.__class__ is not dict or "body" not in envelope:
        return None
    body = envelope["body"]
    properties = envelope.get("properties")
    if properties.__class__ is dict and properties.get("body_encoding") == "base64":
        try:
            payload = _loads(_a2b_base64(body))
        except _READ_ERRORS:
            return None
    elif body.__class__ is str:
        payload = _loads_or_none(body)
    else:
        payload = body  # a body already decoded into the envelope
    return _celery_job(envelope, payload)


def _a2b_base64(body: Any) -> bytes:
    if body.__class__ is not str:
        raise TypeError("the body is not base64 text")
    return _B64DECODE(body)


def _celery_job(envelope: dict[str, Any], payload: Any) -> dict[str, Any] | None:
    """The job an envelope carries: fields from kwargs, or from a dict first argument
    (kwargs win); created_at from those fields unless null or missing, else from the headers."""
    headers = envelope.get("headers")
    headers = headers if headers.__class__ is dict else {}
    if payload.__class__ is list and len(payload) >= 2:          # protocol 2: [args, kwargs, embed]
        args, kwargs = payload[0], payload[1]
    elif payload.__class__ is dict:                                # protocol 1: the body is the message
        args, kwargs = payload.get("args") or [], payload.get("kwargs") or {}
        headers = {**payload, **headers}
    else:
        return None
    fields = kwargs if kwargs.__class__ is dict else {}
    # Some producers pass the job as one dict argument instead of keywords.
    if args.__class__ is list and args and args[0].__class__ is dict:
        fields = {**args[0], **fields}
    created = fields.get("created_at")
    return {
        "tenant_id": fields.get("tenant_id"),
        "ticket_id": fields.get("ticket_id"),
        "created_at": headers.get("created_at") if created is None else created,
        "task_id": headers.get("id"),
        "task": headers.get("task"),
    }


def parse_plain(raw: bytes) -> dict[str, Any] | None:
    return parse_plain_page([raw])[0]


def parse_celery(raw: bytes) -> dict[str, Any] | None:
    return parse_celery_page([raw])[0]


def detect_format(raw: bytes) -> str | None:
    """'celery' for an envelope, 'plain' for a JSON job, None for neither."""
    if parse_celery(raw) is not None:
        return "celery"
    if parse_plain(raw) is not None:
        return "plain"
    return None


PAGE_PARSERS: dict[str, Callable[[list[bytes]], list[dict[str, Any] | None]]] = {
    "plain": parse_plain_page,
    "celery": parse_celery_page,
}


def job_fields(job: dict[str, Any]) -> dict[str, Any]:
    """The job's identifying fields as text (None when absent)."""
    return {name: _text(job.get(name)) for name in JOB_FIELDS}


def _text(value: Any) -> str | None:
    """A field as text: a string as it is, any other value as its JSON (7 -> "7", ["a"] -> '["a"]')."""
    if value is None or value.__class__ is str:
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return repr(value)[:PREVIEW_BYTES]


# Tenants are counted by their id as text: a string as it is, an integer as its digits (1 and "1" are one
# tenant). null or missing is no tenant. Any other value - a list, an object, a boolean, a fraction - is a
# malformed tenant id: the job is counted under no tenant, and in tenants_malformed.
_BAD_TENANT = object()


def tenant_key(value: Any) -> Any:
    """The tenant a job is counted under: text or None, or _BAD_TENANT for a malformed id."""
    if value is None or value.__class__ is str:
        return value
    if value.__class__ is int:
        return str(value)
    return _BAD_TENANT


class TimestampCache:
    """created_at -> epoch seconds. Floods share timestamps, so cache them."""

    def __init__(self) -> None:
        self._cache: dict[Any, float | None] = {}

    def __call__(self, value: Any) -> float | None:
        try:
            return self._cache[value]
        except KeyError:
            pass
        except TypeError:      # unhashable (a list or dict in created_at)
            return None
        parsed = parse_timestamp(value)
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[value] = parsed
        return parsed


EPOCH_MILLISECONDS_FROM = 1e11   # 1e11 s is the year 5138; 1e11 ms is March 1973
_EARLIEST = datetime(1, 1, 1, tzinfo=timezone.utc).timestamp()
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()


def parse_timestamp(value: Any) -> float | None:
    """Epoch seconds of a created_at, or None when it is not one.

    ISO 8601 text (Z or an offset; naive means UTC), or an epoch number:
    seconds, or milliseconds from EPOCH_MILLISECONDS_FROM on. Booleans, lists,
    objects, other text and numbers outside the years 1-9999 are not timestamps.
    """
    kind = value.__class__
    if kind is int or kind is float:
        if not -1e16 < value < 1e16:   # also NaN; and no big integer reaches the division
            return None
        seconds = value / 1000 if abs(value) >= EPOCH_MILLISECONDS_FROM else value
        return float(seconds) if _EARLIEST <= seconds <= _LATEST else None
    if kind is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    except (ValueError, OverflowError):
        return None


def iso(epoch: float | None) -> str | None:
    """ISO 8601 in UTC; None for None and for a number no calendar date has."""
    try:
        return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def preview(raw: bytes) -> str:
    """A short, printable glimpse of an item (binary-safe)."""
    text = raw[:PREVIEW_BYTES].decode("utf-8", errors="backslashreplace")
    return text + ("..." if len(raw) > PREVIEW_BYTES else "")


# --------------------------------------------------------------- scanning --

_NOT_A_JOB = object()  # marks a malformed item's slot in per-page lists
_BAD_STAMP = object()  # a created_at that cannot be a timestamp: a boolean, a list, an object


def _stamp_key(stamp: Any) -> Any:
    kind = stamp.__class__
    if stamp is None or stamp is _NOT_A_JOB or kind is str or kind is int or kind is float:
        return stamp
    return _BAD_STAMP


class QueueStats:
    """Aggregates over every item, in bounded memory.

    Work is done per page with C-level primitives (list comprehensions,
    Counter, list.index) and per distinct value rather than per item: a flood
    of a million jobs has few distinct tenants and created_at stamps. Counter
    groups by equality, which merges values the rules tell apart (True, 1 and
    1.0 are equal keys; "1" and 1 are different ones) and refuses lists: a page
    holding such values is grouped again by canonical key, never counted twice.
    """

    def __init__(self, now: float, stale_seconds: float) -> None:
        self.now = now
        self.stale_seconds = stale_seconds
        self.items = 0
        self.tenants: Counter = Counter()
        self.tenants_pooled = 0
        self.tenants_malformed = 0
        self.ages = [0] * len(AGE_LABELS)
        self.age_unknown = 0
        self.age_unparsable = 0
        self.in_future = 0
        self.older_than = 0
        self.older_sample: list[dict[str, Any]] = []
        self.malformed = 0
        self.malformed_sample: list[dict[str, Any]] = []
        self.sample: list[dict[str, Any]] = []
        self.oldest: tuple[float, dict[str, Any]] | None = None
        self.newest: tuple[float, dict[str, Any]] | None = None
        self._timestamp = TimestampCache()

    _SUMS = ("items", "tenants_pooled", "tenants_malformed", "age_unknown", "age_unparsable", "in_future",
             "older_than", "malformed")
    _SAMPLES = ("older_sample", "malformed_sample", "sample")

    def state(self) -> dict[str, Any]:
        """Everything counted so far (not the timestamp cache), for merge() in another process."""
        return {name: value for name, value in vars(self).items() if not name.startswith("_")}

    def merge(self, later: dict[str, Any]) -> None:
        """Add the state() of a scan of the items that come after this one's, as if read here."""
        for name in self._SUMS:
            setattr(self, name, getattr(self, name) + later[name])
        self.ages = [mine + theirs for mine, theirs in zip(self.ages, later["ages"])]
        for name in self._SAMPLES:   # queue order: ours come first
            setattr(self, name, (getattr(self, name) + later[name])[:SAMPLE_SIZE])
        # Ties go to the earlier job, which is ours.
        if later["oldest"] and (self.oldest is None or later["oldest"][0] < self.oldest[0]):
            self.oldest = later["oldest"]
        if later["newest"] and (self.newest is None or later["newest"][0] > self.newest[0]):
            self.newest = later["newest"]
        self.tenants.update(later["tenants"])
        self._pool_tenants()

    def add_page(self, parse_page, key: str, start: int, items: list[bytes]) -> None:
        jobs = parse_page(items)
        self.items += len(items)
        if None in jobs:
            for offset, job in enumerate(jobs):
                if job is None:
                    self._malformed(key, start + offset, items[offset])
            good = [job for job in jobs if job is not None]
            # Aligned with `jobs` so list.index() gives a job's position in the page.
            stamps = [job.get("created_at") if job is not None else _NOT_A_JOB for job in jobs]
        else:
            good = jobs
            stamps = [job.get("created_at") for job in jobs]
        if len(self.sample) < SAMPLE_SIZE:
            for offset, job in enumerate(jobs):
                if job is not None and len(self.sample) < SAMPLE_SIZE:
                    self.sample.append(self._describe(job, key, start + offset, None))
        self._count_tenants([job.get("tenant_id") for job in good])
        self._count_ages(stamps, jobs, key, start)

    def _count_tenants(self, tenant_ids: list[Any]) -> None:
        try:
            distinct = Counter(tenant_ids)   # counts into a fresh Counter: an error leaves nothing half counted
        except TypeError:                    # a list or an object as tenant_id
            distinct = None
        if distinct is None or any(tenant is not None and tenant.__class__ is not str for tenant in distinct):
            distinct = Counter(map(tenant_key, tenant_ids))
            malformed = distinct.pop(_BAD_TENANT, 0)
            if malformed:
                self.tenants_malformed += malformed
                distinct[None] += malformed
        self.tenants.update(distinct)
        self._pool_tenants()

    def _pool_tenants(self) -> None:
        if len(self.tenants) > MAX_TENANTS:
            kept = Counter(dict(self.tenants.most_common(MAX_TENANTS)))
            self.tenants_pooled += sum(self.tenants.values()) - sum(kept.values())
            self.tenants = kept

    def _count_ages(self, stamps: list[Any], jobs: list[Any], key: str, start: int) -> None:
        try:
            distinct = Counter(stamps)
            mixed = True in distinct or False in distinct   # a boolean, or a number a boolean would merge with
        except TypeError:                                   # a list or an object as created_at
            mixed = True
        if mixed:
            stamps = [_stamp_key(stamp) for stamp in stamps]
            distinct = Counter(stamps)
        now = self.now
        stale_cut = now - self.stale_seconds
        stale = []
        oldest = newest = None   # the page's (epoch, stamp): distinct stamps come in order of first place
        for stamp, count in distinct.items():
            if stamp is _NOT_A_JOB:
                continue
            if stamp is None:
                self.age_unknown += count
                continue
            epoch = None if stamp is _BAD_STAMP else self._timestamp(stamp)
            if epoch is None:
                self.age_unparsable += count
                continue
            age = now - epoch
            if age < 0:
                self.in_future += count
            else:
                self.ages[bisect.bisect_right(AGE_EDGES, age) - 1] += count
            if epoch <= stale_cut:
                self.older_than += count
                stale.append(stamp)
            if oldest is None or epoch < oldest[0]:
                oldest = (epoch, stamp)
            if newest is None or epoch > newest[0]:
                newest = (epoch, stamp)
        # Ties go to the earlier job: the first stamp reaching an epoch holds its first place.
        if oldest and (self.oldest is None or oldest[0] < self.oldest[0]):
            offset = stamps.index(oldest[1])
            self.oldest = (oldest[0], self._describe(jobs[offset], key, start + offset, oldest[0]))
        if newest and (self.newest is None or newest[0] > self.newest[0]):
            offset = stamps.index(newest[1])
            self.newest = (newest[0], self._describe(jobs[offset], key, start + offset, newest[0]))
        if stale and len(self.older_sample) < SAMPLE_SIZE:
            self._sample_older(stamps, stale, jobs, key, start)

    def _sample_older(self, stamps: list[Any], stale: list[Any], jobs: list[Any], key: str, start: int) -> None:
        """The page's first stale jobs, in queue order, until the sample is full."""
        wanted = SAMPLE_SIZE - len(self.older_sample)
        offsets = []
        for stamp in stale:   # each stale stamp's first `wanted` places: the page's first `wanted` are among them
            found = [stamps.index(stamp)]
            while len(found) < wanted:
                try:
                    found.append(stamps.index(stamp, found[-1] + 1))
                except ValueError:
                    break
            offsets += found
        for offset in sorted(offsets)[:wanted]:
            epoch = self._timestamp(stamps[offset])
            self.older_sample.append(self._describe(jobs[offset], key, start + offset, epoch))

    def _malformed(self, key: str, index: int, raw: bytes) -> None:
        self.malformed += 1
        if len(self.malformed_sample) < SAMPLE_SIZE:
            self.malformed_sample.append({"key": display_key(key), "index": index, "bytes": len(raw),
                                          "preview": preview(raw)})

    def _describe(self, job: dict[str, Any], key: str, index: int, epoch: float | None) -> dict[str, Any]:
        described = job_fields(job)
        described["age_seconds"] = None if epoch is None else round(self.now - epoch, 3)
        described["position"] = {"key": display_key(key), "index": index}
        return described

    def tenant_table(self, limit: int = 20) -> list[dict[str, Any]]:
        """Tenants by jobs, most first; each one's share of the jobs read (malformed items aside)."""
        counted = self.items - self.malformed
        ranked = sorted(self.tenants.items(), key=lambda pair: (-pair[1], pair[0] is None, pair[0] or ""))[:limit]
        return [{"tenant_id": tenant, "jobs": jobs, "share": round(jobs / counted, 4) if counted else 0.0}
                for tenant, jobs in ranked]


def page_size_for(previous: list[bytes], current: int, target: int = PAGE_TARGET_BYTES) -> int:
    """Items for the next LRANGE so that its reply is about PAGE_TARGET_BYTES,
    judged by the items just read: 200-byte jobs get big pages (few round
    trips), 1 MB items small ones (bounded memory, each command short). The
    size at most doubles from one page to the next, so a run of small items
    followed by large ones costs one page of moderate size, not a huge one."""
    if not previous:
        return current
    average = max(1, sum(map(len, previous)) // len(previous))
    return max(PAGE_MIN, min(PAGE_MAX, 2 * current, target // average))


def first_page_size(ends: list[bytes | None], target: int = PAGE_TARGET_BYTES) -> int:
    """The first LRANGE's size, from items already read (a list's two ends): the larger one decides."""
    largest = max((len(item) for item in ends if item), default=0)
    return max(PAGE_MIN, min(PAGE_MAX, target // max(1, largest)))


class Segment(NamedTuple):
    """Items [start, stop) of the list `key`, read in pages beginning with `page` items."""

    key: str
    start: int
    stop: int
    page: int


def scan_range(client, segment: Segment, parse_page, stats: QueueStats, alive: Callable[[], bool] | None = None) -> None:
    """LRANGE through the segment page by page (never one LRANGE 0 -1); `alive` is asked before each page."""
    key, start, stop, page = segment
    while start < stop:
        if alive is not None and not alive():
            raise RuntimeError("the process that asked for this scan is gone")
        items = client.lrange(key, start, min(stop, start + page) - 1)
        if not items:
            break
        stats.add_page(parse_page, key, start, items)
        start += len(items)
        page = page_size_for(items, page)


# ----------------------------------------------------- two processes --
#
# A Celery envelope costs about 13 us of CPU to read (two JSON parses and a
# base64 decode), so a million of them keep one core busy for 13 s while the
# machine's other cores idle. A large queue is therefore read by two
# processes, each its own half, each with its own connection; the second
# sends its counts back through a pipe and they are merged in queue order.
# Anything going wrong in the second process costs time, never counts: its
# half is then read again by the first.

PARALLEL_FROM = 20000  # items: below this, forking costs more than it saves


def split_segments(segments: list[Segment], share: int) -> tuple[list[Segment], list[Segment]]:
    """The first `share` items of the segments (in scan order), and the rest."""
    first: list[Segment] = []
    rest: list[Segment] = []
    left = share
    for key, start, stop, page in segments:
        take = max(0, min(stop - start, left))
        if take:
            first.append(Segment(key, start, start + take, page))
        if start + take < stop:
            rest.append(Segment(key, start + take, stop, page))
        left -= take
    return first, rest


def can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1


def scan_segments(client, segments: list[Segment], parse_page, stats: QueueStats, processes: int = 2) -> int:
    """Read every segment into `stats`, in two processes when it pays; returns how many read."""
    total = sum(stop - start for _key, start, stop, _page in segments)
    if processes < 2 or total < PARALLEL_FROM or not can_fork():
        for segment in segments:
            scan_range(client, segment, parse_page, stats)
        return 1
    mine, theirs = split_segments(segments, total // 2)
    later = _in_second_process(client, theirs, parse_page, stats.now, stats.stale_seconds)
    try:
        for segment in mine:
            scan_range(client, segment, parse_page, stats)
    except BaseException:
        later.cancel()
        raise
    state = later.result()
    if state is None:   # the second process failed: read its half here, nothing uncounted
        for segment in theirs:
            scan_range(client, segment, parse_page, stats)
        return 1
    stats.merge(state)
    return 2


class _Child:
    def __init__(self, pid: int, pipe: int) -> None:
        self.pid, self.pipe = pid, pipe

    def cancel(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        self._reap()

    def result(self) -> dict[str, Any] | None:
        with os.fdopen(self.pipe, "rb") as pipe:
            data = pipe.read()
        self.pipe = -1
        self._reap()
        try:
            status, state = pickle.loads(data)
        except Exception:  # pylint: disable=broad-except  # died before answering: the caller reads its half
            return None
        return state if status == "ok" else None

    def _reap(self) -> None:
        if self.pipe >= 0:
            os.close(self.pipe)
            self.pipe = -1
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _in_second_process(client, segments: list[Segment], parse_page, now: float, stale_seconds: float) -> _Child:
    """Fork a process that reads `segments` into fresh QueueStats and pipes back their state.

    The client's connection pool notices the new pid and opens its own
    connection. The child writes nothing to stdout (the module's answer),
    stops when its parent is gone, and leaves with os._exit: no exit
    handler of the parent's runs twice.
    """
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return _Child(pid, read_end)
    try:  # the child
        os.close(read_end)
        try:
            stats = QueueStats(now, stale_seconds)
            for segment in segments:
                scan_range(client, segment, parse_page, stats, alive=lambda: os.getppid() == parent)
            payload = pickle.dumps(("ok", stats.state()))
        except BaseException:  # pylint: disable=broad-except  # the parent reads this half itself
            payload = pickle.dumps(("failed", None))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
    finally:
        os._exit(0)


def snapshot(client, keys: list[str]) -> list[tuple[int, bytes | None, bytes | None]]:
    """Length and both ends of each list, to tell whether it moved while read."""
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
            pipe.lindex(key, 0)
            pipe.lindex(key, -1)
        replies = pipe.execute()
    return [tuple(replies[i:i + 3]) for i in range(0, len(replies), 3)]


def key_types(client, keys: list[str]) -> dict[str, str]:
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        return {key: (kind.decode() if isinstance(kind, bytes) else kind) for key, kind in zip(keys, pipe.execute())}


def held_by_sweep(client, keys: list[str]) -> dict[str, int]:
    """Jobs a quarantine sweep has set aside for a moment (or a dead run left aside), per queue list.

    They are still queued - the sweep puts them back in place - so the depth counts them."""
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(_sweep.parked_key(key))
        replies = pipe.execute(raise_on_error=False)
    return {key: count for key, count in zip(keys, replies) if isinstance(count, int) and count}


def first_item(client, keys: list[str]) -> bytes | None:
    for key in keys:
        item = client.lindex(key, 0)
        if item is not None:
            return item
    return None


def unacked_info(client, hash_key: str, index_key: str, visibility_timeout: float, now: float) -> dict[str, Any]:
    """Delivered-but-unacknowledged Celery messages and those overdue for redelivery."""
    types = key_types(client, [hash_key, index_key])
    if types[hash_key] not in ("hash", "none") or types[index_key] not in ("zset", "none"):
        return {"count": None, "error": f"{hash_key}/{index_key} are not a hash/sorted set"}
    cutoff = now - visibility_timeout
    count = client.hlen(hash_key)
    stale = client.zcount(index_key, "-inf", cutoff)
    tags = client.zrangebyscore(index_key, "-inf", cutoff, start=0, num=SAMPLE_SIZE, withscores=True)
    sample = []
    if tags:
        bodies = client.hmget(hash_key, [tag for tag, _score in tags])
        for (tag, score), body in zip(tags, bodies):
            job = _unacked_job(body)
            age = now - score
            sample.append({"delivery_tag": tag.decode(errors="replace"), "delivered_at": iso(score),
                           "age_seconds": round(age, 3) if math.isfinite(age) else None,
                           **(job_fields(job) if job else {})})
    return {"count": count, "stale_count": stale, "visibility_timeout": visibility_timeout, "stale_sample": sample}


def _unacked_job(body: bytes | None) -> dict[str, Any] | None:
    # kombu stores [message, exchange, routing_key] for each unacked delivery.
    delivery = _loads_or_none(body) if body is not None else None
    if delivery.__class__ is not list or not delivery:
        return None
    return _envelope_job(delivery[0])


def read_queue(client, queue: str, fmt: str, stale_seconds: float, unacked: dict[str, Any] | None = None,
               now: float | None = None, processes: int = 2) -> dict[str, Any]:
    """Everything the runbook asks of the queue, from read-only commands."""
    keys = priority_keys(queue)
    types = key_types(client, keys)
    wrong = {display_key(key): kind for key, kind in types.items() if kind not in ("list", "none")}
    if wrong:
        raise TypeError(", ".join(f"{key} is a {kind}, not a list" for key, kind in wrong.items()))
    live = [key for key in keys if types[key] == "list"]
    started = time.monotonic()
    before = snapshot(client, live)
    depths = {key: state[0] for key, state in zip(live, before)}
    held = held_by_sweep(client, keys)
    if fmt == "auto":
        fmt = detect_format(first_item(client, live) or b"") or "plain"
        detected = True
    else:
        detected = False
    stats = QueueStats(now if now is not None else time.time(), stale_seconds)
    segments = [Segment(key, 0, depths[key], first_page_size([head, tail])) for key, (_depth, head, tail)
                in zip(live, before)]
    processes = scan_segments(client, segments, PAGE_PARSERS[fmt], stats, processes)
    after = snapshot(client, live)
    result = {
        "queue": queue,
        "format": fmt,
        "format_detected": detected,
        "keys": {display_key(key): depths.get(key, 0) for key in keys},
        "depth": sum(depths.values()) + sum(held.values()),
        "held_by_sweep": {display_key(key): count for key, count in held.items()},
        "scanned": stats.items,
        "consistent": before == after,
        "scan_seconds": round(time.monotonic() - started, 4),
        "scan_processes": processes,
        "scanned_at": iso(stats.now),
        "oldest": stats.oldest[1] if stats.oldest else None,
        "newest": stats.newest[1] if stats.newest else None,
        "age_distribution": dict(zip(AGE_LABELS, stats.ages)),
        "age_unknown": stats.age_unknown,
        "created_at_unparsable": stats.age_unparsable,
        "created_at_in_future": stats.in_future,
        "older_than": {"seconds": stale_seconds, "count": stats.older_than, "sample": stats.older_sample},
        "tenants": stats.tenant_table(),
        "tenants_distinct": len(stats.tenants),
        "tenants_pooled": stats.tenants_pooled,
        "tenants_malformed": stats.tenants_malformed,
        "malformed": {"count": stats.malformed, "sample": stats.malformed_sample},
        "sample": stats.sample,
        "unacked": None,
    }
    if unacked is not None:
        result["unacked"] = unacked_info(client, unacked["hash"], unacked["index"], unacked["visibility_timeout"],
                                         stats.now)
    return result


# --------------------------------------------------------------- findings --

def queue_findings(result: dict[str, Any], thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """The high_queue_depth runbook's judgement of what read_queue saw."""
    limits = {**DEFAULT_THRESHOLDS, **{k: v for k, v in thresholds.items() if v is not None}}
    found = []
    depth = result["depth"]
    evidence = {"queue": result["queue"], "depth": depth, "keys": result["keys"]}
    if depth > limits["depth_high"]:
        page = depth > limits["depth_page"]
        found.append(finding(
            "queue_depth_high", "critical" if page else "high",
            f"{depth} jobs queued (> {limits['depth_high']}: QueueDepthHigh territory"
            + (f"; > {limits['depth_page']}: page on-call)" if page else ")"),
            {**evidence, "page": page},
            "Scale workers (up --scale worker=4 / scale deployment/celery-worker --replicas=4) and confirm "
            "depth falls within 30 s; follow the QueueDepthHigh procedure within 1 minute.",
        ))
    elif depth >= limits["depth_elevated"]:
        capacity = depth > limits["depth_capacity"]
        found.append(finding(
            "queue_depth_elevated", "medium" if capacity else "low",
            f"{depth} jobs queued: elevated but below the alert ({limits['depth_elevated']}-{limits['depth_high']})",
            evidence,
            "Check throughput and worker count; if this is seen every day, open capacity planning."
            if capacity else "Watch the trend; scale workers if it keeps rising.",
        ))
    oldest = result.get("oldest")
    if oldest and oldest.get("age_seconds") is not None and oldest["age_seconds"] > limits["stale_seconds"]:
        found.append(finding(
            "queue_oldest_job_stale", "high",
            f"oldest job {oldest.get('ticket_id')} (tenant {oldest.get('tenant_id')}) has waited "
            f"{int(oldest['age_seconds'] // 60)} min (> {int(limits['stale_seconds'] // 60)} min): page on-call",
            {"oldest": oldest, "older_than_threshold": result["older_than"]["count"]},
            f"Find ticket {oldest.get('ticket_id')} in the worker logs; if it is stuck, quarantine it "
            "(moved to the quarantine list, never deleted) and restart the workers.",
        ))
    counted = depth - result["malformed"]["count"]
    # Jobs without a (well-formed) tenant id are no tenant's flood.
    top = next((row for row in result["tenants"] if row["tenant_id"] is not None), None)
    if top and counted >= limits["flood_min_depth"]:
        if top["share"] >= limits["flood_share"]:
            found.append(finding(
                "queue_tenant_flood", "medium",
                f"tenant {top['tenant_id']} holds {top['jobs']} of {counted} jobs ({top['share']:.0%})",
                {"tenant_id": top["tenant_id"], "jobs": top["jobs"], "share": top["share"],
                 "tenants": result["tenants"][:5]},
                f"Throttle or pause intake for tenant {top['tenant_id']}; escalate to engineering for a rate limit.",
            ))
    if result["malformed"]["count"]:
        found.append(finding(
            "queue_malformed_items", "low",
            f"{result['malformed']['count']} queued items are not {result['format']} jobs",
            {"malformed": result["malformed"]},
            "Inspect the samples; quarantine the items so workers do not choke on them.",
        ))
    if depth and result["format"] == "celery" and result["age_unknown"] == result["scanned"] - result["malformed"]["count"]:
        found.append(finding(
            "queue_age_unknown", "info",
            "Celery messages carry no created_at, so job ages are unknown (not guessed)",
            {"scanned": result["scanned"]},
            "Have producers add created_at to the task kwargs or headers.",
        ))
    unacked = result.get("unacked") or {}
    if unacked.get("stale_count"):
        found.append(finding(
            "queue_unacked_stale", "medium",
            f"{unacked['stale_count']} delivered messages are unacknowledged beyond the "
            f"{int(unacked['visibility_timeout'])} s visibility timeout (their worker likely died)",
            {"unacked": unacked},
            "They will be redelivered; check worker_failures for the worker that took them.",
            runbook="worker_failures",
        ))
    return found
