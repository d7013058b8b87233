"""Benchmark: each runbook's diagnose on the warm sandbox, beside an empty play.

Runs `ansible-playbook playbooks/<runbook>.yml --tags diagnose` 5 times per
runbook against the running sandbox of the platform asked for (bring it up
first: sandbox/bin/sandbox up [--platform kubernetes]), with that platform's
sandbox inventory, and prints the median wall time beside an empty
ansible-playbook play measured in the same run, against the 5 s target.
Then triage (playbooks/triage.yml: the four diagnoses at once, ranked), whose
goal is the slowest single diagnose plus one second. Usage:

    .venv/bin/python benchmarks/runbook_diagnose.py [--runs 5] [--platform docker|kubernetes]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNBOOKS = ("high_queue_depth", "worker_failures", "database_connection_issues", "api_timeout")
INVENTORIES = {"docker": "inventories/sandbox", "kubernetes": "inventories/sandbox_kubernetes"}
TARGET_SECONDS = 5.0
# Triage runs the four diagnoses side by side: at most this much over the slowest alone.
TRIAGE_MARGIN_SECONDS = 1.0
EMPTY_PLAY = "- name: Empty play\n  hosts: localhost\n  gather_facts: false\n  tasks: []\n"


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--platform", choices=sorted(INVENTORIES), default="docker")
    args = parser.parse_args()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    status = subprocess.run([str(REPO / "sandbox/bin/sandbox"), "status", "--platform", args.platform],
                            capture_output=True, text=True, check=False)
    if status.returncode != 0:
        sys.exit(f"the {args.platform} sandbox is not up and healthy: run "
                 f"sandbox/bin/sandbox up --platform {args.platform} first")
    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "empty.yml"
        empty.write_text(EMPTY_PLAY)
        reports = Path(scratch) / "reports"
        medians: dict[str, float] = {}
        baseline = statistics.median(timed(["ansible-playbook", str(empty)], env) for _run in range(args.runs))
        print(f"diagnose on the warm {args.platform} sandbox ({INVENTORIES[args.platform]}), median of {args.runs} "
              f"runs (target <= {TARGET_SECONDS:g} s)")
        print(f"  {'empty ansible-playbook play':<32} {baseline:6.2f} s")
        for runbook in RUNBOOKS:
            argv = ["ansible-playbook", "-i", INVENTORIES[args.platform], f"playbooks/{runbook}.yml",
                    "--tags", "diagnose", "-e", f"runbooks_report_dir={reports}"]
            median = statistics.median(timed(argv, env) for _run in range(args.runs))
            verdict = "met" if median <= TARGET_SECONDS else "MISSED"
            print(f"  {runbook:<32} {median:6.2f} s   (+{median - baseline:.2f} s over the empty play)  {verdict}")
            medians[runbook] = median
        argv = ["ansible-playbook", "-i", INVENTORIES[args.platform], "playbooks/triage.yml",
                "-e", f"runbooks_report_dir={reports}"]
        triage = statistics.median(timed(argv, env) for _run in range(args.runs))
        slowest = max(medians, key=medians.get)
        goal = medians[slowest] + TRIAGE_MARGIN_SECONDS
        print(f"  {'triage (all four at once)':<32} {triage:6.2f} s   (goal <= {goal:.2f} s: {slowest} "
              f"{medians[slowest]:.2f} s + {TRIAGE_MARGIN_SECONDS:g} s; the four one after another "
              f"{sum(medians.values()):.2f} s)  {'met' if triage <= goal else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
