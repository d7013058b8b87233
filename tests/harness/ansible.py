"""Run modules and playbooks the way Ansible really runs them.

Goes through ansible-runner (the `ansible` / `ansible-playbook` executables
with the repo's ansible.cfg), so a module is packaged with its module_utils,
shipped to the interpreter and parsed from JSON exactly as in production.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    rc: int
    status: str
    stdout: str
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> dict[str, Any]:
        """The single task result of an ad-hoc module run."""
        assert len(self.results) == 1, f"expected one result, got {len(self.results)}:\n{self.stdout}"
        return self.results[0]


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    env.update(extra or {})
    return env


def _collect(runner) -> list[dict[str, Any]]:
    results = []
    for event in runner.events:
        if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            data = event["event_data"]
            results.append({**data["res"], "_task": data.get("task"), "_event": event["event"]})
    return results


def run_module(name: str, args: dict[str, Any] | None = None, check: bool = False,
               verbosity: int = 0, env: dict[str, str] | None = None) -> Run:
    """Run one module on localhost through the `ansible` ad-hoc command."""
    cmdline = "--check" if check else None
    with tempfile.TemporaryDirectory(prefix="aiagents-runner-") as private:
        runner = ansible_runner.run(
            private_data_dir=private,
            host_pattern="localhost",
            inventory="localhost ansible_connection=local",
            module=name,
            module_args=json.dumps(args or {}),
            cmdline=cmdline,
            envvars=_env(env),
            verbosity=verbosity,
            quiet=True,
            project_dir=str(REPO),
        )
        return Run(runner.rc, runner.status, runner.stdout.read(), _collect(runner))


def run_playbook(playbook: str | Path, extravars: dict[str, Any] | None = None, tags: str | None = None,
                 check: bool = False, inventory: str | None = None, verbosity: int = 0,
                 env: dict[str, str] | None = None) -> Run:
    """Run a playbook from the repo with the repo's ansible.cfg."""
    cmdline = []
    if check:
        cmdline.append("--check")
    if inventory:
        cmdline += ["-i", str(inventory)]
    with tempfile.TemporaryDirectory(prefix="aiagents-runner-") as private:
        runner = ansible_runner.run(
            private_data_dir=private,
            playbook=str((REPO / playbook).resolve()),
            extravars=extravars or {},
            tags=tags,
            cmdline=" ".join(cmdline) or None,
            envvars=_env(env),
            verbosity=verbosity,
            quiet=True,
            project_dir=str(REPO),
        )
        return Run(runner.rc, runner.status, runner.stdout.read(), _collect(runner))
