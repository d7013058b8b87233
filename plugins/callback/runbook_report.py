# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write every runbook run's report: JSON for tools, Markdown for the incident ticket."""

from __future__ import annotations

DOCUMENTATION = r"""
name: runbook_report
type: notification
short_description: Write the runbook report (JSON and Markdown) of every runbook playbook run
version_added: 1.0.0
description:
  - Active for plays that set C(runbook_name). Records each task as a step with its status and duration,
    collects the C(findings) every check returns, records the changed tasks of acting phases (C(resolve),
    C(onboard), C(verify), C(rollback), from C(--tags); a play's C(runbook_default_mode) otherwise) as
    actions, applies the runbook's escalation rules, says whether the run succeeded (C(result)) and writes
    C(<report_dir>/<runbook>/latest.json), a timestamped copy and a Markdown rendering.
  - The report is written even when a step fails, so a run that could not finish still leaves its evidence.
  - C(report_dir) is the play variable C(runbooks_report_dir) (C(-e runbooks_report_dir=DIR)), by default
    C(reports/) beside the playbooks directory.
requirements:
  - enabled in ansible.cfg (callbacks_enabled)
"""

import json
import os
import time
from datetime import datetime, timezone

from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible_collections.aiagents.runbooks.plugins.module_utils import _escalation
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import sort_findings


