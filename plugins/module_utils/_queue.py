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
import re
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Callable

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

try:  # orjson parses a page of jobs about four times faster; json is the fallback
    from orjson import JSONDecodeError as _FastDecodeError, loads as _loads
except ImportError:
    _FastDecodeError = ValueError
    _loads = json.loads

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
PAGE_TARGET_BYTES = 256 << 10  # about 256 KiB per LRANGE reply: each command stays well under 5 ms
PAGE_MIN, PAGE_MAX = 10, 4000


def priority_keys(queue: str) -> list[str]:
    """The base list first, then the priority lists kombu uses."""
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def display_key(key: str) -> str:
    """Priority list names contain control characters; show them readably."""
    return key.replace(PRIORITY_SEPARATOR, "\\x06\\x16")


# ---------------------------------------------------------------- parsing --
#
# Parsers work a page at a time: one json.loads over "[item,item,...]" runs in
# C, where a loads per item would spend most of its time in Python. A page
# that does not parse as a whole (garbage, truncated JSON) falls back to one
# item at a time, so a bad item costs its page speed, never correctness.
#
# A parsed job is a dict with tenant_id, ticket_id, created_at (plain jobs are
# already such dicts; Celery envelopes are reduced to one) or None.

_NOT_A_JOB = object()  # marks a malformed item's slot in per-page lists
JOB_FIELDS = ("tenant_id", "ticket_id", "created_at", "task_id", "task")


def _loads_page(items: list[bytes]) -> list[Any]:
    try:
        docs = _loads(b"[" + b",".join(items) + b"]")
        if len(docs) == len(items):
            return docs
    except (ValueError, UnicodeDecodeError, _FastDecodeError):
        pass
    return [_loads_or_none(item) for item in items]


def _loads_or_none(item: bytes) -> Any:
    try:
        return _loads(item)
    except (ValueError, UnicodeDecodeError, _FastDecodeError):
        return None


def parse_plain_page(items: list[bytes]) -> list[dict[str, Any] | None]:
    return [doc if doc.__class__ is dict else None for doc in _loads_page(items)]


def parse_celery_page(items: list[bytes]) -> list[dict[str, Any] | None]:
    """Celery envelopes to jobs.

    A full parse of a kombu envelope (about 900 bytes, two dozen keys, two
    repr strings) costs ~10 us; the runbook needs only the base64 body and
    the task id and name. For a page of envelopes as kombu writes them, those
    are cut out of the whole page at once (one search per field, in C); a page
    where the cut does not line up item for item, and any item that is not a
    plain envelope, gets the full parse.
    """
    cut = _cut_page(items)
    if cut is None:
        cut = [_cut_envelope(raw) for raw in items]
    decoded = iter(_loads_page([item[0] for item in cut if item is not None]))
    jobs: list[dict[str, Any] | None] = []
    for raw, item in zip(items, cut):
        if item is None:
            jobs.append(_celery_job_slow(raw))
            continue
        job = _celery_job({"headers": {"id": item[1], "task": item[2]}}, next(decoded))
        jobs.append(job if job is not None else _celery_job_slow(raw))
    return jobs


_PAGE_BODY = re.compile(rb'"body": "([A-Za-z0-9+/=]*)"')
_PAGE_ID = re.compile(rb'"id": "([^"\\]*)"')
_PAGE_TASK = re.compile(rb'"task": "([^"\\]*)"')
_ITEM_SEPARATOR = b"\n\x00\n"  # JSON text cannot contain it raw, so matches never straddle items


def _cut_page(items: list[bytes]) -> list[tuple[bytes, str | None, str | None]] | None:
    """Every item's (body, id, task) from one pass over the page, or None when
    the page is not uniformly plain kombu envelopes (then items are cut one by one)."""
    blob = _ITEM_SEPARATOR.join(items)
    count = len(items)
    if (blob.count(b'"body_encoding": "base64"') != count or b'"created_at"' in blob
            or _ITEM_SEPARATOR in b"".join(items)):
        return None
    bodies, ids, tasks = _PAGE_BODY.findall(blob), _PAGE_ID.findall(blob), _PAGE_TASK.findall(blob)
    if not len(bodies) == len(ids) == len(tasks) == count:
        return None
    # Equal counts on a page where each item holds at most one of each means one per item, in order.
    if any(raw.count(b'"body": "') != 1 or raw.count(b'"id": "') != 1 for raw in items):
        return None
    try:
        decoded = [binascii.a2b_base64(body) for body in bodies]
    except binascii.Error:
        return None
    return [(body, task_id.decode(), task.decode()) for body, task_id, task in zip(decoded, ids, tasks)]


