"""scripts/quarterly-validation: progress and step times from ansible-runner's events."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "quarterly-validation"


def load():
    loader = importlib.machinery.SourceFileLoader("quarterly_validation_script", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


script = load()


def events(task: str, items: list[str], duration: float = 8.5) -> list[dict]:
    out = [{"event": "playbook_on_task_start", "event_data": {"task": task}}]
    out += [{"event": "runner_item_on_ok", "event_data": {"task": task, "res": {"_ansible_item_label": item}}}
            for item in items]
    out.append({"event": "runner_on_ok", "event_data": {"task": task, "duration": duration}})
    return out


def test_plain_lines_count_the_diagnoses_and_name_the_step(capsys) -> None:
    progress = script.Progress(runs=2, live=False)
    for event in events(script.DIAGNOSE_TASK, ["high_queue_depth on a", "worker_failures on a"]):
        progress.event(event)
    for event in events("Run every Prometheus query the runbooks use", [], duration=0.4):
        progress.event(event)
    lines = capsys.readouterr().out.splitlines()
    assert "\r" not in "".join(lines)
    assert lines[0].endswith(f"[0/2 runs] {script.DIAGNOSE_TASK}")
    assert "[1/2 runs] run 1 of 2 done: diagnose high_queue_depth on a" in lines[1]
    assert "[2/2 runs] run 2 of 2 done: diagnose worker_failures on a" in lines[2]
    assert lines[3].endswith("Run every Prometheus query the runbooks use")
    steps = {step["step"]: step["seconds"] for step in progress.steps}
    # Each diagnose is timed from the events around it; other steps carry the runner's own duration.
    assert set(steps) == {"diagnose high_queue_depth on a", "diagnose worker_failures on a",
                          "Run every Prometheus query the runbooks use"}
    assert steps["Run every Prometheus query the runbooks use"] == 0.4


def test_sandbox_scenarios_count_as_runs_timed_from_their_first_task_to_their_result(capsys, monkeypatch) -> None:
    progress = script.Progress(runs=2, live=False)
    timeline = [("playbook_on_task_start", "Make room for the scenario's runs - worker_failures on docker", 100.0),
                ("playbook_on_task_start", "Resolve - worker_failures on docker", 130.0),
                ("runner_on_ok", "Keep the scenario's result - worker_failures on docker", 142.5),
                ("playbook_on_task_start", "Make room for onboarding's runs - docker", 150.0),
                ("runner_on_ok", "Keep onboarding's result - docker", 201.0)]
    for kind, task, moment in timeline:
        monkeypatch.setattr(script.time, "monotonic", lambda moment=moment: moment)
        progress.event({"event": kind, "event_data": {"task": task}})
    lines = capsys.readouterr().out.splitlines()
    assert "[1/2 runs] run 1 of 2 done: scenario worker_failures on docker (42.5 s)" in lines[2]
    assert "[2/2 runs] run 2 of 2 done: onboarding docker (51.0 s)" in lines[-1]
    assert {step["step"]: step["seconds"] for step in progress.steps} == {
        "scenario worker_failures on docker": 42.5, "onboarding docker": 51.0}


def test_on_a_terminal_one_line_keeps_its_place(capsys) -> None:
    progress = script.Progress(runs=1, live=True)
    for event in events(script.DIAGNOSE_TASK, ["api_timeout on a"]):
        progress.event(event)
    out = capsys.readouterr().out
    assert out.count("\r") == 2 and "\n" not in out


def test_a_failed_step_is_kept_with_its_message_unless_ignored() -> None:
    progress = script.Progress(runs=0, live=False)
    ignored = {"task": "Read Redis' version", "ignore_errors": True, "res": {"msg": "ignored"}}
    progress.event({"event": "runner_on_failed", "event_data": ignored})
    progress.event({"event": "runner_on_failed", "event_data": {"task": "Write the review", "res": {"msg": "Permission denied"}}})
    assert progress.failed == ["Write the review: Permission denied"]


def test_an_inventory_that_does_not_exist_is_refused_before_anything_runs(capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        script.parse_args(["-i", "inventories/nowhere"])
    assert refused.value.code == 2
    assert "inventory inventories/nowhere does not exist" in capsys.readouterr().err


def test_an_inventory_directory_names_its_hosts_file() -> None:
    repo = SCRIPT.parents[1]
    assert script.inventory_file(str(repo / "inventories" / "sandbox")) == str(repo / "inventories" / "sandbox" / "hosts.yml")
