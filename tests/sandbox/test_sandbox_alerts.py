"""Alerts run their runbooks on their own: the sandbox's Prometheus and Alertmanager notify the alert rulebook
(extensions/eda/rulebooks/alerts.yml, run by the real ansible-rulebook through scripts/alert-rulebook), which runs
the alert's runbook and files the report in a ServiceDesk Plus incident (the stand-in)."""

from __future__ import annotations

import json
import re
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from tests.harness.sandbox import ROOT, wait_for

if TYPE_CHECKING:
    from conftest import Sandbox

pytestmark = pytest.mark.sandbox
V3 = "application/vnd.manageengine.sdp.v3+json"


@dataclass
class Rulebook:
    process: subprocess.Popen
    reports: Path
    url: str
    log: Path

    def runs(self, fingerprint: str, report: str) -> list[Path]:
        """The reports written for the alert (one timestamped JSON per run)."""
        return sorted((self.reports / fingerprint / report).glob("2*.json"))


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def rulebook(sandbox: Sandbox, tmp_path_factory) -> Iterator[Rulebook]:
    port = sandbox.port("eda_webhook")
    assert not _listening(port), f"something already listens on the rulebook's port {port}"
    reports = tmp_path_factory.mktemp("alerts")
    log = reports / "rulebook.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(ROOT / "scripts" / "alert-rulebook"), "--reports", str(reports)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: _listening(port) or process.poll() is not None, 60, 0.5, "the rulebook's webhook")
        assert process.poll() is None, log.read_text()[-3000:]
        yield Rulebook(process, reports, f"http://127.0.0.1:{port}/endpoint", log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def notification(name: str, fingerprint: str, status: str = "firing") -> dict:
    """A notification as Alertmanager's webhook receiver sends it (payload version 4)."""
    now = datetime.now(timezone.utc).isoformat()
    alert = {"status": status, "labels": {"alertname": name, "severity": "warning"},
             "annotations": {"summary": f"{name} (test)"}, "startsAt": now,
             "endsAt": now if status == "resolved" else "0001-01-01T00:00:00Z",
             "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": fingerprint}
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{name}"}}', "truncatedAlerts": 0, "status": status,
            "receiver": "runbooks", "groupLabels": {"alertname": name}, "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"], "externalURL": "http://127.0.0.1:9093", "alerts": [alert]}


def incidents(sandbox: Sandbox, fingerprint: str) -> list[dict]:
    query = urllib.parse.urlencode({"input_data": json.dumps({"list_info": {"row_count": 100, "search_criteria": {
        "field": "subject", "condition": "contains", "value": f"[runbooks {fingerprint}]"}}})})
    answer = requests.get(sandbox.url("sdp", f"/api/v3/requests?{query}"), timeout=10,
                          headers={"authtoken": sandbox.secret("sdp-credentials", "api_key"), "Accept": V3})
    return answer.json()["requests"]


