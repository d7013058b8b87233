"""The queue's page-at-once counting against a slow reading, item by item.

`QueueStats.add_page` counts a page with C-level shortcuts (one Counter per
page, work per distinct tenant and timestamp). Whatever the items hold, its
counts must be exactly those of the obviously correct reading below, which
looks at one item at a time and restates the rules `_queue` documents:

- an item is a job when it is JSON (read alone) whose value is an object - for
  Celery, an envelope whose body reads as a job; anything else is malformed;
- a tenant id is text: a string as it is, an integer as its decimal digits
  (so 1 and "1" are one tenant); null or missing is no tenant; any other value
  (list, object, boolean, fraction) is a malformed tenant id, counted under
  no tenant and in `tenants_malformed`;
- created_at is ISO 8601 (naive means UTC) or an epoch number, in seconds,
  or in milliseconds from 1e11 on; null or missing is an unknown age, anything
  else is unparsable.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st
from orjson import loads

from ansible_collections.aiagents.runbooks.plugins.module_utils import _queue

NOW = 1795773600.0  # 2026-11-27T10:00:00Z
STALE = 1800.0
KEY = "enhancement_queue"
EDGES = (0, 60, 300, 900, 1800, 3600, 21600)
EARLIEST, LATEST = -62135596800, 253402300799  # 0001-01-01 and 9999-12-31T23:59:59, UTC


# ------------------------------------------------------------ the reference --

def loads_or_none(raw):
    try:
        return loads(raw)
    except ValueError:
        return None


def plain_job(raw: bytes):
    doc = loads_or_none(raw)
    return doc if isinstance(doc, dict) else None


def celery_job(raw: bytes):
    envelope = loads_or_none(raw)
    if not isinstance(envelope, dict) or "body" not in envelope:
        return None
    body, properties, headers = envelope["body"], envelope.get("properties"), envelope.get("headers")
    if isinstance(properties, dict) and properties.get("body_encoding") == "base64":
        try:
            payload = loads(base64.b64decode(body, validate=True))
        except (ValueError, TypeError):
            return None
    elif isinstance(body, str):
        payload = loads_or_none(body)
    else:
        payload = body
    headers = headers if isinstance(headers, dict) else {}
    if isinstance(payload, list) and len(payload) >= 2:
        args, kwargs = payload[0], payload[1]
    elif isinstance(payload, dict):
        args, kwargs = payload.get("args") or [], payload.get("kwargs") or {}
        headers = {**payload, **headers}
    else:
        return None
    fields = kwargs if isinstance(kwargs, dict) else {}
    if isinstance(args, list) and args and isinstance(args[0], dict):
        fields = {**args[0], **fields}
    created = fields.get("created_at")
    if created is None:
        created = headers.get("created_at")
    return {"tenant_id": fields.get("tenant_id"), "ticket_id": fields.get("ticket_id"), "created_at": created,
            "task_id": headers.get("id"), "task": headers.get("task")}


READERS = {"plain": plain_job, "celery": celery_job}


def tenant_of(value):
    """(tenant, malformed)."""
    if value is None:
        return None, False
    if isinstance(value, str):
        return value, False
    if isinstance(value, int) and not isinstance(value, bool):  # JSON true is not 1
        return str(value), False
    return None, True


def epoch_of(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) >= 1e11 else value
        return float(seconds) if EARLIEST <= seconds <= LATEST else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    return None


class Reference:
    def __init__(self):
        self.items = self.malformed = self.tenants_malformed = 0
        self.tenants = Counter()
        self.ages = [0] * len(EDGES)
        self.unknown = self.unparsable = self.in_future = self.older = 0
        self.oldest = self.newest = None
        self.older_positions, self.sample_positions, self.malformed_positions = [], [], []

    def read(self, fmt, items):
        for index, raw in enumerate(items):
            self.items += 1
            job = READERS[fmt](raw)
            if job is None:
                self.malformed += 1
                self.malformed_positions.append(index)
                continue
            self.sample_positions.append(index)
            tenant, malformed = tenant_of(job.get("tenant_id"))
            self.tenants[tenant] += 1
            self.tenants_malformed += malformed
            stamp = job.get("created_at")
            if stamp is None:
                self.unknown += 1
                continue
            epoch = epoch_of(stamp)
            if epoch is None:
                self.unparsable += 1
                continue
            age = NOW - epoch
            if age < 0:
                self.in_future += 1
            else:
                self.ages[max(band for band, edge in enumerate(EDGES) if edge <= age)] += 1
            if epoch <= NOW - STALE:
                self.older += 1
                self.older_positions.append(index)
            if self.oldest is None or epoch < self.oldest[0]:
                self.oldest = (epoch, index)
            if self.newest is None or epoch > self.newest[0]:
                self.newest = (epoch, index)


# ----------------------------------------------------------- the generators --

def iso(epoch: float, form: int) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    if form == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 1:
        return moment.isoformat()                                         # +00:00, microseconds
    if form == 2:
        return moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    return moment.replace(tzinfo=None).isoformat(sep=" ")                   # naive: UTC


AGES = [-3600, -0.5, 0, 30, 59.5, 60, 299, 300, 1799, 1800, 1800.5, 3599, 3600, 7200, 21600, 90000, 4e7]
TIMESTAMPS = st.one_of(
    st.builds(lambda age, form: iso(NOW - age, form), st.sampled_from(AGES), st.integers(0, 3)),
    st.builds(lambda age: int(NOW - age), st.sampled_from(AGES)),                 # epoch seconds
    st.builds(lambda age: NOW - age, st.sampled_from(AGES)),                      # fractional seconds
    st.builds(lambda age: int((NOW - age) * 1000), st.sampled_from(AGES)),        # epoch milliseconds
    st.sampled_from(["yesterday", "", " ", "2026-13-45T00:00:00Z", "2026-11-27T24:00:00", "1795773600", "NaN",
                     True, False, 0, 1, 1.0, 0.0, -1, 99999999999, 10**15, 1e300, -1e300,
                     [], [NOW], {"at": NOW}, "2026-11-27T10:00:00ZZ"]),
)
TENANTS = st.one_of(
    st.sampled_from(["acme-corp", "globex", "{6F9619FF-8B86-D011-B42D-00C04FC964FF}", "{GUID}", "1", "0", "",
                     "Ωmega", "a\"b", "a,b}{"]),
    st.sampled_from([1, 0, -7, 2**63, True, False, 1.0, 1.5, -0.0, ["acme-corp"], ["a", "b"], [], {"id": "acme-corp"},
                     {}]),
)
MISSING = object()


@st.composite
def fields(draw) -> dict:
    out = {}
    tenant = draw(st.one_of(TENANTS, st.just(MISSING), st.none()))
    if tenant is not MISSING:
        out["tenant_id"] = tenant
    stamp = draw(st.one_of(TIMESTAMPS, st.just(MISSING), st.none()))
    if stamp is not MISSING:
        out["created_at"] = stamp
    if draw(st.booleans()):
        out["ticket_id"] = draw(st.sampled_from(["TICKET-1", "T-{x}", 7, None]))
    keys = list(out)
    order = draw(st.permutations(keys))
    return {key: out[key] for key in order}


def dumps(value, draw) -> bytes:
    compact = draw(st.booleans())
    return json.dumps(value, separators=(",", ":") if compact else None, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def plain_items(draw) -> bytes:
    job = draw(fields())
    if draw(st.booleans()):
        job["note"] = draw(st.sampled_from(["x" * 40, "}{,][", "ä€😀"]))
    return dumps(job, draw)


@st.composite
def celery_items(draw) -> bytes:
    job = draw(fields())
    shape = draw(st.sampled_from(["kwargs", "kwargs", "args", "header_created", "utf8_body", "decoded_body",
                                  "protocol1", "bad_base64", "not_json_body", "scalar_body", "odd_headers"]))
    headers = {"lang": "py", "task": "aiagents.enhance_ticket", "id": draw(st.sampled_from(["task-1", "task-2", 5])),
               "retries": 0, "timelimit": [None, None], "kwargsrepr": repr(job)}
    properties = {"correlation_id": "c-1", "body_encoding": "base64", "delivery_tag": "tag-1",
                  "delivery_info": {"exchange": "", "routing_key": KEY}, "priority": 0}
    payload = [[], job, {"callbacks": None, "errbacks": None}]
    if shape == "args":
        payload = [[job], {}, {}]
    elif shape == "header_created":
        headers["created_at"] = job.pop("created_at", None) if draw(st.booleans()) else draw(TIMESTAMPS)
    elif shape == "protocol1":
        payload = {"task": "aiagents.enhance_ticket", "id": "p1", "args": [], "kwargs": job}
    elif shape == "scalar_body":
        payload = draw(st.sampled_from([None, 1, "text", [job]]))
    body_text = json.dumps(payload).encode()
    body = base64.b64encode(body_text).decode()
    if shape == "utf8_body":
        properties["body_encoding"] = "utf-8"
        body = body_text.decode()
    elif shape == "decoded_body":
        properties["body_encoding"] = "utf-8"
        body = payload
    elif shape == "bad_base64":
        body = draw(st.sampled_from(["!!!", body[:-1], body + "=", " " + body, "", 12]))
    elif shape == "not_json_body":
        body = base64.b64encode(draw(st.sampled_from([b"", b"not json", b"\xff", b"[1,"]))).decode()
    envelope = {"body": body, "content-encoding": "utf-8", "content-type": "application/json",
                "headers": headers, "properties": properties}
    if shape == "odd_headers":
        envelope[draw(st.sampled_from(["headers", "properties"]))] = draw(st.sampled_from(["x", None, [], 3]))
    kombu = json.dumps(envelope).encode()            # kombu's own spacing: what the Celery fast path expects
    return kombu if draw(st.booleans()) else dumps(envelope, draw)


@st.composite
def broken_items(draw) -> list[bytes]:
    """Items that are not jobs alone, several of which read as jobs when pasted together."""
    good = draw(st.one_of(plain_items(), celery_items()))
    cut = draw(st.integers(0, len(good)))
    kind = draw(st.sampled_from(["truncated", "split", "forged", "pairs", "bytes", "utf8", "scalar"]))
    if kind == "truncated":
        return [good[:cut] if cut < len(good) else good[:-1]]
    if kind == "split":                                       # one job cut in two items
        return [good[:cut], good[cut:]]
    if kind == "forged":
        # two items that paste into one object, and one item that pastes into two: as many
        # objects as items, none of which is a job on its own
        return draw(st.permutations([b'{"tenant_id": "acme-corp', b'globex", "created_at": 1}',
                                     b'{"tenant_id": "x"},{"tenant_id": "y"}']))
    if kind == "pairs":
        return list(draw(st.sampled_from([(b"[1", b"2]"), (b"[1,", b"2]"), (b'{"a":', b"1}"),
                                          (b'{"tenant_id": "a"', b'"created_at": 1}'), (b"1,2", b"3")])))
    if kind == "bytes":
        return [draw(st.sampled_from([b"", b" ", b"\xff\xfe", b"\x00", b"null", b"NaN", b"[]", b"{", b"}",
                                      b"\xef\xbb\xbf{}", b'{"tenant_id": NaN}', b'{"x": 1e400}'])),]
    if kind == "utf8":                                        # a job with one byte that is not UTF-8
        at = good.find(b'"', max(cut, 1) - 1)
        return [good[:at + 1] + b"\xff" + good[at + 1:] if at >= 0 else good + b"\xff"]
    return [dumps(draw(st.sampled_from([[1], "job", 3, None, [{"tenant_id": "a"}]])), draw)]


@st.composite
def queues(draw) -> tuple[str, list[bytes], list[int]]:
    fmt = draw(st.sampled_from(["plain", "celery"]))
    own = plain_items() if fmt == "plain" else celery_items()
    pieces = draw(st.lists(st.one_of(own.map(lambda item: [item]), broken_items(),
                                     (celery_items() if fmt == "plain" else plain_items()).map(lambda item: [item])),
                           min_size=1, max_size=40))
    items = [item for piece in pieces for item in piece]
    sizes = draw(st.lists(st.integers(1, 64), min_size=1, max_size=12))
    return fmt, items, sizes


def scan(fmt: str, items: list[bytes], sizes: list[int], split: int | None = None) -> _queue.QueueStats:
    """The module's reading: page after page, the sizes cycling. With `split`, the items from
    there on are read into a second QueueStats and merged, as the second process's half is."""
    stats = _queue.QueueStats(NOW, STALE)
    later = _queue.QueueStats(NOW, STALE)
    start, turn = 0, 0
    while start < len(items):
        stop = start + sizes[turn % len(sizes)]
        if split is not None and start < split:
            stop = min(stop, split)
        page = items[start:stop]
        into = later if split is not None and start >= split else stats
        into.add_page(_queue.PAGE_PARSERS[fmt], KEY, start, page)
        start, turn = start + len(page), turn + 1
    if split is not None:
        stats.merge(later.state())
    return stats


