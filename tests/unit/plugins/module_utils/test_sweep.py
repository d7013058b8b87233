"""The one-pass sweep, on a real redis-server: order kept, nothing lost, with producers and consumers at work."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils import _sweep
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError

SRC, SINK, FINAL = "q", "q:sweep:taken", "q:quarantine"
# plain: producers RPUSH, consumers LPOP; celery: producers LPUSH, consumers BRPOP.
LAYOUTS = {"plain": ("R", "L"), "celery": ("L", "R")}


@pytest.fixture(autouse=True)
def small_windows(monkeypatch):
    monkeypatch.setattr(_sweep, "WINDOW_MAX", 7)
    monkeypatch.setattr(_sweep, "WINDOW_MIN", 1)


def fill(client, layout: str, items: list[bytes]) -> None:
    """Push oldest first, as the producers did."""
    push = client.rpush if LAYOUTS[layout][0] == "R" else client.lpush
    for item in items:
        push(SRC, item)


def oldest_first(client, key: str, layout: str) -> list[bytes]:
    items = client.lrange(key, 0, -1)
    return items if LAYOUTS[layout][1] == "L" else items[::-1]


def quarantine_sweep(client, layout: str, wanted: set[bytes], pace: float = 0.0) -> _sweep.Sweep:
    push, consume = LAYOUTS[layout]
    sweep = _sweep.Sweep(client, SRC, sweep=push, push=push, sink=SINK, sink_side=consume,
                         drain=(FINAL, consume, consume == "R"))

    def decide(window):
        time.sleep(pace)  # the time a controller takes to look at a window, so the platform interleaves
        return [(index, b"taken:" + item, item) for index, item in enumerate(window, 1) if item in wanted]
    for _seen in sweep.run(decide):
        pass
    return sweep


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_sweep_takes_the_chosen_jobs_and_keeps_the_rest_in_order(redis_server, layout):
    client = redis_server.client()
    jobs = [f"job-{n:03d}".encode() for n in range(60)]
    fill(client, layout, jobs)
    client.rpush(FINAL, b"earlier record")
    wanted = {job for n, job in enumerate(jobs) if n % 3 == 0}
    sweep = quarantine_sweep(client, layout, wanted)
    assert oldest_first(client, SRC, layout) == [job for job in jobs if job not in wanted]
    # Taken jobs reach the final list after what was there, in the queue's order.
    assert client.lrange(FINAL, 0, -1) == [b"earlier record"] + [b"taken:" + job for job in jobs if job in wanted]
    assert sorted(sweep.landed) == sorted(wanted) and sweep.missed == []
    assert sweep.steps >= 60 // 7, "windows are small, so the sweep took many steps"
    assert not client.exists(SINK, _sweep.state_key(SRC), f"{SRC}:sweep:kept")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_jobs_pushed_and_taken_while_it_sweeps_are_neither_lost_nor_reordered(redis_server, layout):
    client = redis_server.client()
    push, consume = LAYOUTS[layout]
    jobs = [f"old-{n:04d}".encode() for n in range(400)]
    fill(client, layout, jobs)
    wanted = {job for n, job in enumerate(jobs) if n % 5 == 0}
    consumed, pushed, stop = [], [], threading.Event()

    def platform():
        other = redis_server.client()
        n = 0
        while not stop.is_set():
            item = other.lpop(SRC) if consume == "L" else other.rpop(SRC)
            if item:
                consumed.append(item)
            new = f"new-{n:04d}".encode()
            (other.rpush if push == "R" else other.lpush)(SRC, new)
            pushed.append(new)
            n += 1
            time.sleep(0.0005)

    worker = threading.Thread(target=platform)
    worker.start()
    try:
        sweep = quarantine_sweep(client, layout, wanted, pace=0.003)
    finally:
        stop.set()
        worker.join()
    left = oldest_first(client, SRC, layout)
    taken = [item[len(b"taken:"):] for item in client.lrange(FINAL, 0, -1)]
    assert len(pushed) > 50 and consumed, "the platform worked during the sweep"
    # Every job is in exactly one place.
    assert sorted(consumed + left + taken) == sorted(jobs + pushed)

    # Consumers took the oldest first and the queue kept its order: old jobs in order, then the new ones.
    def age(job):
        return job.startswith(b"new"), job
    assert consumed + left == sorted(consumed + left, key=age)
    assert [job for job in left if job.startswith(b"new")] == [job for job in pushed if job not in consumed]
    # What the sweep took is exactly the wanted jobs the consumers had not taken first.
    assert set(taken) == set(sweep.landed) and set(taken) | (wanted & set(consumed)) == wanted
    assert taken == sorted(taken)


def test_consumers_taking_into_the_last_window_are_told_apart(redis_server):
    client = redis_server.client()
    jobs = [f"job-{n}".encode() for n in range(5)]
    fill(client, "plain", jobs)
    sweep = _sweep.Sweep(client, SRC, sweep="R", push="R", sink=SINK, sink_side="L", drain=(FINAL, "L", False))
    status, window, _gone = sweep.step([])
    # The last window is back in the queue while we decide: the workers go on taking the oldest jobs.
    assert status == "final" and window == jobs and client.lrange(SRC, 0, -1) == jobs
    client.lpop(SRC, 2)  # a worker takes job-0 and job-1 while we decide
    status, _window, gone = sweep.step([(1, b"taken:job-0", "job-0"), (4, b"taken:job-3", "job-3")])
    assert gone == 1 and sweep._missed_last == {1}
    while status != "done":
        status, _window, _gone = sweep.step([])
    assert client.lrange(SRC, 0, -1) == [b"job-2", b"job-4"]
    assert client.lrange(FINAL, 0, -1) == [b"taken:job-3"]


@pytest.mark.parametrize("position", ["front", "back"])
def test_sweeping_from_either_end_of_a_list_nobody_consumes(redis_server, position):
    """Restoring: from the quarantine list's old end for 'back', its new end for 'front'."""
    client = redis_server.client()
    records = [f"rec-{n:02d}".encode() for n in range(30)]
    client.rpush(FINAL, *records)
    client.rpush(SRC, b"queued-a", b"queued-b")
    wanted = {record for n, record in enumerate(records) if n % 2}
    side, sink_side = ("L", "R") if position == "back" else ("R", "L")
    sweep = _sweep.Sweep(client, FINAL, sweep=side, push="R", sink=SRC, sink_side=sink_side)
    for _seen in sweep.run(lambda window: [(i, b"job:" + item, item) for i, item in enumerate(window, 1)
                                           if item in wanted]):
        client.rpush(FINAL, b"pushed meanwhile") if _seen == 7 else None
    back = [b"job:" + record for record in records if record in wanted]
    expected = [b"queued-a", b"queued-b"] + back if position == "back" else back + [b"queued-a", b"queued-b"]
    assert client.lrange(SRC, 0, -1) == expected
    assert client.lrange(FINAL, 0, -1) == [record for record in records if record not in wanted] + \
        [b"pushed meanwhile"]


