"""celery_workers_info against real Celery workers on a real Redis broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import celery
import kombu
import pytest

from tests.harness.queue_data import iso_ago, send_celery

MODULE = "aiagents.runbooks.celery_workers_info"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker(redis_server):
    """A real `celery worker` process consuming enhancement_queue, concurrency 2."""
    env = {**os.environ, "TEST_BROKER_URL": redis_server.url, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.harness.celery_app", "worker", "-Q", "enhancement_queue",
         "-c", "2", "-n", "w1@runbooks-test", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    client = redis_server.client()
    deadline = time.monotonic() + 30
    # The worker binds its control queue once it is ready to answer pings.
    while not client.exists("_kombu.binding.celery.pidbox") and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_live_worker_its_pool_queues_and_running_task(redis_server, celery_worker, run_module):
    send_celery_long(redis_server.url)
    deadline = time.monotonic() + 20
    while True:
        run = run_module(MODULE, {"url": redis_server.url, "long_task_seconds": 0.5})
        assert run.rc == 0, run.stdout
        result = run.result
        running = [task for worker in result["workers"] for task in worker["active"]]
        if (running and running[0]["runtime_seconds"] > 1) or time.monotonic() > deadline:
            break
    assert result["worker_count"] == 1 and result["pings"] == 1
    worker = result["workers"][0]
    assert worker["name"] == "w1@runbooks-test" and worker["ping"] is True
    assert worker["queues"] == ["enhancement_queue"]
    assert worker["software"]["celery"] == celery.__version__ and worker["software"]["kombu"] == kombu.__version__
    assert worker["pool"]["max_concurrency"] == 2 and len(worker["pool"]["processes"]) == 2
    task = worker["active"][0]
    assert (task["ticket_id"], task["tenant_id"]) == ("T-slow", "acme-corp")
    assert 1 < task["runtime_seconds"] < 8
    assert [f["id"] for f in result["findings"]] == ["worker_task_long_running"]
    assert result["findings"][0]["evidence"]["tasks"][0]["ticket_id"] == "T-slow"
    # The queue was not touched by the inspection: the job is being worked on, not re-queued or lost.
    assert redis_server.client().llen("enhancement_queue") == 0


def send_celery_long(url: str) -> None:
    from tests.harness.celery_app import TASK, producer

    app = producer(url)
    app.send_task(TASK, kwargs={"tenant_id": "acme-corp", "ticket_id": "T-slow", "created_at": iso_ago(0),
                                "seconds": 8}, queue="enhancement_queue")
    app.close()


def test_no_worker_is_the_queue_no_workers_finding(redis_server, celery_worker, run_module):
    os.killpg(celery_worker.pid, signal.SIGKILL)
    celery_worker.wait()
    send_celery(redis_server.url, [("T-1", "acme-corp", iso_ago(5))])
    result = run_module(MODULE, {"url": redis_server.url, "timeout": 0.5}).result
    assert result["worker_count"] == 0
    assert result["findings"][0]["id"] == "queue_no_workers"
    assert result["findings"][0]["severity"] == "critical"
    assert result["findings"][0]["runbook"] == "worker_failures"


def test_a_dead_broker_is_one_clear_message(redis_server, run_module):
    redis_server.kill()
    run = run_module(MODULE, {"url": redis_server.url})
    assert run.rc != 0
    assert run.result["msg"].startswith(f"connect to redis at 127.0.0.1:{redis_server.port}/0: unreachable")


def test_no_answer_is_confirmed_by_a_second_longer_ping(redis_server, run_module):
    """Nobody answers the short ping: the confirming ping waits its own time
    before the page-worthy queue_no_workers is concluded."""
    for confirm, pings in ((0, 1), (2.0, 2)):
        started = time.monotonic()
        result = run_module(MODULE, {"url": redis_server.url, "timeout": 0.3, "confirm_timeout": confirm}).result
        took = time.monotonic() - started
        assert [f["id"] for f in result["findings"]] == ["queue_no_workers"]
        assert result["pings"] == pings
        assert took >= 0.3 + confirm, took


def test_a_worker_that_answers_only_the_confirming_ping_is_counted(redis_server, celery_worker, run_module):
    """A worker frozen (SIGSTOP) while the short ping is out cannot answer it;
    thawed once that ping's window has passed, it answers the confirming one."""
    os.killpg(celery_worker.pid, signal.SIGSTOP)
    monitor = redis_server.client(socket_timeout=120).monitor()  # Ansible may take more than redis-py's 5 s to start
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(run_module, MODULE, {"url": redis_server.url, "timeout": 0.2, "confirm_timeout": 8})
        with monitor as commands:
            for command in commands.listen():
                if command["command"].startswith("PUBLISH") and "pidbox" in command["command"]:
                    break  # the first ping is out
        time.sleep(0.6)  # its 0.2 s window is over
        os.killpg(celery_worker.pid, signal.SIGCONT)
        result = call.result(timeout=120).result
    assert result["pings"] == 2, result
    assert result["worker_count"] == 1
    assert result["workers"][0]["name"] == "w1@runbooks-test"
    assert result["findings"] == []


