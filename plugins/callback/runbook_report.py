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
  - A resolve ends with a re-check (tasks marked C(runbook_phase=recheck)); every finding of the diagnosis then
    gets an C(outcome) (C(resolved), C(persisting) or C(not_acted) with C(why)), problems first seen by the
    re-check are added as findings, and C(verdict) and C(escalation) describe the state after resolve; the
    diagnosis' own are kept under C(diagnosis).
  - Remediation tasks name the findings they act on with the task variable C(runbook_remedies); tasks that
    run only when a remediation is declined (no opt-in, a guard) name them with C(runbook_declines)
    (C({finding, why})), their message being the detail.
  - The report is written even when a step fails, so a run that could not finish still leaves its evidence
    and names the step it stopped at (C(failed_at)). Files are replaced atomically.
  - C(runbook_name) and C(runbook_default_mode) may be templates, resolved when the play starts.
  - C(report_dir) is the play variable C(runbooks_report_dir) (C(-e runbooks_report_dir=DIR), templates
    allowed), by default C(reports/) beside the playbooks directory of a checkout, or C(reports/) in the
    current directory for the playbooks of an installed collection.
  - The collection's own playbooks load it without configuration (C(playbooks/callback_plugins)); enable it
    in C(callbacks_enabled) for playbooks of your own that run the roles. Enabled twice, it writes one report.
