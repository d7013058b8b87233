# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The quarterly review: the seed's review template, filled in from what one validation run measured.

No I/O: the quarterly_validation role gathers the evidence (diagnose runs, Prometheus, links,
versions, RLS policies, metric names) and the last review's JSON; this turns them into the review.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from datetime import date
from typing import Any

# The runbooks the review covers, in the seed's order, with the file the seed's template names.
RUNBOOK_DOCS = {
    "high_queue_depth": "high-queue-depth.md",
    "worker_failures": "worker-failures.md",
    "database_connection_issues": "database-connection-issues.md",
    "api_timeout": "api-timeout.md",
    "tenant_onboarding": "tenant-onboarding.md",
}
# The Prometheus alert rules the runbooks answer (runbooks.md §3); each must be loaded.
ALERT_RUNBOOKS = {
    "QueueDepthHigh": ["high_queue_depth", "worker_failures"],
    "WorkerDown": ["worker_failures"],
    "EnhancementSuccessRateLow": ["api_timeout", "worker_failures", "database_connection_issues"],
    "HighLatency": ["api_timeout", "database_connection_issues"],
}
# What a change of each recorded fact means for the runbooks.
RECHECK = {
    "kubernetes": ["worker_failures", "high_queue_depth"],
    "postgresql": ["database_connection_issues", "tenant_onboarding"],
    "redis": ["high_queue_depth", "worker_failures"],
    "celery": ["worker_failures", "high_queue_depth"],
    "prometheus": ["high_queue_depth"],
    "rls_policies": ["database_connection_issues", "tenant_onboarding"],
}
# Template items per runbook (the seed's "For Each Runbook"), in its order.
PER_RUNBOOK_ITEMS = (
    ("commands", "Commands tested and working (Docker and Kubernetes)"),
    ("prometheus", "Prometheus queries return valid results"),
    ("links", "External links verified (Grafana, Jaeger, API status pages)"),
    ("outputs", "Screenshots/example outputs current"),
    ("deprecated", "No references to deprecated components or APIs"),
    ("jaeger", "Jaeger query examples still valid"),
)
# An item is done (with its evidence), open (with the reason: an action item), not applicable, left to the
# reviewer who signs, or not checked in this mode (read-only cannot onboard a tenant).
DONE, OPEN, NOT_APPLICABLE, REVIEWER, NOT_THIS_MODE = "done", "open", "n/a", "reviewer", "not in this mode"
GREEN, YELLOW, RED = "Green", "Yellow", "Red"


def add_months(day: str, months: int = 3) -> str:
    """The same day `months` later (the last day of a shorter month): 2026-11-30 + 3 -> 2027-02-28."""
    start = date.fromisoformat(day)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1])).isoformat()


def policy_hashes(tables: list[dict[str, Any]]) -> dict[str, str]:
    """`table/policy` -> sha256 of what the policy enforces (command, roles, permissive, USING, WITH CHECK),
    from postgresql_rls_info's tables; a table with RLS off or not forced is recorded as such."""
    hashes = {}
    for table in tables or []:
        name = table.get("table")
        hashes[f"{name}/(rls)"] = _digest({"enabled": table.get("rls_enabled"), "forced": table.get("rls_forced")})
        for policy in table.get("policies") or []:
            definition = {key: policy.get(key) for key in ("cmd", "permissive", "roles", "using", "check")}
            hashes[f"{name}/{policy.get('name')}"] = _digest(definition)
    return hashes


