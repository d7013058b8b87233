from __future__ import annotations

import base64
import json
import os

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils import _queue


def envelope(kwargs, headers=None, encode=True):
    body = json.dumps([[], kwargs, {"callbacks": None}]).encode()
    return json.dumps({
        "body": base64.b64encode(body).decode() if encode else json.loads(body),
        "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": "aiagents.enhance_ticket", "id": "task-1", "root_id": "root-9",
                    "kwargsrepr": repr(kwargs), **(headers or {})},
        "properties": {"correlation_id": "corr-1", "body_encoding": "base64" if encode else "utf-8",
                       "delivery_tag": "tag-1"},
    }).encode()


def test_an_envelope_reads_the_same_alone_and_in_a_page():
    raw = envelope({"tenant_id": "acme-corp", "ticket_id": "T-1", "created_at": "2026-11-27T10:00:00Z"})
    expected = {"tenant_id": "acme-corp", "ticket_id": "T-1", "created_at": "2026-11-27T10:00:00Z",
                "task_id": "task-1", "task": "aiagents.enhance_ticket"}
    assert _queue.parse_celery(raw) == expected
    assert _queue.parse_celery_page([raw, b"garbage", raw]) == [expected, None, expected]


def test_created_at_header_and_unencoded_bodies_take_the_full_parse():
    raw = envelope({"tenant_id": "globex", "ticket_id": "T-2"}, headers={"created_at": "2026-11-27T09:00:00Z"})
    assert _queue.parse_celery(raw)["created_at"] == "2026-11-27T09:00:00Z"
    # The header stands in for a created_at that is null or missing, not for one that is 0 or "".
    for value in (0, ""):
        raw = envelope({"tenant_id": "globex", "created_at": value}, headers={"created_at": "2026-11-27T09:00:00Z"})
        assert _queue.parse_celery(raw)["created_at"] == value
    raw = envelope({"tenant_id": "globex", "ticket_id": "T-3"}, encode=False)
    assert _queue.parse_celery(raw)["ticket_id"] == "T-3"


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"[1, 2]", b'{"body": "!!!not base64", '
                                 b'"properties": {"body_encoding": "base64"}}', b'{"ticket_id": "T"}'])
def test_non_envelopes_are_not_celery_jobs(raw):
    assert _queue.parse_celery(raw) is None


def test_a_bad_item_does_not_spoil_its_page():
    good = json.dumps({"ticket_id": "T-1", "tenant_id": "a"}).encode()
    jobs = _queue.parse_plain_page([good, b"{truncated", b"1,2", good])
    assert [job and job["ticket_id"] for job in jobs] == ["T-1", None, None, "T-1"]


def test_format_detection():
    assert _queue.detect_format(envelope({"tenant_id": "a", "ticket_id": "b"})) == "celery"
    assert _queue.detect_format(b'{"ticket_id": "T", "tenant_id": "a"}') == "plain"
    assert _queue.detect_format(b"garbage") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2026-11-27T10:00:00Z", 1795773600.0), ("2026-11-27T11:00:00+01:00", 1795773600.0),
     ("2026-11-27T10:00:00", 1795773600.0), (1795773600, 1795773600.0), ("yesterday", None), (True, None),
     (None, None), ([1], None),
     # epoch milliseconds from 1e11 on (1e11 seconds would be the year 5138)
     (1795773600000, 1795773600.0), (1795773600500.0, 1795773600.5), (99999999999, 99999999999.0),
     # numbers no calendar date has, and big or odd ones: not timestamps, never an error
     (10**30, None), (-10**30, None), (1e300, None), (float("nan"), None), (float("inf"), None),
     ("1795773600", None), ("2026-11-27T24:00:00", None), ({"at": 1}, None), (False, None)],
)
def test_timestamps(value, expected):
    assert _queue.parse_timestamp(value) == expected


