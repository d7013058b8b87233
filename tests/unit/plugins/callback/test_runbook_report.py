"""The report's after-state: each finding's outcome, verdict and escalation after resolve."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.aiagents.runbooks.plugins.callback.runbook_report import (
    _write_atomically,
    judge_outcomes,
    render_markdown,
)
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding


def report(*findings, check=False):
    return {"runbook": "worker_failures", "mode": "resolve", "check_mode": check, "platform": "docker",
            "started_at": "t0", "finished_at": "t1", "duration_s": 1.0, "result": "succeeded",
            "findings": list(findings), "steps": [], "actions": [],
            "verdict": "down", "escalation": {"severity": "critical", "page": True, "action": "page", "reason": "x"}}


DOWN = finding("workers_all_down", "critical", "no worker is running")
OOM = finding("worker_oom_killed", "high", "worker memory exhausted")
POISON = finding("worker_poison_job", "high", "ticket T-1 was the last job before 2 crashes")
EXC = finding("worker_exception", "medium", "workers log exceptions")


def outcomes(data):
    return {item["id"]: (item["outcome"], item.get("why")) for item in data["findings"]}


def test_acted_and_gone_is_resolved_and_the_after_state_decides_the_verdict():
    data = report(DOWN, EXC)
    judge_outcomes(data, after=[EXC], rechecked=True, acted={"workers_all_down": ["Scale"]}, declined={})
    assert outcomes(data) == {"workers_all_down": ("resolved", None), "worker_exception": ("not_acted", "no_remediation")}
    assert data["diagnosis"]["verdict"] == "down" and data["diagnosis"]["escalation"]["page"]
    assert data["verdict"] == "degraded" and data["escalation"]["severity"] == "medium"
    assert data["resolved"] is False
    assert [item["seen_after"] for item in data["findings"]] == [False, True]


def test_acted_but_still_there_is_persisting():
    data = report(OOM)
    judge_outcomes(data, after=[OOM], rechecked=True, acted={"worker_oom_killed": ["Raise"]}, declined={})
    assert outcomes(data) == {"worker_oom_killed": ("persisting", None)}
    assert data["verdict"] == "degraded" and not data["resolved"]


def test_declined_findings_say_why():
    data = report(POISON, OOM)
    judge_outcomes(data, after=[POISON, OOM], rechecked=True, acted={},
                   declined={"worker_poison_job": {"why": "not_opted_in", "detail": "Re-run with -e x=true"},
                             "worker_oom_killed": {"why": "guard", "detail": "at the cap"}})
    assert outcomes(data) == {"worker_poison_job": ("not_acted", "not_opted_in"),
                              "worker_oom_killed": ("not_acted", "guard")}
    assert data["findings"][1]["detail"] in ("Re-run with -e x=true", "at the cap")


def test_check_mode_acts_on_nothing():
    data = report(DOWN, check=True)
    judge_outcomes(data, after=[], rechecked=False, acted={"workers_all_down": ["Scale"]}, declined={})
    assert outcomes(data) == {"workers_all_down": ("not_acted", "check_mode")}
    assert "would run: Scale" in data["findings"][0]["detail"]
    assert data["verdict"] == "down" and data["after"] is None and not data["resolved"]


def test_a_problem_first_seen_after_resolve_is_a_finding_too():
    data = report(DOWN)
    judge_outcomes(data, after=[EXC], rechecked=True, acted={"workers_all_down": ["Scale"]}, declined={})
    new = [item for item in data["findings"] if item.get("new")]
    assert [(item["id"], item["outcome"]) for item in new] == [("worker_exception", "persisting")]


def test_without_a_recheck_nothing_counts_as_resolved():
    data = report(DOWN)
    data["failed_at"] = "Scale the worker service"
    judge_outcomes(data, after=[], rechecked=False, acted={"workers_all_down": ["Scale"]}, declined={})
    assert outcomes(data)["workers_all_down"][0] == "persisting"
    assert "Scale the worker service" in data["findings"][0]["why"]
    assert data["verdict"] == "down" and data["resolved"] is False


@pytest.mark.parametrize("after, first", [
    ([], "**Incident resolved**"),
    ([OOM], "**Incident NOT resolved**"),
])
def test_the_markdown_says_first_whether_the_incident_is_resolved(after, first):
    data = report(DOWN, OOM)
    judge_outcomes(data, after=after, rechecked=True, acted={"workers_all_down": ["Scale"], "worker_oom_killed": ["R"]},
                   declined={})
    lines = render_markdown(data).splitlines()
    assert lines[2].startswith(first)
    if after:
        assert "`worker_oom_killed`" in lines[2]
    assert "| outcome |" in render_markdown(data)


def test_reports_are_replaced_whole(tmp_path):
    target = tmp_path / "latest.json"
    _write_atomically(str(target), json.dumps({"a": 1}))
    _write_atomically(str(target), json.dumps({"a": 2}))
    assert json.loads(target.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["latest.json"]  # no temporary file left behind


def test_the_report_refuses_a_hand_made_finding():
    from ansible_collections.aiagents.runbooks.plugins.callback.runbook_report import CallbackModule

    plugin = CallbackModule()
    plugin.report = {"findings": []}
    warnings = []
    plugin._display = type("Display", (), {"warning": lambda self, message: warnings.append(message)})()
    good = finding("queue_depth_high", "high", "depth 150")
    plugin._collect_findings([good, {"id": "queue_depth_high", "severity": "hihg", "summary": "typo"}])
    assert plugin.report["findings"] == [good]
    assert "unknown severity 'hihg'" in plugin.report["rejected_findings"][0]["why"]
    assert len(warnings) == 1