def review_links(probes: list[dict[str, Any]], findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each probed link: answered (ok, or slow but answering), its status and time, and the finding's summary."""
    summaries = {}
    for found in findings:
        name = (found.get("evidence") or {}).get("api") or (found.get("evidence") or {}).get("name")
        if name:
            summaries.setdefault(name, found.get("summary"))
    links = []
    for probe in probes:
        answered = probe.get("classification") in ("ok", "slow")
        links.append({"name": probe.get("name"), "url": probe.get("url"), "ok": answered, "status": probe.get("status"),
                      "seconds": (probe.get("timings") or {}).get("total") or 0.0,
                      "summary": None if answered else summaries.get(probe.get("name"))
                      or probe.get("error") or probe.get("classification")})
    return links


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def diagnose_run(result: dict[str, Any], report: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    """One diagnose run, from its command result (item: [inventory, runbook]) and the report it wrote."""
    report = report if isinstance(report, dict) else {}
    inventory, runbook = result.get("item") or [None, None]
    rc = result.get("rc")
    lines = [_ANSI.sub("", line) for line in (result.get("stdout_lines") or []) + (result.get("stderr_lines") or [])]
    error = None
    if rc in (124, 137):
        error = f"no answer within {timeout:g} s"
    elif rc != 0:
        said = [line.strip() for line in result.get("stderr_lines") or [] if line.strip().startswith("[ERROR]")]
        error = (said[0] if said else f"exit {rc}")[:300]
    return {"runbook": runbook, "inventory": inventory, "platform": report.get("platform") or "unknown",
            "rc": rc, "delta": result.get("delta"),
            "report": {"result": report.get("result") or "no report", "verdict": report.get("verdict"),
                       "failed_at": report.get("failed_at"),
                       "findings": [f.get("id") for f in report.get("findings") or [] if isinstance(f, dict)],
                       "found": [{key: f.get(key) for key in ("id", "severity", "summary")}
                                 for f in report.get("findings") or [] if isinstance(f, dict)]},
            "deprecations": sorted({line.strip() for line in lines if "DEPRECATION WARNING" in line}),
            "error": error}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _item(key: str, text: str, state: str, detail: str) -> dict[str, str]:
    return {"key": key, "item": text, "state": state, ("evidence" if state in (DONE, NOT_APPLICABLE) else "reason"): detail}


_PROMQL_DROP = re.compile(r'"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]'
                          r"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_PROMQL_NAME = re.compile(r"(?<![\w:])([A-Za-z_:][\w:]*)(?!\s*\(|[\w:])")
_PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                    "group_right", "inf", "nan", "Inf", "NaN"}


def promql_metrics(query: str) -> list[str]:
    """The metric names a PromQL expression reads: identifiers that are neither functions, keywords,
    label matchers, ranges nor grouping labels."""
    stripped = _PROMQL_DROP.sub(" ", query or "")
    return sorted({name for name in _PROMQL_NAME.findall(stripped) if name not in _PROMQL_KEYWORDS})


def metric_users(queries: dict[str, list[str]], metrics: dict[str, Any]) -> dict[str, list[str]]:
    """runbook -> the metric names its Prometheus queries read."""
    return {runbook: sorted({name for query in names for name in promql_metrics((metrics.get(query) or {}).get("query"))})
            for runbook, names in queries.items() if names}


def _runs_by_runbook(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for run in runs or []:
        grouped.setdefault(run["runbook"], []).append(run)
    return grouped


def _seconds(run: dict[str, Any]) -> float:
    """A run's wall time: given, or the command's delta (H:MM:SS.ffffff)."""
    if isinstance(run.get("seconds"), (int, float)):
        return float(run["seconds"])
    try:
        hours, minutes, seconds = str(run.get("delta") or "").split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return 0.0


def _run_passed(run: dict[str, Any]) -> bool:
    report = run.get("report") or {}
    return run.get("rc") == 0 and report.get("result") == "succeeded"


def _run_line(run: dict[str, Any]) -> str:
    report = run.get("report") or {}
    if _run_passed(run):
        return f"diagnose completed on {run['platform']} in {_seconds(run):.1f} s (verdict {report.get('verdict')})"
    why = report.get("failed_at") or run.get("error") or f"exit {run.get('rc')}"
    return f"diagnose did not complete on {run['platform']}: {why}"


def scenario_passed(scenario: dict[str, Any]) -> bool:
    """A sandbox scenario passed: diagnose reported every expected finding and resolve's report says the
    incident is resolved (onboarding: onboarded and rolled back, both reports succeeded)."""
    if scenario.get("runbook") == "tenant_onboarding":
        return bool(scenario.get("resolved"))
    found = set(scenario.get("diagnosed") or [])
    return (set(scenario.get("expected") or []) <= found and scenario.get("resolve_rc") == 0
            and bool(scenario.get("resolved")))


def _scenario_line(scenario: dict[str, Any]) -> str:
    platform, seconds = scenario.get("platform"), float(scenario.get("seconds") or 0)
    if scenario.get("runbook") == "tenant_onboarding":
        if scenario_passed(scenario):
            return f"a throwaway tenant onboarded, proved and rolled back on {platform} in {seconds:.1f} s"
        return (f"onboarding on {platform}: onboard {scenario.get('onboard')} (exit {scenario.get('onboard_rc')}), "
                f"rollback {scenario.get('rollback')} (exit {scenario.get('rollback_rc')})")
    faults = ", ".join(" ".join(fault) for fault in scenario.get("faults") or [])
    missing = sorted(set(scenario.get("expected") or []) - set(scenario.get("diagnosed") or []))
    if missing:
        return (f"{faults} on {platform}: diagnose did not report {', '.join(missing)} "
                f"(it found {', '.join(scenario.get('diagnosed') or []) or 'nothing'}; resolve not run)")
    if scenario.get("resolve_rc") != 0:
        return f"{faults} on {platform}: diagnosed; resolve failed (exit {scenario.get('resolve_rc')})"
    if not scenario.get("resolved"):
        return (f"{faults} on {platform}: diagnosed, resolved nothing - after resolve: "
                f"{', '.join(scenario.get('after') or []) or 'no report'}")
    return (f"{faults} on {platform}: diagnosed {', '.join(scenario.get('expected') or [])}, resolve healed it "
            f"({', '.join(scenario.get('actions') or []) or 'no action'}) in {seconds:.1f} s")


def _commands_item(runs: list[dict[str, Any]], platforms: list[str],
                   scenarios: list[dict[str, Any]] | None = None) -> dict[str, str]:
    text = dict(PER_RUNBOOK_ITEMS)["commands"]
    scenarios = scenarios or []
    if not runs and not scenarios:
        return _item("commands", text, OPEN, "no diagnose run: not among quarterly_validation_runbooks")
    lines = "; ".join([_run_line(run) for run in runs] + [_scenario_line(scenario) for scenario in scenarios])
    ran_on = {run["platform"] for run in runs} | {scenario.get("platform") for scenario in scenarios}
    missing = [platform for platform in platforms if platform not in ran_on]
    if not all(_run_passed(run) for run in runs) or not all(scenario_passed(item) for item in scenarios):
        return _item("commands", text, OPEN, lines)
    if missing:
        return _item("commands", text, OPEN, f"{lines}; not run on {', '.join(missing)}")
    return _item("commands", text, DONE, lines)


def _prometheus_item(queries: list[str], prometheus: dict[str, Any]) -> dict[str, str]:
    text = dict(PER_RUNBOOK_ITEMS)["prometheus"]
    if not queries:
        return _item("prometheus", text, NOT_APPLICABLE, "the runbook reads no Prometheus query")
    if not prometheus.get("reachable"):
        return _item("prometheus", text, OPEN, "Prometheus did not answer")
    metrics = prometheus.get("metrics") or {}
    bad = [f"{name} ({(metrics.get(name) or {}).get('status', 'not run')}: {(metrics.get(name) or {}).get('query')})"
           for name in queries if (metrics.get(name) or {}).get("status") != "ok"]
    if bad:
        return _item("prometheus", text, OPEN, "no data from " + "; ".join(bad))
    return _item("prometheus", text, DONE, f"{len(queries)} queries returned data: {', '.join(queries)}")


def _links_item(links: list[dict[str, Any]]) -> dict[str, str]:
    text = dict(PER_RUNBOOK_ITEMS)["links"]
    if not links:
        return _item("links", text, OPEN, "no link was checked")
    bad = [f"{link['name']} ({link.get('summary') or link.get('status')})" for link in links if not link.get("ok")]
    if bad:
        return _item("links", text, OPEN, "not answering: " + "; ".join(bad))
    return _item("links", text, DONE, "answered: " + ", ".join(
        f"{link['name']} {link.get('status')} in {link.get('seconds', 0):.2f} s" for link in links))


def _deprecated_item(runs: list[dict[str, Any]]) -> dict[str, str]:
    text = dict(PER_RUNBOOK_ITEMS)["deprecated"]
    warnings = sorted({warning for run in runs for warning in run.get("deprecations") or []})
    if warnings:
        return _item("deprecated", text, OPEN, "deprecation warnings in the run: " + "; ".join(warnings))
    if not runs:
        return _item("deprecated", text, OPEN, "no run to read warnings from")
    return _item("deprecated", text, DONE, "no deprecation warning in any run of it")


def _jaeger_item(runbook: str, runs: list[dict[str, Any]]) -> dict[str, str]:
    text = dict(PER_RUNBOOK_ITEMS)["jaeger"]
    if runbook != "api_timeout":
        return _item("jaeger", text, NOT_APPLICABLE, "the runbook reads no trace")
    jaeger = [finding for run in runs for finding in (run.get("report") or {}).get("findings") or []
              if str(finding).startswith("jaeger_")]
    if not runs or not all(_run_passed(run) for run in runs):
        return _item("jaeger", text, OPEN, "the diagnose that queries Jaeger did not complete")
    if jaeger:
        return _item("jaeger", text, OPEN, "the trace queries found: " + ", ".join(sorted(set(jaeger))))
    return _item("jaeger", text, DONE, "the diagnose read the traces through Jaeger's query API")


def compare(baseline: dict[str, Any] | None, current: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed since the last review, each with the runbooks to re-check."""
    if not baseline:
        return []
    changes = []
    before, after = baseline.get("versions") or {}, current.get("versions") or {}
    for component in sorted(set(before) | set(after)):
        if before.get(component) != after.get(component):
            changes.append({"kind": "version", "what": component, "before": before.get(component),
                            "after": after.get(component), "recheck": RECHECK.get(component, [])})
    old, new = baseline.get("rls_policies") or {}, current.get("rls_policies") or {}
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            state = "added" if key not in old else "removed" if key not in new else "changed"
            changes.append({"kind": "rls_policy", "what": key, "before": "absent" if state == "added" else "present",
                            "after": state,
                            "recheck": RECHECK["rls_policies"]})
    if baseline.get("metric_names") is None or current.get("metric_names") is None:
        return changes  # not read, one time or the other: nothing to compare
    old_names, new_names = set(baseline["metric_names"]), set(current["metric_names"])
    for name in sorted(old_names - new_names):
        users = [runbook for runbook, names in (current.get("metric_users") or {}).items() if name in names]
        changes.append({"kind": "metric", "what": name, "before": "exported", "after": "gone", "recheck": users})
    for name in sorted(new_names - old_names):
        changes.append({"kind": "metric", "what": name, "before": "absent", "after": "new", "recheck": []})
    return changes


def _change_line(change: dict[str, Any]) -> str:
    recheck = f" -> re-check {', '.join(change['recheck'])}" if change["recheck"] else ""
    if change["kind"] == "version":
        return f"{change['what']} {change['before'] or 'unknown'} -> {change['after'] or 'unknown'} since the last review{recheck}"
    if change["kind"] == "rls_policy":
        return f"RLS policy {change['what']} {change['after']} since the last review{recheck}"
    return f"metric {change['what']} {'no longer exported' if change['after'] == 'gone' else 'new'} since the last review{recheck}"


def build_review(evidence: dict[str, Any], baseline: dict[str, Any] | None, today: str) -> dict[str, Any]:
    """The review (JSON-ready): runbooks, checklist with evidence or reasons, changes, action items, health."""
    runs = _runs_by_runbook(evidence.get("runs") or [])
    scenarios = _runs_by_runbook(evidence.get("scenarios") or [])
    platforms = evidence.get("platforms") or []
    prometheus = evidence.get("prometheus") or {}
    links = evidence.get("links") or []
    queries = evidence.get("queries") or {}
    users = metric_users(queries, prometheus.get("metrics") or {})
    reviewed, action_items = [], []

    for runbook, doc in RUNBOOK_DOCS.items():
        own, proved = runs.get(runbook, []), scenarios.get(runbook, [])
        items = [
            _commands_item(own, platforms, proved) if runbook != "tenant_onboarding" or own or proved else
            _item("commands", dict(PER_RUNBOOK_ITEMS)["commands"], NOT_THIS_MODE,
                  "onboarding changes the platform: it is proved in sandbox mode (--tags sandbox) only"),
            _prometheus_item(queries.get(runbook) or [], prometheus),
            _links_item(links),
            _item("outputs", dict(PER_RUNBOOK_ITEMS)["outputs"], NOT_APPLICABLE,
                  "no screenshot: the example outputs are this run's own reports"),
            _deprecated_item(own + proved) if runbook != "tenant_onboarding" or own or proved else
            _item("deprecated", dict(PER_RUNBOOK_ITEMS)["deprecated"], NOT_THIS_MODE,
                  "read from onboarding's own run, in sandbox mode"),
            _jaeger_item(runbook, own),
        ]
        for item in items:
            if item["state"] == OPEN:
                action_items.append(f"{runbook}: {item['item']} - {item['reason']}")
        ran = own or proved
        passed = bool(ran) and all(_run_passed(run) for run in own) and all(scenario_passed(item) for item in proved)
        reviewed.append({"runbook": runbook, "doc": doc, "result": "pass" if passed else "fail" if ran else "not run",
                         "seconds": round(sum(_seconds(run) for run in own + proved), 2), "checklist": items,
                         "findings": sorted({str(f) for run in own for f in (run.get("report") or {}).get("findings") or []})})

    loaded = set(prometheus.get("alert_rules") or [])
    missing_rules = [alert for alert in ALERT_RUNBOOKS if alert not in loaded]
    changes = compare(baseline, {**evidence, "metric_users": users})
    version_changes = [c for c in changes if c["kind"] == "version"]
    other_changes = [c for c in changes if c["kind"] != "version"]
    names_read = evidence.get("metric_names") is not None
    versions = evidence.get("versions") or {}
    overall = [
        _item("failure_modes", "No new failure modes from incidents this quarter", REVIEWER,
              "needs the quarter's postmortems: a reviewer ticks it"),
        _item("features", "New application features require runbook updates",
              OPEN if other_changes or not names_read else DONE,
              "; ".join([_change_line(c) for c in other_changes]
                        + ([] if names_read else ["Prometheus did not give the platform's metric names"]))
              if other_changes or not names_read else
              ("nothing the runbooks rely on changed since the last review (RLS policies, metric names)"
               if baseline else "first review: RLS policies and metric names recorded as the baseline")),
        _item("dependencies", "Dependencies updated (K8s, database versions)",
              OPEN if version_changes else DONE,
              "; ".join(_change_line(c) for c in version_changes) if version_changes else
              ", ".join(f"{name} {value}" for name, value in sorted(versions.items()))
              + (" - unchanged since the last review" if baseline else " - recorded as the baseline")),
        _item("alert_rules", "The four alert rules are loaded in Prometheus",
              OPEN if missing_rules else DONE,
              f"missing: {', '.join(missing_rules)}" if missing_rules else ", ".join(sorted(ALERT_RUNBOOKS))),
        _item("feedback", "Team feedback collected and addressed", REVIEWER, "a reviewer ticks it"),
    ]
    for item in overall:
        if item["state"] == OPEN:
            action_items.append(f"{item['item']} - {item['reason']}")

    failed = [entry["runbook"] for entry in reviewed if entry["result"] == "fail"]
    open_items = [item for entry in reviewed for item in entry["checklist"] if item["state"] == OPEN]
    open_items += [item for item in overall if item["state"] == OPEN]
    health = RED if failed else YELLOW if open_items else GREEN
    return {
        "review": "quarterly_validation",
        "date": today,
        "mode": evidence.get("mode", "read-only"),
        "health": health,
        "health_why": (f"runbooks that failed: {', '.join(failed)}" if failed else
                       f"{len(open_items)} checklist items open" if open_items else
                       "every runbook ran and every check held"),
        "platforms": platforms,
        "runbooks": reviewed,
        "overall": overall,
        # Sandbox mode: each scenario (fault, diagnose, resolve; onboarding), passed or not, with its time.
        "scenarios": [{**scenario, "passed": scenario_passed(scenario), "line": _scenario_line(scenario)}
                      for entries in scenarios.values() for scenario in entries],
        "changes_since_last_review": changes,
        "action_items": action_items,
        # What the diagnoses found on the platform now: not the runbooks' health, but worth the reviewer's eye.
        "platform_findings": [{"runbook": run["runbook"], "platform": run["platform"], **found}
                              for entries in runs.values() for run in entries
                              for found in (run.get("report") or {}).get("found") or []],
        "versions": versions,
        "rls_policies": evidence.get("rls_policies") or {},
        "metric_names": sorted(evidence["metric_names"]) if names_read else None,
        "metric_users": users,
        "links": links,
        "baseline": {"date": baseline.get("date"), "health": baseline.get("health")} if baseline else None,
        "next_review": add_months(today, 3),
        "approved_by": {"operations_lead": None, "engineering_lead": None},
    }