"""

import json
import os
import tempfile
import time
from datetime import datetime, timezone

from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible_collections.aiagents.runbooks.plugins.module_utils import _escalation, _triage
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import check, sort_findings, worst_severity


# The phase a run is in, from its --tags (first match); plays name their default.
MODES = ("resolve", "rollback", "onboard", "verify", "validate", "diagnose")
# Phases that change the platform: their changed tasks are the run's actions.
ACTING_MODES = ("resolve", "rollback", "onboard", "verify")
# Tasks that only compute or say something: no step of their own in the report.
QUIET_ACTIONS = ("ansible.builtin.set_fact", "set_fact", "ansible.builtin.debug", "debug",
                 "ansible.builtin.include_tasks", "ansible.builtin.include_role", "ansible.builtin.meta", "meta",
                 "ansible.builtin.validate_argument_spec", "validate_argument_spec")
# The instance writing the report of this run, when more than one is loaded (enabled, and beside the playbook).
_WRITER: list = []
# Why a finding was not acted on.
NOT_OPTED_IN = "not_opted_in"
GUARD = "guard"
CHECK_MODE = "check_mode"
NO_REMEDIATION = "no_remediation"
DECLINE_REASONS = (NOT_OPTED_IN, GUARD)
# The run of playbooks/triage.yml: several runbooks' diagnoses, each on a host of its own (host variable
# triage_runbook); its report ranks their findings as probable causes.
TRIAGE = "triage"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ids(value) -> list[str]:
    """A finding id or a list of them, as a list."""
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else []


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
        self.after: list[dict] = []
        self.seen_after: set[tuple[str, str]] = set()
        self.rechecked = False
        self.acted: dict[str, list[str]] = {}
        self.declined: dict[str, dict] = {}
        self.last_failure: str | None = None
        # (runbook, finding) for every finding a triage's runbooks reported, duplicates included.
        self.found_by: list[tuple[str, dict]] = []

    # -- collecting
    def v2_playbook_on_start(self, playbook) -> None:
        self.playbook_dir = os.path.abspath(playbook._basedir)

    def v2_playbook_on_play_start(self, play) -> None:
        # Raw (untemplated) values, lowest precedence first: groups, host, play, extra vars.
        variables: dict = {}
        manager = play.get_variable_manager()
        hosts = manager._inventory.get_hosts(play.hosts) if manager is not None and manager._inventory else []
        if hosts and manager is not None:
            # Every source, at its precedence: group_vars/ and host_vars/ files come from vars plugins,
            # which the groups' own vars do not include.
            variables.update(manager.get_vars(play=play, host=hosts[0], include_hostvars=False))
        elif hosts:
            for group in sorted(hosts[0].get_groups(), key=lambda group: group.depth):
                variables.update(group.get_vars())
            variables.update(hosts[0].get_vars())
        variables.update(play.vars or {})
        if manager is not None:
            variables.update(manager.extra_vars or {})
        name = variables.get("runbook_name")
        if not name or self.report is not None or (_WRITER and _WRITER[0] is not self):
            return
        _WRITER[:] = [self]
        if _templated(name):  # a playbook that routes to a runbook (alert.yml) names it with a template
            name = _template(play, hosts, name)
        tags = context.CLIARGS.get("tags") or ()
        default_mode = variables.get("runbook_default_mode") or "diagnose"
        if _templated(default_mode):
            default_mode = _template(play, hosts, default_mode)
        mode = next((tag for tag in MODES if tag in tags), str(default_mode))
        report_dir = variables.get("runbooks_report_dir") or _default_dir(self.playbook_dir)
        if _templated(report_dir):
            report_dir = _template(play, hosts, report_dir)
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

    def _step(self, result, status: str, ignored: bool = False) -> None:
        if self.report is None:
            return
        task = result._task
        started = self.task_started.get(task._uuid, time.monotonic())
        data = result._result or {}
        try:
            name = task.get_name(include_role_fqcn=False)
        except TypeError:  # an include_role task's get_name() takes no argument
            name = task.get_name()
        task_vars = task.get_vars()
        phase = task_vars.get("runbook_phase")
        source = str((getattr(result._host, "vars", None) or {}).get("triage_runbook") or self.report["runbook"])
        if phase == "recheck" or (phase != "verify" and _resolving(task)):
            collect = self._collect_after
        else:
            def collect(findings) -> None:
                self._collect_findings(findings, source)
        if phase == "recheck" and status == "ok":
            self.rechecked = True
        # Resolve re-reads state to confirm a fix (runbook_phase: verify); that is neither diagnosis nor after-state.
        if phase != "verify":
            collect(data.get("findings"))
        # Judgements made on the controller arrive as facts: <x>_findings lists, or dicts holding findings.
        for fact, value in (data.get("ansible_facts") or {}).items():
            if fact.endswith("_findings"):
                collect(value)
            elif isinstance(value, dict):
                collect(value.get("findings"))
        if status == "ok":
            self._note_remedy(task_vars, name, data)
        if not name or task.action in QUIET_ACTIONS:
            return
        step = {"name": name, "status": status, "duration_s": round(time.monotonic() - started, 3)}
        if status == "failed" and data.get("msg"):
            step["error"] = str(data["msg"])[:500]
        if status == "failed" and not ignored:  # the last one stopped the play, unless a rescue caught it
            self.last_failure = name
        self.report["steps"].append(step)
        if self.report["mode"] in ACTING_MODES and data.get("changed") and status == "ok":
            self.report["actions"].append({"id": name, "changed": True,
                                           "check_mode": self.report["check_mode"],
                                           "detail": _detail(data)})

    def _note_remedy(self, task_vars: dict, name: str, data: dict) -> None:
        """Which findings this task acted on (runbook_remedies, when it changed something) or declined."""
        if data.get("changed"):
            for finding_id in _ids(task_vars.get("runbook_remedies")):
                self.acted.setdefault(finding_id, []).append(name)
        declines = task_vars.get("runbook_declines")
        if isinstance(declines, dict):
            why = str(declines.get("why") or NOT_OPTED_IN)
            messages = [item.get("msg") for item in data.get("results") or [] if isinstance(item, dict)] \
                or [data.get("msg")]
            detail = " ".join(str(message) for message in messages if message)[:600]
            for finding_id in _ids(declines.get("finding")):
                self.declined.setdefault(finding_id, {"why": why if why in DECLINE_REASONS else GUARD,
                                                      "detail": detail})

    def _collect_findings(self, findings, source: str = "") -> None:
        for item in self._collect(findings, self.report["findings"], self.seen_findings):
            self.found_by.append((source or str(self.report.get("runbook")), item))

    def _collect_after(self, findings) -> None:
        self._collect(findings, self.after, self.seen_after)

    def _collect(self, findings, into: list, seen: set) -> list[dict]:
        """Add the valid findings not seen yet to `into`; returns every valid one (seen before or not)."""
        valid = []
        for item in findings if isinstance(findings, list) else []:
            problem = check(item)
            if problem:  # only findings as the one constructor builds them (a filter in YAML) are taken
                rejected = {"finding": str(item)[:300], "why": problem}
                if rejected not in self.report.setdefault("rejected_findings", []):
                    self.report["rejected_findings"].append(rejected)
                    self._display.warning(f"runbook report: a finding is refused ({problem}): {str(item)[:200]}")
                continue
            valid.append(item)
            key = (item["id"], item.get("summary"))
            if key not in seen:
                seen.add(key)
                into.append(item)
        return valid

    def v2_runner_on_ok(self, result) -> None:
        self._step(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._step(result, "failed", ignored=ignore_errors)

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
            report["failed_at"] = self.last_failure or "an unreachable host"
        report["escalation"] = _escalation.decide(report["findings"], report["runbook"])
        report["verdict"] = _escalation.verdict(report["findings"])
        if report["runbook"] == TRIAGE:
            report["causes"] = _triage.rank(self.found_by)
            if report["causes"]:
                top = report["causes"][0]
                report["escalation"]["reason"] = (f"probable cause {top['id']}: {top['summary']} "
                                                  f"(follow {top['runbook']})")
        if report["mode"] == "resolve":
            judge_outcomes(report, self.after, self.rechecked, self.acted, self.declined)
        report["finished_at"] = _iso(time.time())
        report["duration_s"] = round(time.monotonic() - report.pop("_started"), 3)
        directory = os.path.join(report.pop("_dir"), report["runbook"])
        os.makedirs(directory, exist_ok=True)
        stamp = report["finished_at"].replace(":", "").replace("-", "")
        document = json.dumps(report, indent=2, sort_keys=False, default=str)
        markdown = render_markdown(report)
        for name, text in ((f"{stamp}.json", document), (f"{stamp}.md", markdown),
                           ("latest.json", document), ("latest.md", markdown)):
            _write_atomically(os.path.join(directory, name), text)
        self._display.display(f"runbook report: {os.path.join(directory, 'latest.md')} "
                              f"(verdict {report['verdict']}, {len(report['findings'])} findings)")


def _default_dir(playbook_dir: str) -> str:
    """reports/ beside the playbooks of a checkout; in the current directory for an installed collection's."""
    if f"{os.sep}ansible_collections{os.sep}" in playbook_dir + os.sep:
        return os.path.join(os.getcwd(), "reports")
    return os.path.join(os.path.dirname(playbook_dir), "reports")


