"""redis_queue_info against a real Redis, in both layouts, run through Ansible."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from tests.harness.queue_data import iso_ago, push_plain, send_celery

MODULE = "aiagents.runbooks.redis_queue_info"


def info(run_module, server, **args):
    run = run_module(MODULE, {"url": server.url, **args})
    assert run.rc == 0, run.stdout
    return run.result


def ids(result):
    return [finding["id"] for finding in result["findings"]]


def test_plain_still_queue_is_read_exactly(redis_server, run_module):
    client = redis_server.client()
    # 75 jobs: acme-corp holds 60, the oldest waited 45 minutes.
    jobs = [(f"TICKET-{n}", "acme-corp" if n % 5 else "globex", iso_ago(2715 - n * 30)) for n in range(75)]
    push_plain(client, jobs)
    result = info(run_module, redis_server)

    assert result["format"] == "plain" and result["format_detected"] is True
    assert result["depth"] == 75 and result["scanned"] == 75 and result["consistent"] is True
    assert result["tenants"] == [{"tenant_id": "acme-corp", "jobs": 60, "share": 0.8},
                                 {"tenant_id": "globex", "jobs": 15, "share": 0.2}]
    oldest, newest = result["oldest"], result["newest"]
    assert (oldest["ticket_id"], oldest["position"]) == ("TICKET-0", {"key": "enhancement_queue", "index": 0})
    assert newest["ticket_id"] == "TICKET-74"
    assert 2715 <= oldest["age_seconds"] <= 2715 + 30
    # Older than 30 min: created 2715 - n*30 s ago > 1800 s  <=>  n <= 30 (15 s clear of the edge)
    assert result["older_than"]["count"] == 31
    assert sum(result["age_distribution"].values()) == 75
    assert sorted(ids(result)) == ["queue_depth_elevated", "queue_oldest_job_stale", "queue_tenant_flood"]
    flood = next(f for f in result["findings"] if f["id"] == "queue_tenant_flood")
    assert flood["evidence"]["tenant_id"] == "acme-corp" and flood["evidence"]["share"] == 0.8
    elevated = next(f for f in result["findings"] if f["id"] == "queue_depth_elevated")
    assert elevated["severity"] == "low"  # 75 is not above the capacity threshold


def test_celery_envelopes_with_priorities_and_unacked(redis_server, run_module):
    sent = send_celery(redis_server.url, [(f"T-{n}", "globex", iso_ago(600 + n)) for n in range(110)])
    sent_at = time.time()
    prio_created = iso_ago(4000, now=sent_at)  # whole seconds: up to 1 s before sent_at - 4000
    send_celery(redis_server.url, [("T-prio", "acme-corp", prio_created)], priority=6)
    send_celery(redis_server.url, [("T-noage", "acme-corp", None)])
    client = redis_server.client()
    # A delivery Celery never acknowledged, two hours ago (kombu's unacked layout).
    client.hset("unacked", "tag-1", b'[{"body": "W1tdLCB7InRlbmFudF9pZCI6ICJnbG9iZXgiLCAidGlja2V0X2lkIjogIlQtZGVhZCJ9LCB7fV0=",'
                b' "headers": {"id": "dead-1", "task": "aiagents.enhance_ticket"},'
                b' "properties": {"body_encoding": "base64"}}, "", "enhancement_queue"]')
    client.zadd("unacked_index", {"tag-1": time.time() - 7200})

    result = info(run_module, redis_server)
    returned_at = time.time()
    assert result["format"] == "celery"
    assert result["depth"] == 112
    assert result["keys"]["enhancement_queue"] == 111 and result["keys"]["enhancement_queue\\x06\\x166"] == 1
    assert result["oldest"]["ticket_id"] == "T-prio"
    assert result["oldest"]["position"]["key"] == "enhancement_queue\\x06\\x166"
    # Its age: from its created_at to the moment of the scan, which lies between sending it and the answer.
    oldest = result["oldest"]
    assert oldest["created_at"] == prio_created and oldest["tenant_id"] == "acme-corp"
    created = datetime.strptime(prio_created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    scanned = datetime.fromisoformat(result["scanned_at"].replace("Z", "+00:00")).timestamp()
    assert sent_at <= scanned <= returned_at
    assert oldest["age_seconds"] == pytest.approx(scanned - created, abs=0.002)
    assert 4000 <= oldest["age_seconds"] <= 4000 + (returned_at - sent_at) + 1.0, (oldest, returned_at - sent_at)
    assert result["age_unknown"] == 1
    # LPUSH layout: the first job sent is the oldest and sits at index -1 of the base list.
    assert result["newest"]["task_id"] == sent[0] and result["newest"]["position"]["index"] == 110
    # Every tenant, every job: T-prio and T-noage are acme-corp's; the unacked delivery is not queued.
    assert result["tenants"] == [{"tenant_id": "globex", "jobs": 110, "share": 0.9821},
                                 {"tenant_id": "acme-corp", "jobs": 2, "share": 0.0179}]
    assert sum(tenant["jobs"] for tenant in result["tenants"]) == result["depth"]
    assert result["unacked"]["count"] == 1 and result["unacked"]["stale_count"] == 1
    assert result["unacked"]["stale_sample"][0]["ticket_id"] == "T-dead"
    assert sorted(ids(result)) == ["queue_depth_high", "queue_oldest_job_stale", "queue_tenant_flood",
                                   "queue_unacked_stale"]
    high = next(f for f in result["findings"] if f["id"] == "queue_depth_high")
    assert high["severity"] == "high" and high["evidence"]["page"] is False


def test_thresholds_are_overridable(redis_server, run_module):
    push_plain(redis_server.client(), [(f"T-{n}", f"tenant-{n % 3}", iso_ago(120)) for n in range(20)])
    result = info(run_module, redis_server, thresholds={"depth_elevated": 10, "stale_seconds": 60})
    assert sorted(ids(result)) == ["queue_depth_elevated", "queue_oldest_job_stale"]
    assert info(run_module, redis_server)["findings"] == []


def test_missing_key_is_an_empty_queue(redis_server, run_module):
    result = info(run_module, redis_server)
    assert (result["depth"], result["oldest"], result["findings"]) == (0, None, [])


def test_garbage_huge_items_and_bad_timestamps_are_counted_not_fatal(redis_server, run_module):
    client = redis_server.client()
    push_plain(client, [("T-ok", "acme-corp", iso_ago(10)), ("T-future", "acme-corp", iso_ago(-3600)),
                        ("T-bad", "acme-corp", "yesterday-ish")])
    client.rpush("enhancement_queue", b"\x00\xff\xfe binary \x81", b"x" * (1 << 20), b'{"ticket_id": "T-big", '
                 b'"tenant_id": "globex", "blob": "' + b"y" * (1 << 20) + b'"}')
    result = info(run_module, redis_server)
    assert result["depth"] == 6
    assert result["malformed"]["count"] == 2
    assert [sample["index"] for sample in result["malformed"]["sample"]] == [3, 4]
    assert all(len(sample["preview"]) < 200 for sample in result["malformed"]["sample"])
    assert result["created_at_in_future"] == 1 and result["created_at_unparsable"] == 1
    assert result["age_unknown"] == 1  # T-big has no created_at
    assert "queue_malformed_items" in ids(result)


def monitored(server, action, clients: list | None = None) -> tuple[object, list[list[str]]]:
    """Run `action` while MONITOR records every command the server receives; (its result, the commands split).
    With `clients`, each command's client port is appended to it, in the same order."""
    seen: list[list[str]] = []
    ready = threading.Event()

    def monitor():
        with server.client().monitor() as mon:
            ready.set()
            for command in mon.listen():
                if command["command"].upper().startswith("ECHO END-OF-TEST"):
                    return
                seen.append(command["command"].split())
                if clients is not None:
                    clients.append(command.get("client_port"))

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    assert ready.wait(5)
    result = action()
    server.client().echo("end-of-test")
    watcher.join(10)
    assert not watcher.is_alive()
    return result, seen


