from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import analyse_logs, worker_findings

LOGS = """\
[2026-11-27 10:00:00] celery@w1 ready.
processing tenant_id=acme-corp ticket_id=TICKET-7
[2026-11-27 10:00:05] celery@w1 ready.
processing tenant_id=acme-corp ticket_id=TICKET-7
MemoryError
[2026-11-27 10:00:09] celery@w1 ready.
Traceback (most recent call last):
  File "worker.py", line 3, in run
ValueError: invalid DATABASE_POOL_SIZE='ten': expected an integer
redis.exceptions.ConnectionError: Error 111 connecting to redis:6379. Connection refused.
""".splitlines()


def worker(name, **overrides):
    record = {"name": name, "state": "running", "running": True, "restart_count": 0, "exit_code": 0,
              "oom_killed": False, "memory_limit_bytes": 536870912, "signals": analyse_logs([])}
    record.update(overrides)
    return record


def test_logs_reveal_oom_exception_dependency_and_the_job_before_each_restart():
    signals = analyse_logs(LOGS)
    assert signals["oom"] == 1
    assert "ValueError: invalid DATABASE_POOL_SIZE='ten': expected an integer" in signals["exception_lines"]
    assert signals["exceptions"]["MemoryError"] == 1
    assert signals["exceptions"]["redis.exceptions.ConnectionError"] == 1
    assert signals["dependency_errors"] and "Connection refused" in signals["dependency_errors"][0]
    assert signals["last_ticket_before_restart"] == ["TICKET-7", "TICKET-7"]


def test_findings_from_state_and_logs():
    workers = [worker("w1", state="restarting", running=False, restart_count=6, exit_code=137, oom_killed=True,
                      signals=analyse_logs(LOGS)),
               worker("w2", state="exited", running=False, exit_code=139)]
    ids = {item["id"]: item for item in worker_findings(workers)}
    assert set(ids) == {"workers_all_down", "worker_crash_loop", "worker_oom_killed", "worker_segfault",
                        "worker_exception", "worker_dependency_unreachable", "worker_poison_job"}
    assert ids["workers_all_down"]["severity"] == "critical"
    assert "TICKET-7" in ids["worker_poison_job"]["summary"]
    assert ids["worker_poison_job"]["evidence"]["poison_tickets"] == ["TICKET-7"]
    assert ids["worker_dependency_unreachable"]["runbook"] == "high_queue_depth"  # a Redis error


def test_only_a_ticket_before_two_or_more_crashes_is_poison():
    once = analyse_logs(["celery@w1 ready", "job started ticket_id=T-A", "celery@w1 ready",
                         "job started ticket_id=T-B", "celery@w1 ready", "job started ticket_id=T-B",
                         "celery@w1 ready"])
    assert once["last_ticket_before_restart"] == ["T-A", "T-B", "T-B"]
    found = {item["id"]: item for item in worker_findings([worker("w1", signals=once)])}
    assert found["worker_poison_job"]["evidence"]["poison_tickets"] == ["T-B"]
    assert found["worker_poison_job"]["evidence"]["tickets"] == {"T-A": 1, "T-B": 2}


def test_healthy_workers_have_no_findings():
    assert worker_findings([worker("w1"), worker("w2")]) == []


def test_a_normal_stop_is_information_only():
    found = worker_findings([worker("w1"), worker("w2", state="exited", running=False, exit_code=143)])
    assert [(item["id"], item["severity"]) for item in found] == [("worker_sigterm", "info")]


def test_dependency_errors_count_only_after_the_last_recovery():
    refused = "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6380. Connection refused."
    recovered = analyse_logs([refused, "[INFO/MainThread] Connected to redis://127.0.0.1:6380/0", "job started"])
    assert recovered["dependency_errors"] == []
    after_a_success = analyse_logs([refused, "job succeeded tenant_id=a ticket_id=T-1 duration_s=0.20"])
    assert after_a_success["dependency_errors"] == []
    still_failing = analyse_logs(["celery@w1 ready."] + [refused] * 7)
    assert still_failing["dependency_errors"] == [refused] * 5


def test_the_dependency_named_by_the_errors_decides_the_next_runbook():
    database = ('psycopg2.OperationalError: connection to server at "127.0.0.1", port 5433 failed: '
                'Connection refused')
    broker = "redis unavailable: Error 111 connecting to 127.0.0.1:6380. Connection refused."
    for lines, names, runbook in (([database], ["postgres"], "database_connection_issues"),
                                  ([broker], ["redis"], "high_queue_depth"),
                                  ([broker, database], ["postgres", "redis"], "database_connection_issues")):
        found = {item["id"]: item for item in worker_findings([worker("w1", signals=analyse_logs(lines))])}
        unreachable = found["worker_dependency_unreachable"]
        assert unreachable["evidence"]["dependencies"] == names
        assert unreachable["evidence"]["workers"] == ["w1"]
        assert unreachable["runbook"] == runbook