def _resolving(task) -> bool:
    """A task of the resolve phase proper (tagged resolve, not diagnose): what it finds is after-state."""
    tags = set(task.tags or ())
    return "resolve" in tags and "diagnose" not in tags


def _templated(value) -> bool:
    return "{{" in str(value) or "{%" in str(value)


def _template(play, hosts, value):
    """`value` templated with the play's variables (a report directory given as a template)."""
    from ansible.template import Templar  # only needed for templated directories

    manager = play.get_variable_manager()
    variables = manager.get_vars(play=play, host=hosts[0] if hosts else None)
    return str(Templar(loader=manager._loader, variables=variables).template(value))


def _write_atomically(path: str, text: str) -> None:
    """Write `path` so a reader sees the old file or the whole new one, never half of it."""
    handle, temporary = tempfile.mkstemp(prefix=".", suffix=".part", dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def judge_outcomes(report: dict, after: list[dict], rechecked: bool, acted: dict[str, list[str]],
                   declined: dict[str, dict]) -> None:
    """Give each diagnosed finding its outcome and make verdict and escalation describe the after-state.

    acted on and gone in the re-check: resolved; acted on and still there (or never re-checked): persisting;
    otherwise not_acted, with why (declined: not opted in or a guard; check mode; no automatic remediation).
    A problem first seen in the re-check is added as a finding of its own, persisting.
    """
    after = sort_findings(after)
    after_ids = {item["id"] for item in after}
    check = report["check_mode"]
    for item in report["findings"]:
        finding_id = item["id"]
        if finding_id in acted and not check:
            item["outcome"] = "resolved" if rechecked and finding_id not in after_ids else "persisting"
            item["acted_by"] = acted[finding_id]
            if not rechecked:
                item["why"] = f"not re-checked: the run stopped at {report.get('failed_at') or 'an earlier step'}"
        elif finding_id in acted:
            item.update(outcome="not_acted", why=CHECK_MODE, detail="would run: " + "; ".join(acted[finding_id]))
        elif finding_id in declined:
            item.update(outcome="not_acted", **declined[finding_id])
        elif check:
            item.update(outcome="not_acted", why=CHECK_MODE, detail="--check: nothing was changed")
        else:
            item.update(outcome="not_acted", why=NO_REMEDIATION,
                        detail="the runbook changes nothing for this finding: follow its resolution and the escalation")
        if rechecked:
            item["seen_after"] = finding_id in after_ids
    diagnosed = {item["id"] for item in report["findings"]}
    new = [dict(item, outcome="persisting", new=True) for item in after if item["id"] not in diagnosed]
    report["findings"] = sort_findings(report["findings"] + new)
    report["diagnosis"] = {"verdict": report["verdict"], "escalation": report["escalation"],
                           "findings": sorted(diagnosed)}
    if not rechecked:
        report["after"] = None
        report["resolved"] = False
        return
    report["after"] = {"findings": after, "verdict": _escalation.verdict(after)}
    report["verdict"] = report["after"]["verdict"]
    report["escalation"] = _escalation.decide(after, report["runbook"])
    report["resolved"] = report["verdict"] == "healthy"


def _detail(data: dict) -> str:
    for key in ("msg", "moved", "terminated", "diff"):
        if data.get(key):
            return json.dumps(data[key], default=str)[:300] if not isinstance(data[key], str) else data[key][:300]
    return "changed"


def _headline(report: dict) -> list[str]:
    """Resolve's answer first: is the incident over, and if not, what is still wrong."""
    if report["mode"] != "resolve":
        return []
    if report["check_mode"]:
        return ["**Check mode: nothing was changed; the diagnosis below still stands.**", ""]
    if report.get("after") is None:
        return [f"**Incident NOT resolved: the run stopped at {report.get('failed_at') or 'a failed step'} "
                "before the re-check.**", ""]
    counts = {name: sum(1 for item in report["findings"] if item.get("outcome") == name)
              for name in ("resolved", "persisting", "not_acted")}
    tally = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items() if count)
    if report["resolved"]:
        return [f"**Incident resolved**: the re-check after resolve finds the platform healthy ({tally}).", ""]
    still = [item for item in report["after"]["findings"]
             if _escalation.verdict([item]) != "healthy"]
    worst = worst_severity(still) or "low"
    return [f"**Incident NOT resolved**: the re-check still finds {len(still)} problem(s), worst {worst}: "
            + ", ".join(f"`{item['id']}`" for item in still) + f" ({tally}).", ""]


