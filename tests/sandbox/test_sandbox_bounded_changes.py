"""Resolve's changes on the real sandbox: relative to what runs, capped, and refused (with the reason in
the report) when they would not fit. The rules themselves: tests/unit/plugins/filter/test_remediation_rules.py."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.sandbox

MIB = 1024 * 1024


def resolve(run_playbook, runbook: str, report_dir, **extra) -> tuple[object, dict]:
    run = run_playbook(f"playbooks/{runbook}.yml", {"runbooks_report_dir": str(report_dir), **extra}, tags="resolve")
    return run, json.loads((report_dir / runbook / "latest.json").read_text())


def outcome(report: dict, finding_id: str) -> dict:
    return next(item for item in report["findings"] if item["id"] == finding_id)


def running_workers(sandbox) -> list[dict]:
    return [worker for worker in sandbox.workers() if worker["State"]["Running"]]


def test_scaling_is_capped_and_never_removes_a_worker(healed, run_playbook, tmp_path):
    sandbox = healed
    sandbox.cli("fault", "workers-stopped")
    sandbox.cli("fault", "queue-flood", "150", "0.2", "0")
    # Configured 6, ceiling 3: three workers, not six.
    run, report = resolve(run_playbook, "high_queue_depth", tmp_path,
                          high_queue_depth_scale_to=6, high_queue_depth_max_workers=3)
    assert run.rc == 0, run.stdout[-3000:]
    assert len(sandbox.workers()) == 3 and len(running_workers(sandbox)) == 3
    assert outcome(report, "queue_depth_high")["outcome"] in ("resolved", "persisting")
    assert outcome(report, "queue_depth_high")["acted_by"]

    # Flooded again with three running and 2 configured: nothing is scaled down, and the report says why.
    sandbox.cli("fault", "workers-stopped")
    sandbox.cli("fault", "queue-flood", "150", "0.2", "0")
    run, report = resolve(run_playbook, "high_queue_depth", tmp_path, high_queue_depth_scale_to=2)
    assert run.rc == 0, run.stdout[-3000:]
    assert len(sandbox.workers()) == 3
    refused = outcome(report, "queue_depth_high")
    assert (refused["outcome"], refused["why"]) == ("not_acted", "guard")
    assert "3 workers run, at least the 2 configured" in refused["detail"]
    assert not [action for action in report["actions"] if "Scale" in action["id"]]


def test_memory_is_raised_from_the_current_limit_keeping_every_replica(healed, run_playbook, tmp_path):
    sandbox = healed
    before = {worker["HostConfig"]["Memory"] for worker in sandbox.workers()}
    assert before == {512 * MIB}
    sandbox.cli("fault", "worker-oom")
    sandbox.wait_for(lambda: any(worker["State"]["OOMKilled"] or worker["State"]["ExitCode"] == 137
                                 for worker in sandbox.workers()), 60, 1, "a worker OOM-killed")
    run, report = resolve(run_playbook, "worker_failures", tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    workers = sandbox.workers()
    assert {worker["HostConfig"]["Memory"] for worker in workers} == {768 * MIB}  # 512 MiB x 1.5
    assert len(workers) == 2  # the roll kept both replicas
    assert outcome(report, "worker_oom_killed")["outcome"] == "resolved"


def test_a_pool_that_would_outgrow_the_database_is_not_raised(healed, run_playbook, tmp_path):
    sandbox = healed
    sandbox.cli("fault", "worker-pool-shrunk")
    run, report = resolve(run_playbook, "database_connection_issues", tmp_path,
                          database_connection_issues_connection_reserve=66)
    assert run.rc == 0, run.stdout[-3000:]
    refused = outcome(report, "db_pool_misconfigured")
    assert (refused["outcome"], refused["why"]) == ("not_acted", "guard")
    # The arithmetic, in the report: 2 workers x 4 processes + 1 api = 9 pools.
    assert "9 pools x 50 + 66 reserve = 516 of max_connections 200" in refused["detail"]
    assert "9 pools x 15 + 66 reserve = 201 of max_connections 200" in refused["detail"]
    assert {worker["Config"]["Env"].count("DATABASE_POOL_SIZE=1") for worker in sandbox.workers()} == {1}

    run, report = resolve(run_playbook, "database_connection_issues", tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    assert outcome(report, "db_pool_misconfigured")["outcome"] == "resolved"
    envs = [worker["Config"]["Env"] for worker in sandbox.workers()]
    assert len(envs) == 2 and all("DATABASE_POOL_SIZE=5" in env and "DATABASE_MAX_OVERFLOW=10" in env for env in envs)
