"""Pausing a flooding tenant: its queued jobs held aside, exactly those resumed, in order."""

from __future__ import annotations

import json

import pytest

from tests.harness.queue_data import iso_ago, push_plain, send_celery

MODULE = "aiagents.runbooks.redis_queue_quarantine"
QKEY = "enhancement_queue:quarantine"
PAUSED = "tenant acme-corp paused: flooding the queue"


def run(run_module, server, check=False, **args):
    result = run_module(MODULE, {"url": server.url, **args}, check=check)
    assert result.rc == 0, result.stdout
    return result.result


def tenants_in(client, key="enhancement_queue", fmt="plain"):
    from ansible_collections.aiagents.runbooks.plugins.module_utils import _queue
    items = client.lrange(key, 0, -1)
    jobs = _queue.PAGE_PARSERS[fmt](items)
    return [(_queue.job_fields(job)["tenant_id"], _queue.job_fields(job)["ticket_id"]) for job in jobs]


def fill(server, fmt, jobs):
    if fmt == "plain":
        push_plain(server.client(), jobs)
    else:
        send_celery(server.url, jobs)


def queued_oldest_first(client, fmt):
    listed = tenants_in(client, fmt=fmt)
    return listed if fmt == "plain" else listed[::-1]


def test_pause_and_resume_a_plain_tenant_keeps_others_and_order(redis_server, run_module):
    client = redis_server.client()
    jobs = [(f"T-{n:03d}", "acme-corp" if n % 5 else "globex", iso_ago(600 - n)) for n in range(40)]
    push_plain(client, jobs)
    client.rpush(QKEY, json.dumps({"job": "{}", "source": "enhancement_queue", "reason": "poison",
                                   "tenant_id": "acme-corp", "ticket_id": "T-POISON"}))

    checked = run(run_module, redis_server, check=True, tenant_ids=["acme-corp"], reason=PAUSED, max_jobs=100)
    assert len(checked["moved"]) == 32 and client.llen("enhancement_queue") == 40

    paused = run(run_module, redis_server, tenant_ids=["acme-corp", "initech"], reason=PAUSED, max_jobs=100)
    assert len(paused["moved"]) == 32 and paused["not_found"] == ["initech"]
    assert tenants_in(client) == [("globex", f"T-{n:03d}") for n in range(0, 40, 5)]  # the others, served in order
    assert client.llen(QKEY) == 33

    # A guard: a restore matching more than max_jobs moves nothing.
    refused = run_module(MODULE, {"url": redis_server.url, "tenant_ids": ["acme-corp"], "state": "restored",
                                  "reason": PAUSED, "max_jobs": 10})
    assert refused.rc != 0 and "max_jobs=10" in refused.result["msg"] and client.llen(QKEY) == 33

    client.lpop("enhancement_queue")  # a worker takes globex T-000 meanwhile
    client.rpush("enhancement_queue", json.dumps({"ticket_id": "T-NEW", "tenant_id": "globex"}))  # and one arrives
    resumed = run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, state="restored", max_jobs=100)
    assert len(resumed["moved"]) == 32
    assert [job["ticket_id"] for job in resumed["moved"]] == [f"T-{n:03d}" for n in range(40) if n % 5]
    acme = [("acme-corp", f"T-{n:03d}") for n in range(40) if n % 5]
    # By default behind the work queued meanwhile (the others are not starved), in their original order.
    assert tenants_in(client) == [("globex", f"T-{n:03d}") for n in range(5, 40, 5)] + [("globex", "T-NEW")] + acme
    # The job quarantined for another reason stays quarantined.
    assert [json.loads(raw)["ticket_id"] for raw in client.lrange(QKEY, 0, -1)] == ["T-POISON"]
    assert run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, state="restored")["changed"] is False


def test_pause_celery_tenant_across_priority_lists(redis_server, run_module):
    client = redis_server.client()
    send_celery(redis_server.url, [(f"C-{n}", "acme-corp" if n % 2 else "globex", iso_ago(60)) for n in range(6)])
    send_celery(redis_server.url, [("C-PRIO", "acme-corp", iso_ago(30))], priority=6)

    paused = run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, max_jobs=10)
    assert sorted(job["ticket_id"] for job in paused["moved"]) == ["C-1", "C-3", "C-5", "C-PRIO"]
    assert sorted(ticket for _tenant, ticket in tenants_in(client, fmt="celery")) == ["C-0", "C-2", "C-4"]

    resumed = run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, state="restored", max_jobs=10)
    assert sorted(job["ticket_id"] for job in resumed["moved"]) == ["C-1", "C-3", "C-5", "C-PRIO"]
    assert client.llen(QKEY) == 0
    assert client.llen("enhancement_queue") + client.llen("enhancement_queue\x06\x166") == 7


@pytest.mark.parametrize("max_jobs", [5])
def test_a_tenant_selection_larger_than_max_jobs_moves_nothing(redis_server, run_module, max_jobs):
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(8)])
    failed = run_module(MODULE, {"url": redis_server.url, "tenant_ids": ["acme-corp"], "reason": PAUSED,
                                 "max_jobs": max_jobs})
    assert failed.rc != 0 and f"max_jobs={max_jobs}" in failed.result["msg"]
    assert client.llen("enhancement_queue") == 8 and client.llen(QKEY) == 0


