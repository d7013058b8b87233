"""Quarantine moves: nothing half-done, nothing lost, and exactly what moved is said when a move fails."""

from __future__ import annotations

import base64
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiagents.runbooks.plugins.module_utils import _quarantine, _redis
from ansible_collections.aiagents.runbooks.plugins.modules import redis_queue_quarantine
from tests.harness.queue_data import iso_ago, plain_job, push_plain

QUEUE = "enhancement_queue"
QKEY = "enhancement_queue:quarantine"


def run(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit):
        redis_queue_quarantine.main()
    return json.loads(capsys.readouterr().out)


def record(ticket, **fields):
    base = {"job": plain_job(ticket, "acme-corp", iso_ago(60)).decode(), "job_encoding": "utf-8", "source": QUEUE,
            "format": "plain", "reason": "stuck", "ticket_id": ticket, "tenant_id": "acme-corp", "task_id": None}
    return json.dumps({key: value for key, value in {**base, **fields}.items() if value is not ...}).encode()


def state(client):
    return client.lrange(QUEUE, 0, -1), client.lrange(QKEY, 0, -1)


@pytest.mark.parametrize(("args", "cause"), [
    ({"oldest": -1, "reason": "x"}, "oldest must be at least 0, got -1"),
    ({"ticket_ids": ["T-1"], "reason": "x", "max_jobs": 0}, "max_jobs must be at least 1, got 0"),
    ({"ticket_ids": ["T-1"], "reason": "x", "quarantine_key": QUEUE}, "quarantine_key must be a list of its own"),
    ({"ticket_ids": ["T-1"], "reason": "x", "quarantine_key": QUEUE + "\x06\x163"},
     "quarantine_key must be a list of its own"),
    ({"ticket_ids": ["T-1"], "reason": "   "}, "reason must say why the jobs are quarantined"),
    ({"ticket_ids": ["T-1"], "reason": "x", "queue": ""}, "queue must not be empty"),
])
def test_nonsense_options_are_refused_before_anything_moves(redis_server, capsys, args, cause):
    push_plain(redis_server.client(), [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(5)])
    before = state(redis_server.client())
    result = run(capsys, {"port": redis_server.port, **args})
    assert result["failed"] is True and cause in result["msg"], result["msg"]
    assert state(redis_server.client()) == before


@pytest.mark.parametrize(("broken", "why"), [
    ({"job": ...}, "ticket 'T-bad': it has no job"),
    ({"job": 42}, "ticket 'T-bad': its job is not text"),
    ({"job_encoding": "base64", "job": "!!not base64!!"}, "ticket 'T-bad': its job is not valid base64"),
    ({"job_encoding": "rot13"}, "ticket 'T-bad': its job_encoding 'rot13' is unknown"),
    ({"format": "xml"}, "ticket 'T-bad': its format 'xml' is neither plain nor celery"),
])
@pytest.mark.parametrize("check", [False, True])
def test_a_record_that_cannot_be_restored_refuses_the_whole_restore(redis_server, capsys, broken, why, check):
    client = redis_server.client()
    client.rpush(QKEY, record("T-bad", **broken), record("T-ok-1"), record("T-ok-2"))
    before = state(client)
    with patch_module_args({"port": redis_server.port, "ticket_ids": ["T-ok-1", "T-bad", "T-ok-2"],
                            "state": "restored", "_ansible_check_mode": check}), pytest.raises(SystemExit):
        redis_queue_quarantine.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True
    assert result["msg"].startswith(
        "restore jobs to queue 'enhancement_queue' on redis at 127.0.0.1:%d/0: quarantine_key "
        "'enhancement_queue:quarantine' holds 1 selected record(s) that cannot be restored (%s); nothing was moved"
        % (redis_server.port, why)), result["msg"]
    assert state(client) == before


def test_records_of_a_queue_with_a_longer_name_are_not_this_queues(redis_server, capsys):
    client = redis_server.client()
    client.rpush(QKEY, record("T-1", source=QUEUE + "_v2"), record("T-1", source=["not", "a", "key"]))
    result = run(capsys, {"port": redis_server.port, "ticket_ids": ["T-1"], "state": "restored"})
    assert (result["changed"], result["moved"], result["not_found"]) == (False, [], ["T-1"])
    assert client.llen(QUEUE + "_v2") == 0 and client.llen(QKEY) == 2


def test_a_quarantine_key_of_another_type_loses_no_job(redis_server, capsys):
    """The script removed the job, then its push failed: Redis does not undo the removal."""
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(3)])
    client.hset(QKEY, "not", "a list")
    result = run(capsys, {"port": redis_server.port, "ticket_ids": ["T-1"], "reason": "stuck"})
    assert result["msg"] == ("quarantine jobs of queue 'enhancement_queue' on redis at 127.0.0.1:%d/0: quarantine_key "
                             "'enhancement_queue:quarantine' holds a hash, not a list; nothing was moved"
                             % redis_server.port)
    assert client.llen(QUEUE) == 3