def _string_after(raw: bytes, marker: bytes) -> bytes | None:
    """The JSON string value that follows `marker` (a key and its opening quote)."""
    start = raw.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = raw.find(b'"', start)
    value = raw[start:end]
    return None if end < 0 or b"\\" in value else value


def _cut_envelope(raw: bytes) -> tuple[bytes, str | None, str | None] | None:
    """(decoded body, task id, task name) when the item is a kombu envelope as
    kombu writes it; None sends the item to the full parse. bytes.find, not
    regular expressions: it is several times faster on kilobyte items."""
    if b'"body_encoding": "base64"' not in raw or b'"created_at"' in raw:
        return None  # not base64, or a created_at header: the full parse decides
    body = _string_after(raw, b'"body": "')
    if body is None:
        return None
    try:
        decoded = binascii.a2b_base64(body)
    except binascii.Error:
        return None
    task_id, task = _string_after(raw, b'"id": "'), _string_after(raw, b'"task": "')
    return decoded, task_id.decode() if task_id else None, task.decode() if task else None


def _celery_job_slow(raw: bytes) -> dict[str, Any] | None:
    envelope = _loads_or_none(raw)
    body = _envelope_body(envelope)
    if body is None:
        return None
    payload = _loads_or_none(body) if body.__class__ is bytes else body
    return _celery_job(envelope, payload)


def _envelope_body(envelope: Any) -> Any:
    """The envelope's body as JSON bytes (or an already-decoded value); None if not an envelope."""
    if envelope.__class__ is not dict or "body" not in envelope:
        return None
    body = envelope["body"]
    properties = envelope.get("properties")
    if properties.__class__ is dict and properties.get("body_encoding") == "base64":
        try:
            return base64.b64decode(body, validate=True)
        except (ValueError, TypeError, binascii.Error):
            return None
    if isinstance(body, str):
        return body.encode()
    return body


