"""db_xid_wraparound against PostgreSQL's own limits: the 2^31 wraparound point, its warning and stop limits."""
from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._postgres_activity import (
    DEFAULT_THRESHOLDS,
    xid_findings,
)

WRAP = 2 ** 31


def judged(age, connectable=True, **thresholds):
    xids = {"oldest": {"database": "ai_agents", "age": age, "connectable": connectable},
            "autovacuum_freeze_max_age": 200_000_000}
    return xid_findings(xids, {**DEFAULT_THRESHOLDS, **thresholds})


@pytest.mark.parametrize("age, severity, says", [
    (999_999_999, None, None),
    (1_000_000_000, "high", "transactions left before PostgreSQL refuses writes"),
    (WRAP - 40_000_000, "critical", "refuses every write within 40,000,000 transactions"),
    (WRAP - 3_000_000, "critical", "refuses new transaction ids: every write fails"),
])
def test_severity_follows_postgresqls_limits(age, severity, says):
    found = judged(age)
    if severity is None:
        assert found == []
        return
    (item,) = found
    assert item["severity"] == severity and says in item["summary"] and item["evidence"]["left"] == WRAP - age


def test_a_threshold_above_the_warning_point_still_fires_at_it():
    assert judged(WRAP - 30_000_000, xid_age_high=WRAP)[0]["severity"] == "critical"


def test_a_database_that_takes_no_connection_says_how_to_vacuum_it():
    (item,) = judged(1_500_000_000, connectable=False)
    assert "allow them for the vacuum" in item["resolution"] and "Never reset" in item["resolution"]