def test_the_ping_ends_once_the_expected_workers_answered(redis_server, celery_worker, run_module):
    """Told how many workers run, the ping does not wait out its timeout when they all
    answered; told of one more than answers, it waits the whole timeout for it."""
    def timed(params):
        started = time.monotonic()
        result = run_module(MODULE, {"url": redis_server.url, **params}).result
        return time.monotonic() - started, result

    baseline = timed({"timeout": 0.2})[0]
    took, result = timed({"timeout": 8, "expected_workers": 1})
    assert result["worker_count"] == 1 and result["workers"][0]["ping"] is True
    assert took < baseline + 4, (took, baseline)
    took, result = timed({"timeout": 3, "expected_workers": 2})
    assert result["worker_count"] == 1
    assert took >= 3, took


AWKWARD = "Sl/ash#Hash@At-Secret9"


def test_a_broker_password_with_slash_hash_and_at_reaches_the_broker_whole_and_nowhere_else(tmp_path, run_module):
    """kombu parses the broker URL itself and cut the password at "/": the URL is now rebuilt, every part encoded."""
    from urllib.parse import quote

    from tests.harness.servers import RedisServer

    server = RedisServer(tmp_path, password=AWKWARD)
    server.start()
    try:
        run = run_module(MODULE, {"url": f"redis://:{AWKWARD}@127.0.0.1:{server.port}/0", "timeout": 0.3,
                                  "confirm_timeout": 0}, verbosity=3)
    finally:
        server.kill()
    assert run.rc == 0, run.stdout
    assert (run.result["worker_count"], run.result["pings"]) == (0, 1)  # the ping went out through the broker
    assert [form for form in (AWKWARD, quote(AWKWARD, safe=""), "At-Secret9") if form in run.stdout] == []


def test_a_silent_broker_costs_one_connect_timeout(run_module):
    """redis-py retried a connect that timed out ten times: 11 x connect_timeout before any message."""
    from tests.harness.slow import silent_server

    started = time.monotonic()
    assert run_module(MODULE, {"host": "127.0.0.1", "port": 1}).rc != 0  # Ansible's own cost, for comparison
    baseline = time.monotonic() - started
    with silent_server() as server:
        started = time.monotonic()
        run = run_module(MODULE, {"host": "127.0.0.1", "port": server.port, "connect_timeout": 2})
        took = time.monotonic() - started
    assert run.rc != 0
    assert run.result["msg"] == (f"connect to redis at 127.0.0.1:{server.port}/0: timed out "
                                 "(no connection within connect_timeout=2 s)")
    assert took < baseline + 2 + 3, (took, baseline)


def test_waits_out_of_range_are_refused_naming_them(run_module):
    run = run_module(MODULE, {"url": "redis://127.0.0.1:1/0", "timeout": -1})
    assert run.rc != 0
    assert run.result["msg"] == "inspect celery workers via redis at 127.0.0.1:1/0: timeout must be above 0, got -1.0"
    run = run_module(MODULE, {"url": "redis://127.0.0.1:1/0", "expected_workers": -2})
    assert run.rc != 0
    assert run.result["msg"].endswith("expected_workers must be at least 0, got -2"), run.result["msg"]