def fill_celery(server, base_jobs: int) -> dict[str, int]:
    """A Celery queue as a busy platform has it: priority lists, and deliveries awaiting their ack."""
    send_celery(server.url, [(f"T-{n}", "globex", iso_ago(600 + n)) for n in range(300)])
    for priority, count in ((3, 40), (6, 25), (9, 5)):
        send_celery(server.url, [(f"T-p{priority}-{n}", "acme-corp", iso_ago(900)) for n in range(count)],
                    priority=priority)
    client = server.client()
    real = client.lrange("enhancement_queue", 0, -1)
    with client.pipeline(transaction=False) as pipe:  # more of the same genuine envelopes, to pass PAGE_MAX
        for n in range(base_jobs - len(real)):
            pipe.lpush("enhancement_queue", real[n % len(real)])
        pipe.execute()
    # kombu's unacked layout: delivery tag -> [message, exchange, routing key], and tag -> delivery time.
    delivered = real[:8]
    for n, raw in enumerate(delivered):
        tag = f"tag-{n}"
        client.hset("unacked", tag, b'[' + raw + b', "", "enhancement_queue"]')
        client.zadd("unacked_index", {tag: time.time() - (7200 if n < 6 else 10)})  # six of them stale
    return {key.decode(): client.llen(key) for key in client.keys("enhancement_queue*") if client.type(key) == b"list"}