def _celery_job(envelope: dict[str, Any], payload: Any) -> dict[str, Any] | None:
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
    return {
        "tenant_id": fields.get("tenant_id"),
        "ticket_id": fields.get("ticket_id"),
        "created_at": fields.get("created_at") or headers.get("created_at"),
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
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


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


def parse_timestamp(value: Any) -> float | None:
    """ISO 8601 (with Z or offset; naive means UTC) or epoch seconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def preview(raw: bytes) -> str:
    """A short, printable glimpse of an item (binary-safe)."""
    text = raw[:PREVIEW_BYTES].decode("utf-8", errors="backslashreplace")
    return text + ("..." if len(raw) > PREVIEW_BYTES else "")


# --------------------------------------------------------------- scanning --

class QueueStats:
    """Aggregates over every item, in bounded memory.

    Work is done per page with C-level primitives (list comprehensions,
    Counter, list.index) and per distinct value rather than per item: a flood
    of a million jobs has few distinct tenants and created_at stamps.
    """

    def __init__(self, now: float, stale_seconds: float) -> None:
        self.now = now
        self.stale_seconds = stale_seconds
        self.items = 0
        self.tenants: Counter = Counter()
        self.tenants_pooled = 0
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

    def add_page(self, parse_page, key: str, start: int, items: list[bytes]) -> None:
        jobs = parse_page(items)
        self.items += len(items)
        if None in jobs:
            for offset, job in enumerate(jobs):
                if job is None:
                    self._malformed(key, start + offset, items[offset])
        good = [job for job in jobs if job is not None]
        if len(self.sample) < SAMPLE_SIZE:
            for offset, job in enumerate(jobs):
                if job is not None and len(self.sample) < SAMPLE_SIZE:
                    self.sample.append(self._describe(job, key, start + offset, None))
        self._count_tenants([job.get("tenant_id") for job in good])
        # Aligned with `jobs` so list.index() gives a job's position in the page.
        stamps = [job.get("created_at") if job is not None else _NOT_A_JOB for job in jobs]
        self._count_ages(stamps, jobs, key, start)

    def _count_tenants(self, tenant_ids: list[Any]) -> None:
        try:
            self.tenants.update(tenant_ids)
        except TypeError:  # a list or dict as tenant_id: count its text
            self.tenants.update(_text(tenant) for tenant in tenant_ids)
        if len(self.tenants) > MAX_TENANTS:
            kept = Counter(dict(self.tenants.most_common(MAX_TENANTS)))
            self.tenants_pooled += sum(self.tenants.values()) - sum(kept.values())
            self.tenants = kept

    def _count_ages(self, stamps: list[Any], jobs: list[Any], key: str, start: int) -> None:
        try:
            distinct = Counter(stamps)
        except TypeError:
            stamps = [stamp if stamp is None or stamp is _NOT_A_JOB else _text(stamp) for stamp in stamps]
            distinct = Counter(stamps)
        now = self.now
        stale_cut = now - self.stale_seconds
        for stamp, count in distinct.items():
            if stamp is _NOT_A_JOB:
                continue
            if stamp is None:
                self.age_unknown += count
                continue
            epoch = self._timestamp(stamp)
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
                if len(self.older_sample) < SAMPLE_SIZE:
                    self._sample_older(stamps, stamp, jobs, key, start, epoch)
            if self.oldest is None or epoch < self.oldest[0]:
                offset = stamps.index(stamp)
                self.oldest = (epoch, self._describe(jobs[offset], key, start + offset, epoch))
            if self.newest is None or epoch > self.newest[0]:
                offset = stamps.index(stamp)
                self.newest = (epoch, self._describe(jobs[offset], key, start + offset, epoch))

    def _sample_older(self, stamps, stamp, jobs, key, start, epoch) -> None:
        offset = -1
        while len(self.older_sample) < SAMPLE_SIZE:
            try:
                offset = stamps.index(stamp, offset + 1)
            except ValueError:
                return
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
        counted = self.items - self.malformed
        ranked = sorted(self.tenants.items(), key=lambda pair: (-pair[1], pair[0] or ""))[:limit]
        return [{"tenant_id": tenant, "jobs": jobs, "share": round(jobs / counted, 4) if counted else 0.0}
                for tenant, jobs in ranked]


def page_size_for(previous: list[bytes], current: int) -> int:
    """Adapt the next LRANGE to about PAGE_TARGET_BYTES: 200-byte jobs get big
    pages (few round trips), 1 MB items get small ones (bounded memory)."""
    if not previous:
        return current
    average = max(1, sum(map(len, previous)) // len(previous))
    return max(PAGE_MIN, min(PAGE_MAX, PAGE_TARGET_BYTES // average))


def scan_list(client, key: str, depth: int, parse_page, stats: QueueStats, page: int = 1000) -> None:
    """LRANGE through `key` page by page; never one LRANGE 0 -1."""
    start = 0
    while start < depth:
        items = client.lrange(key, start, start + page - 1)
        if not items:
            break
        stats.add_page(parse_page, key, start, items)
        start += len(items)
        page = page_size_for(items, page)


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
            sample.append({"delivery_tag": tag.decode(errors="replace"), "delivered_at": iso(score),
                           "age_seconds": round(now - score, 3), **(job_fields(job) if job else {})})
    return {"count": count, "stale_count": stale, "visibility_timeout": visibility_timeout, "stale_sample": sample}


def _unacked_job(body: bytes | None) -> dict[str, Any] | None:
    # kombu stores [message, exchange, routing_key] for each unacked delivery.
    if body is None:
        return None
    try:
        message = json.loads(body)[0]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return parse_celery(json.dumps(message).encode())


def read_queue(client, queue: str, fmt: str, stale_seconds: float, unacked: dict[str, Any] | None = None,
               now: float | None = None) -> dict[str, Any]:
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
    if fmt == "auto":
        fmt = detect_format(first_item(client, live) or b"") or "plain"
        detected = True
    else:
        detected = False
    stats = QueueStats(now if now is not None else time.time(), stale_seconds)
    for key in live:
        scan_list(client, key, depths[key], PAGE_PARSERS[fmt], stats)
    after = snapshot(client, live)
    result = {
        "queue": queue,
        "format": fmt,
        "format_detected": detected,
        "keys": {display_key(key): depths.get(key, 0) for key in keys},
        "depth": sum(depths.values()),
        "scanned": stats.items,
        "consistent": before == after,
        "scan_seconds": round(time.monotonic() - started, 4),
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
    if result["tenants"] and counted >= limits["flood_min_depth"]:
        top = result["tenants"][0]
        if top["share"] >= limits["flood_share"] and result["tenants_distinct"] > 0:
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
