"""redis_queue_quarantine: jobs move, come back, and none is ever lost."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.harness.queue_data import iso_ago, plain_job, push_plain, send_celery

MODULE = "aiagents.runbooks.redis_queue_quarantine"
QKEY = "enhancement_queue:quarantine"


def quarantine_run(run_module, server, check=False, diff=False, **args):
    run = run_module(MODULE, {"url": server.url, **args}, check=check, diff=diff)
    assert run.rc == 0, run.stdout
    return run


def quarantine(run_module, server, check=False, diff=False, **args):
    return quarantine_run(run_module, server, check=check, diff=diff, **args).result


def shown_diff(stdout: str) -> list[str]:
    """The diff Ansible printed (--diff): its lines from `--- before` to the blank line closing it."""
    lines = [line.rstrip() for line in stdout.splitlines()]
    start = lines.index("--- before")
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def test_check_apply_and_idempotence(redis_server, run_module):
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(10)])
    before = client.lrange("enhancement_queue", 0, -1)

    checked = quarantine(run_module, redis_server, check=True, ticket_ids=["T-3", "T-404"], reason="stuck")
    assert checked["changed"] is True and [job["ticket_id"] for job in checked["moved"]] == ["T-3"]
    assert checked["not_found"] == ["T-404"]
    assert client.lrange("enhancement_queue", 0, -1) == before and client.llen(QKEY) == 0  # check mode wrote nothing

    applied = quarantine(run_module, redis_server, ticket_ids=["T-3"], reason="stuck for 45 min")
    assert applied["changed"] is True and (applied["queue_depth"], applied["quarantine_depth"]) == (9, 1)
    record = json.loads(client.lindex(QKEY, 0))
    assert record["job"].encode() == before[3]  # the job itself, byte for byte
    assert (record["reason"], record["source"], record["ticket_id"]) == ("stuck for 45 min", "enhancement_queue", "T-3")
    assert record["quarantined_at"].endswith("Z")

    assert quarantine(run_module, redis_server, check=True, ticket_ids=["T-3"], reason="stuck")["changed"] is False
    assert quarantine(run_module, redis_server, ticket_ids=["T-3"], reason="stuck")["changed"] is False

    restored = quarantine(run_module, redis_server, ticket_ids=["T-3"], state="restored")
    assert restored["changed"] is True and restored["moved"][0]["reason"] == "stuck for 45 min"
    assert client.lindex("enhancement_queue", 0) == before[3]  # back where a worker takes it next
    assert client.llen(QKEY) == 0
    assert quarantine(run_module, redis_server, ticket_ids=["T-3"], state="restored")["changed"] is False


def test_diff_shows_both_lists_before_and_after_and_check_mode_restore_moves_nothing(redis_server, run_module):
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(10)])
    queued = client.lrange("enhancement_queue", 0, -1)

    # Without --diff Ansible shows none.
    silent = quarantine_run(run_module, redis_server, check=True, ticket_ids=["T-3"], reason="stuck")
    assert "--- before" not in silent.stdout

    checked = quarantine_run(run_module, redis_server, check=True, diff=True, ticket_ids=["T-3"], reason="stuck")
    expected_out = {"before": {"queue_depth": 10, "quarantine_depth": 0},
                    "after": {"queue_depth": 9, "quarantine_depth": 1, "moved": ["T-3"]}}
    assert checked.result["diff"] == expected_out
    assert shown_diff(checked.stdout) == [
        "--- before", "+++ after", "@@ -1,3 +1,5 @@",
        "-    quarantine_depth: 0", "-    queue_depth: 10",
        "+    moved:", "+    - T-3", "+    quarantine_depth: 1", "+    queue_depth: 9"]
    assert client.lrange("enhancement_queue", 0, -1) == queued and client.llen(QKEY) == 0

    applied = quarantine_run(run_module, redis_server, diff=True, ticket_ids=["T-3"], reason="stuck")
    assert applied.result["diff"] == expected_out  # the check run told the truth
    assert shown_diff(applied.stdout) == shown_diff(checked.stdout)
    assert client.llen("enhancement_queue") == 9 and client.llen(QKEY) == 1
    after_quarantine = (client.lrange("enhancement_queue", 0, -1), client.lrange(QKEY, 0, -1))

    # Restore in check mode: says what it would move back, moves nothing.
    would = quarantine_run(run_module, redis_server, check=True, diff=True, ticket_ids=["T-3"], state="restored")
    expected_back = {"before": {"queue_depth": 9, "quarantine_depth": 1},
                     "after": {"queue_depth": 10, "quarantine_depth": 0, "moved": ["T-3"]}}
    assert would.result["changed"] is True and [job["ticket_id"] for job in would.result["moved"]] == ["T-3"]
    assert would.result["moved"][0]["reason"] == "stuck"
    assert (would.result["queue_depth"], would.result["quarantine_depth"]) == (10, 0)
    assert would.result["diff"] == expected_back
    assert shown_diff(would.stdout) == [
        "--- before", "+++ after", "@@ -1,3 +1,5 @@",
        "-    quarantine_depth: 1", "-    queue_depth: 9",
        "+    moved:", "+    - T-3", "+    quarantine_depth: 0", "+    queue_depth: 10"]
    assert (client.lrange("enhancement_queue", 0, -1), client.lrange(QKEY, 0, -1)) == after_quarantine

    restored = quarantine_run(run_module, redis_server, diff=True, ticket_ids=["T-3"], state="restored")
    assert restored.result["diff"] == expected_back
    assert client.lrange("enhancement_queue", 0, -1) == [queued[3]] + after_quarantine[0] and client.llen(QKEY) == 0


def test_oldest_celery_message_is_taken_from_the_consumer_end(redis_server, run_module):
    sent = send_celery(redis_server.url, [(f"T-{n}", "globex", iso_ago(300 - n)) for n in range(5)])
    result = quarantine(run_module, redis_server, oldest=1, reason="poison: kills its worker")
    assert [job["task_id"] for job in result["moved"]] == [sent[0]]
    record = json.loads(redis_server.client().lindex(QKEY, 0))
    assert record["format"] == "celery" and record["task_id"] == sent[0]
    restored = quarantine(run_module, redis_server, task_ids=[sent[0]], state="restored")
    assert restored["changed"] is True
    assert json.loads(redis_server.client().lindex("enhancement_queue", -1))["headers"]["id"] == sent[0]


def test_guard_refuses_a_selection_that_matches_too_much(redis_server, run_module):
    push_plain(redis_server.client(), [("T-dup", "acme-corp", iso_ago(5))] * 5)
    run = run_module(MODULE, {"url": redis_server.url, "ticket_ids": ["T-dup"], "reason": "x", "max_jobs": 3})
    assert run.rc != 0 and "matches more than max_jobs=3" in run.result["msg"]
    assert redis_server.client().llen("enhancement_queue") == 5


def test_inputs_are_validated(redis_server, run_module):
    run = run_module(MODULE, {"url": redis_server.url, "ticket_ids": ["T-1"]})
    assert run.rc != 0 and "state is quarantined but all of the following are missing: reason" in run.result["msg"]
    run = run_module(MODULE, {"url": redis_server.url, "reason": "x"})
    assert run.rc != 0 and "one of the following is required: ticket_ids, task_ids, tenant_ids, oldest" in run.result["msg"]


@pytest.mark.parametrize("layout", ["plain", "celery"])
def test_every_job_is_conserved_under_concurrent_producers_and_consumers(redis_server, run_module, layout):
    """produced == processed + queued + quarantined, by job id, with nothing twice."""
    client = redis_server.client()
    identify = _identify[layout]
    produced: list[str] = []
    if layout == "plain":
        push_plain(client, [(f"T-pre-{n}", "acme-corp", iso_ago(60)) for n in range(3000)])
        produced += [f"T-pre-{n}" for n in range(3000)]
    else:
        send_celery(redis_server.url, [(f"T-pre-{n}", "acme-corp", iso_ago(60)) for n in range(1500)])
        produced += [f"T-pre-{n}" for n in range(1500)]
    processed: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def producer(name: str) -> None:
        local = redis_server.client()
        n = 0
        while not stop.is_set():
            ticket = f"T-{name}-{n}"
            if layout == "plain":
                local.rpush("enhancement_queue", plain_job(ticket, "globex", iso_ago(0)))
            else:
                send_celery(redis_server.url, [(ticket, "globex", iso_ago(0))])
            with lock:
                produced.append(ticket)
            n += 1
            time.sleep(0.002)

    def consumer() -> None:
        local = redis_server.client()
        while not stop.is_set():
            raw = local.lpop("enhancement_queue") if layout == "plain" else local.rpop("enhancement_queue")
            if raw is None:
                time.sleep(0.001)
                continue
            with lock:
                processed.append(identify(raw))
            time.sleep(0.01)  # ~100 jobs/s each: the queue drains while the module runs, not before

    threads = [threading.Thread(target=producer, args=(f"p{i}",)) for i in range(2)]
    threads += [threading.Thread(target=consumer) for _consumer in range(2)]
    for thread in threads:
        thread.start()
    try:
        # Some chosen jobs sit near the consumers (they may win the race), some far behind.
        chosen = [f"T-pre-{n}" for n in range(0, 1500, 25)]
        moved = quarantine(run_module, redis_server, ticket_ids=chosen, reason="conservation test")
        moved_ids = {job["ticket_id"] for job in moved["moved"]}
        gone_ids = {job["ticket_id"] for job in moved["gone"]}
        assert moved_ids and moved_ids.isdisjoint(gone_ids)
        assert moved_ids | gone_ids | set(moved["not_found"]) == set(chosen)
        back = sorted(moved_ids)[: len(moved_ids) // 2]
        restored = quarantine(run_module, redis_server, ticket_ids=back, state="restored")
        assert {job["ticket_id"] for job in restored["moved"]} == set(back)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)

    queued = [identify(raw) for raw in client.lrange("enhancement_queue", 0, -1)]
    quarantined = [json.loads(raw)["ticket_id"] for raw in client.lrange(QKEY, 0, -1)]
    accounted = processed + queued + quarantined
    assert len(accounted) == len(set(accounted)), "a job was duplicated"
    assert sorted(accounted) == sorted(produced), "a job was lost"
    assert set(quarantined) == moved_ids - set(back)


def _plain_id(raw: bytes) -> str:
    return json.loads(raw)["ticket_id"]


def _celery_id(raw: bytes) -> str:
    import base64

    envelope = json.loads(raw)
    return json.loads(base64.b64decode(envelope["body"]))[1]["ticket_id"]


_identify = {"plain": _plain_id, "celery": _celery_id}


def test_a_negative_oldest_is_refused_and_nothing_moves(redis_server, run_module):
    """LRANGE 0 -2 is "all but the last": oldest=-1 used to quarantine nearly the whole queue."""
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(10)])
    run = run_module(MODULE, {"url": redis_server.url, "oldest": -1, "reason": "x"})
    assert run.rc != 0
    assert run.result["msg"] == "quarantine jobs of 'enhancement_queue': oldest must be at least 0, got -1"
    assert client.llen("enhancement_queue") == 10 and client.llen(QKEY) == 0


def test_a_quarantine_key_of_another_type_loses_no_job(redis_server, run_module):
    """The move removed the job, then failed to push its record: Redis does not undo a script's first write."""
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(3)])
    client.hset(QKEY, "not", "a list")
    run = run_module(MODULE, {"url": redis_server.url, "ticket_ids": ["T-1"], "reason": "stuck"})
    assert run.rc != 0
    assert run.result["msg"].endswith("quarantine_key 'enhancement_queue:quarantine' holds a hash, not a list; "
                                      "nothing was moved")
    assert client.llen("enhancement_queue") == 3