# The phase a run is in, from its --tags (first match); plays name their default.
MODES = ("resolve", "rollback", "onboard", "verify", "validate", "diagnose")
# Phases that change the platform: their changed tasks are the run's actions.
ACTING_MODES = ("resolve", "rollback", "onboard", "verify")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "aiagents.runbooks.runbook_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.playbook_dir = os.getcwd()
        self.report = None
        self.task_started: dict[str, float] = {}
        self.seen_findings: set[tuple[str, str]] = set()

    # -- collecting
    def v2_playbook_on_start(self, playbook) -> None:
        self.playbook_dir = os.path.abspath(playbook._basedir)

    def v2_playbook_on_play_start(self, play) -> None:
        # Raw (untemplated) values, lowest precedence first: groups, host, play, extra vars.
        variables: dict = {}
        manager = play.get_variable_manager()
        hosts = manager._inventory.get_hosts(play.hosts) if manager is not None and manager._inventory else []
        if hosts:
            for group in sorted(hosts[0].get_groups(), key=lambda group: group.depth):
                variables.update(group.get_vars())
            variables.update(hosts[0].get_vars())
        variables.update(play.vars or {})
        if manager is not None:
            variables.update(manager.extra_vars or {})
        name = variables.get("runbook_name")
        if not name or self.report is not None:
            return
        tags = context.CLIARGS.get("tags") or ()
        mode = next((tag for tag in MODES if tag in tags), str(variables.get("runbook_default_mode") or "diagnose"))
        report_dir = variables.get("runbooks_report_dir") or os.path.join(os.path.dirname(self.playbook_dir), "reports")
        self.report = {
            "runbook": str(name),
            "mode": mode,
            "check_mode": bool(context.CLIARGS.get("check")),
            "platform": str(variables.get("runbooks_platform", "docker")),
            "started_at": _iso(time.time()),
            "_started": time.monotonic(),
            "_dir": str(report_dir),
            "steps": [],
            "findings": [],
            "escalation": None,
            "actions": [],
            "verdict": None,
            "result": "succeeded",
        }

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self.task_started[task._uuid] = time.monotonic()

    def _step(self, result, status: str) -> None:
        if self.report is None:
            return
        task = result._task
        started = self.task_started.get(task._uuid, time.monotonic())
        data = result._result or {}
        name = task.get_name(include_role_fqcn=False)
        # Resolve re-reads state to confirm a fix (runbook_phase: verify); that is not the diagnosis.
        if task.get_vars().get("runbook_phase") != "verify":
            self._collect_findings(data.get("findings"))
        # Judgements made on the controller arrive as facts: <x>_findings lists, or dicts holding findings.
        for fact, value in (data.get("ansible_facts") or {}).items():
            if fact.endswith("_findings"):
                self._collect_findings(value)
            elif isinstance(value, dict):
                self._collect_findings(value.get("findings"))
        if not name or task.action in ("ansible.builtin.set_fact", "set_fact", "ansible.builtin.debug", "debug",
                                       "ansible.builtin.include_tasks", "ansible.builtin.include_role",
                                       "ansible.builtin.meta", "meta", "ansible.builtin.validate_argument_spec",
                                       "validate_argument_spec"):
            return
        step = {"name": name, "status": status, "duration_s": round(time.monotonic() - started, 3)}
        if status == "failed" and data.get("msg"):
            step["error"] = str(data["msg"])[:500]
        self.report["steps"].append(step)
        if self.report["mode"] in ACTING_MODES and data.get("changed") and status == "ok":
            self.report["actions"].append({"id": name, "changed": True,
                                           "check_mode": self.report["check_mode"],
                                           "detail": _detail(data)})

    def _collect_findings(self, findings) -> None:
        for item in findings if isinstance(findings, list) else []:
            if not isinstance(item, dict) or "id" not in item or "severity" not in item:
                continue
            key = (item["id"], item.get("summary"))
            if key not in self.seen_findings:
                self.seen_findings.add(key)
                self.report["findings"].append(item)

    def v2_runner_on_ok(self, result) -> None:
        self._step(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._step(result, "failed")

    def v2_runner_on_unreachable(self, result) -> None:
        self._step(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._step(result, "skipped")

    # -- writing
    def v2_playbook_on_stats(self, stats) -> None:
        if self.report is None:
            return
        report = self.report
        report["findings"] = sort_findings(report["findings"])
        if stats.failures or stats.dark:
            report["result"] = "failed"
        report["escalation"] = _escalation.decide(report["findings"], report["runbook"])
        report["verdict"] = _escalation.verdict(report["findings"])
        report["finished_at"] = _iso(time.time())
        report["duration_s"] = round(time.monotonic() - report.pop("_started"), 3)
        directory = os.path.join(report.pop("_dir"), report["runbook"])
        os.makedirs(directory, exist_ok=True)
        stamp = report["finished_at"].replace(":", "").replace("-", "")
        document = json.dumps(report, indent=2, sort_keys=False, default=str)
        markdown = render_markdown(report)
        for name, text in ((f"{stamp}.json", document), ("latest.json", document),
                           (f"{stamp}.md", markdown), ("latest.md", markdown)):
            with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        self._display.display(f"runbook report: {os.path.join(directory, 'latest.md')} "
                              f"(verdict {report['verdict']}, {len(report['findings'])} findings)")


def _detail(data: dict) -> str:
    for key in ("msg", "moved", "terminated", "diff"):
        if data.get(key):
            return json.dumps(data[key], default=str)[:300] if not isinstance(data[key], str) else data[key][:300]
    return "changed"


def render_markdown(report: dict) -> str:
    escalation = report["escalation"]
    lines = [
        f"# Runbook {report['runbook']} ({report['mode']}{', check mode' if report['check_mode'] else ''})",
        "",
        f"- Result: **{report['result']}**; verdict: **{report['verdict']}**",
        f"- Platform: {report['platform']}",
        f"- Ran: {report['started_at']} to {report['finished_at']} ({report['duration_s']} s)",
        f"- Escalation: {'**PAGE** - ' if escalation['page'] else ''}{escalation['severity']}: {escalation['action']}",
        f"  - because {escalation['reason']}",
        "",
        "## Findings",
        "",
    ]
    if report["findings"]:
        lines += ["| severity | id | summary | resolution |", "|---|---|---|---|"]
        for item in report["findings"]:
            follow = f" (follow {item['runbook']})" if item.get("runbook") else ""
            lines.append(f"| {item['severity']} | `{item['id']}` | {_cell(item['summary'])} | "
                         f"{_cell(item.get('resolution', ''))}{follow} |")
    else:
        lines.append("None: every check passed.")
    if report["actions"] or report["mode"] in ACTING_MODES:
        lines += ["", "## Actions", ""]
        lines += [f"- {action['id']}: {_cell(action['detail'])}" for action in report["actions"]] or ["- none taken"]
    lines += ["", "## Steps", "", "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {_cell(step['name'])} | {step['status']} | {step['duration_s']} |" for step in report["steps"]]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
