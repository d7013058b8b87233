# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one shape every check returns: a finding.

Reports, escalation, the resolve step, triage and the tests all read this
shape, so it is built here and nowhere else.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

SEVERITIES = ("info", "low", "medium", "high", "critical")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_ID = re.compile(r"^[a-z][a-z0-9_]{2,63}$")


class FindingError(ValueError):
    """A finding that breaks the contract (bad id or severity)."""


def finding(
    finding_id: str,
    severity: str,
    summary: str,
    evidence: dict[str, Any] | None = None,
    resolution: str = "",
    runbook: str | None = None,
) -> dict[str, Any]:
    """Build a finding.

    ``runbook`` names the runbook to follow next when the cause lies
    elsewhere (for example ``queue_no_workers`` points to worker_failures).
    """
    if not _ID.match(finding_id):
        raise FindingError(f"build finding {finding_id!r}: id must be snake_case, 3-64 chars")
    if severity not in _RANK:
        raise FindingError(f"build finding {finding_id}: unknown severity {severity!r}")
    result: dict[str, Any] = {
        "id": finding_id,
        "severity": severity,
        "summary": summary,
        "evidence": dict(evidence or {}),
        "resolution": resolution,
    }
    if runbook:
        result["runbook"] = runbook
    return result


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in SEVERITIES; unknown names rank lowest."""
    return _RANK.get(severity, -1)


def worst_severity(findings: Iterable[dict[str, Any]]) -> str | None:
    """The most severe severity among ``findings``, or None when empty."""
    worst = None
    for item in findings:
        if worst is None or severity_rank(item["severity"]) > severity_rank(worst):
            worst = item["severity"]
    return worst


def sort_findings(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most severe first; stable for equal severities."""
    return sorted(findings, key=lambda item: -severity_rank(item["severity"]))