@pytest.mark.parametrize("layout", ["plain", "celery"])
def test_reads_nothing_but_read_commands(redis_server, run_module, layout):
    """MONITOR sees every command the module sends: none of them writes, and every list is read in pages."""
    from ansible_collections.aiagents.runbooks.plugins.module_utils._queue import PAGE_MAX, SAMPLE_SIZE

    client = redis_server.client()
    if layout == "plain":
        push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(n)) for n in range(PAGE_MAX + 1000)])
        lists = {"enhancement_queue": PAGE_MAX + 1000}
    else:
        lists = fill_celery(redis_server, PAGE_MAX + 500)
        assert len(lists) == 4 and lists["enhancement_queue"] == PAGE_MAX + 500  # base and priorities 3, 6, 9
    result, seen = monitored(redis_server, lambda: info(run_module, redis_server))
    assert result["depth"] == sum(lists.values())

    names = {command[0].upper() for command in seen}
    allowed = {"PING", "TYPE", "LLEN", "LINDEX", "LRANGE", "HLEN", "ZCOUNT", "ZRANGEBYSCORE", "HMGET", "CLIENT",
               "HELLO", "SELECT", "AUTH", "INFO", "CONFIG"}
    assert names <= allowed, names - allowed
    # the broker's health is read (INFO); CONFIG, which MONITOR does not show, only reads (test_broker_health)
    assert "INFO" in names
    assert {command[1].strip('"').upper() for command in seen if command[0].upper() == "CONFIG"} <= {"GET"}

    # Every LRANGE asks for one bounded page - never `LRANGE key 0 -1`, never more than PAGE_MAX items -
    # and the pages of each list follow one another from its head to its end: all of it, nothing twice.
    ranges: dict[str, list[tuple[int, int]]] = {}
    for command in seen:
        if command[0].upper() == "LRANGE":
            key, start, stop = command[1].strip('"').encode().decode("unicode_escape"), int(command[2]), int(command[3])
            assert 0 <= start <= stop, command
            assert stop - start + 1 <= PAGE_MAX, command
            ranges.setdefault(key, []).append((start, stop))
    assert sorted(ranges) == sorted(lists)
    for key, pages in ranges.items():
        assert pages[0][0] == 0 and pages[-1][1] >= lists[key] - 1, (key, pages)
        assert all(later[0] == earlier[1] + 1 for earlier, later in zip(pages, pages[1:])), (key, pages)
    assert len(ranges["enhancement_queue"]) >= 2  # more than PAGE_MAX items: paged

    if layout == "celery":
        assert result["unacked"]["count"] == 8 and result["unacked"]["stale_count"] == 6
        # The unacked hash is sampled, never read whole (no HGETALL / HKEYS / HVALS).
        samples = [command for command in seen if command[0].upper() in ("ZRANGEBYSCORE", "HMGET")]
        assert [command[0].upper() for command in samples] == ["ZRANGEBYSCORE", "HMGET"], samples
        limit = samples[0].index("LIMIT")
        assert samples[0][1] == "unacked_index" and int(samples[0][limit + 1]) == 0
        assert 0 < int(samples[0][limit + 2]) <= SAMPLE_SIZE
        assert samples[1][1] == "unacked" and len(samples[1]) - 2 == SAMPLE_SIZE  # HMGET unacked tag...


