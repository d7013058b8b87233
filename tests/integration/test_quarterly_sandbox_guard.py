"""Quarterly validation's sandbox mode breaks the platform on purpose: it refuses, before anything runs,
any inventory not marked as a sandbox - and never shows what that inventory's variables hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECRET = "Zq5e1f0c2a9b3d7Xk"


def inventory(path: Path, marked: bool | None) -> Path:
    (path / "group_vars" / "all").mkdir(parents=True)
    (path / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    mark = "" if marked is None else f"runbooks_sandbox: {str(marked).lower()}\n"
    (path / "group_vars" / "all" / "platform.yml").write_text(
        f"runbooks_platform: docker\n{mark}runbooks_external_apis:\n"
        f"  - {{name: ServiceDesk Plus, url: 'http://127.0.0.1:1', bearer_token: {SECRET}}}\n")
    return path


def run_sandbox_mode(tmp_path: Path, inventories: list[Path]) -> tuple[subprocess.CompletedProcess, Path]:
    calls = tmp_path / "calls"
    cli = tmp_path / "sandbox-cli"
    cli.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    cli.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_CONFIG"}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", "ANSIBLE_NOCOLOR": "1"})
    extra = {"quarterly_validation_inventories": [str(path) for path in inventories],
             "quarterly_validation_sandbox_cli": str(cli), "quarterly_validation_report_dir": str(tmp_path / "qv")}
    run = subprocess.run(["ansible-playbook", "playbooks/quarterly_validation.yml", "--tags", "sandbox",
                          "-e", json.dumps(extra)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return run, calls


def test_an_inventory_not_marked_as_a_sandbox_is_refused_before_anything_runs(tmp_path: Path) -> None:
    sandbox = inventory(tmp_path / "sandbox", True)
    production = inventory(tmp_path / "production", None)
    declined = inventory(tmp_path / "declined", False)
    run, calls = run_sandbox_mode(tmp_path, [sandbox, production, declined, tmp_path / "missing"])
    output = run.stdout + run.stderr
    assert run.returncode != 0
    for path in (production, declined):
        assert (f"Sandbox mode breaks the platform on purpose, and {path} is not marked as a sandbox "
                "(runbooks_sandbox: true is not set in it); nothing was run.") in output
    assert f"{tmp_path / 'missing'} is not marked as a sandbox (it could not be read:" in output
    assert f"{sandbox} is not marked" not in output
    assert not calls.exists()  # the sandbox's command line never ran: nothing broken, nothing healed
    assert not (tmp_path / "qv").exists()  # no diagnose ran, no review was written
    assert SECRET not in output
