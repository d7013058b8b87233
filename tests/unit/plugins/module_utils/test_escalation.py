from __future__ import annotations

from ansible_collections.aiagents.runbooks.plugins.module_utils._escalation import decide, verdict
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding


def test_no_findings_is_healthy_and_no_page():
    assert verdict([]) == "healthy"
    assert decide([])["page"] is False


def test_a_paging_rule_leads_even_below_the_worst_severity():
    findings = [finding("queue_depth_high", "high", "150 jobs"), finding("queue_oldest_job_stale", "high", "45 min"),
                finding("queue_tenant_flood", "medium", "84%")]
    decision = decide(findings)
    assert decision["page"] is True and decision["severity"] == "high"
    assert decision["reason"].startswith("queue_oldest_job_stale")
    assert verdict(findings) == "degraded"


def test_critical_pages_and_means_down():
    findings = [finding("queue_depth_elevated", "low", "60"), finding("workers_all_down", "critical", "none up")]
    assert decide(findings)["action"].startswith("Page on-call now")
    assert verdict(findings) == "down"


def test_low_findings_alone_do_not_degrade_or_page():
    findings = [finding("metric_no_data", "low", "no data"), finding("worker_sigterm", "info", "stopped")]
    assert verdict(findings) == "healthy"
    assert decide(findings)["page"] is False


def test_onboarding_findings_never_page():
    findings = [finding("api_auth_invalid", "critical", "ServiceDesk Plus (new-msp) refuses the API key (401)")]
    assert decide(findings)["page"] is True
    decision = decide(findings, "tenant_onboarding")
    assert decision["page"] is False and decision["action"].startswith("Not an incident")
    assert decision["reason"].startswith("api_auth_invalid")