def test_a_large_queue_is_read_by_two_processes_each_item_once(redis_server, run_module):
    """From PARALLEL_FROM items on, two connections each read their half; together every item once."""
    from ansible_collections.aiagents.runbooks.plugins.module_utils._queue import PARALLEL_FROM

    depth = PARALLEL_FROM + 5000
    push_plain(redis_server.client(), [(f"T-{n}", f"tenant-{n % 3}", iso_ago(3600 if n < 7 else 5))
                                       for n in range(depth)])
    ports: list = []
    result, seen = monitored(redis_server, lambda: info(run_module, redis_server), ports)

    assert result["scan_processes"] == 2 and result["scanned"] == depth and result["consistent"] is True
    assert {row["tenant_id"]: row["jobs"] for row in result["tenants"]} == \
        {f"tenant-{n}": len(range(n, depth, 3)) for n in range(3)}
    assert result["older_than"]["count"] == 7
    assert [job["ticket_id"] for job in result["older_than"]["sample"]] == [f"T-{n}" for n in range(5)]
    pages = sorted((int(command[2]), int(command[3]), port) for command, port in zip(seen, ports)
                   if command[0].upper() == "LRANGE")
    assert pages[0][0] == 0 and pages[-1][1] >= depth - 1
    assert all(later[0] == earlier[1] + 1 for earlier, later in zip(pages, pages[1:]))
    assert len({port for _start, _stop, port in pages}) == 2


def test_moving_queue_is_flagged_approximate(redis_server, run_module):
    client = redis_server.client()
    push_plain(client, [(f"T-{n}", "acme-corp", iso_ago(5)) for n in range(60000)])
    stop = threading.Event()

    def consumer():
        local = redis_server.client()
        while not stop.is_set():
            local.lpop("enhancement_queue")

    worker = threading.Thread(target=consumer, daemon=True)
    worker.start()
    try:
        result = info(run_module, redis_server)
    finally:
        stop.set()
        worker.join(5)
    assert result["consistent"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"url": "redis://no-such-host.invalid:6379/0"}, "connect to redis at no-such-host.invalid:6379/0: unreachable"),
        ({"host": "127.0.0.1", "port": 1}, "connect to redis at 127.0.0.1:1/0: unreachable"),
        ({"url": "http://127.0.0.1:6379"}, "connect to redis: url must be redis://"),
        ({"url": "redis://127.0.0.1:65536/0"}, "connect to redis: url must be redis://"),
    ],
)
def test_unreachable_servers_fail_with_one_clear_message(run_module, args, message):
    run = run_module(MODULE, args)
    assert run.rc != 0
    assert run.result["msg"].startswith(message), run.result["msg"]
    assert "Traceback" not in run.stdout


def test_wrong_password_and_wrong_type(tmp_path, run_module):
    from tests.harness.servers import RedisServer

    server = RedisServer(tmp_path, password="s3cret-broker-pw")
    server.start()
    try:
        run = run_module(MODULE, {"host": "127.0.0.1", "port": server.port, "password": "wrong-pw"})
        assert run.rc != 0 and "authentication failed" in run.result["msg"]
        assert "wrong-pw" not in run.stdout
        server.client().hset("enhancement_queue", "not", "a list")
        run = run_module(MODULE, {"host": "127.0.0.1", "port": server.port, "password": "s3cret-broker-pw"})
        assert run.rc != 0
        assert run.result["msg"] == ("read queue 'enhancement_queue' on redis at 127.0.0.1:%d/0: "
                                     "enhancement_queue is a hash, not a list" % server.port)
        assert "s3cret-broker-pw" not in run.stdout
    finally:
        server.kill()


def test_url_password_never_reaches_output_even_at_vvv(tmp_path, run_module):
    from tests.harness.servers import RedisServer

    server = RedisServer(tmp_path, password="hunter2-secret")
    server.start()
    try:
        run = run_module(MODULE, {"url": "redis://:hunter2-secret@127.0.0.1:%d/0" % server.port}, verbosity=3)
        assert run.rc == 0, run.stdout
        assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.stdout  # -vvv echoes the arguments, masked
        assert "hunter2-secret" not in run.stdout
    finally:
        server.kill()


# A password a URL parser cuts: "/" ends the host, "#" starts a fragment, "@" ends the userinfo.
AWKWARD = "Sl/ash#Hash@At-Secret9"


def leaked(stdout: str) -> list[str]:
    """The forms of AWKWARD (and the pieces a parser makes of it) that appear in the output."""
    from urllib.parse import quote

    return [form for form in (AWKWARD, quote(AWKWARD, safe=""), quote(AWKWARD), "At-Secret9", "Hash@At")
            if form in stdout]