def test_a_sweep_a_dead_controller_left_is_finished_by_the_next_run(redis_server):
    client = redis_server.client()
    jobs = [f"job-{n:02d}".encode() for n in range(40)]
    fill(client, "plain", jobs)
    dead = _sweep.Sweep(client, SRC, sweep="R", push="R", sink=SINK, sink_side="L", drain=(FINAL, "L", False))
    _status, window, _gone = dead.step([])
    dead.step([(1, b"taken:" + window[0], None)])
    dead.step([])
    assert client.llen(SRC) < 40 and client.exists(f"{SRC}:sweep:kept")
    with pytest.raises(RunbookError, match="another run is sweeping 'q' right now; nothing was moved"):
        _sweep.Sweep(client, SRC, sweep="R", push="R", sink=SINK, sink_side="L")
    client.hset(_sweep.state_key(SRC), "lease_until", 0)  # its lease runs out
    assert _sweep.finish_abandoned(client, SRC, "sweep", "q") is True
    with pytest.raises(RunbookError, match="another run took over"):
        dead.step([])
    assert client.lrange(SRC, 0, -1) == [job for job in jobs if job != window[0]]
    assert client.lrange(FINAL, 0, -1) == [b"taken:" + window[0]]
    assert not client.exists(_sweep.state_key(SRC), SINK, f"{SRC}:sweep:kept")
    assert _sweep.finish_abandoned(client, SRC, "sweep", "q") is False


def test_a_source_that_stops_being_a_list_stops_the_sweep_where_it_is(redis_server):
    client = redis_server.client()
    fill(client, "plain", [f"job-{n}".encode() for n in range(20)])
    sweep = _sweep.Sweep(client, SRC, sweep="R", push="R", sink=SINK, sink_side="L")
    sweep.step([])
    client.set(SINK, "not a list")
    with pytest.raises(RunbookError, match="q:sweep:taken holds a string, not a list; the sweep of 'q' stopped"):
        sweep.step([])
    assert client.exists(_sweep.state_key(SRC))


def test_diagnose_counts_the_jobs_a_sweep_holds_aside(redis_server):
    from ansible_collections.aiagents.runbooks.plugins.module_utils import _queue

    client = redis_server.client()
    fill(client, "plain", [f'{{"ticket_id": "T-{n}", "tenant_id": "acme"}}'.encode() for n in range(30)])
    sweep = _sweep.Sweep(client, SRC, sweep="R", push="R", sink=SINK, sink_side="L")
    sweep.step([])
    sweep.step([])  # the first window is now parked
    read = _queue.read_queue(client, SRC, "plain", 3600, processes=1)
    assert read["held_by_sweep"] == {SRC: 7} and read["keys"][SRC] == 23 and read["depth"] == 30