def test_the_same_alert_twice_runs_once_and_a_resolved_one_runs_nothing(sandbox, rulebook):
    fingerprint = uuid.uuid4().hex[:16]
    for _repeat in range(2):
        requests.post(rulebook.url, json=notification("QueueDepthHigh", fingerprint), timeout=10).raise_for_status()
    [ticket] = wait_for(lambda: incidents(sandbox, fingerprint), 120, 1, "the incident ticket")
    assert ticket["subject"].startswith(f"[runbooks {fingerprint}] QueueDepthHigh: ")
    assert "# Runbook high_queue_depth (diagnose)" in ticket["description"]
    [run] = rulebook.runs(fingerprint, "high_queue_depth")
    steps = [step["name"] for step in json.loads(run.read_text())["steps"]]
    assert any(name.startswith("high_queue_depth : Read the queue") for name in steps), steps
    requests.post(rulebook.url, json=notification("QueueDepthHigh", fingerprint, "resolved"), timeout=10)
    time.sleep(15)  # a second run would have started and filed by now
    assert len(rulebook.runs(fingerprint, "high_queue_depth")) == 1, rulebook.log.read_text()[-3000:]
    assert len(incidents(sandbox, fingerprint)) == 1 and sandbox.notes(ticket["id"]) == []
    # no secret of the platform in the ticket
    for secret in ("sdp-credentials/api_key", "openai-credentials/api_key", "postgres/admin_password"):
        assert sandbox.secret(*secret.split("/")) not in json.dumps(ticket)
    # what the README shows a new user: the ticket in the list, and the diagnosis in it as plain text
    listed = sandbox.cli("tickets").stdout
    assert re.search(rf"^{ticket['id']}  Open .*\[runbooks {fingerprint}\] QueueDepthHigh", listed, re.M), listed
    shown = sandbox.cli("tickets", ticket["id"]).stdout
    assert "# Runbook high_queue_depth (diagnose)" in shown and "<pre>" not in shown, shown
    assert sandbox.cli("tickets", "99", check=False).returncode == 1


def test_an_unknown_alert_runs_triage(sandbox, rulebook):
    fingerprint = uuid.uuid4().hex[:16]
    requests.post(rulebook.url, json=notification("DiskAlmostFull", fingerprint), timeout=10).raise_for_status()
    [ticket] = wait_for(lambda: incidents(sandbox, fingerprint), 120, 1, "the triage's incident ticket")
    assert "# Runbook triage (diagnose)" in ticket["description"] and "## Probable causes" in ticket["description"]
    [run] = rulebook.runs(fingerprint, "triage")
    report = json.loads(run.read_text())
    assert {step["name"].split(" : ")[0] for step in report["steps"] if " : " in step["name"]} >= {
        "high_queue_depth", "worker_failures", "database_connection_issues", "api_timeout"}


def test_a_flooded_queue_fires_queue_depth_high_and_its_report_lands_in_a_ticket(healed, rulebook):
    """End to end, timed: the fault, Prometheus' QueueDepthHigh (after its 5 minutes), Alertmanager, the rulebook,
    the runbook's report and the ticket."""
    sandbox = healed
    started, fault_at = time.monotonic(), datetime.now(timezone.utc)
    sandbox.cli("fault", "workers-stopped")
    sandbox.cli("fault", "queue-flood", "150", "0.3", "0")

    def firing() -> dict | None:
        """This fault's QueueDepthHigh: one that started after it, not one left from before."""
        alerts = requests.get(sandbox.url("alertmanager", "/api/v2/alerts"), timeout=10,
                              params={"filter": 'alertname="QueueDepthHigh"', "active": "true"}).json()
        fresh = [alert for alert in alerts
                 if datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")) >= fault_at]
        return fresh[0] if fresh else None

    alert = wait_for(firing, 480, 2, "QueueDepthHigh at Alertmanager")
    fired = time.monotonic()
    fingerprint = alert["fingerprint"]
    report = wait_for(lambda: rulebook.runs(fingerprint, "high_queue_depth"), 120, 0.5, "the runbook's report")
    reported = time.monotonic()
    [ticket] = wait_for(lambda: incidents(sandbox, fingerprint), 120, 0.5, "the incident ticket")
    ticketed = time.monotonic()
    found = json.loads(report[0].read_text())
    assert found["runbook"] == "high_queue_depth" and found["mode"] == "diagnose"
    assert {"queue_depth_high", "queue_no_workers"} <= {f["id"] for f in found["findings"]}, found["findings"]
    assert ticket["subject"].startswith(f"[runbooks {fingerprint}] QueueDepthHigh: down")
    print(f"\nfault -> QueueDepthHigh at Alertmanager {fired - started:.1f} s (its rule waits 5 min); "
          f"alert -> report {reported - fired:.1f} s; alert -> ticket {ticketed - fired:.1f} s")
    sandbox.cli("heal")