def test_the_scripts_themselves_refuse_a_destination_of_another_type(redis_server):
    """Should the key change type between the check and the move, the script still removes nothing."""
    client = redis_server.client()
    push_plain(client, [("T-1", "acme-corp", iso_ago(60))])
    job = client.lindex(QUEUE, 0)
    client.hset(QKEY, "not", "a list")
    move_out = client.register_script(_quarantine.MOVE_OUT)
    assert move_out(keys=[QUEUE, QKEY], args=[job, b"record", 1]) == -1
    assert client.lrange(QUEUE, 0, -1) == [job]
    client.delete(QKEY)
    client.rpush(QKEY, b"record")
    client.delete(QUEUE)
    client.hset(QUEUE, "not", "a list")
    move_back = client.register_script(_quarantine.MOVE_BACK)
    assert move_back(keys=[QUEUE, QKEY], args=[b"record", job, "LPUSH"]) == -1
    assert client.lrange(QKEY, 0, -1) == [b"record"]


def test_restoring_into_a_list_of_another_type_loses_no_job(redis_server, capsys):
    client = redis_server.client()
    prio = QUEUE + "\x06\x163"
    client.hset(prio, "not", "a list")
    client.rpush(QKEY, record("T-1", source=prio))
    result = run(capsys, {"port": redis_server.port, "ticket_ids": ["T-1"], "state": "restored"})
    assert result["failed"] is True
    assert result["msg"].endswith("queue 'enhancement_queue\\x06\\x163' holds a hash, not a list; nothing was moved")
    assert client.llen(QKEY) == 1


class FailingOn:
    """register_script whose scripts fail on the nth call, as when the server goes away mid-run."""

    def __init__(self, client, nth: int, exc: Exception) -> None:
        self.register, self.nth, self.exc, self.calls = client.register_script, nth, exc, 0

    def __call__(self, script):
        real = self.register(script)

        def call(**kwargs):
            self.calls += 1
            if self.calls == self.nth:
                raise self.exc
            return real(**kwargs)

        return call


@pytest.mark.parametrize(("exc", "lost"), [
    (_redis.redis_exceptions.ConnectionError("Connection closed by server."), True),
    (_redis.redis_exceptions.ResponseError("OOM command not allowed when used memory > 'maxmemory'."), False),
])
def test_a_restore_failing_midway_reports_exactly_what_moved(redis_server, monkeypatch, exc, lost):
    client = redis_server.client()
    client.rpush(QKEY, *(record(f"T-{n}") for n in range(5)))
    records = _quarantine.find_quarantined(client, QKEY, QUEUE, {f"T-{n}" for n in range(5)}, set())
    monkeypatch.setattr(client, "register_script", FailingOn(client, 3, exc))
    with pytest.raises(_quarantine.MoveFailed) as caught:
        _quarantine.restore(client, QKEY, "plain", records, False, QUEUE, "queue 'enhancement_queue'")
    # Newest first: T-4 and T-3 moved, T-2 failed, T-1 and T-0 were not tried.
    assert [job["ticket_id"] for job in caught.value.moved] == ["T-3", "T-4"]
    message = str(caught.value)
    assert message.startswith("restore jobs to queue 'enhancement_queue': moved 2 of 5 jobs (ticket 'T-3', "
                              "ticket 'T-4'), then ticket 'T-2' failed: "), message
    assert message.endswith("; the other 2 were not moved"), message
    assert ("whether ticket 'T-2' moved is unknown" in message) is lost
    assert [json.loads(raw)["ticket_id"] for raw in client.lrange(QUEUE, 0, -1)] == ["T-3", "T-4"]
    assert [json.loads(raw)["ticket_id"] for raw in client.lrange(QKEY, 0, -1)] == ["T-0", "T-1", "T-2"]


def test_a_quarantine_failing_midway_reports_exactly_what_moved(redis_server, monkeypatch, capsys):
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(60)) for n in range(4)])
    real_connect = _redis.connect

    def connect(params):
        connected = real_connect(params)
        connected.register_script = FailingOn(connected, 2, _redis.redis_exceptions.TimeoutError("Timeout reading"))
        return connected

    monkeypatch.setattr(_redis, "connect", connect)
    result = run(capsys, {"port": redis_server.port, "ticket_ids": ["T-0", "T-1", "T-2"], "reason": "stuck"})
    assert result["failed"] is True and result["changed"] is True
    assert [job["ticket_id"] for job in result["moved"]] == ["T-0"]
    assert ": moved 1 of 3 jobs (ticket 'T-0'), then ticket 'T-1' failed: timed out" in result["msg"]
    assert [json.loads(raw)["ticket_id"] for raw in client.lrange(QKEY, 0, -1)] == ["T-0"]
    assert client.llen(QUEUE) == 3


def test_a_base64_job_comes_back_byte_for_byte(redis_server, capsys):
    client = redis_server.client()
    raw = b"\xff\xfe not utf-8 \x00"
    client.rpush(QKEY, record("T-bin", job=base64.b64encode(raw).decode(), job_encoding="base64"))
    result = run(capsys, {"port": redis_server.port, "ticket_ids": ["T-bin"], "state": "restored"})
    assert result["changed"] is True and client.lrange(QUEUE, 0, -1) == [raw]


def test_a_record_with_odd_json_in_its_fields_is_restored_without_a_crash(redis_server, capsys):
    client = redis_server.client()
    client.rpush(QKEY, record("T-1", tenant_id=["a", "b"], task_id={"not": "hashable"}))
    result = run(capsys, {"port": redis_server.port, "ticket_ids": ["T-1"], "state": "restored"})
    assert (result.get("failed"), result["changed"], result["not_found"]) == (None, True, [])
    assert client.llen(QUEUE) == 1 and client.llen(QKEY) == 0
