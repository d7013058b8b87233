"""With the platform's Redis or PostgreSQL stopped, every runbook still
completes its diagnose and reports the outage as a finding."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.sandbox


def diagnose(run_playbook, runbook: str, report_dir) -> dict:
    run = run_playbook(f"playbooks/{runbook}.yml", {"runbooks_report_dir": str(report_dir)}, tags="diagnose")
    assert run.rc == 0, run.stdout[-3000:]
    return json.loads((report_dir / runbook / "latest.json").read_text())


@pytest.fixture
def stopped(healed):
    """stopped(service): stop a platform container for the test, start it again after."""
    names = []

    def stop(service: str) -> None:
        name = f"aiagents-{service}-1"
        subprocess.run(["docker", "stop", name], check=True, capture_output=True)
        names.append(name)

    yield stop
    for name in names:
        subprocess.run(["docker", "start", name], check=True, capture_output=True)
    healed.wait_for(lambda: healed.cli("status", check=False).returncode == 0, 120, 2, "sandbox healthy again")


RUNBOOKS = ("high_queue_depth", "worker_failures", "database_connection_issues", "api_timeout")


def diagnose_all(run_playbook, report_dir) -> dict[str, dict]:
    """Every runbook's diagnose completes (and writes its report) whatever is down."""
    reports = {runbook: diagnose(run_playbook, runbook, report_dir) for runbook in RUNBOOKS}
    for runbook, report in reports.items():
        assert report["runbook"] == runbook and report["result"] == "succeeded", report
    return reports


def test_redis_down(stopped, run_playbook, tmp_path):
    stopped("redis")
    reports = diagnose_all(run_playbook, tmp_path)
    queue = reports["high_queue_depth"]
    assert queue["findings"][0]["id"] == "redis_unreachable" and queue["verdict"] == "down"
    assert queue["escalation"]["page"] is True
    unreachable = [f for f in reports["worker_failures"]["findings"] if f["id"] == "worker_dependency_unreachable"]
    assert unreachable and unreachable[0]["evidence"]["dependencies"] == ["redis"]


def test_postgres_down(stopped, run_playbook, tmp_path):
    stopped("postgres")
    reports = diagnose_all(run_playbook, tmp_path)
    database = reports["database_connection_issues"]
    assert [f["id"] for f in database["findings"]] == ["db_unreachable"]
    assert database["verdict"] == "down" and database["escalation"]["page"] is True
