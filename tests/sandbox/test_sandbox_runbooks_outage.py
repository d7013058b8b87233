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


def triage(run_playbook, report_dir) -> dict:
    run = run_playbook("playbooks/triage.yml", {"runbooks_report_dir": str(report_dir)})
    assert run.rc == 0, run.stdout[-3000:]
    report = json.loads((report_dir / "triage" / "latest.json").read_text())
    assert report["runbook"] == "triage" and report["result"] == "succeeded", report
    return report


def test_triage_ranks_a_stopped_redis_first_with_what_it_explains(stopped, run_playbook, tmp_path):
    stopped("redis")
    report = triage(run_playbook, tmp_path)
    top = report["causes"][0]
    assert top["id"] == "redis_unreachable" and top["severity"] == "critical"
    # what the other runbooks saw because of it is listed under it, not ranked beside it
    explained = {item["id"] for item in top["explains"]}
    assert "worker_dependency_unreachable" in explained, top
    assert not explained & {cause["id"] for cause in report["causes"]}
    assert {"high_queue_depth", "worker_failures"} <= {runbook for item in top["explains"]
                                                       for runbook in item["seen_by"]} | set(top["seen_by"])
    assert report["verdict"] == "down" and report["escalation"]["page"] is True
    assert report["escalation"]["reason"].startswith("probable cause redis_unreachable")
    # the four diagnoses all ran, each on its own host
    markdown = (tmp_path / "triage" / "latest.md").read_text()
    assert "## Probable causes" in markdown and "| 1 | `redis_unreachable`" in markdown
    for runbook in RUNBOOKS:
        assert any(step["name"].startswith(f"{runbook} : ") for step in report["steps"]), runbook


def test_triage_ranks_a_stopped_database_first(stopped, run_playbook, tmp_path):
    stopped("postgres")
    report = triage(run_playbook, tmp_path)
    assert report["causes"][0]["id"] == "db_unreachable", report["causes"]
    assert report["causes"][0]["runbook"] == "database_connection_issues"


def test_triage_of_a_running_platform_names_no_outage_and_drops_no_finding(healed, run_playbook, tmp_path):
    """With every service up, no cause is an outage. The sandbox keeps the last hour's history (crashes,
    slow traces) from other tests, so some causes may remain: each finding is then a cause or listed under
    one, none is lost in the ranking."""
    report = triage(run_playbook, tmp_path)
    causes = {cause["id"] for cause in report["causes"]}
    assert not causes & {"redis_unreachable", "db_unreachable", "workers_all_down", "queue_no_workers"}, causes
    assert all(cause["severity"] != "critical" for cause in report["causes"]), report["causes"]
    listed = causes | {item["id"] for cause in report["causes"] for item in cause["explains"]}
    assert listed == {f["id"] for f in report["findings"] if f["severity"] != "info"}
    assert [cause["rank"] for cause in report["causes"]] == list(range(1, len(report["causes"]) + 1))


def test_triage_ranks_a_broker_refusing_writes_above_the_refused_intake(healed, run_playbook, tmp_path):
    """Redis read-only: nothing is down, every service answers, yet no webhook can be queued."""
    sandbox = healed
    sandbox.cli("fault", "redis-read-only-replica")
    try:
        answers = [sandbox.signed_webhook("acme-corp", f"T-READONLY-{n}").status_code for n in range(4)]
        assert answers == [503] * 4
        assert sandbox.metrics()['webhook_enqueue_errors_total{reason="readonly"}'] >= 4
        report = triage(run_playbook, tmp_path)
        top = report["causes"][0]
        assert (top["id"], top["severity"]) == ("redis_read_only_replica", "critical")
        assert "intake_enqueue_failing" in {item["id"] for item in top["explains"]}
        refused = next(f for f in report["findings"] if f["id"] == "intake_enqueue_failing")
        assert {"tenant_id": "acme-corp", "ticket_id": "T-READONLY-3"} in refused["evidence"]["refused_tickets"]
    finally:
        sandbox.cli("heal", "redis-read-only-replica")
    assert sandbox.signed_webhook("acme-corp", "T-READONLY-AGAIN").status_code == 202
