"""The quarterly review: its health, checklist, changes since the last review and next date."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.aiagents.runbooks.plugins.filter.quarterly import quarterly_review
from ansible_collections.aiagents.runbooks.plugins.plugin_utils._review import (
    add_months, policy_hashes, promql_metrics, review_links)

RUNBOOKS = ("high_queue_depth", "worker_failures", "database_connection_issues", "api_timeout")
QUERIES = {"queue_depth": "sum(queue_depth)", "worker_active_count": "sum(worker_active_count)"}
TABLES = [{"table": "public.ticket_history", "rls_enabled": True, "rls_forced": True,
           "policies": [{"name": "tenant_isolation", "cmd": "*", "permissive": True, "roles": ["public"],
                         "using": "(tenant_id = current_setting('app.current_tenant_id'))", "check": None}]}]


def run(runbook: str, platform: str = "docker", rc: int = 0, result: str = "succeeded", **extra) -> dict:
    return {"runbook": runbook, "platform": platform, "inventory": f"inventories/{platform}", "rc": rc,
            "delta": "0:00:04.250000", "report": {"result": result, "verdict": "healthy",
                                                  "failed_at": extra.pop("failed_at", None),
                                                  "findings": extra.pop("findings", [])},
            "deprecations": extra.pop("deprecations", []), "error": None, **extra}


def healthy_evidence(platforms: tuple[str, ...] = ("docker",)) -> dict:
    return {
        "mode": "read-only",
        "runs": [run(runbook, platform) for platform in platforms for runbook in RUNBOOKS],
        "platforms": list(platforms),
        "queries": {"high_queue_depth": list(QUERIES), "worker_failures": []},
        "prometheus": {"reachable": True, "alert_rules": ["EnhancementSuccessRateLow", "HighLatency",
                                                          "QueueDepthHigh", "WorkerDown"],
                       "metrics": {name: {"query": query, "status": "ok", "value": 1.0}
                                   for name, query in QUERIES.items()}},
        "links": [{"name": "Prometheus", "url": "http://127.0.0.1:9090/-/ready", "ok": True, "status": 200,
                   "seconds": 0.01, "summary": None}],
        "versions": {"postgresql": "15.8", "redis": "7.0.15", "celery": "5.4.0", "prometheus": "2.42.0"},
        "rls_policies": policy_hashes(TABLES),
        "metric_names": ["queue_depth", "worker_active_count", "enhancement_requests_total"],
    }


def items(review: dict, runbook: str) -> dict[str, dict]:
    entry = next(entry for entry in review["runbooks"] if entry["runbook"] == runbook)
    return {item["key"]: item for item in entry["checklist"]}


def overall(review: dict) -> dict[str, dict]:
    return {item["key"]: item for item in review["overall"]}


def test_a_healthy_platform_is_green_first_time_and_again_against_its_baseline() -> None:
    first = quarterly_review(healthy_evidence(), None, "2026-11-30")
    assert first["health"] == "Green", first["action_items"]
    assert first["baseline"] is None and first["changes_since_last_review"] == []
    assert "recorded as the baseline" in overall(first)["dependencies"]["evidence"]
    again = quarterly_review(healthy_evidence(), first, "2027-02-28")
    assert again["health"] == "Green" and again["changes_since_last_review"] == []
    assert again["baseline"] == {"date": "2026-11-30", "health": "Green"}
    assert "unchanged since the last review" in overall(again)["dependencies"]["evidence"]
    assert [entry["result"] for entry in again["runbooks"]] == ["pass"] * 4 + ["not run"]
    assert again["runbooks"][0]["seconds"] == 4.25  # time to complete, from the run's delta
    assert items(again, "high_queue_depth")["prometheus"]["state"] == "done"
    assert items(again, "worker_failures")["prometheus"]["state"] == "n/a"
    assert items(again, "tenant_onboarding")["commands"]["state"] == "not in this mode"
    assert overall(again)["failure_modes"]["state"] == "reviewer"
    assert again["next_review"] == "2027-05-28"


def test_a_runbook_that_does_not_complete_makes_the_review_red() -> None:
    evidence = healthy_evidence()
    evidence["runs"][1] = run("worker_failures", rc=2, result="failed", failed_at="Describe the workers")
    review = quarterly_review(evidence, None, "2026-11-30")
    assert review["health"] == "Red" and review["health_why"] == "runbooks that failed: worker_failures"
    commands = items(review, "worker_failures")["commands"]
    assert commands["state"] == "open" and "did not complete on docker: Describe the workers" in commands["reason"]
    assert any(action.startswith("worker_failures: Commands tested") for action in review["action_items"])


def test_a_query_without_data_opens_its_item_with_an_action() -> None:
    evidence = healthy_evidence()
    evidence["prometheus"]["metrics"]["queue_depth"]["status"] = "empty"
    review = quarterly_review(evidence, None, "2026-11-30")
    assert review["health"] == "Yellow"
    item = items(review, "high_queue_depth")["prometheus"]
    assert item["state"] == "open" and "queue_depth (empty: sum(queue_depth))" in item["reason"]
    assert any("queue_depth (empty" in action for action in review["action_items"])


def test_a_changed_rls_policy_a_version_and_a_lost_metric_are_changes_naming_what_to_recheck() -> None:
    first = quarterly_review(healthy_evidence(), None, "2026-11-30")
    evidence = healthy_evidence()
    changed = copy.deepcopy(TABLES)
    changed[0]["policies"][0]["using"] = "true"
    evidence["rls_policies"] = policy_hashes(changed)
    evidence["versions"]["postgresql"] = "16.4"
    evidence["metric_names"] = ["queue_depth_jobs", "worker_active_count", "enhancement_requests_total"]
    review = quarterly_review(evidence, first, "2027-02-28")
    changes = {(change["kind"], change["what"]): change for change in review["changes_since_last_review"]}
    policy = changes[("rls_policy", "public.ticket_history/tenant_isolation")]
    assert (policy["before"], policy["after"]) == ("present", "changed")
    assert "database_connection_issues" in policy["recheck"]
    assert changes[("version", "postgresql")]["before"] == "15.8" and changes[("version", "postgresql")]["after"] == "16.4"
    assert changes[("metric", "queue_depth")]["after"] == "gone"
    assert changes[("metric", "queue_depth")]["recheck"] == ["high_queue_depth"]  # its query reads it
    assert changes[("metric", "queue_depth_jobs")]["after"] == "new"
    assert overall(review)["features"]["state"] == "open"
    assert "RLS policy public.ticket_history/tenant_isolation changed since the last review -> re-check " \
           "database_connection_issues" in overall(review)["features"]["reason"]
    assert overall(review)["dependencies"]["state"] == "open"
    assert review["health"] == "Yellow"


def test_a_platform_asked_for_but_not_run_and_deprecation_warnings_stay_open() -> None:
    evidence = healthy_evidence(("docker", "kubernetes"))
    evidence["runs"] = [entry for entry in evidence["runs"]
                        if not (entry["runbook"] == "api_timeout" and entry["platform"] == "kubernetes")]
    evidence["runs"][0]["deprecations"] = ["[DEPRECATION WARNING]: foo is deprecated"]
    review = quarterly_review(evidence, None, "2026-11-30")
    assert "not run on kubernetes" in items(review, "api_timeout")["commands"]["reason"]
    assert items(review, "high_queue_depth")["deprecated"]["state"] == "open"
    assert items(review, "worker_failures")["deprecated"]["state"] == "done"


def test_missing_alert_rules_and_an_unanswered_link_are_open_items() -> None:
    evidence = healthy_evidence()
    evidence["prometheus"]["alert_rules"] = ["QueueDepthHigh"]
    evidence["links"].append({"name": "OpenAI status page", "url": "https://status.openai.com/api/v2/status.json",
                              "ok": False, "status": None, "seconds": 10.0, "summary": "OpenAI status page unreachable"})
    review = quarterly_review(evidence, None, "2026-11-30")
    assert overall(review)["alert_rules"]["reason"] == "missing: WorkerDown, EnhancementSuccessRateLow, HighLatency"
    assert "OpenAI status page (OpenAI status page unreachable)" in items(review, "api_timeout")["links"]["reason"]


def test_policy_hashes_change_with_what_a_policy_enforces_only() -> None:
    renamed_owner = copy.deepcopy(TABLES)
    renamed_owner[0]["owner"] = "someone_else"
    assert policy_hashes(renamed_owner) == policy_hashes(TABLES)
    unforced = copy.deepcopy(TABLES)
    unforced[0]["rls_forced"] = False
    assert policy_hashes(unforced)["public.ticket_history/(rls)"] != policy_hashes(TABLES)["public.ticket_history/(rls)"]


@pytest.mark.parametrize(("query", "names"), [
    ("sum(queue_depth)", ["queue_depth"]),
    ('sum(rate(enhancement_requests_total{status="failure"}[5m])) or vector(0)', ["enhancement_requests_total"]),
    ("histogram_quantile(0.95, sum by (le) (rate(enhancement_duration_seconds_bucket[5m])))",
     ["enhancement_duration_seconds_bucket"]),
    ('sum by (pod) (container_memory_usage_bytes{pod=~"celery-worker.*"})', ["container_memory_usage_bytes"]),
    ("queue_depth > 100 and on(job) up == 1", ["queue_depth", "up"]),
])
def test_the_metric_names_a_query_reads(query: str, names: list[str]) -> None:
    assert promql_metrics(query) == names


@pytest.mark.parametrize(("day", "later"), [("2026-11-30", "2027-02-28"), ("2027-01-31", "2027-04-30"),
                                            ("2027-11-29", "2028-02-29"), ("2026-03-15", "2026-06-15")])
def test_the_next_review_is_three_months_on(day: str, later: str) -> None:
    assert add_months(day, 3) == later


def test_links_answer_when_ok_or_slow_and_say_why_not_otherwise() -> None:
    probes = [{"name": "Prometheus", "url": "u1", "status": 200, "classification": "ok", "timings": {"total": 0.01}},
              {"name": "Jaeger", "url": "u2", "status": 200, "classification": "slow", "timings": {"total": 3.0}},
              {"name": "Grafana", "url": "u3", "status": None, "classification": "unreachable",
               "error": "refused", "timings": {"total": None}}]
    findings = [{"id": "api_unreachable", "summary": "Grafana is unreachable: connection refused",
                 "evidence": {"name": "Grafana"}}]
    links = review_links(probes, findings)
    assert [link["ok"] for link in links] == [True, True, False]
    assert links[2]["summary"] == "Grafana is unreachable: connection refused" and links[2]["seconds"] == 0.0


def test_metric_names_not_read_are_an_open_item_not_a_list_of_lost_metrics() -> None:
    first = quarterly_review(healthy_evidence(), None, "2026-11-30")
    evidence = healthy_evidence()
    evidence["metric_names"] = None
    review = quarterly_review(evidence, first, "2027-02-28")
    assert review["changes_since_last_review"] == []
    assert overall(review)["features"]["state"] == "open"
    assert overall(review)["features"]["reason"] == "Prometheus did not give the platform's metric names"
    assert review["metric_names"] is None and review["health"] == "Yellow"
    # The review after compares with this one, which has none: nothing to compare.
    assert quarterly_review(healthy_evidence(), review, "2027-05-28")["changes_since_last_review"] == []


def test_a_diagnose_run_is_read_from_its_command_result_and_report() -> None:
    from ansible_collections.aiagents.runbooks.plugins.plugin_utils._review import diagnose_run

    result = {"item": ["inventories/sandbox/hosts.yml", "database_connection_issues"], "rc": 0, "delta": "0:00:03.5",
              "stdout_lines": ["\x1b[1;35m[DEPRECATION WARNING]: x is deprecated\x1b[0m"], "stderr_lines": []}
    report = {"platform": "docker", "result": "succeeded", "verdict": "down",
              "findings": [{"id": "rls_tenant_leak", "severity": "critical", "summary": "acme sees globex", "x": 1}]}
    run = diagnose_run(result, report, 300)
    assert (run["runbook"], run["platform"], run["error"]) == ("database_connection_issues", "docker", None)
    assert run["deprecations"] == ["[DEPRECATION WARNING]: x is deprecated"]
    assert run["report"]["found"] == [{"id": "rls_tenant_leak", "severity": "critical", "summary": "acme sees globex"}]
    review = quarterly_review({**healthy_evidence(), "runs": [run]}, None, "2026-11-30")
    assert review["platform_findings"] == [{"runbook": "database_connection_issues", "platform": "docker",
                                            "id": "rls_tenant_leak", "severity": "critical", "summary": "acme sees globex"}]
    timed_out = diagnose_run({**result, "rc": 124, "stderr_lines": []}, None, 300)
    assert timed_out["error"] == "no answer within 300 s" and timed_out["report"]["result"] == "no report"
    refused = diagnose_run({**result, "rc": 1, "stderr_lines": ["[ERROR]: the role 'x' was not found", "more"]}, {}, 300)
    assert refused["error"] == "[ERROR]: the role 'x' was not found" and refused["platform"] == "unknown"


def test_a_lost_metric_no_runbook_reads_names_nothing_to_recheck() -> None:
    first = quarterly_review(healthy_evidence(), None, "2026-11-30")
    evidence = healthy_evidence()
    evidence["metric_names"] = ["queue_depth", "worker_active_count"]  # enhancement_requests_total gone
    change = quarterly_review(evidence, first, "2027-02-28")["changes_since_last_review"][0]
    assert (change["what"], change["after"], change["recheck"]) == ("enhancement_requests_total", "gone", [])


def scenario(runbook: str, platform: str = "docker", **extra) -> dict:
    expected = {"worker_failures": ["workers_all_down"], "database_connection_issues": ["db_unreachable"]}.get(
        runbook, ["queue_no_workers"])
    record = {"runbook": runbook, "platform": platform, "inventory": f"inventories/{platform}",
              "faults": [["workers-stopped"]], "expected": expected, "diagnosed": list(expected), "diagnose_rc": 0,
              "resolve_rc": 0, "resolve": "succeeded", "resolved": True, "after": [],
              "actions": ["Scale the worker service"], "deprecations": [], "seconds": 30.0}
    return {**record, **extra}


def onboarding(platform: str = "docker", **extra) -> dict:
    return {"runbook": "tenant_onboarding", "platform": platform, "inventory": f"inventories/{platform}",
            "faults": [], "expected": [], "diagnosed": [], "onboard_rc": 0, "onboard": "succeeded",
            "rollback_rc": 0, "rollback": "succeeded", "resolved": True, "deprecations": [], "seconds": 50.0, **extra}


def sandbox_evidence(platforms: tuple[str, ...] = ("docker", "kubernetes")) -> dict:
    evidence = healthy_evidence(platforms)
    evidence["mode"] = "sandbox"
    evidence["scenarios"] = [scenario(runbook, platform) for platform in platforms for runbook in RUNBOOKS[:3]]
    evidence["scenarios"] += [onboarding(platform) for platform in platforms]
    return evidence


def test_sandbox_mode_proves_each_runbook_and_onboarding_on_each_platform() -> None:
    review = quarterly_review(sandbox_evidence(), None, "2026-11-30")
    assert review["health"] == "Green", review["action_items"]
    assert review["mode"] == "sandbox"
    assert [entry["result"] for entry in review["runbooks"]] == ["pass"] * 5
    onboard = items(review, "tenant_onboarding")["commands"]
    assert onboard["state"] == "done" and onboard["evidence"].count("onboarded, proved and rolled back") == 2
    assert "diagnosed workers_all_down, resolve healed it" in items(review, "worker_failures")["commands"]["evidence"]
    # Time to complete: both diagnoses (4.25 s each) and both scenarios (30 s each).
    assert next(e for e in review["runbooks"] if e["runbook"] == "worker_failures")["seconds"] == 68.5
    assert [s["passed"] for s in review["scenarios"]] == [True] * 8


@pytest.mark.parametrize(("broken", "reason"), [
    ({"diagnosed": []}, "diagnose did not report workers_all_down (it found nothing; resolve not run)"),
    ({"resolve_rc": 2}, "diagnosed; resolve failed (exit 2)"),
    ({"resolved": False, "after": ["workers_all_down"]}, "resolved nothing - after resolve: workers_all_down"),
])
def test_a_scenario_not_diagnosed_or_not_healed_fails_its_runbook(broken: dict, reason: str) -> None:
    evidence = sandbox_evidence(("docker",))
    evidence["scenarios"][1] = scenario("worker_failures", **broken)
    review = quarterly_review(evidence, None, "2026-11-30")
    assert review["health"] == "Red" and review["health_why"] == "runbooks that failed: worker_failures"
    commands = items(review, "worker_failures")["commands"]
    assert commands["state"] == "open" and reason in commands["reason"]
    assert [s["passed"] for s in review["scenarios"] if s["runbook"] == "worker_failures"] == [False]


def test_onboarding_that_is_not_rolled_back_fails_and_says_so() -> None:
    evidence = sandbox_evidence(("docker",))
    evidence["scenarios"][-1] = onboarding(resolved=False, rollback_rc=2, rollback="failed")
    review = quarterly_review(evidence, None, "2026-11-30")
    assert review["health"] == "Red"
    assert "rollback failed (exit 2)" in items(review, "tenant_onboarding")["commands"]["reason"]


def test_a_platform_without_its_scenarios_leaves_the_commands_open() -> None:
    evidence = sandbox_evidence(("docker",))
    evidence["platforms"] = ["docker", "kubernetes"]
    review = quarterly_review(evidence, None, "2026-11-30")
    assert "not run on kubernetes" in items(review, "tenant_onboarding")["commands"]["reason"]
