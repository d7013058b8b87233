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


# The keys a finding has: the contract's, and the runbook to follow next.
KEYS = ("id", "severity", "summary", "evidence", "resolution", "runbook")


def check(item: Any) -> str | None:
    """Why ``item`` is not a finding as finding() builds it, or None when it is. The report takes only
    findings that pass, so a hand-made dict with a typo'd severity or a missing summary cannot slip in."""
    if not isinstance(item, dict):
        return f"a finding is a dict, not {type(item).__name__}"
    extra = sorted(set(item) - set(KEYS))
    missing = [key for key in KEYS[:5] if key not in item]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if extra:
        problems.append(f"unknown keys {', '.join(extra)}")
    if not _ID.match(str(item.get("id", ""))):
        problems.append(f"id {item.get('id')!r} is not snake_case, 3-64 chars")
    if item.get("severity") not in _RANK:
        problems.append(f"unknown severity {item.get('severity')!r}")
    if not isinstance(item.get("summary"), str) or not item.get("summary"):
        problems.append("the summary is empty")
    if "evidence" in item and not isinstance(item["evidence"], dict):
        problems.append("the evidence is not a dict")
    if "resolution" in item and not isinstance(item["resolution"], str):
        problems.append("the resolution is not text")
    if "runbook" in item and not isinstance(item["runbook"], str):
        problems.append("the runbook is not a name")
    return "; ".join(problems) or None


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
