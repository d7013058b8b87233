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