def render_markdown(report: dict) -> str:
    escalation = report["escalation"]
    resolving = report["mode"] == "resolve"
    lines = [f"# Runbook {report['runbook']} ({report['mode']}{', check mode' if report['check_mode'] else ''})", ""]
    lines += _headline(report)
    lines += [
        f"- Result: **{report['result']}**; verdict: **{report['verdict']}**"
        + (f" (at diagnosis: {report['diagnosis']['verdict']})" if resolving else ""),
        f"- Platform: {report['platform']}",
        f"- Ran: {report['started_at']} to {report['finished_at']} ({report['duration_s']} s)",
        f"- Escalation: {'**PAGE** - ' if escalation['page'] else ''}{escalation['severity']}: {escalation['action']}",
        f"  - because {escalation['reason']}",
    ]
    if report.get("failed_at"):
        lines.append(f"- Stopped at: {_cell(report['failed_at'])}")
    if "causes" in report:
        lines += ["", "## Probable causes", ""]
        lines += ["| rank | cause | severity | follow | explains | seen by |", "|---|---|---|---|---|---|"]
        for cause in report["causes"]:
            explains = ", ".join(f"`{item['id']}`" for item in cause["explains"]) or "-"
            lines.append(f"| {cause['rank']} | `{cause['id']}`: {_cell(cause['summary'])} | {cause['severity']} | "
                         f"{cause['runbook']} | {explains} | {', '.join(cause['seen_by'])} |")
        if not report["causes"]:
            lines.append("None: no runbook found anything above info.")
    lines += ["", "## Findings", ""]
    if report["findings"] and resolving:
        lines += ["| severity | id | summary | outcome | resolution |", "|---|---|---|---|---|"]
        for item in report["findings"]:
            follow = f" (follow {item['runbook']})" if item.get("runbook") else ""
            outcome = item.get("outcome", "")
            if item.get("new"):
                outcome += " (new after resolve)"
            if item.get("why"):
                outcome += f": {item['why']}"
            lines.append(f"| {item['severity']} | `{item['id']}` | {_cell(item['summary'])} | {_cell(outcome)} | "
                         f"{_cell(item.get('detail') or item.get('resolution', ''))}{follow} |")
    elif report["findings"]:
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
