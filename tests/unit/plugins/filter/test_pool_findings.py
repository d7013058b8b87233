"""db_pool_misconfigured: the workers' pool against the runbook's normal ranges."""
from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import pool_findings

POOL, OVERFLOW = {"min": 5, "max": 10}, {"min": 10, "max": 20}
RAISED = {"DATABASE_POOL_SIZE": 20, "DATABASE_MAX_OVERFLOW": 30}


def workers(pool, overflow, count=2):
    return [{"name": f"worker-{n}", "env": {"DATABASE_POOL_SIZE": pool, "DATABASE_MAX_OVERFLOW": overflow}}
            for n in range(count)]


@pytest.mark.parametrize("pool, overflow", [("5", "10"), ("10", "20"), ("7", "15"), ("20", "30")])
def test_normal_and_the_runbooks_raised_settings_are_fine(pool, overflow):
    assert pool_findings(workers(pool, overflow), POOL, OVERFLOW, RAISED) == []


@pytest.mark.parametrize("pool, overflow, wrong", [
    ("1", "0", {"DATABASE_POOL_SIZE": 1, "DATABASE_MAX_OVERFLOW": 0}),
    ("4", "10", {"DATABASE_POOL_SIZE": 4}),
    ("11", "20", {"DATABASE_POOL_SIZE": 11}),
    ("20", "21", {"DATABASE_MAX_OVERFLOW": 21}),   # raised pool, overflow neither normal nor raised
    ("30", "20", {"DATABASE_POOL_SIZE": 30}),
])
def test_out_of_range_settings_are_named_with_their_normal_range(pool, overflow, wrong):
    found = pool_findings(workers(pool, overflow), POOL, OVERFLOW, RAISED)
    assert [(f["id"], f["severity"]) for f in found] == [("db_pool_misconfigured", "medium")]
    assert {key: item["value"] for key, item in found[0]["evidence"]["settings"].items()} == wrong
    for key in wrong:
        assert f"{key}={wrong[key]}" in found[0]["summary"]


def test_without_raised_settings_twenty_is_out_of_range():
    assert pool_findings(workers("20", "30"), POOL, OVERFLOW)[0]["id"] == "db_pool_misconfigured"


def test_unset_or_non_numeric_settings_are_not_this_findings_business():
    # A non-numeric value crashes the worker: worker_config_invalid, the worker_failures runbook's finding.
    assert pool_findings(workers("ten", ""), POOL, OVERFLOW, RAISED) == []
    assert pool_findings([{"name": "w", "env": {}}], POOL, OVERFLOW, RAISED) == []
    assert pool_findings(None, POOL, OVERFLOW, RAISED) == []