def test_a_record_without_its_job_refuses_the_restore_and_nothing_moves(redis_server, run_module):
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(3)])
    quarantine(run_module, redis_server, ticket_ids=["T-0", "T-1"], reason="stuck")
    client.lpush(QKEY, json.dumps({"source": "enhancement_queue", "ticket_id": "T-hollow", "reason": "stuck"}))
    before = (client.lrange("enhancement_queue", 0, -1), client.lrange(QKEY, 0, -1))
    run = run_module(MODULE, {"url": redis_server.url, "ticket_ids": ["T-hollow", "T-0", "T-1"], "state": "restored"})
    assert run.rc != 0 and "Traceback" not in run.stdout
    assert run.result["msg"].endswith(
        "quarantine_key 'enhancement_queue:quarantine' holds 1 selected record(s) that cannot be restored "
        "(ticket 'T-hollow': it has no job); nothing was moved - select the other jobs by ticket_ids or task_ids, "
        "or repair the record")
    assert (client.lrange("enhancement_queue", 0, -1), client.lrange(QKEY, 0, -1)) == before
    assert quarantine(run_module, redis_server, ticket_ids=["T-0", "T-1"], state="restored")["changed"] is True


AWKWARD = "Sl/ash#Hash@At-Secret9"


def test_the_password_never_reaches_output_on_success_or_failure(tmp_path, run_module):
    from urllib.parse import quote

    from tests.harness.servers import RedisServer

    server = RedisServer(tmp_path, password=AWKWARD)
    server.start()
    try:
        push_plain(server.client(), [("T-1", "acme-corp", iso_ago(60))])
        moved = run_module(MODULE, {"url": f"redis://:{AWKWARD}@127.0.0.1:{server.port}/0", "ticket_ids": ["T-1"],
                                    "reason": "stuck"}, verbosity=3)
        assert moved.rc == 0 and moved.result["changed"] is True, moved.stdout
        # Through a variable, as a playbook passes it: ansible-core shows a failed ad-hoc task's literal arguments.
        wrong = run_module(MODULE, {"host": "127.0.0.1", "port": server.port, "ticket_ids": ["T-1"],
                                    "password": "{{ lookup('env', 'RUNBOOK_TEST_PASSWORD') }}", "state": "restored"},
                           verbosity=3, env={"RUNBOOK_TEST_PASSWORD": AWKWARD + "x"})
        assert wrong.rc != 0 and wrong.result["msg"].endswith("authentication failed (wrong or missing password)")
    finally:
        server.kill()
    for run in (moved, wrong):
        assert [form for form in (AWKWARD, quote(AWKWARD, safe=""), "At-Secret9") if form in run.stdout] == []
