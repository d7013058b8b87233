# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbooks' escalation rules, applied to findings.

Each finding id maps to who is told and how fast, as the runbooks' Escalation
sections say; the decision for a run is the most urgent rule that applies.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import severity_rank, sort_findings

# finding id -> (page now?, action)
RULES: dict[str, tuple[bool, str]] = {
    # high_queue_depth
    "queue_depth_high": (False, "Follow the QueueDepthHigh procedure within 1 minute; above 500 jobs page on-call."),
    "queue_oldest_job_stale": (True, "Page on-call (high): a job has waited over 30 minutes."),
    "queue_no_workers": (True, "Page on-call now (critical) and follow worker_failures."),
    "queue_depth_elevated": (False, "Capacity planning (medium) if the queue sits above 75 every day."),
    "queue_depth_not_draining": (True, "Escalate to DevOps: depth stays high with 5 or more workers."),
    "queue_tenant_flood": (False, "Escalate to engineering for a per-tenant rate limit."),
    # worker_failures
    "workers_all_down": (True, "Page on-call now (critical): no worker is running."),
    "worker_crash_loop": (True, "Page on-call (high): workers crash 3+ times an hour."),
    "worker_oom_killed": (False, "Raise the memory limit; if it recurs, engineering looks for the leak."),
    "worker_segfault": (True, "Escalate to engineering with logs and versions (segfault)."),
    "platform_paused": (False, "Paused on purpose by a runbook: resume it (the finding says how) once the cause "
                               "it was paused for is dealt with; until then no runbook starts it again."),
    "worker_hung": (False, "Restart the hung workers; if it recurs, engineering with a thread dump and the last logs."),
    "worker_exception": (False, "Unresolved after 30 min: engineering, with last logs, restarts and recent deploys."),
    "worker_dependency_unreachable": (True, "Restore the dependency the finding names (Redis or PostgreSQL) first, "
                                            "then restart the workers."),
    # database_connection_issues
    "db_unreachable": (True, "Page the DBA and on-call (critical) if unresponsive 5+ minutes."),
    "db_auth_failed": (True, "Page the DBA: the workers' credentials are refused."),
    "db_connections_saturated": (False, "DBA (high) if unresolved in 30 minutes."),
    "db_corruption_suspected": (True, "Corruption suspected (critical): stop writes - pause intake, stop the "
                                      "workers - and page the DBA and on-call."),
    "rls_tenant_leak": (True, "Security incident: page on-call and the DBA; stop intake for the affected tenants."),
    "rls_context_unset": (True, "Security incident: page on-call and the DBA; the policy fails open."),
    "rls_bypass_role": (True, "Security incident: page the DBA; the app role bypasses RLS."),
    "rls_disabled": (True, "Page the DBA: a tenant table has no row-level security. Never loosen a policy to fix it."),
    "rls_policy_missing": (False, "DBA: restore the tenant policy from the schema migration."),
    "rls_not_forced": (False, "DBA: FORCE ROW LEVEL SECURITY on the tables the app owns."),
    "rls_policy_not_tenant_scoped": (True, "Page the DBA: the policy does not scope rows to the tenant."),
    # api_timeout
    "api_timeout": (False, "Provider down 30+ min: page on-call (high) and send the customer notice."),
    "api_server_error": (False, "Provider failure: monitor; down 30+ min: page and notify customers."),
    "api_unreachable": (False, "Network/firewall: platform team within 2 hours (medium)."),
    "api_rate_limited": (False, "Quota/capacity review within 1 hour (medium) if it recurs."),
    "api_auth_invalid": (True, "Every job fails: rotate the credential now."),
    "api_forbidden": (False, "Fix the API key's permissions at the provider."),
    "api_quota_exhausted": (True, "Out of quota or credit: every LLM call fails until billing acts - escalate to "
                                  "the owner of the provider account now; retrying and pausing intake do not help."),
    "api_key_scopes_missing": (True, "Every call the key may not make fails: fix the key's scopes at the provider."),
    "api_source_not_allowed": (True, "Every call fails: add the workers' egress address to the provider's allowlist "
                                     "(platform team)."),
    "api_region_unsupported": (True, "The provider refuses the workers' region: platform team to route egress "
                                     "through a supported one."),
    "sdp_token_expired": (False, "Refresh the ServiceDesk Plus Cloud access token (the refresh token is good); "
                                 "if it recurs, fix where the platform renews it. Nothing to rotate."),
}


# Runbooks that change the platform on request rather than answer an incident:
# what they find stops the change; nobody is paged for it.
NOT_INCIDENTS = {
    "tenant_onboarding": "Not an incident: onboarding stopped; fix what the finding names (credentials, "
                         "reachability, platform health) and run it again.",
}


def decide(findings: list[dict[str, Any]], runbook: str | None = None) -> dict[str, Any]:
    """{severity, page, action, reason} for the run, from its findings."""
    ordered = sort_findings(findings)
    if not ordered or severity_rank(ordered[0]["severity"]) < severity_rank("low"):
        return {"severity": "info", "page": False, "action": "No escalation.", "reason": "no findings above info"}
    worst = ordered[0]
    if runbook in NOT_INCIDENTS:
        return {"severity": worst["severity"], "page": False, "action": NOT_INCIDENTS[runbook],
                "reason": f"{worst['id']}: {worst['summary']}"}
    paging = [item for item in ordered if RULES.get(item["id"], (False, ""))[0]
              or item["severity"] == "critical"]
    lead = paging[0] if paging else worst
    action = RULES.get(lead["id"], (False, lead.get("resolution") or "Follow the finding's resolution."))[1]
    return {"severity": worst["severity"], "page": bool(paging), "action": action,
            "reason": f"{lead['id']}: {lead['summary']}"}


def verdict(findings: list[dict[str, Any]]) -> str:
    """down on any critical finding, degraded on medium or high; low and info
    findings (a metric gap, a normal shutdown) leave the platform healthy."""
    ranks = [severity_rank(item["severity"]) for item in findings]
    if any(rank >= severity_rank("critical") for rank in ranks):
        return "down"
    if any(rank >= severity_rank("medium") for rank in ranks):
        return "degraded"
    return "healthy"