def run_with_secret_url(run_module, url: str, **args):
    """Run with the URL passed as a playbook passes it, through a variable (here the environment), at -vvv.

    On a failed task ansible-core 2.19 shows its source: for an ad-hoc task that
    is the literal arguments, whatever the module masks; a playbook shows its
    own text, where credentials are variables.
    """
    return run_module(MODULE, {"url": "{{ lookup('env', 'RUNBOOK_TEST_URL') }}", **args}, verbosity=3,
                      env={"RUNBOOK_TEST_URL": url})


def test_an_awkward_password_never_reaches_output_on_success_or_failure(tmp_path, run_module):
    from tests.harness.servers import RedisServer

    server = RedisServer(tmp_path, password=AWKWARD)
    server.start()
    url = f"redis://:{AWKWARD}@127.0.0.1:{server.port}/0"
    try:
        server.client().rpush("enhancement_queue", b'{"ticket_id": "T-1", "tenant_id": "acme-corp"}')
        ok = run_module(MODULE, {"url": url}, verbosity=3)
        assert ok.rc == 0 and ok.result["depth"] == 1, ok.stdout  # the right server: the password was read whole
        assert leaked(ok.stdout) == []
        by_option = run_module(MODULE, {"host": "127.0.0.1", "port": server.port, "password": AWKWARD}, verbosity=3)
        assert by_option.rc == 0 and by_option.result["depth"] == 1 and leaked(by_option.stdout) == []
        wrong = run_with_secret_url(run_module, url.replace("Secret9", "Secret8"))
        assert wrong.rc != 0 and wrong.result["msg"].endswith("authentication failed (wrong or missing password)")
        assert leaked(wrong.stdout) == []
    finally:
        server.kill()
    gone = run_with_secret_url(run_module, url)
    assert gone.result["msg"].startswith(f"connect to redis at 127.0.0.1:{server.port}/0: unreachable"), gone.stdout
    assert leaked(gone.stdout) == []
    malformed = run_with_secret_url(run_module, f"redis://:{AWKWARD}@127.0.0.1:{server.port}/abc")
    assert malformed.result["msg"].startswith("connect to redis: url must be redis://")
    assert leaked(malformed.stdout) == []


def test_a_database_that_is_not_a_number_is_refused_not_read_as_0(redis_server, run_module):
    push_plain(redis_server.client(), [("T-1", "acme-corp", iso_ago(5))])
    run = run_module(MODULE, {"url": f"redis://127.0.0.1:{redis_server.port}/abc"})
    assert run.rc != 0
    assert run.result["msg"] == ("connect to redis: url must be redis://[[user]:password@]host[:port][/db] or "
                                 "rediss://...: the database after the host must be a number, got 'abc'")


def test_a_missing_ca_file_is_named_not_called_unreachable(tmp_path, run_module):
    missing = tmp_path / "ca.pem"
    run = run_module(MODULE, {"url": "rediss://127.0.0.1:6390/0", "tls_ca_cert": str(missing)})
    assert run.rc != 0
    assert run.result["msg"] == f"connect to redis at 127.0.0.1:6390/0: tls_ca_cert {missing}: no such file"


def test_thresholds_out_of_range_are_refused_naming_them(redis_server, run_module):
    run = run_module(MODULE, {"url": redis_server.url, "thresholds": {"stale_seconds": "inf"}})
    assert run.rc != 0
    assert run.result["msg"] == "read queue 'enhancement_queue': thresholds.stale_seconds must be a finite number, got inf"


def test_a_silent_server_costs_one_connect_timeout_even_with_tls(run_module):
    """redis-py retried a failed connect ten times: a TLS port that never answered took 11 x connect_timeout."""
    from tests.harness.slow import silent_server

    started = time.monotonic()
    refused = run_module(MODULE, {"host": "127.0.0.1", "port": 1})  # Ansible's own cost, for comparison
    baseline = time.monotonic() - started
    assert refused.rc != 0
    for tls in (False, True):
        with silent_server() as server:
            started = time.monotonic()
            run = run_module(MODULE, {"host": "127.0.0.1", "port": server.port, "tls": tls, "connect_timeout": 1.5})
            took = time.monotonic() - started
        assert run.rc != 0 and "timed out (no connection within connect_timeout=1.5 s" in run.result["msg"]
        assert took < baseline + 1.5 + 3, (tls, took, baseline)
        assert server.connections == 1
