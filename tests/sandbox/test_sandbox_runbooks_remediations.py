"""Remediations that need an operator's opt-in or input: restarting a database that does
not answer (then checking the workers reconnect), restarting the broker the workers
cannot reach, and rotating a credential the provider has revoked."""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time

import pytest

pytestmark = pytest.mark.sandbox


def resolve(run_playbook, runbook: str, report_dir, **extra) -> tuple[object, dict]:
    run = run_playbook(f"playbooks/{runbook}.yml", {"runbooks_report_dir": str(report_dir), **extra}, tags="resolve")
    return run, json.loads((report_dir / runbook / "latest.json").read_text())


def container_state(name: str, field: str = "Status") -> str:
    return subprocess.run(["docker", "inspect", "-f", f"{{{{.State.{field}}}}}", name], capture_output=True, text=True,
                          check=True).stdout.strip()


def workers_started() -> dict[str, str]:
    names = subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=aiagents",
                            "--filter", "label=com.docker.compose.service=worker"],
                           capture_output=True, text=True, check=True).stdout.split()
    return {name: container_state(name, "StartedAt") for name in names}


def stopped(sandbox, container: str):
    """The sandbox with one container stopped for the test, started again after it."""
    subprocess.run(["docker", "stop", container], check=True, capture_output=True)
    yield sandbox
    subprocess.run(["docker", "start", container], check=True, capture_output=True)
    sandbox.wait_for(lambda: sandbox.cli("status", check=False).returncode == 0, 120, 2, "sandbox healthy again")


@pytest.fixture
def postgres_stopped(healed):
    yield from stopped(healed, "aiagents-postgres-1")


@pytest.fixture
def redis_stopped(healed):
    yield from stopped(healed, "aiagents-redis-1")


def test_database_restart_needs_the_opt_in_then_brings_it_back(postgres_stopped, run_playbook, tmp_path):
    sandbox = postgres_stopped
    run, report = resolve(run_playbook, "database_connection_issues", tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    assert "db_unreachable" in [f["id"] for f in report["findings"]]
    assert "Would restart the postgres service" in " ".join(run.stdout.split()) and report["actions"] == []
    assert container_state("aiagents-postgres-1") == "exited"

    workers = workers_started()
    started = time.time()
    # Work keeps arriving, as on a live platform: jobs fail while the database is down,
    # then go through on new connections after the restart - the proof the workers
    # reconnected, so they are left running.
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            sandbox.cli("fault", "queue-flood", "4", "1", "0")
            stop.wait(0.5)

    feeder = threading.Thread(target=traffic, daemon=True)
    feeder.start()
    try:
        run, report = resolve(run_playbook, "database_connection_issues", tmp_path,
                              database_connection_issues_restart_database=True)
    finally:
        stop.set()
        feeder.join(30)
    assert run.rc == 0, run.stdout[-3000:]
    assert [a["id"].split(" : ")[-1] for a in report["actions"]] == ["Restart service postgres"]
    assert container_state("aiagents-postgres-1") == "running"
    assert workers_started() == workers
    assert sandbox.sql("SELECT count(*) FROM enhancement_history WHERE ticket_id LIKE 'FLOOD-%%' AND status = 'success' "
                       "AND created_at > to_timestamp(%s)", (started,))[0][0] >= 1

    again, report = resolve(run_playbook, "database_connection_issues", tmp_path,
                            database_connection_issues_restart_database=True)
    assert again.rc == 0 and report["actions"] == [] and "db_unreachable" not in [f["id"] for f in report["findings"]]


def test_a_revoked_openai_key_is_rotated_with_the_new_key_given(healed, run_playbook, tmp_path):
    sandbox = healed
    old_key = sandbox.secret("openai-credentials", "api_key")
    sandbox.cli("fault", "openai-key-revoked")
    try:
        run, report = resolve(run_playbook, "api_timeout", tmp_path)
        assert run.rc == 0, run.stdout[-3000:]
        assert [f["summary"] for f in report["findings"] if f["id"] == "api_auth_invalid"][0].startswith("OpenAI")
        assert "give the new key as api_timeout_rotate_credentials.openai-credentials" in " ".join(run.stdout.split())
        assert sandbox.secret("openai-credentials", "api_key") == old_key

        key_file = tmp_path / "openai.key"
        sandbox.cli("issue-key", "openai", str(key_file))
        new_key = key_file.read_text().strip()
        run, report = resolve(run_playbook, "api_timeout", tmp_path,
                              api_timeout_rotate_credentials={"openai-credentials": new_key})
        assert run.rc == 0, run.stdout[-3000:]
        actions = [a["id"].split(" : ")[-1] for a in report["actions"]]
        assert "Write the keys of secret openai-credentials" in actions and "Restart the workers" in actions
        secret_file = sandbox.root / "secrets" / "openai-credentials" / "api_key"
        assert secret_file.read_text().strip() == new_key and oct(secret_file.stat().st_mode & 0o777) == "0o600"
        assert new_key not in run.stdout and new_key not in json.dumps(report)

        # The platform works again on the new key: a job goes through OpenAI.
        ticket = f"TICKET-{secrets.randbelow(10**6) + 10**6}"
        assert sandbox.signed_webhook("acme-corp", ticket).status_code == 202
        query = "SELECT status FROM enhancement_history WHERE ticket_id = %s"
        sandbox.wait_for(lambda: sandbox.sql(query, (ticket,)), 90, 1, "the job processed")
        assert sandbox.sql(query, (ticket,)) == [("success",)]

        again, report = resolve(run_playbook, "api_timeout", tmp_path,
                                api_timeout_rotate_credentials={"openai-credentials": new_key})
        assert again.rc == 0 and report["actions"] == []
        assert "api_auth_invalid" not in [f["id"] for f in report["findings"]]
    finally:
        sandbox.cli("heal", "openai-key-revoked")
        # Leave the sandbox with the key it had, so other tests' expectations hold.
        (sandbox.root / "secrets" / "openai-credentials" / "api_key").write_text(old_key + "\n")


def test_without_the_opt_in_the_broker_the_workers_need_is_not_restarted(redis_stopped, run_playbook, tmp_path):
    def logged_lost_broker() -> bool:
        tails = [subprocess.run(["docker", "logs", "--tail", "20", worker["Name"].lstrip("/")], capture_output=True,
                                text=True, check=True).stderr for worker in redis_stopped.workers()]
        # Celery's consumer or the plain-queue threads (whose lines can crowd Celery's out of the tail).
        return all("Cannot connect to redis" in tail or "redis unavailable" in tail for tail in tails)

    redis_stopped.wait_for(logged_lost_broker, 30, 1, "the workers logging the lost broker")
    workers = workers_started()
    run, report = resolve(run_playbook, "worker_failures", tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    unreachable = [f for f in report["findings"] if f["id"] == "worker_dependency_unreachable"]
    assert unreachable and unreachable[0]["evidence"]["dependencies"] == ["redis"]
    text = " ".join(run.stdout.split())
    assert "redis does not answer on 127.0.0.1:6380. Would restart the redis service" in text
    # Restarting the workers while their broker is gone would only fail them again.
    assert report["actions"] == [] and workers_started() == workers
    assert container_state("aiagents-redis-1") == "exited"
