"""Resolve on the real sandbox where acting blindly would hurt: a hung worker is restarted alone, and what a
runbook stopped on purpose stays stopped until it is resumed."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.harness.ansible import REPO

pytestmark = pytest.mark.sandbox


def run_runbook(run_playbook, runbook: str, mode: str, report_dir, **extra) -> dict:
    run = run_playbook(f"playbooks/{runbook}.yml", {"runbooks_report_dir": str(report_dir), **extra}, tags=mode)
    assert run.rc == 0, run.stdout[-3000:]
    return json.loads((report_dir / runbook / "latest.json").read_text())


def finding(report: dict, finding_id: str) -> dict:
    return next(item for item in report["findings"] if item["id"] == finding_id)


def started(sandbox) -> dict[str, str]:
    return {worker["Name"].lstrip("/"): worker["State"]["StartedAt"] for worker in sandbox.workers()}


def test_a_hung_worker_is_named_then_restarted_alone(healed, run_playbook, tmp_path):
    sandbox = healed
    hung = sorted(started(sandbox))[0]
    sandbox.cli("fault", "worker-hung")
    before = started(sandbox)
    report = run_runbook(run_playbook, "worker_failures", "diagnose", tmp_path, worker_failures_hung_grace=5)
    named = finding(report, "worker_hung")
    assert [item["name"] for item in named["evidence"]["workers"]] == [hung]
    assert named["severity"] == "high"

    report = run_runbook(run_playbook, "worker_failures", "resolve", tmp_path, worker_failures_hung_grace=5)
    after = started(sandbox)
    assert after[hung] != before[hung]  # restarted
    assert {name: at for name, at in after.items() if name != hung} == \
        {name: at for name, at in before.items() if name != hung}  # the others went on working
    assert finding(report, "worker_hung")["outcome"] == "resolved"
    assert report["resolved"] and report["after"]["findings"] == []


def test_writes_stopped_on_purpose_stay_stopped_until_resumed(healed, run_playbook, tmp_path):
    sandbox = healed
    replicas = len(sandbox.workers())
    sandbox.cli("fault", "db-corrupt-page")
    report = run_runbook(run_playbook, "database_connection_issues", "resolve", tmp_path,
                         database_connection_issues_stop_writes=True)
    assert finding(report, "db_corruption_suspected")["outcome"] == "persisting"  # contained, not cured
    assert not report["resolved"]
    assert sandbox.every_worker(lambda worker: not worker["State"]["Running"])
    assert len(sandbox.workers()) == replicas  # stopped, every one of them kept to resume

    # Another runbook sees the workers down: it reports the pause and does not start them.
    report = run_runbook(run_playbook, "worker_failures", "resolve", tmp_path)
    paused = finding(report, "platform_paused")
    assert {item["target"] for item in paused["evidence"]["pauses"]} == {"api", "worker"}
    assert "playbooks/resume.yml -e resume=api" in paused["resolution"]
    refused = finding(report, "workers_all_down")
    assert (refused["outcome"], refused["why"]) == ("not_acted", "guard")
    assert "stopped on purpose (writes stopped" in refused["detail"]
    assert report["actions"] == []
    assert sandbox.every_worker(lambda worker: not worker["State"]["Running"])
    report = run_runbook(run_playbook, "high_queue_depth", "diagnose", tmp_path)
    assert "platform_paused" in [item["id"] for item in report["findings"]]
    # Triage reads the pauses once for its four diagnoses, and still reports them.
    run = run_playbook("playbooks/triage.yml", {"runbooks_report_dir": str(tmp_path)})
    assert run.rc == 0, run.stdout[-3000:]
    triaged = json.loads((tmp_path / "triage" / "latest.json").read_text())
    assert [item["id"] for item in triaged["findings"]].count("platform_paused") == 1
    assert [step["name"] for step in triaged["steps"]].count("platform : Look whether each paused service is still stopped") == 1
    assert "platform_paused" in {cause["id"] for cause in triaged["causes"]} | \
        {item["id"] for cause in triaged["causes"] for item in cause["explains"]}

    # The DBA has looked; resume, as the finding says.
    sandbox.cli("heal", "db-corrupt-page")
    resumed = run_playbook("playbooks/resume.yml", {"resume": "api,worker"})
    assert resumed.rc == 0, resumed.stdout[-3000:]
    sandbox.wait_for(lambda: sandbox.every_worker(lambda worker: worker["State"]["Running"]), 60, 1, "workers running")
    assert len(sandbox.workers()) == replicas
    assert not (REPO / "sandbox/state/pauses.json").exists() or \
        json.loads((REPO / "sandbox/state/pauses.json").read_text()) == {}
    report = run_runbook(run_playbook, "worker_failures", "diagnose", tmp_path)
    assert "platform_paused" not in [item["id"] for item in report["findings"]]


def test_resume_refuses_what_is_not_paused(healed, run_playbook):
    run = run_playbook("playbooks/resume.yml", {"resume": "postgres"})
    assert run.rc != 0 and "Not paused: postgres" in run.stdout
    assert subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", "aiagents-postgres-1"],
                          capture_output=True, text=True, check=True).stdout.strip() == "true"


def test_a_stale_head_live_workers_pass_by_is_quarantined(healed, run_playbook, tmp_path):
    """Workers alive but stuck in OpenAI calls: the head does not move across two reads, so it is quarantined
    (the opposite case - no worker at all, nothing moved - is the high_queue_depth Molecule scenario's)."""
    sandbox = healed
    sandbox.cli("fault", "openai-hang")
    sandbox.cli("fault", "queue-flood", "40", "0.5", "45")
    client = sandbox.redis()
    # Every consumer thread takes a job and hangs on it; the rest of the queue stays put.
    sandbox.wait_for(lambda: client.llen("enhancement_queue") <= 40 - 8, 30, 1, "the workers holding jobs")
    report = run_runbook(run_playbook, "high_queue_depth", "diagnose", tmp_path)
    head = finding(report, "queue_oldest_job_stale")["evidence"]["oldest"]
    report = run_runbook(run_playbook, "high_queue_depth", "resolve", tmp_path,
                         high_queue_depth_quarantine_stale=True)
    stale = finding(report, "queue_oldest_job_stale")
    assert stale["acted_by"] and stale["outcome"] in ("resolved", "persisting")
    held = [json.loads(raw) for raw in client.lrange("enhancement_queue:quarantine", 0, -1)]
    assert [item["ticket_id"] for item in held] == [head["ticket_id"]]


def test_a_paused_tenant_is_reported_then_resumed_behind_the_others(healed, run_playbook, tmp_path):
    sandbox = healed
    sandbox.cli("fault", "workers-stopped")  # the queue stays as it is while the test looks at it
    sandbox.cli("fault", "queue-flood", "60", "0.8", "0")
    report = run_runbook(run_playbook, "high_queue_depth", "resolve", tmp_path,
                         high_queue_depth_pause_flooding_tenant=True, high_queue_depth_scale_to=0)
    assert finding(report, "queue_tenant_flood")["outcome"] == "resolved"
    client = sandbox.redis()
    held = client.llen("enhancement_queue:quarantine")
    assert held > 0 and client.llen("enhancement_queue") == 60 - held

    report = run_runbook(run_playbook, "worker_failures", "diagnose", tmp_path)
    paused = finding(report, "platform_paused")
    assert [item["target"] for item in paused["evidence"]["pauses"]] == ["tenant:acme-corp"]

    client.rpush("enhancement_queue", json.dumps({"ticket_id": "T-MEANWHILE", "tenant_id": "globex",
                                                  "created_at": "2026-11-29T00:00:00Z"}))
    resumed = run_playbook("playbooks/resume.yml", {"resume": "tenant:acme-corp"})
    assert resumed.rc == 0, resumed.stdout[-3000:]
    queue = [json.loads(raw) for raw in client.lrange("enhancement_queue", 0, -1)]
    tenants = [job["tenant_id"] for job in queue]
    # The others first (what was queued meanwhile included), then the tenant's jobs in their order.
    assert tenants == ["globex"] * (60 - held + 1) + ["acme-corp"] * held
    assert queue[60 - held]["ticket_id"] == "T-MEANWHILE"
    acme = [job["ticket_id"] for job in queue if job["tenant_id"] == "acme-corp"]
    assert acme == sorted(acme)
    assert client.llen("enhancement_queue:quarantine") == 0
    report = run_runbook(run_playbook, "worker_failures", "diagnose", tmp_path)
    assert "platform_paused" not in [item["id"] for item in report["findings"]]