def test_page_size_adapts_to_item_size():
    assert _queue.page_size_for([b"x" * 200] * 10, 4000) == min(_queue.PAGE_MAX, _queue.PAGE_TARGET_BYTES // 200)
    assert _queue.page_size_for([b"x" * 20] * 10, 4000) == _queue.PAGE_MAX
    assert _queue.page_size_for([b"x" * (1 << 20)], 1000) == _queue.PAGE_MIN


def test_pages_are_sized_by_bytes_from_the_first_lrange_on():
    """A kilobyte envelope gets a quarter of the items a 200-byte job gets, the first page included."""
    assert _queue.first_page_size([b"x" * 1000, b"x" * 1200]) == _queue.PAGE_TARGET_BYTES // 1200
    assert _queue.first_page_size([b"x" * 200, None]) == min(_queue.PAGE_MAX, _queue.PAGE_TARGET_BYTES // 200)
    assert _queue.first_page_size([None, None]) == _queue.PAGE_MAX
    assert _queue.first_page_size([b"x" * (1 << 24), b"x"]) == _queue.PAGE_MIN
    # After small items, the page grows by doubling, so large items that follow cost one moderate page.
    assert _queue.page_size_for([b"x" * 20] * 10, 10) == 20


class PagedList:
    """Just enough of a Redis client for scan_range: one list, and the LRANGEs asked of it."""

    def __init__(self, items):
        self.items, self.asked = items, []

    def lrange(self, key, start, stop):
        self.asked.append((start, stop))
        return self.items[start:stop + 1]


def test_scan_range_asks_pages_of_about_the_target_bytes_and_reads_everything_once():
    items = [b'{"tenant_id": "t", "pad": "' + b"x" * 1000 + b'"}'] * 3000
    client = PagedList(items)
    stats = _queue.QueueStats(0, 1800)
    first = _queue.first_page_size([items[0], items[-1]])
    _queue.scan_range(client, _queue.Segment("q", 0, len(items), first), _queue.parse_plain_page, stats)
    assert stats.items == 3000 and stats.tenants == {"t": 3000}
    assert all(later[0] == earlier[1] + 1 for earlier, later in zip(client.asked, client.asked[1:]))
    assert all((stop - start + 1) * len(items[0]) <= _queue.PAGE_TARGET_BYTES for start, stop in client.asked)


def mixed_jobs(count):
    """Plain jobs with many tenants and stamps, a few malformed items among them."""
    items = []
    for n in range(count):
        if n % 997 == 0:
            items.append(b"not json %d" % n)
        else:
            items.append(json.dumps({"ticket_id": f"T-{n}", "tenant_id": f"t{n % 37}",
                                     "created_at": 1795773600 - (n * 7919) % 40000}).encode())
    return items


def counts(stats):
    state = stats.state()
    return {**state, "tenants": dict(state["tenants"])}


@pytest.mark.parametrize("keys", [1, 3])
def test_a_large_queue_read_by_two_processes_counts_as_one_process_does(keys):
    items = mixed_jobs(50000)
    lists = {f"q{n}": items[n::keys] for n in range(keys)}
    segments = [_queue.Segment(key, 0, len(held), 50) for key, held in lists.items()]
    alone, together = _queue.QueueStats(1795773600.0, 1800), _queue.QueueStats(1795773600.0, 1800)
    assert _queue.scan_segments(ManyLists(lists), segments, _queue.parse_plain_page, alone, processes=1) == 1
    assert _queue.scan_segments(ManyLists(lists), segments, _queue.parse_plain_page, together) == 2
    assert counts(together) == counts(alone)
    assert together.items == 50000 and together.malformed == 51


def test_when_the_second_process_fails_the_first_reads_its_half_and_nothing_goes_uncounted():
    items = mixed_jobs(30000)
    client = ManyLists({"q": items}, fail_outside=os.getpid())
    stats = _queue.QueueStats(1795773600.0, 1800)
    assert _queue.scan_segments(client, [_queue.Segment("q", 0, 30000, 100)], _queue.parse_plain_page, stats) == 1
    assert stats.items == 30000 and sum(stats.tenants.values()) == 30000 - stats.malformed
    assert [start for start, _stop in client.asked] == sorted(start for start, _stop in client.asked)


def test_merged_halves_give_a_tie_for_oldest_and_newest_to_the_earlier_job():
    item = json.dumps({"ticket_id": "T", "tenant_id": "t", "created_at": "2026-11-27T09:00:00Z"}).encode()
    first, later = _queue.QueueStats(1795773600.0, 1800), _queue.QueueStats(1795773600.0, 1800)
    first.add_page(_queue.parse_plain_page, "q", 0, [item, item])
    later.add_page(_queue.parse_plain_page, "q", 2, [item, item])
    first.merge(later.state())
    assert first.oldest[1]["position"]["index"] == 0 and first.newest[1]["position"]["index"] == 0
    assert [job["position"]["index"] for job in first.older_sample] == [0, 1, 2, 3]


def test_the_halves_split_in_scan_order_across_lists():
    segments = [_queue.Segment("a", 0, 10, 5), _queue.Segment("b", 0, 30, 5), _queue.Segment("c", 0, 5, 5)]
    first, rest = _queue.split_segments(segments, 22)
    assert first == [("a", 0, 10, 5), ("b", 0, 12, 5)]
    assert rest == [("b", 12, 30, 5), ("c", 0, 5, 5)]
    assert _queue.split_segments(segments, 10) == (segments[:1], segments[1:])


class ManyLists(PagedList):
    """Several lists; with fail_outside, any LRANGE from another process (the forked one) fails."""

    def __init__(self, lists, fail_outside=None):
        super().__init__(None)
        self.lists, self.fail_outside = lists, fail_outside

    def lrange(self, key, start, stop):
        if self.fail_outside is not None and os.getpid() != self.fail_outside:
            raise ConnectionError("the second process lost its connection")
        self.asked.append((start, stop))
        return self.lists[key][start:stop + 1]


def test_a_page_of_envelopes_is_read_item_for_item_and_a_bad_item_spoils_only_itself():
    page = [envelope({"tenant_id": f"t{n}", "ticket_id": f"T-{n}"}, headers={"id": f"task-{n}"}) for n in range(5)]
    assert [job["ticket_id"] for job in _queue.parse_celery_page(page)] == [f"T-{n}" for n in range(5)]
    assert [job["task_id"] for job in _queue.parse_celery_page(page)] == [f"task-{n}" for n in range(5)]
    mixed = page[:2] + [b'{"body": "bm90IGpzb24=", "properties": {"body_encoding": "base64"}}'] + page[2:]
    jobs = _queue.parse_celery_page(mixed)
    assert [job and job["ticket_id"] for job in jobs] == ["T-0", "T-1", None, "T-2", "T-3", "T-4"]


def stats_of(items, fmt="plain", now=1795773600.0, page=None):
    stats = _queue.QueueStats(now, 1800)
    page = page or len(items)
    for start in range(0, len(items), page):
        stats.add_page(_queue.PAGE_PARSERS[fmt], "q", start, items[start:start + page])
    return stats


def job(tenant=None, created=None, **more):
    return json.dumps({"tenant_id": tenant, "created_at": created, **more}).encode()


def test_items_that_paste_into_json_are_each_malformed():
    """A page parsed at once read these three items as two jobs and one object; alone, none is a job."""
    forged = [b'{"tenant_id": "acme-corp', b'globex", "created_at": 1}', b'{"tenant_id": "x"},{"tenant_id": "y"}']
    stats = stats_of(forged)
    assert (stats.malformed, sum(stats.tenants.values())) == (3, 0)
    assert stats_of([b"[1", b"2]", b'{"a":', b"1}"]).malformed == 4


def test_a_truncated_envelope_is_malformed_though_it_holds_every_field():
    whole = envelope({"tenant_id": "acme-corp", "ticket_id": "T-1"})
    assert _queue.parse_celery(whole[:-2]) is None
    assert _queue.parse_celery(whole + b"\xff") is None
    stats = stats_of([whole, whole[:-2], whole], fmt="celery")
    assert (stats.malformed, stats.tenants) == (1, {"acme-corp": 2})


def test_tenant_ids_count_as_text_and_odd_ones_as_malformed_never_twice():
    items = [job("acme-corp"), job(["acme-corp"]), job(1), job("1"), job(True), job(1.0), job({"id": 1}), job(None),
             job("{6F9619FF-8B86-D011-B42D-00C04FC964FF}")]
    stats = stats_of(items)
    assert stats.tenants == {"acme-corp": 1, "1": 2, None: 5, "{6F9619FF-8B86-D011-B42D-00C04FC964FF}": 1}
    assert stats.tenants_malformed == 4
    assert sum(row["share"] for row in stats.tenant_table()) == pytest.approx(1.0, abs=1e-3)


def test_a_boolean_created_at_is_not_merged_with_the_epoch_1_beside_it():
    for order in ([True, 1], [1, True]):
        stats = stats_of([job("a", stamp) for stamp in order])
        assert (stats.age_unparsable, stats.older_than) == (1, 1), order


def test_a_list_created_at_leaves_the_epoch_numbers_beside_it_readable():
    stats = stats_of([job("a", [1795773000]), job("a", 1795773000), job("a", 1795773000000)])
    assert (stats.age_unparsable, stats.ages[_queue.AGE_LABELS.index("5-15m")]) == (1, 2)


def test_stale_samples_are_the_first_stale_jobs_in_queue_order():
    stamps = ["2026-11-27T08:00:00Z", "2026-11-27T07:00:00Z"] * 4
    stats = stats_of([job("a", stamp, ticket_id=f"T-{n}") for n, stamp in enumerate(stamps)])
    assert [sample["ticket_id"] for sample in stats.older_sample] == ["T-0", "T-1", "T-2", "T-3", "T-4"]
    assert stats.oldest[1]["ticket_id"] == "T-1" and stats.newest[1]["ticket_id"] == "T-0"


def test_jobs_without_a_tenant_are_no_tenants_flood():
    stats = stats_of([job(None)] * 60 + [job("acme-corp")] * 20 + [job(["bad"])] * 5)
    result = {"queue": "q", "depth": 85, "keys": {"q": 85}, "tenants": stats.tenant_table(),
              "tenants_distinct": len(stats.tenants), "malformed": {"count": 0, "sample": []}, "oldest": None,
              "older_than": {"count": 0}, "format": "plain", "age_unknown": 85, "scanned": 85, "unacked": None}
    assert [row["tenant_id"] for row in result["tenants"]] == [None, "acme-corp"]
    assert "queue_tenant_flood" not in [found["id"] for found in _queue.queue_findings(result, {})]
    result["tenants"] = [{"tenant_id": "acme-corp", "jobs": 60, "share": 0.7059}]
    assert "queue_tenant_flood" in [found["id"] for found in _queue.queue_findings(result, {})]


@pytest.mark.parametrize("body", [b"[" * 100000, b'[{"body": ' * 3000, b"1e400", b"[]", b"{}", b'[[1]]', b"\xff"])
def test_an_odd_unacked_delivery_is_no_job_and_no_error(body):
    assert _queue._unacked_job(body) is None


@pytest.mark.parametrize("epoch", [1e300, -1e300, float("inf"), float("nan"), None])
def test_iso_of_a_number_no_date_has_is_none(epoch):
    assert _queue.iso(epoch) is None
