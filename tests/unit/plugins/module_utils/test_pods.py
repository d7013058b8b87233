"""Reading workers from pods: quantities, states and the restarts of the last hour, by Kubernetes' rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateRunning,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
)

from ansible_collections.aiagents.runbooks.plugins.module_utils import _pods

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("text", "expected"), [
    ("2Gi", 2 * 2**30), ("512Mi", 512 * 2**20), ("1.5Gi", 3 * 2**29), ("1G", 10**9), ("500M", 5 * 10**8),
    ("1e9", 10**9), ("1073741824", 2**30), ("128974848", 128974848), ("123k", 123000),
    (None, None), ("", None), ("lots", None), ("2 Gi", None),
])
def test_memory_quantities_read_as_the_api_defines_them(text, expected):
    assert _pods.quantity_bytes(text) == expected


def status(state, restarts=0, last=None, ready=True):
    return V1ContainerStatus(name="worker", image="i", image_id="", ready=ready, restart_count=restarts,
                             state=state, last_state=V1ContainerState(terminated=last) if last else None)


def terminated(reason, code, ago_minutes):
    return V1ContainerStateTerminated(exit_code=code, reason=reason, finished_at=NOW - timedelta(minutes=ago_minutes))


@pytest.mark.parametrize(("state", "expected"), [
    (V1ContainerState(running=V1ContainerStateRunning(started_at=NOW)), ("running", True)),
    (V1ContainerState(waiting=V1ContainerStateWaiting(reason="CrashLoopBackOff")), ("restarting", False)),
    (V1ContainerState(waiting=V1ContainerStateWaiting(reason="ContainerCreating")), ("created", False)),
    (V1ContainerState(waiting=V1ContainerStateWaiting(reason="CreateContainerConfigError")),
     ("createContainerConfigError", False)),
    (V1ContainerState(terminated=terminated("Error", 1, 0)), ("exited", False)),
])
def test_container_states_in_the_words_the_runbooks_read(state, expected):
    assert _pods.container_state(status(state)) == expected


def pod(age_minutes):
    return V1Pod(metadata=V1ObjectMeta(name="w", creation_timestamp=NOW - timedelta(minutes=age_minutes)))


@pytest.mark.parametrize(("age", "restarts", "last", "expected"), [
    (30, 4, terminated("OOMKilled", 137, 1), 4),    # a young pod: every restart is in the hour
    (600, 9, terminated("Error", 1, 90), 0),        # its last run ended 90 minutes ago: none in the hour
    (600, 0, None, 0),                              # never restarted
    (600, 9, terminated("Error", 1, 5), None),      # an old pod that died 5 minutes ago: unknown
])
def test_restarts_in_the_last_hour_are_exact_or_unknown_never_guessed(age, restarts, last, expected):
    running = V1ContainerState(running=V1ContainerStateRunning(started_at=NOW))
    assert _pods.restarts_last_hour(pod(age), status(running, restarts, last), NOW.timestamp()) == expected


@pytest.mark.parametrize(("ago_minutes", "running", "reported"), [(5, True, True), (90, True, False), (90, False, True)])
def test_a_running_worker_reports_a_termination_of_the_last_hour_only(monkeypatch, ago_minutes, running, reported):
    from kubernetes.client import V1Container, V1PodSpec, V1PodStatus

    state = (V1ContainerState(running=V1ContainerStateRunning(started_at=NOW)) if running
             else V1ContainerState(waiting=V1ContainerStateWaiting(reason="CrashLoopBackOff")))
    pod = V1Pod(metadata=V1ObjectMeta(name="w", namespace="ns", uid="u" * 12, creation_timestamp=NOW - timedelta(days=1)),
                spec=V1PodSpec(containers=[V1Container(name="worker")]),
                status=V1PodStatus(container_statuses=[status(state, 1, terminated("OOMKilled", 137, ago_minutes))]))
    record = _pods.describe_pod(None, pod, {}, {"log_lines": 0, "log_since": 0, "fresh_since": 0, "env_keys": []},
                                NOW.timestamp())
    assert record["oom_killed"] is reported and record["exit_code"] == (137 if reported else None)


def worker(running=True, health="healthy", recent=0, state="running"):
    return {"running": running, "health": health, "restarts_last_hour": recent, "state": state}


@pytest.mark.parametrize(("record", "verdict"), [
    (worker(), "healthy"),
    (worker(health=None), "healthy"),  # no readiness probe
    (worker(health="starting"), "starting"),
    (worker(running=False, state="crashLoopBackOff", health="unhealthy"), "failing"),
    (worker(health="unhealthy"), "failing"),
    (worker(recent=2), "failing"),
    (worker(recent=None), "healthy"),  # restarts unknown: not counted against it
    (worker(state="removing", running=False), "starting"),
])
def test_a_pod_fares_healthy_failing_or_starting(record, verdict):
    assert _pods.pod_verdict(record) == verdict


RS = {"w-a": "3", "w-b": "4", "w-c": "5"}


@pytest.mark.parametrize(("revision", "pods", "undo_to", "reason"), [
    # The crash-looping surge pod of a new revision; the old pods go on working.
    ("5", [("w-b", "healthy"), ("w-b", "healthy"), ("w-c", "failing")], "4",
     "started with revision 5 (1 pods fail, none is healthy); revision 4 still runs 2 healthy pods"),
    ("5", [("w-c", "failing"), ("w-c", "failing")], "4", "revision 4 ran before it"),
    ("5", [("w-c", "failing"), ("w-c", "healthy")], None, "revision 5 has healthy pods too"),
    ("5", [("w-c", "healthy"), ("w-c", "healthy")], None, "no pod of revision 5 fails"),
    ("5", [("w-b", "failing"), ("w-c", "failing")], None, "pods of other revisions fail too (1)"),
    ("3", [("w-a", "failing")], None, "revision 2 is not kept"),
    ("5", [("w-c", "starting"), ("w-c", "failing")], "4", "started with revision 5"),
    (None, [("w-c", "failing")], None, "no pod of revision None fails"),
])
def test_a_bad_rollout_is_one_whose_failures_started_with_its_revision(revision, pods, undo_to, reason):
    judged = _pods.rollout_judgement(revision, RS, pods)
    assert judged["undo_to"] == undo_to and reason in judged["reason"], judged
    assert sum(sum(tally.values()) for tally in judged["pods_by_revision"].values()) == len(pods)


def test_a_revision_reused_by_an_earlier_undo_leaves_nothing_to_go_back_to():
    # Revision 4 became 6 when an undo went back to it; k8s_rollback goes back to exactly the one before.
    judged = _pods.rollout_judgement("7", {"w-b": "5", "w-d": "7"}, [("w-d", "failing")])
    assert judged["undo_to"] is None and "revision 6 is not kept" in judged["reason"]


@pytest.mark.parametrize(("running", "current", "counted"), [
    (False, [], ["T-P"]),                             # in back-off: its last run died on T-P
    (True, ["celery@w ready"], ["T-P"]),              # restarted: the new run's start marks it, once
    (True, [], []),                                   # running, nothing died: nothing to count
])
def test_the_job_before_a_crash_counts_once_whether_the_pod_restarted_or_backs_off(
        monkeypatch, running, current, counted):
    from kubernetes.client import V1Container, V1PodSpec, V1PodStatus

    previous = ["celery@w ready", "job started ticket_id=T-P"]
    monkeypatch.setattr(_pods, "_log_lines", lambda core, pod, container, params, prev, since: previous if prev else current)
    state = (V1ContainerState(running=V1ContainerStateRunning(started_at=NOW)) if running
             else V1ContainerState(waiting=V1ContainerStateWaiting(reason="CrashLoopBackOff")))
    last = terminated("OOMKilled", 137, 1) if counted or not running else None
    pod = V1Pod(metadata=V1ObjectMeta(name="w", namespace="ns", uid="u" * 12, creation_timestamp=NOW - timedelta(days=1)),
                spec=V1PodSpec(containers=[V1Container(name="worker")]),
                status=V1PodStatus(container_statuses=[status(state, 1 if last else 0, last)]))
    record = _pods.describe_pod(None, pod, {}, {"log_lines": 100, "log_since": 0, "fresh_since": 0, "env_keys": []},
                                NOW.timestamp())
    assert record["signals"]["last_ticket_before_restart"] == counted
