from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import (
    FindingError,
    finding,
    sort_findings,
    worst_severity,
)


def test_finding_has_the_report_contract_shape():
    item = finding("queue_no_workers", "critical", "no worker answers", {"workers": 0},
                   "start workers", runbook="worker_failures")
    assert item == {
        "id": "queue_no_workers",
        "severity": "critical",
        "summary": "no worker answers",
        "evidence": {"workers": 0},
        "resolution": "start workers",
        "runbook": "worker_failures",
    }


def test_runbook_pointer_is_omitted_when_cause_is_local():
    assert "runbook" not in finding("queue_depth_high", "high", "depth 150")


@pytest.mark.parametrize("bad_id", ["Queue-Depth", "x", "1abc", "queue depth"])
def test_bad_ids_are_refused(bad_id):
    with pytest.raises(FindingError, match="snake_case"):
        finding(bad_id, "low", "s")


def test_unknown_severity_is_refused():
    with pytest.raises(FindingError, match="unknown severity 'urgent'"):
        finding("queue_depth_high", "urgent", "s")


def test_worst_severity_and_ordering():
    items = [finding("a_low", "low", ""), finding("b_crit", "critical", ""), finding("c_med", "medium", "")]
    assert worst_severity(items) == "critical"
    assert worst_severity([]) is None
    assert [i["id"] for i in sort_findings(items)] == ["b_crit", "c_med", "a_low"]


def test_check_passes_what_the_constructor_builds_and_names_what_is_wrong_otherwise():
    from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import check

    assert check(finding("queue_no_workers", "critical", "none", {"a": 1}, "start", runbook="worker_failures")) is None
    hand_made = {"id": "queue_no_workers", "severity": "urgent", "summary": "", "evidence": [], "note": "x"}
    problem = check(hand_made)
    for part in ("missing resolution", "unknown keys note", "unknown severity 'urgent'", "the summary is empty",
                 "the evidence is not a dict"):
        assert part in problem
    assert check("queue_no_workers") == "a finding is a dict, not str"
