"""The collection's modules run in the controller's task worker when they target it; the
usual AnsiballZ execution must give the same result, and stays available."""

from __future__ import annotations

import pytest

from tests.harness.queue_data import iso_ago, push_plain

MODULE = "aiagents.runbooks.redis_queue_info"
# Timing, and the peak memory of the process the module ran in (the task worker is bigger than a module's own).
TIMING = ("scan_seconds", "scanned_at", "peak_rss_mb", "invocation")


def comparable(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in TIMING and not key.startswith("_")}


def test_in_process_and_ansiballz_give_the_same_result(redis_server, run_module):
    push_plain(redis_server.client(), [(f"TICKET-{n}", "acme-corp", iso_ago(600 - n)) for n in range(20)])
    in_process = run_module(MODULE, {"url": redis_server.url}, verbosity=3)
    packaged = run_module(MODULE, {"url": redis_server.url}, verbosity=3, env={"AIAGENTS_RUNBOOKS_IN_PROCESS": "0"})
    assert in_process.rc == packaged.rc == 0
    assert "AnsiballZ_redis_queue_info.py" in packaged.stdout
    assert "AnsiballZ_redis_queue_info.py" not in in_process.stdout
    first, second = comparable(in_process.result), comparable(packaged.result)
    for result in (first, second):
        result["oldest"].pop("age_seconds"), result["newest"].pop("age_seconds")
        result.pop("age_distribution", None)
        # the broker's live figures move between two reads; its judgement must not
        for live in ("memory", "clients"):
            result["broker"].pop(live)
    assert first == second


@pytest.mark.parametrize("in_process", ["1", "0"])
def test_a_failing_module_fails_the_same_way(run_module, in_process):
    run = run_module(MODULE, {"url": "http://not-redis"}, env={"AIAGENTS_RUNBOOKS_IN_PROCESS": in_process})
    assert run.rc != 0 and run.result["_event"] == "runner_on_failed" and "url" in run.result["msg"]
    assert "Traceback" not in run.stdout


@pytest.mark.parametrize("in_process", ["1", "0"])
def test_check_mode_is_honoured(redis_server, run_module, in_process):
    client = redis_server.client()
    push_plain(client, [("TICKET-1", "acme-corp", iso_ago(60))])
    run = run_module("aiagents.runbooks.redis_queue_quarantine",
                     {"url": redis_server.url, "ticket_ids": ["TICKET-1"], "reason": "test"}, check=True,
                     env={"AIAGENTS_RUNBOOKS_IN_PROCESS": in_process})
    assert run.rc == 0 and run.result["changed"] is True, run.result.get("msg")
    assert client.llen("enhancement_queue") == 1 and not client.exists("enhancement_queue:quarantine")
