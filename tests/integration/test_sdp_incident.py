"""sdp_incident against the ServiceDesk Plus stand-in (both editions): one incident per alert, opened once and
noted on every later notification, a new one once it is resolved; never a credential in what it files or says."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid

import pytest

from tests.harness.standins import running, secrets_dir

MODULE = "aiagents.runbooks.sdp_incident"
KEY = "sdp-onprem-key-0c4f1e2a9b77"
CLIENT_ID = "1000.CLIENTINCIDENT01"
CLIENT_SECRET = "client-secret-3b8e0d6f1a2c"
REFRESH = "1000.refresh.9d1e4b7a2c6f3e80"
PORTAL = "acmeit"
V3 = "application/vnd.manageengine.sdp.v3+json"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    return secrets_dir(tmp_path_factory, {
        "sdp-credentials": {"api_key": KEY},
        "tenant-acme-corp-sdp": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH,
                                 "portal": PORTAL}})


@pytest.fixture(scope="module")
def sdp(secrets):
    with running("sdp", secrets) as standin:
        yield standin


def requests_with(sdp, text: str) -> list[dict]:
    query = urllib.parse.urlencode({"input_data": json.dumps({"list_info": {"row_count": 100, "search_criteria": {
        "field": "subject", "condition": "contains", "value": text}}})})
    request = urllib.request.Request(f"{sdp.url}/api/v3/requests?{query}", headers={"authtoken": KEY, "Accept": V3})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())["requests"]


def notes_of(sdp, request_id: str) -> list[str]:
    return [note["description"] for note in sdp.control("GET", "/notes")["notes"].get(request_id, [])]


def incident(run_module, standin, key, check=False, **args):
    base = {"url": standin.url, "sdp": {"authtoken": KEY}, "key": key, "subject": "QueueDepthHigh: queue_depth_high",
            "description": "# Runbook high_queue_depth\n\n- verdict: **degraded** <b>&</b>", "priority": "High"}
    return run_module(MODULE, {**base, **args}, check=check)


def test_an_alert_opens_one_incident_and_later_notifications_add_notes(run_module, sdp):
    key = uuid.uuid4().hex[:16]
    first = incident(run_module, sdp, key)
    assert first.rc == 0, first.stdout
    assert first.result["action"] == "added" and first.result["changed"] is True
    request_id = first.result["request_id"]
    [filed] = requests_with(sdp, key)
    assert filed["id"] == request_id and filed["subject"] == f"[runbooks {key}] QueueDepthHigh: queue_depth_high"
    assert filed["priority"] == {"name": "High"}
    # the report's Markdown reads as written: escaped inside <pre>
    assert filed["description"] == ("<pre># Runbook high_queue_depth\n\n"
                                    "- verdict: **degraded** &lt;b&gt;&amp;&lt;/b&gt;</pre>")

    again = incident(run_module, sdp, key, description="second report")
    assert again.rc == 0 and again.result["action"] == "noted" and again.result["request_id"] == request_id
    assert notes_of(sdp, request_id) == ["<pre>second report</pre>"]
    assert len(requests_with(sdp, key)) == 1
    # another alert is another incident
    other = incident(run_module, sdp, uuid.uuid4().hex[:16])
    assert other.result["action"] == "added" and other.result["request_id"] != request_id


def test_a_resolved_incident_is_not_reopened_by_a_new_firing(run_module, sdp):
    key = uuid.uuid4().hex[:16]
    first = incident(run_module, sdp, key)
    body = urllib.parse.urlencode({"input_data": json.dumps({"request": {"status": {"name": "Resolved"}}})}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{sdp.url}/api/v3/requests/{first.result['request_id']}",
                                                  data=body, method="PUT", headers={"authtoken": KEY, "Accept": V3}),
                           timeout=5).read()
    later = incident(run_module, sdp, key)
    assert later.result["action"] == "added" and later.result["request_id"] != first.result["request_id"]


def test_check_mode_only_searches(run_module, sdp):
    key = uuid.uuid4().hex[:16]
    run = incident(run_module, sdp, key, check=True)
    assert run.rc == 0 and run.result["action"] == "would_add" and run.result["request_id"] == ""
    assert requests_with(sdp, key) == []
    incident(run_module, sdp, key)
    run = incident(run_module, sdp, key, check=True, description="not sent")
    assert run.result["action"] == "would_note"
    assert notes_of(sdp, run.result["request_id"]) == []


def test_cloud_files_with_a_token_from_the_refresh_token(run_module, sdp, secrets):
    key = uuid.uuid4().hex[:16]
    cloud = {"edition": "cloud", "accounts_url": sdp.url, "secret_dir": str(secrets / "tenant-acme-corp-sdp")}
    run = incident(run_module, sdp, key, sdp=cloud)
    assert run.rc == 0, run.stdout
    assert run.result["action"] == "added"
    assert [item["id"] for item in requests_with(sdp, key)] == [run.result["request_id"]]


def test_refusals_say_what_sdp_answered_and_never_show_a_credential(run_module, sdp):
    wrong = "not-the-technician-key-5e1d"
    run = incident(run_module, sdp, uuid.uuid4().hex[:16], sdp={"authtoken": wrong})
    assert run.rc != 0 and "answered 401" in run.result["msg"] and "4022" in run.result["msg"]
    assert wrong not in run.stdout
    bad = incident(run_module, sdp, "a fingerprint with spaces")
    assert bad.rc != 0 and "key must be" in bad.result["msg"]
    sdp.fault(status=429)
    try:
        limited = incident(run_module, sdp, uuid.uuid4().hex[:16])
    finally:
        sdp.heal()
    assert limited.rc != 0 and "429" in limited.result["msg"] and "4015" in limited.result["msg"]
    assert KEY not in limited.stdout


# ---------------------------------------------- playbooks/incident_ticket.yml --

def _report(directory, runbook: str, verdict: str, severity: str, page: bool) -> None:
    """A report as the runbook report callback writes it (the fields the ticket reads), and its Markdown."""
    (directory / runbook).mkdir(parents=True, exist_ok=True)
    escalation = {"severity": severity, "page": page, "action": "Scale workers.",
                  "reason": "queue_depth_high: 340 jobs queued"}
    (directory / runbook / "latest.json").write_text(json.dumps({
        "runbook": runbook, "mode": "diagnose", "verdict": verdict, "escalation": escalation, "findings": []}))
    (directory / runbook / "latest.md").write_text(f"# Runbook {runbook} (diagnose)\n\n- verdict: **{verdict}**\n")


def test_the_incident_playbook_files_the_alerts_report_once_then_notes_it(run_playbook, sdp, tmp_path):
    fingerprint = uuid.uuid4().hex[:16]
    _report(tmp_path, "high_queue_depth", "degraded", "high", True)
    variables = {"alert_name": "QueueDepthHigh", "alert_fingerprint": fingerprint,
                 "runbooks_report_dir": str(tmp_path),
                 "runbooks_incident_sdp": {"url": sdp.url, "sdp": {"authtoken": KEY}}}
    run = run_playbook("playbooks/incident_ticket.yml", variables)
    assert run.rc == 0, run.stdout[-3000:]
    [filed] = requests_with(sdp, fingerprint)
    assert filed["subject"] == (f"[runbooks {fingerprint}] QueueDepthHigh: degraded - PAGE - "
                                "queue_depth_high: 340 jobs queued")
    assert filed["priority"] == {"name": "High"}
    assert "# Runbook high_queue_depth (diagnose)" in filed["description"]
    assert KEY not in run.stdout

    _report(tmp_path, "high_queue_depth", "healthy", "info", False)
    again = run_playbook("playbooks/incident_ticket.yml", variables)
    assert again.rc == 0, again.stdout[-3000:]
    assert len(requests_with(sdp, fingerprint)) == 1
    assert notes_of(sdp, filed["id"]) == ["<pre># Runbook high_queue_depth (diagnose)\n\n- verdict: **healthy**</pre>"]

    # An alert the rules point at several runbooks was triaged: its report is triage's.
    _report(tmp_path, "triage", "down", "critical", True)
    other = run_playbook("playbooks/incident_ticket.yml", {**variables, "alert_name": "HighLatency",
                                                           "alert_fingerprint": uuid.uuid4().hex[:16]})
    assert other.rc == 0, other.stdout[-3000:]
    assert "(triage, verdict down)" in other.stdout


def test_the_incident_playbook_refuses_a_fingerprint_that_is_not_one(run_playbook, sdp, tmp_path):
    run = run_playbook("playbooks/incident_ticket.yml", {
        "alert_name": "QueueDepthHigh", "alert_fingerprint": "../../etc", "runbooks_report_dir": str(tmp_path),
        "runbooks_incident_sdp": {"url": sdp.url, "sdp": {"authtoken": KEY}}})
    assert run.rc != 0 and "alert_fingerprint (hexadecimal)" in run.stdout


def test_an_alert_that_is_not_one_stops_at_its_check_and_still_leaves_a_report(run_playbook, tmp_path):
    run = run_playbook("playbooks/alert.yml", {"alert_fingerprint": "not-hex", "runbooks_report_dir": str(tmp_path)})
    assert run.rc != 0 and "alert_fingerprint" in run.stdout
    report = json.loads((tmp_path / "alert" / "latest.json").read_text())
    assert (report["result"], report["failed_at"]) == ("failed", "Check the alert")
