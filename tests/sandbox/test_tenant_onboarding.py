"""Tenant onboarding on the sandbox: the whole way, idempotent, isolated, undone exactly,
refused before any change on bad inputs, and never showing a secret."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.harness.servers import free_port

pytestmark = pytest.mark.sandbox

PLAYBOOK = "playbooks/tenant_onboarding.yml"
TENANT = "onboard-test-msp"
TABLES = ("tenants", "ticket_history", "system_inventory", "enhancement_history")


def snapshot(sandbox) -> dict:
    """Everything onboarding may touch, as data: every row of the tenant tables, every
    secret file (mode and digest), every queue list in Redis."""
    database = {table: sorted(map(repr, sandbox.sql(f"SELECT * FROM {table}"))) for table in TABLES}
    secret_files = {}
    for path in sorted((sandbox.root / "secrets").rglob("*")):
        if path.is_file():
            secret_files[str(path.relative_to(sandbox.root))] = (
                oct(path.stat().st_mode & 0o777), hashlib.sha256(path.read_bytes()).hexdigest())
    client = sandbox.redis()
    queues = {key.decode(errors="replace"): client.lrange(key, 0, -1)
              for key in sorted(client.scan_iter("enhancement_queue*")) if client.type(key) == b"list"}
    queues["unacked"] = sorted(client.hkeys("unacked"))
    return {"database": database, "secrets": secret_files, "queues": queues}


@pytest.fixture
def issued_key(sandbox, tmp_path) -> str:
    """A key the SDP stand-in accepts, issued the way an MSP issues one in its SDP console."""
    path = tmp_path / "sdp.key"
    sandbox.cli("issue-key", "sdp", str(path))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    return path.read_text().strip()


@pytest.fixture
def inputs(sandbox, issued_key) -> dict:
    return {"tenant_onboarding_tenant_id": TENANT, "tenant_onboarding_name": "Onboard Test MSP",
            "tenant_onboarding_sdp_url": sandbox.url("sdp"), "tenant_onboarding_sdp_api_key": issued_key,
            "tenant_onboarding_webhook_secret": secrets.token_hex(32),
            "tenant_onboarding_test_ticket_id": f"ONBOARD-{secrets.token_hex(3)}"}


@pytest.fixture
def clean(healed, run_playbook, tmp_path):
    """No test tenant before or after the test, whatever the test left."""
    def rollback():
        left = healed.sql("SELECT 1 FROM tenants WHERE tenant_id = %s", (TENANT,))
        if left or (healed.root / "secrets" / f"tenant-{TENANT}-sdp").exists():
            run = run_playbook(PLAYBOOK, {"tenant_onboarding_tenant_id": TENANT, "runbooks_report_dir": str(tmp_path),
                                          "tenant_onboarding_rollback_force": True}, tags="rollback")
            assert run.rc == 0, run.stdout[-3000:]
    rollback()
    yield healed
    rollback()


def report(report_dir: Path) -> dict:
    return json.loads((report_dir / "tenant_onboarding" / "latest.json").read_text())


def container_logs(*services: str) -> str:
    text = ""
    for service in services:
        result = subprocess.run(["docker", "logs", f"aiagents-{service}-1"], capture_output=True, text=True,
                                check=False)
        text += result.stdout + result.stderr
    return text


def test_onboard_prove_rerun_and_roll_back_exactly(clean, run_playbook, inputs, tmp_path):
    sandbox = clean
    before = snapshot(sandbox)
    ticket = inputs["tenant_onboarding_test_ticket_id"]

    checked = run_playbook(PLAYBOOK, {**inputs, "runbooks_report_dir": str(tmp_path)}, check=True)
    assert checked.rc == 0, checked.stdout[-4000:]
    assert report(tmp_path)["check_mode"] is True and "Create the tenant row" in str(report(tmp_path)["actions"])
    assert snapshot(sandbox) == before

    first = run_playbook(PLAYBOOK, {**inputs, "runbooks_report_dir": str(tmp_path)}, verbosity=3)
    assert first.rc == 0, first.stdout[-4000:]
    onboarded = report(tmp_path)
    assert onboarded["mode"] == "onboard" and onboarded["result"] == "succeeded"
    assert onboarded["findings"] == [] and onboarded["escalation"]["page"] is False
    actions = [action["id"].split(" : ", 1)[-1] for action in onboarded["actions"]]
    assert actions == ["Create the tenant row", f"Create the directory of secret tenant-{TENANT}-sdp",
                       f"Write the keys of secret tenant-{TENANT}-sdp",
                       "Configure the tenant (SDP URL, credentials secret)",
                       "Send a signed test webhook, as ServiceDesk Plus will", "Mark the tenant active"]
    steps = {step["name"].split(" : ", 1)[-1] for step in onboarded["steps"]}
    assert steps >= {"Check ServiceDesk Plus answers with these credentials", "Wait for a worker to process the test job",
                     "Prove the tenant sees no other tenant's rows", "Wait for the tenant's metric in Prometheus"}
    assert sandbox.sql("SELECT name, sdp_url, sdp_credentials_secret, status FROM tenants WHERE tenant_id = %s",
                       (TENANT,)) == [("Onboard Test MSP", sandbox.url("sdp"), f"tenant-{TENANT}-sdp", "active")]
    assert sandbox.sql("SELECT status FROM enhancement_history WHERE tenant_id = %s AND ticket_id = %s",
                       (TENANT, ticket)) == [("success",)]
    assert len(sandbox.notes(ticket)) == 1
    assert sandbox.prom(f'enhancement_requests_total{{tenant_id="{TENANT}",status="success"}}') >= 1
    secret_dir = sandbox.root / "secrets" / f"tenant-{TENANT}-sdp"
    assert oct(secret_dir.stat().st_mode & 0o777) == "0o700"
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in secret_dir.iterdir()} == {
        "api_key": "0o600", "webhook_secret": "0o600"}
    assert "/webhook/servicedesk?tenant_id=onboard-test-msp" in first.stdout and "X-SDP-Signature" in first.stdout

    # Isolation, as the application sees it: the new tenant sees its own rows only, and nobody else sees them.
    assert sandbox.visible_tickets(TENANT) == set()
    conn = sandbox.pg()
    try:
        for tenant, expected in ((TENANT, {TENANT}), ("acme-corp", {"acme-corp"})):
            with conn, conn.cursor() as cur:
                cur.execute("SELECT set_tenant_context(%s)", (tenant,))
                cur.execute("SELECT DISTINCT tenant_id FROM enhancement_history")
                seen = {row[0] for row in cur.fetchall()}
            assert seen <= expected and (tenant != TENANT or seen == expected)
    finally:
        conn.close()

    second = run_playbook(PLAYBOOK, {**inputs, "runbooks_report_dir": str(tmp_path)})
    assert second.rc == 0, second.stdout[-4000:]
    assert "changed=0" in second.stdout and report(tmp_path)["actions"] == []
    assert len(sandbox.notes(ticket)) == 1  # no second test job for an active tenant

    verified = run_playbook(PLAYBOOK, {**inputs, "runbooks_report_dir": str(tmp_path)}, tags="verify")
    assert verified.rc == 0 and "changed=0" in verified.stdout, verified.stdout[-3000:]

    rolled = run_playbook(PLAYBOOK, {"tenant_onboarding_tenant_id": TENANT, "tenant_onboarding_test_ticket_id": ticket,
                                     "runbooks_report_dir": str(tmp_path)}, tags="rollback")
    assert rolled.rc == 0, rolled.stdout[-3000:]
    assert report(tmp_path)["mode"] == "rollback"
    assert snapshot(sandbox) == before

    # The credentials appear in no output, report or platform log.
    reports = "".join(path.read_text() for path in (tmp_path / "tenant_onboarding").iterdir())
    logs = container_logs("api", "worker", "sdp")
    for secret in (inputs["tenant_onboarding_sdp_api_key"], inputs["tenant_onboarding_webhook_secret"]):
        for where, text in (("playbook output", first.stdout + second.stdout + verified.stdout + rolled.stdout),
                            ("reports", reports), ("container logs", logs)):
            assert secret not in text, f"a credential leaked into the {where}"


CLOUD_TENANT = "onboard-cloud-msp"


def test_a_cloud_tenant_is_proved_the_cloud_way_and_rolled_back(healed, run_playbook, tmp_path):
    """ServiceDesk Plus Cloud: the OAuth client goes into the secret (no technician key), the probe and
    the worker log in with Zoho access tokens at /app/<portal>/, and rollback removes every key."""
    sandbox = healed
    client_file = tmp_path / "client.json"
    sandbox.cli("issue-client", str(client_file))
    client = json.loads(client_file.read_text())
    ticket = f"ONBOARD-{secrets.token_hex(3)}"
    inputs = {"tenant_onboarding_tenant_id": CLOUD_TENANT, "tenant_onboarding_name": "Onboard Cloud MSP",
              "tenant_onboarding_sdp_url": sandbox.url("sdp"), "tenant_onboarding_sdp_edition": "cloud",
              "tenant_onboarding_sdp_portal": "onboardcloud", "tenant_onboarding_sdp_accounts_url": sandbox.url("sdp"),
              "tenant_onboarding_sdp_client_id": client["client_id"],
              "tenant_onboarding_sdp_client_secret": client["client_secret"],
              "tenant_onboarding_sdp_refresh_token": client["refresh_token"],
              "tenant_onboarding_webhook_secret": secrets.token_hex(32), "tenant_onboarding_test_ticket_id": ticket,
              "runbooks_report_dir": str(tmp_path)}
    rollback = {"tenant_onboarding_tenant_id": CLOUD_TENANT, "tenant_onboarding_test_ticket_id": ticket,
                "runbooks_report_dir": str(tmp_path)}
    before = snapshot(sandbox)
    try:
        wrong = run_playbook(PLAYBOOK, {**inputs, "tenant_onboarding_sdp_refresh_token": "1000.not.granted"})
        assert wrong.rc != 0 and "refused the refresh token (invalid_code)" in wrong.stdout
        assert snapshot(sandbox) == before

        first = run_playbook(PLAYBOOK, inputs, verbosity=3)
        assert first.rc == 0, first.stdout[-4000:]
        assert report(tmp_path)["result"] == "succeeded"
        secret_dir = sandbox.root / "secrets" / f"tenant-{CLOUD_TENANT}-sdp"
        assert sorted(path.name for path in secret_dir.iterdir()) == [
            "accounts_url", "client_id", "client_secret", "portal", "refresh_token", "webhook_secret"]
        assert sandbox.sql("SELECT status FROM enhancement_history WHERE tenant_id = %s AND ticket_id = %s",
                           (CLOUD_TENANT, ticket)) == [("success",)]
        assert sandbox.note_editions(ticket) == ["cloud"]  # the worker wrote its note through the Cloud API
        for secret in (client["client_secret"], client["refresh_token"], inputs["tenant_onboarding_webhook_secret"]):
            assert secret not in first.stdout + wrong.stdout
    finally:
        rolled = run_playbook(PLAYBOOK, {**rollback, "tenant_onboarding_rollback_force": True}, tags="rollback")
    assert rolled.rc == 0, rolled.stdout[-3000:]
    assert snapshot(sandbox) == before


BAD_INPUTS = [
    ("uppercase id", {"tenant_onboarding_tenant_id": "Onboard-Test"}, "lowercase letters, digits and hyphens"),
    ("51 characters", {"tenant_onboarding_tenant_id": "a" * 51}, "51 characters long; at most 50"),
    ("sql in the id", {"tenant_onboarding_tenant_id": "acme'; --"}, "is not valid"),
    ("http url", {"tenant_onboarding_sdp_url": "http://sdp.example.com"}, "must use https"),
    ("short secret", {"tenant_onboarding_webhook_secret": "0123456789abcdef"}, "16 characters long"),
    ("wrong api key", {"tenant_onboarding_sdp_api_key": "f" * 48}, "(api_auth_invalid)"),
    ("unreachable sdp", {"tenant_onboarding_sdp_url": "http://127.0.0.1:{port}"}, "(api_unreachable)"),
]


@pytest.mark.parametrize("change, fragment", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_inputs_stop_before_any_change(clean, run_playbook, inputs, tmp_path, change, fragment):
    sandbox = clean
    before = snapshot(sandbox)
    change = {key: value.format(port=free_port()) for key, value in change.items()}
    run = run_playbook(PLAYBOOK, {**inputs, **change, "runbooks_report_dir": str(tmp_path)})
    assert run.rc != 0
    failures = [result for result in run.results if result["_event"] == "runner_on_failed"]
    assert len(failures) == 1, run.stdout[-3000:]
    message = failures[0]["msg"]
    assert message.startswith("Onboarding refused, nothing changed: ") and fragment in message, message
    assert "Traceback" not in run.stdout
    assert report(tmp_path)["result"] == "failed" and report(tmp_path)["escalation"]["page"] is False
    assert snapshot(sandbox) == before
    for secret in (inputs["tenant_onboarding_sdp_api_key"], inputs["tenant_onboarding_webhook_secret"]):
        assert secret not in run.stdout


def test_an_active_tenant_with_other_settings_is_refused(clean, run_playbook, inputs, tmp_path):
    sandbox = clean
    before = snapshot(sandbox)
    run = run_playbook(PLAYBOOK, {**inputs, "tenant_onboarding_tenant_id": "acme-corp",
                                  "runbooks_report_dir": str(tmp_path)})
    assert run.rc != 0 and "already active with different settings (name, API key or webhook secret)" in run.stdout
    assert snapshot(sandbox) == before


def test_rollback_refuses_a_live_customer(clean, run_playbook, tmp_path):
    sandbox = clean
    before = snapshot(sandbox)
    run = run_playbook(PLAYBOOK, {"tenant_onboarding_tenant_id": "acme-corp", "runbooks_report_dir": str(tmp_path)},
                       tags="rollback")
    assert run.rc != 0 and "it is a live customer" in run.stdout
    assert snapshot(sandbox) == before


def test_a_failure_after_the_first_change_leaves_nothing_behind(clean, run_playbook, inputs, tmp_path):
    sandbox = clean
    before = snapshot(sandbox)
    sandbox.cli("fault", "openai-401")  # every job fails at the LLM step
    try:
        run = run_playbook(PLAYBOOK, {**inputs, "tenant_onboarding_wait_seconds": 60,
                                      "runbooks_report_dir": str(tmp_path)})
    finally:
        sandbox.cli("heal", "openai-401")
    assert run.rc != 0
    assert "the test job failed in" in run.stdout and "What this run had created was removed again" in run.stdout
    assert report(tmp_path)["result"] == "failed"
    assert snapshot(sandbox) == before
