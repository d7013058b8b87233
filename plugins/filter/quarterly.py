# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The quarterly review's judgements (no I/O: they run on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: quarterly_review
short_description: Fill in the quarterly runbook review from what one validation run measured
version_added: 1.0.0
description:
  - Turns the evidence the C(quarterly_validation) role gathered - each runbook's diagnose runs, the
    Prometheus queries the runbooks use, the links, the versions, the RLS policies (hashed) and the metric
    names - into the seed's review template - each checklist item C(done) with its evidence or C(open) with
    the reason (an action item), the changes since the last review each naming the runbooks to re-check,
    and the overall health C(Green), C(Yellow) or C(Red).
  - Red - a runbook failed. Yellow - an item is open. Green - every runbook ran and every check held.
positional: baseline, today
options:
  _input:
    description: The evidence (runs, platforms, queries, prometheus, links, versions, rls_policies, metric_names, mode).
    type: dict
    required: true
  baseline:
    description: The last review's JSON, or none for the first review.
    type: dict
  today:
    description: The review's date (YYYY-MM-DD); the next review is three months on.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Fill in the review
  ansible.builtin.set_fact:
    review: "{{ evidence | aiagents.runbooks.quarterly_review(last_review, '2026-11-30') }}"
"""

RETURN = r"""
_value:
  description: The review - runbooks, overall items, changes_since_last_review, action_items, health, next_review.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.aiagents.runbooks.plugins.plugin_utils import _review


def quarterly_review(evidence, baseline=None, today=None):
    if not isinstance(evidence, dict):
        raise AnsibleFilterError("quarterly_review: the evidence must be a dict")
    if not today:
        raise AnsibleFilterError("quarterly_review: the review's date is required (YYYY-MM-DD)")
    try:
        return _review.build_review(evidence, baseline if isinstance(baseline, dict) else None, str(today))
    except ValueError as exc:
        raise AnsibleFilterError(f"quarterly_review: {exc}") from exc


def review_links(probes, findings=None):
    """http_probe_info's probes as the review's links: answered (ok or slow), status, seconds, and what is wrong."""
    return _review.review_links(probes or [], findings or [])


def diagnose_run(result, report=None, timeout=300):
    """A diagnose's command result and report as one run of the review."""
    if not isinstance(result, dict):
        raise AnsibleFilterError("diagnose_run: expected a command result")
    return _review.diagnose_run(result, report, float(timeout))


class FilterModule:
    def filters(self):
        return {"quarterly_review": quarterly_review, "policy_hashes": _review.policy_hashes,
                "review_links": review_links, "diagnose_run": diagnose_run}
