"""Run modules and playbooks the way Ansible really runs them.

Goes through ansible-runner (the `ansible` / `ansible-playbook` executables
with the repo's ansible.cfg), so a module is packaged with its module_utils,
shipped to the interpreter and parsed from JSON exactly as in production.
"""

from __future__ import annotations

import json
import os
import subprocess
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
               verbosity: int = 0, env: dict[str, str] | None = None, diff: bool = False) -> Run:
    """Run one module on localhost through the `ansible` ad-hoc command (--check, --diff as asked)."""
    cmdline = " ".join(flag for flag, wanted in (("--check", check), ("--diff", diff)) if wanted) or None
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
                 env: dict[str, str] | None = None, diff: bool = False) -> Run:
    """Run a playbook from the repo with the repo's ansible.cfg."""
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
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


@dataclass
class CliRun:
    rc: int
    stdout: str
    stderr: str


def run_playbook_cli(playbook: str | Path, extravars_file: str | Path | None = None, verbosity: int = 0,
                     env: dict[str, str] | None = None, timeout: float = 300) -> CliRun:
    """Run `ansible-playbook` itself (no ansible-runner) on localhost, its stdout and stderr kept apart.

    ansible-runner runs Ansible under a pty, which merges the two streams; this
    is for tests that must tell what each one shows.
    """
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    if extravars_file:
        command += ["-e", f"@{extravars_file}"]
    if verbosity:
        command.append("-" + "v" * verbosity)
    completed = subprocess.run(command, cwd=REPO, env={**os.environ, **_env(env)}, capture_output=True, text=True,
                               timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    return CliRun(completed.returncode, completed.stdout, completed.stderr)
