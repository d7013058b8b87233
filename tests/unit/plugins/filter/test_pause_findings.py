"""platform_paused: what a runbook stopped or held on purpose, named by every diagnose with how to resume."""
from __future__ import annotations

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import pause_entry, pause_findings


def test_services_and_tenants_are_told_apart_and_each_says_how_to_resume():
    api = pause_entry({"key": "api", "value": {"reason": "intake paused", "runbook": "api_timeout", "at": "t"}})
    tenant = pause_entry({"key": "tenant:acme-corp", "value": {"reason": "flooding", "runbook": "high_queue_depth"}})
    assert (api["kind"], api["name"]) == ("service", "api")
    assert (tenant["kind"], tenant["name"]) == ("tenant", "acme-corp")
    assert tenant["resume"] == "ansible-playbook playbooks/resume.yml -e resume=tenant:acme-corp"
    found = pause_findings([api, tenant])
    assert [(item["id"], item["severity"]) for item in found] == [("platform_paused", "low")]
    assert "the api service (intake paused, by api_timeout at t)" in found[0]["summary"]
    assert "tenant acme-corp (flooding" in found[0]["summary"]
    assert "-e resume=api" in found[0]["resolution"] and "-e resume=tenant:acme-corp" in found[0]["resolution"]


def test_nothing_paused_is_no_finding():
    assert pause_findings([]) == [] and pause_findings(None) == []
