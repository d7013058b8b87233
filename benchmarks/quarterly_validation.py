"""Benchmark: the quarterly validation's wall time, read-only and sandbox mode, beside the goals and the hand-run.

Runs scripts/quarterly-validation against the sandboxes that are up (Docker's, the cluster's, or both:
bring them up first with sandbox/bin/sandbox up [--platform kubernetes]), once read-only and once with
--sandbox (every scenario on every sandbox, and onboarding), into a scratch report directory, and
prints each mode's wall time and the review's health beside the issue's goals (read-only <= 60 s,
sandbox <= 10 min) and the 1-2 hours the team spends by hand. It also prints each sandbox scenario's
own time. Usage:

    .venv/bin/python benchmarks/quarterly_validation.py [--platform docker --platform kubernetes]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INVENTORIES = {"docker": "inventories/sandbox", "kubernetes": "inventories/sandbox_kubernetes"}
GOALS = {"read-only": 60.0, "sandbox": 600.0}
BY_HAND = "1-2 h"


def up(platform: str) -> bool:
    status = subprocess.run([str(REPO / "sandbox/bin/sandbox"), "status", "--platform", platform],
                            capture_output=True, text=True, check=False)
    return status.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", action="append", choices=sorted(INVENTORIES),
                        help="a sandbox to validate (repeat; default: every one that is up)")
    args = parser.parse_args()
    platforms = args.platform or [platform for platform in INVENTORIES if up(platform)]
    down = [platform for platform in platforms if not up(platform)]
    if not platforms or down:
        sys.exit(f"no sandbox up ({', '.join(down) or 'docker, kubernetes'}): run sandbox/bin/sandbox up "
                 "[--platform kubernetes] first")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for mode, flags in (("read-only", []), ("sandbox", ["--sandbox"])):
            argv = [sys.executable, str(REPO / "scripts/quarterly-validation"), "--plain", "--report-dir",
                    f"{scratch}/{mode}"]
            for platform in platforms:
                argv += ["-i", INVENTORIES[platform]]
            print(f"{mode}: {' '.join(argv[1:])}", flush=True)
            started = time.monotonic()
            run = subprocess.run(argv + flags, cwd=REPO, env=env, capture_output=True, text=True, check=False)
            seconds = time.monotonic() - started
            latest = Path(scratch) / mode / "latest.json"
            review = json.loads(latest.read_text()) if latest.exists() else {}
            if not review:
                print(run.stdout[-3000:] + run.stderr[-2000:], file=sys.stderr)
            rows.append((mode, seconds, review))
    print()
    print(f"platforms: {', '.join(platforms)}; by hand: {BY_HAND}")
    print(f"{'mode':<10} {'wall':>9} {'goal':>9}  {'met':<4} review")
    for mode, seconds, review in rows:
        met = "yes" if seconds <= GOALS[mode] and review else "no"
        print(f"{mode:<10} {seconds:8.1f}s {GOALS[mode]:8.0f}s  {met:<4} "
              f"{review.get('health', 'no review')} - {review.get('health_why', '')}")
    scenarios = next((review.get("scenarios") or [] for mode, _seconds, review in rows if mode == "sandbox"), [])
    if scenarios:
        print("\nsandbox scenarios:")
        for scenario in scenarios:
            print(f"  {scenario['seconds']:7.1f}s  {'pass' if scenario['passed'] else 'FAIL'}  "
                  f"{scenario['runbook']} on {scenario['platform']}: {scenario['line']}")
    return 0 if all(review for _mode, _seconds, review in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
