from __future__ import annotations

import base64
import json

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


def test_fast_and_full_celery_parses_agree():
    raw = envelope({"tenant_id": "acme-corp", "ticket_id": "T-1", "created_at": "2026-11-27T10:00:00Z"})
    fast = _queue.parse_celery_page([raw])[0]
    assert fast == _queue._celery_job_slow(raw)
    assert fast == {"tenant_id": "acme-corp", "ticket_id": "T-1", "created_at": "2026-11-27T10:00:00Z",
                    "task_id": "task-1", "task": "aiagents.enhance_ticket"}


def test_created_at_header_and_unencoded_bodies_take_the_full_parse():
    raw = envelope({"tenant_id": "globex", "ticket_id": "T-2"}, headers={"created_at": "2026-11-27T09:00:00Z"})
    assert _queue.parse_celery(raw)["created_at"] == "2026-11-27T09:00:00Z"
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
     (None, None), ([1], None)],
)
def test_timestamps(value, expected):
    assert _queue.parse_timestamp(value) == expected


def test_page_size_adapts_to_item_size():
    assert _queue.page_size_for([b"x" * 200] * 10, 1000) == min(_queue.PAGE_MAX, _queue.PAGE_TARGET_BYTES // 200)
    assert _queue.page_size_for([b"x" * 20] * 10, 1000) == _queue.PAGE_MAX
    assert _queue.page_size_for([b"x" * (1 << 20)], 1000) == _queue.PAGE_MIN


def test_a_page_of_envelopes_is_cut_item_for_item_and_a_bad_item_forces_the_careful_path():
    page = [envelope({"tenant_id": f"t{n}", "ticket_id": f"T-{n}"}, headers={"id": f"task-{n}"}) for n in range(5)]
    assert [job["ticket_id"] for job in _queue.parse_celery_page(page)] == [f"T-{n}" for n in range(5)]
    assert [job["task_id"] for job in _queue.parse_celery_page(page)] == [f"task-{n}" for n in range(5)]
    mixed = page[:2] + [b'{"body": "bm90IGpzb24=", "properties": {"body_encoding": "base64"}}'] + page[2:]
    jobs = _queue.parse_celery_page(mixed)
    assert [job and job["ticket_id"] for job in jobs] == ["T-0", "T-1", None, "T-2", "T-3", "T-4"]