def test_each_dependency_clears_only_on_its_own_proof():
    database = 'psycopg2.OperationalError: connection to server at "127.0.0.1", port 5433 failed: Connection refused'
    broker = "consumer: Cannot connect to redis://127.0.0.1:6380/0: Error 111 connecting to 127.0.0.1:6380."
    # Retries of the broker never push the database error out of view.
    both = analyse_logs([database] + [broker] * 7)
    assert both["unreachable"] == ["postgres", "redis"] and database in both["dependency_errors"]
    # The broker reconnecting says nothing about PostgreSQL.
    reconnected = analyse_logs([database, broker, "[INFO/MainThread] Connected to redis://127.0.0.1:6380/0"])
    assert reconnected["unreachable"] == ["postgres"] and reconnected["dependency_errors"] == [database]
    # A new worker process, or a job that went through, clears both.
    assert analyse_logs([database, broker, "celery@w1 ready."])["unreachable"] == []
    succeeded = analyse_logs([database, broker, "job succeeded tenant_id=a ticket_id=T-1 duration_s=0.2"])
    assert succeeded["unreachable"] == [] and succeeded["jobs_succeeded"] == 1


def test_a_poison_job_and_a_lost_dependency_name_their_own_things():
    lines = ["celery@w1 ready", "job started ticket_id=T-P", "celery@w1 ready", "job started ticket_id=T-P",
             "celery@w1 ready", "redis unavailable: Error 111 connecting to 127.0.0.1:6380. Connection refused."]
    found = {item["id"]: item for item in worker_findings([worker("w1", signals=analyse_logs(lines)), worker("w2")])}
    assert found["worker_poison_job"]["evidence"]["workers"] == ["w1", "w2"]
    assert found["worker_dependency_unreachable"]["evidence"]["dependencies"] == ["redis"]
    assert found["worker_dependency_unreachable"]["evidence"]["workers"] == ["w1"]


def crash_loop_ids(**overrides):
    return {item["id"] for item in worker_findings([worker("w1", **overrides)], crash_loop_restarts=5)}


def test_crash_loops_are_counted_over_the_last_hour():
    # Many restarts over the container's life, few in the last hour: not a crash loop now.
    assert "worker_crash_loop" not in crash_loop_ids(restart_count=40, restarts_last_hour=1)
    # Few restarts in total can still be many in the hour (the count Docker keeps resets on recreate).
    assert "worker_crash_loop" in crash_loop_ids(restart_count=0, restarts_last_hour=6)
    # The escalation rule's 3+ an hour, while it is restarting now.
    assert "worker_crash_loop" in crash_loop_ids(restarts_last_hour=3, state="restarting", running=False)
    assert "worker_crash_loop" not in crash_loop_ids(restarts_last_hour=2, state="restarting", running=False)
    # A provider that cannot tell when restarts happened: the lifetime count stands in.
    assert "worker_crash_loop" in crash_loop_ids(restart_count=6)


def test_the_crash_loop_threshold_is_honoured():
    workers = [worker("w1", restarts_last_hour=4)]
    assert worker_findings(workers, crash_loop_restarts=5) == []
    looping = worker_findings(workers, crash_loop_restarts=3)
    assert [item["id"] for item in looping] == ["worker_crash_loop"]
    assert looping[0]["evidence"]["crash_loop_restarts"] == 3


def test_docker_times_are_read_to_the_microsecond():
    from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import docker_time

    assert docker_time("2026-11-29T22:44:48.766768833Z") == pytest.approx(1795992288.766768, abs=1e-6)
    assert docker_time("2026-11-29T23:44:48+01:00") == 1795992288
    assert docker_time("0001-01-01T00:00:00Z") is None
    assert docker_time(None) is None


class FakeContainer:
    name, short_id = "aiagents-worker-1", "abc123"

    def __init__(self, started_at: str, logs: str = "") -> None:
        self.attrs = {"State": {"Status": "running", "StartedAt": started_at, "ExitCode": 0}, "RestartCount": 7,
                      "Config": {"Env": []}, "HostConfig": {"Memory": 536870912}}
        self.text, self.asked = logs, {}

    def logs(self, **options):
        self.asked = options
        return self.text.encode()


def test_a_worker_restarted_by_resolve_is_judged_on_its_new_run_only():
    from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import describe_container, docker_time

    started = "2026-11-29T22:44:48.5Z"
    moment = docker_time(started)
    deaths = [moment - 600, moment - 300, moment - 60, moment + 5]
    fresh = FakeContainer(started)
    record = describe_container(fresh, 100, [], fresh_since=int(moment) - 1, deaths=deaths)
    assert fresh.asked["since"] == int(moment) and record["restarts_last_hour"] == 1
    untouched = FakeContainer(started)
    record = describe_container(untouched, 100, [], fresh_since=int(moment) + 60, deaths=deaths)
    assert "since" not in untouched.asked and record["restarts_last_hour"] == 4
    assert describe_container(FakeContainer(started), 0, [])["restarts_last_hour"] is None


def test_a_run_that_died_and_has_not_restarted_counts_its_last_job():
    """A container restarting, or a pod in back-off: no new run has logged its start yet, but the
    job its last run took was the job before that crash. Two such workers name the poison job."""
    lines = ["celery@w1 ready", "job started ticket_id=T-P"]
    assert analyse_logs(lines)["last_ticket_before_restart"] == []
    assert analyse_logs(lines, died=True)["last_ticket_before_restart"] == ["T-P"]
    assert analyse_logs(["celery@w1 ready"], died=True)["last_ticket_before_restart"] == []  # died idle
    backing_off = [worker(name, state="restarting", running=False, exit_code=137, oom_killed=True,
                          signals=analyse_logs(lines, died=True)) for name in ("w1", "w2")]
    found = {item["id"]: item for item in worker_findings(backing_off)}
    assert found["worker_poison_job"]["evidence"]["poison_tickets"] == ["T-P"]