# ----------------------------------------------------------------- the tests --

def assert_same_counts(fmt: str, items: list[bytes], sizes: list[int], split: int | None = None) -> None:
    reference = Reference()
    reference.read(fmt, items)
    stats = scan(fmt, items, sizes, split)
    assert (stats.items, stats.malformed) == (reference.items, reference.malformed)
    assert dict(stats.tenants) == dict(reference.tenants)
    assert stats.tenants_malformed == reference.tenants_malformed
    assert stats.ages == reference.ages
    assert (stats.age_unknown, stats.age_unparsable, stats.in_future, stats.older_than) == \
        (reference.unknown, reference.unparsable, reference.in_future, reference.older)
    for mine, theirs in ((stats.oldest, reference.oldest), (stats.newest, reference.newest)):
        assert (mine and (mine[0], mine[1]["position"]["index"])) == theirs
    assert [job["position"]["index"] for job in stats.older_sample] == reference.older_positions[:_queue.SAMPLE_SIZE]
    assert [job["position"]["index"] for job in stats.sample] == reference.sample_positions[:_queue.SAMPLE_SIZE]
    assert [bad["index"] for bad in stats.malformed_sample] == reference.malformed_positions[:_queue.SAMPLE_SIZE]
    table = stats.tenant_table(limit=len(stats.tenants))
    assert sum(row["jobs"] for row in table) == stats.items - stats.malformed
    assert all(0 <= row["share"] <= 1 for row in table)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(queues())