def test_a_resumed_tenant_can_go_to_the_front(redis_server, run_module):
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp" if n % 2 else "globex", iso_ago(60 - n)) for n in range(6)])
    run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, max_jobs=10)
    resumed = run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, state="restored", max_jobs=10,
                  position="front")
    assert [job["ticket_id"] for job in resumed["moved"]] == ["T-1", "T-3", "T-5"]
    assert tenants_in(client) == [("acme-corp", "T-1"), ("acme-corp", "T-3"), ("acme-corp", "T-5"),
                                  ("globex", "T-0"), ("globex", "T-2"), ("globex", "T-4")]


@pytest.mark.parametrize("fmt", ["plain", "celery"])
def test_pausing_a_tenant_in_a_deep_queue_sweeps_it_once_and_resumes_in_order(redis_server, run_module, fmt):
    """Thousands of jobs: one sweep (the slowlog shows its short scripts, never an LREM per job)."""
    client = redis_server.client()
    jobs = [(f"T-{n:04d}", "acme-corp" if n % 3 == 0 else "globex", iso_ago(3600 - n)) for n in range(2400)]
    fill(redis_server, fmt, jobs)

    def oldest_first():
        return queued_oldest_first(client, fmt)

    acme = [("acme-corp", ticket) for ticket, tenant, _created in jobs if tenant == "acme-corp"]
    globex = [("globex", ticket) for ticket, tenant, _created in jobs if tenant == "globex"]
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    paused = run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, max_jobs=5000)
    assert paused["moved_by"] == "one sweep per list" and len(paused["moved"]) == 800 and paused["gone"] == []
    assert [job["ticket_id"] for job in paused["moved"]] == [ticket for _tenant, ticket in acme]
    assert oldest_first() == globex
    records = [json.loads(raw) for raw in client.lrange(QKEY, 0, -1)]
    assert [record["ticket_id"] for record in records] == [ticket for _tenant, ticket in acme]
    # Redis 7 logs the commands scripts run too: no LREM looks for a job, only the sweep's own marker
    # in its last window, near the consumers' end.
    commands = [entry["command"] for entry in client.slowlog_get(100000)]
    lrems = [command for command in commands if command.upper().startswith(b"LREM")]
    assert all(b"aiagents.runbooks sweep" in command for command in lrems), lrems[:3]
    assert sum(command.upper().startswith(b"EVALSHA") for command in commands) >= 3
    assert not client.keys("*:sweep*")

    for position, expected in (("back", globex + acme), ("front", acme + globex)):
        resumed = run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, state="restored",
                      max_jobs=5000, position=position)
        assert resumed["moved_by"] == "one sweep per list" and len(resumed["moved"]) == 800
        assert [job["ticket_id"] for job in resumed["moved"]] == [ticket for _tenant, ticket in acme]
        assert oldest_first() == expected and client.llen(QKEY) == 0
        if position == "back":
            run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, max_jobs=5000)
            assert oldest_first() == globex


@pytest.mark.parametrize("fmt", ["plain", "celery"])
def test_in_a_queue_deeper_than_20000_the_sweep_selects_too_and_max_jobs_caps_it(redis_server, run_module, fmt):
    """No read pass at that depth (a read walks the list's middle): one sweep selects and moves."""
    client = redis_server.client()
    jobs = [(f"T-{n:05d}", "acme-corp" if n % 50 == 0 else "globex", iso_ago(3600)) for n in range(20500)]
    fill(redis_server, fmt, jobs)

    def oldest_first():
        return queued_oldest_first(client, fmt)

    acme = [ticket for ticket, tenant, _created in jobs if tenant == "acme-corp"]
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    capped = run_module(MODULE, {"url": redis_server.url, "tenant_ids": ["acme-corp", "initech"],
                                 "reason": PAUSED, "max_jobs": 300})
    assert capped.rc != 0 and capped.result["changed"] is True
    assert "matches more than max_jobs=300 jobs: 300 were taken" in capped.result["msg"], capped.result["msg"]
    assert "110 more were left queued, in place" in capped.result["msg"]
    # The newest 300 went, oldest first; the others stay where they were.
    assert [job["ticket_id"] for job in capped.result["moved"]] == acme[-300:]
    assert [ticket for tenant, ticket in oldest_first() if tenant == "acme-corp"] == acme[:-300]
    assert len(oldest_first()) == 20500 - 300
    # No LRANGE read the list's middle: the only ones are the sweep's, at its ends.
    depth = 20500
    for entry in client.slowlog_get(100000):
        args = entry["command"].split()
        if args[0].upper() == b"LRANGE" and args[1] == b"enhancement_queue":
            start, stop = int(args[2]), int(args[3])
            assert min(abs(start), abs(stop)) < 1000 or min(start, stop) >= depth - 1000, args

    run(run_module, redis_server, tenant_ids=["acme-corp"], reason=PAUSED, state="restored", max_jobs=1000)
    paused = run(run_module, redis_server, tenant_ids=["acme-corp", "initech"], reason=PAUSED, max_jobs=1000)
    assert paused["moved_by"] == "one sweep per list" and paused["not_found"] == ["initech"]
    assert [job["ticket_id"] for job in paused["moved"]] == acme
    assert [json.loads(raw)["ticket_id"] for raw in client.lrange(QKEY, 0, -1)] == acme
    assert all(tenant == "globex" for tenant, _ticket in oldest_first()) and len(oldest_first()) == 20500 - 410