def test_page_at_once_counts_equal_an_item_by_item_reading(queue):
    assert_same_counts(*queue)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(queues(), st.floats(0, 1))
def test_two_halves_read_apart_and_merged_count_as_one_reading(queue, where):
    fmt, items, sizes = queue
    assert_same_counts(fmt, items, sizes, split=int(where * len(items)))


def test_the_reported_page_a_list_tenant_id_does_not_count_the_jobs_before_it_twice():
    """61 jobs, acme-corp holds 30 of them, and the last job's tenant_id is a list."""
    jobs = [{"ticket_id": f"T-{n}", "tenant_id": "acme-corp" if n % 2 else f"tenant-{n % 7}",
             "created_at": "2026-11-27T09:59:00Z"} for n in range(60)]
    jobs.append({"ticket_id": "T-60", "tenant_id": ["acme-corp"], "created_at": "2026-11-27T09:59:00Z"})
    items = [json.dumps(job).encode() for job in jobs]
    assert_same_counts("plain", items, [100])
    stats = scan("plain", items, [100])
    assert stats.tenants["acme-corp"] == 30 and sum(stats.tenants.values()) == 61
    assert stats.tenants_malformed == 1 and stats.tenants[None] == 1
    top = stats.tenant_table()[0]
    assert top == {"tenant_id": "acme-corp", "jobs": 30, "share": round(30 / 61, 4)}
    result = {"queue": KEY, "depth": 61, "keys": {KEY: 61}, "tenants": stats.tenant_table(),
              "tenants_distinct": len(stats.tenants), "malformed": {"count": 0, "sample": []}, "oldest": None,
              "older_than": {"count": 0}, "format": "plain", "age_unknown": 0, "scanned": 61, "unacked": None}
    assert "queue_tenant_flood" not in [found["id"] for found in _queue.queue_findings(result, {})]
