"""The sandbox platform, tested against the running Compose project: the
webhook -> worker -> SDP note -> Prometheus path in both queue formats, the
webhook's authentication, tenant isolation, the alert rules, and every fault
taking effect and being healed."""
from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import datetime, timezone

from typing import TYPE_CHECKING

import psycopg2
import pytest
import requests

if TYPE_CHECKING:
    from conftest import Sandbox

pytestmark = pytest.mark.sandbox
TENANT_TABLES = ("tenants", "ticket_history", "system_inventory", "enhancement_history")


def unique_ticket(prefix: str = "TICKET") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


def history_status(sandbox: Sandbox, ticket_id: str) -> list[tuple]:
    return sandbox.sql("SELECT status, error FROM enhancement_history WHERE ticket_id = %s", (ticket_id,))


# ------------------------------------------------------------ the platform

def test_status_reports_every_service_healthy(sandbox: Sandbox) -> None:
    result = sandbox.cli("status")
    for service in ("redis", "postgres", "api", "worker", "prometheus", "sdp", "openai", "jaeger"):
        # Replica numbers grow as workers are scaled and recreated; every container must be healthy.
        assert re.search(rf"^{service}\s+aiagents-{service}-\d+\s+healthy", result.stdout, re.M), result.stdout
    assert not re.search(r"^\w+\s+aiagents-\S+\s+(?!healthy)\S", result.stdout, re.M), result.stdout
    assert "status: healthy" in result.stdout
    # No credential ever reaches the CLI's output.
    for secret in ("openai-credentials/api_key", "tenant-acme-corp-sdp/webhook_secret", "postgres/app_password"):
        assert sandbox.secret(*secret.split("/")) not in result.stdout


def test_signed_webhook_is_processed_end_to_end(sandbox: Sandbox) -> None:
    query = 'sum(enhancement_requests_total{tenant_id="acme-corp",status="success"})'
    before = sandbox.prom(query) or 0.0
    ticket = unique_ticket()
    response = sandbox.signed_webhook("acme-corp", ticket)
    assert response.status_code == 202, response.text
    assert response.json()["ticket_id"] == ticket

    notes = sandbox.wait_for(lambda: sandbox.notes(ticket), 30, what="work note in SDP")
    assert notes[0]["description"].startswith("AI summary:")
    assert history_status(sandbox, ticket) == [("success", None)]
    # Scraped by the real Prometheus from the exporter.
    sandbox.wait_for(lambda: (sandbox.prom(query) or 0) >= before + 1, 30, 1, "enhancement_requests_total to rise")

    # One trace with the stages and tags of the runbooks.
    def trace() -> dict | None:
        data = requests.get(sandbox.url("jaeger", "/api/traces"), timeout=10, params={
            "service": "ai-agents-worker", "tags": json.dumps({"ticket_id": ticket}), "lookback": "1h"}).json()
        return data["data"][0] if data["data"] else None
    found = sandbox.wait_for(trace, 10, what="trace in jaeger")
    operations = {span["operationName"] for span in found["spans"]}
    assert {"webhook_receipt", "context_gathering", "llm_synthesis", "ticket_update", "llm.openai.completion",
            "api.servicedesk_plus.get_ticket", "api.servicedesk_plus.update_ticket"} <= operations
    root = next(span for span in found["spans"] if not span["references"])
    assert {"key": "tenant_id", "type": "string", "value": "acme-corp"} in root["tags"]


@pytest.mark.parametrize(("tenant", "signature", "status"), [
    ("acme-corp", "0" * 64, 401),      # wrong signature
    ("acme-corp", None, 401),          # missing header
    ("globex", "acme", 401),           # another tenant's secret
    ("no-such-tenant", "0" * 64, 404),
])
def test_webhook_authentication(sandbox: Sandbox, tenant: str, signature: str | None, status: int) -> None:
    body = {"ticket_id": unique_ticket()}
    if signature == "acme":
        response = sandbox.webhook(tenant, body, sandbox.secret("tenant-acme-corp-sdp", "webhook_secret"))
    else:
        response = sandbox.webhook(tenant, body, signature=signature)
    assert response.status_code == status, response.text


def test_tenant_onboarded_at_run_time_is_accepted_without_restart(sandbox: Sandbox) -> None:
    tenant, secret_dir = "initech", sandbox.root / "secrets" / "tenant-initech-sdp"
    sandbox.sql("INSERT INTO tenants (tenant_id, name, sdp_url, sdp_credentials_secret, status) "
                "VALUES (%s, 'Initech', %s, %s, 'configured') ON CONFLICT DO NOTHING",
                (tenant, sandbox.url("sdp"), "tenant-initech-sdp"))
    try:
        assert sandbox.webhook(tenant, {"ticket_id": "T-1"}, "x" * 64).status_code == 401  # no secret yet
        secret_dir.mkdir(mode=0o700, exist_ok=True)
        (secret_dir / "webhook_secret").write_text("s" * 64)
        (secret_dir / "api_key").write_text("initech-key")
        ticket = unique_ticket()
        assert sandbox.webhook(tenant, {"ticket_id": ticket}, "s" * 64).status_code == 202
        sandbox.wait_for(lambda: sandbox.notes(ticket), 30, what="work note for the new tenant")
    finally:
        sandbox.sql("DELETE FROM tenants WHERE tenant_id = %s", (tenant,))
        for path in secret_dir.glob("*"):
            path.unlink()
        if secret_dir.exists():
            secret_dir.rmdir()


def test_app_role_sees_only_its_tenant(sandbox: Sandbox) -> None:
    assert sandbox.visible_tickets("acme-corp") == {"acme-corp"}
    assert sandbox.visible_tickets("globex") == {"globex"}
    assert sandbox.visible_tickets(None) == set()  # no context: fails closed
    with pytest.raises(psycopg2.errors.NoDataFound):
        sandbox.visible_tickets("umbrella")
    role = sandbox.sql("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s",
                       (sandbox.env["POSTGRES_APP_USER"],))
    assert role == [(False, False)]
    tables = sandbox.sql("SELECT relname, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) "
                         "FROM pg_class WHERE relname = ANY(%s) ORDER BY relname", (list(TENANT_TABLES),))
    assert tables == [(t, True, True, "aiagents") for t in sorted(TENANT_TABLES)]


def test_alert_rules_are_loaded(sandbox: Sandbox) -> None:
    groups = requests.get(sandbox.url("prometheus", "/api/v1/rules"), timeout=10).json()["data"]["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    expected = {
        "EnhancementSuccessRateLow": ("enhancement_success_rate < 95", 600, "warning"),
        "QueueDepthHigh": ("queue_depth > 100", 300, "warning"),
        "WorkerDown": ("worker_active_count == 0", 120, "critical"),
        "HighLatency": ("histogram_quantile(0.95, rate(enhancement_duration_seconds_bucket[5m])) > 120",
                        300, "warning"),
    }
    assert set(rules) == set(expected)
    for name, (query, duration, severity) in expected.items():
        assert (rules[name]["query"], rules[name]["duration"], rules[name]["labels"]["severity"]) == \
            (query, duration, severity)
        assert rules[name]["health"] == "ok"
    # The exporter is scraped and worker_active_count reflects the workers.
    sandbox.wait_for(lambda: sandbox.prom("worker_active_count") == float(len(sandbox.workers())), 20, 1,
                     "worker_active_count in prometheus")


# ---------------------------------------------------------------- queue

def test_queue_flood_and_heal_plain(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "queue-flood", "300", "0.8", "45")
    items = [json.loads(raw) for raw in sandbox.redis().lrange("enhancement_queue", 0, -1)]
    flood = [item for item in items if item["ticket_id"].startswith("FLOOD-")]
    assert len(flood) > 200  # the workers drain a few meanwhile
    assert set(flood[0]) == {"ticket_id", "tenant_id", "created_at"}
    oldest = datetime.strptime(flood[0]["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert (datetime.now(timezone.utc) - oldest).total_seconds() > 30 * 60
    share = sum(item["tenant_id"] == "acme-corp" for item in flood) / len(flood)
    assert 0.7 < share < 0.9
    assert sandbox.metrics()['queue_depth{queue="enhancement_queue"}'] > 100
    sandbox.cli("heal", "queue-flood")
    assert not [raw for raw in sandbox.redis().lrange("enhancement_queue", 0, -1) if b"FLOOD-" in raw]


def test_celery_queue_format(healed: Sandbox) -> None:
    """Celery envelopes (LPUSH, priority siblings, unacked) end to end."""
    sandbox = healed
    sandbox.cli("up", "--queue-format", "celery")
    try:
        client = sandbox.redis()
        sandbox.cli("fault", "workers-stopped")
        low, high = unique_ticket(), unique_ticket()
        assert sandbox.signed_webhook("globex", low, priority=0).status_code == 202
        assert sandbox.signed_webhook("globex", high, priority=9).status_code == 202
        envelope = json.loads(client.lindex("enhancement_queue", -1))
        assert set(envelope) >= {"body", "content-encoding", "content-type", "headers", "properties"}
        assert envelope["headers"]["task"] == "aiagents.enhance_ticket"
        _args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        assert kwargs["ticket_id"] == low and kwargs["tenant_id"] == "globex" and kwargs["created_at"]
        assert client.llen("enhancement_queue\x06\x169") == 1
        assert sandbox.metrics()['queue_depth{queue="enhancement_queue"}'] == 2

        sandbox.cli("fault", "queue-flood", "120")
        assert sandbox.metrics()['queue_depth{queue="enhancement_queue"}'] >= 100
        sandbox.cli("heal", "queue-flood")
        sandbox.cli("heal", "workers-stopped")
        # While tasks run, delivered messages sit in `unacked`.
        sandbox.wait_for(lambda: client.hlen("unacked") > 0 or sandbox.notes(high), 20, 0.05, "unacked or done")
        sandbox.wait_for(lambda: sandbox.notes(low) and sandbox.notes(high), 30, what="both celery jobs processed")
        assert client.zcard("unacked_index") == client.hlen("unacked")
    finally:
        sandbox.cli("up", "--queue-format", "plain")


# ---------------------------------------------------------------- workers

def test_workers_stopped_and_healed(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "workers-stopped")
    assert all(w["State"]["Status"] == "exited" for w in sandbox.workers())
    assert sandbox.metrics()["worker_active_count"] == 0
    sandbox.cli("heal", "workers-stopped")
    assert sandbox.metrics()["worker_active_count"] == int(sandbox.env["WORKER_REPLICAS"])


def test_worker_oom_kill(healed: Sandbox) -> None:
    sandbox = healed
    name = sorted(w["Name"].lstrip("/") for w in sandbox.workers())[0]
    sandbox.cli("fault", "worker-oom")
    sandbox.wait_for(lambda: "OOMKilled" in sandbox.logs(name), 60, what="OOM kill in the worker's log")

    def restarted() -> dict | None:
        info = next(w for w in sandbox.workers() if w["Name"].lstrip("/") == name)
        return info if info["RestartCount"] >= 1 else None
    # Docker keeps the flag across the restart its policy makes.
    assert sandbox.wait_for(restarted, 30, what="the restart after the kill")["State"]["OOMKilled"] is True
    sandbox.cli("heal", "worker-oom")
    assert sandbox.cli("status").returncode == 0


def test_worker_crash_loop(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "worker-crash-loop")
    sandbox.wait_for(lambda: min(w["RestartCount"] for w in sandbox.workers()) >= 3, 60, 1, "restart counts to rise")
    name = sandbox.workers()[0]["Name"].lstrip("/")
    assert "ValueError: invalid DATABASE_POOL_SIZE='ten'" in sandbox.logs(name)
    sandbox.cli("heal", "worker-crash-loop")
    assert all(w["RestartCount"] == 0 and w["State"]["Health"]["Status"] == "healthy" for w in sandbox.workers())


def test_bad_api_key_fails_every_job(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "worker-bad-api-key")
    ticket = unique_ticket()
    sandbox.signed_webhook("globex", ticket)
    rows = sandbox.wait_for(lambda: history_status(sandbox, ticket), 30, what="failed job recorded")
    assert rows[0][0] == "failure" and "401" in rows[0][1]
    assert not sandbox.notes(ticket)
    assert sandbox.metrics()['enhancement_requests_total{status="failure",tenant_id="globex"}'] >= 1
    sandbox.cli("heal", "worker-bad-api-key")
    ticket = unique_ticket()
    sandbox.signed_webhook("globex", ticket)
    sandbox.wait_for(lambda: history_status(sandbox, ticket) == [("success", None)], 30, what="job to succeed again")


def test_poison_job_kills_its_worker(healed: Sandbox) -> None:
    sandbox = healed
    before = sum(w["RestartCount"] for w in sandbox.workers())
    sandbox.cli("fault", "poison-job", "1")
    sandbox.wait_for(lambda: sum(w["RestartCount"] for w in sandbox.workers()) > before, 90, 1, "a worker restart")
    logs = "".join(sandbox.logs(w["Name"].lstrip("/")) for w in sandbox.workers())
    assert re.search(r"job started tenant_id=acme-corp ticket_id=POISON-0001", logs)
    assert "OOMKilled" in logs
    sandbox.cli("heal", "poison-job")
    assert sandbox.cli("status").returncode == 0


# ---------------------------------------------------------------- database

def test_db_connections_exhausted(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "db-connections-exhausted")
    with pytest.raises(psycopg2.OperationalError, match="remaining connection slots are reserved"):
        sandbox.pg().close()
    sandbox.cli("heal", "db-connections-exhausted")
    sandbox.pg().close()


def test_db_long_running_query(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "db-long-query")
    query = ("SELECT usename, state FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' "
             "AND pid <> pg_backend_pid()")
    assert sandbox.sql(query) == [(sandbox.env["POSTGRES_APP_USER"], "active")]
    sandbox.cli("heal", "db-long-query")
    assert sandbox.sql(query) == []


def test_db_blocking_lock(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "db-blocking-lock")
    query = "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
    blocked = sandbox.sql(query)
    assert len(blocked) >= 1 and blocked[0][1]
    sandbox.cli("heal", "db-blocking-lock")
    assert sandbox.sql(query) == []


# Each RLS break: the catalogue shows it and the app role's view changes.
RLS_FAULTS = {
    "rls-disabled": ("SELECT NOT relrowsecurity FROM pg_class WHERE relname = 'ticket_history'",
                     {"acme-corp", "globex"}),
    "rls-policy-dropped": ("SELECT count(*) = 0 FROM pg_policies WHERE tablename = 'ticket_history'", set()),
    "rls-not-forced": ("SELECT NOT relforcerowsecurity AND pg_get_userbyid(relowner) = 'aiagents_app' "
                       "FROM pg_class WHERE relname = 'ticket_history'", {"acme-corp", "globex"}),
    "rls-bypass-role": ("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'aiagents_app'", {"acme-corp", "globex"}),
    "rls-policy-unscoped": ("SELECT qual = 'true' FROM pg_policies WHERE tablename = 'ticket_history'",
                            {"acme-corp", "globex"}),
}


@pytest.mark.parametrize("fault", RLS_FAULTS)
def test_rls_faults(healed: Sandbox, fault: str) -> None:
    sandbox = healed
    check, visible = RLS_FAULTS[fault]
    sandbox.cli("fault", fault)
    assert sandbox.sql(check) == [(True,)]
    assert sandbox.visible_tickets("acme-corp") == visible
    sandbox.cli("heal", fault)
    assert sandbox.sql(check) == [(False,)]
    assert sandbox.visible_tickets("acme-corp") == {"acme-corp"}


# ---------------------------------------------------------------- stand-ins

def api_probe(sandbox: Sandbox, api: str, timeout: float = 5) -> requests.Response:
    """GET the API as the workers' runbooks would, with a valid key."""
    if api == "sdp":
        return requests.get(sandbox.url("sdp", "/api/v3/tickets"), timeout=timeout,
                            headers={"Authorization": f"Bearer {sandbox.secret('tenant-acme-corp-sdp', 'api_key')}"})
    return requests.get(sandbox.url("openai", "/v1/models"), timeout=timeout,
                        headers={"Authorization": f"Bearer {sandbox.secret('openai-credentials', 'api_key')}"})


@pytest.mark.parametrize("api", ["sdp", "openai"])
@pytest.mark.parametrize("kind", ["401", "403", "429", "5xx", "slow", "hang", "refuse"])
def test_api_faults(healed: Sandbox, api: str, kind: str) -> None:
    sandbox = healed
    assert api_probe(sandbox, api).status_code == 200
    sandbox.cli("fault", f"{api}-{kind}", *(["1.5"] if kind == "slow" else []))
    if kind.isdigit() or kind == "5xx":
        response = api_probe(sandbox, api)
        assert response.status_code == (503 if kind == "5xx" else int(kind))
        if kind == "429":
            assert response.headers["Retry-After"] == "20"
        if api == "openai":
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    elif kind == "slow":
        started = time.monotonic()
        assert api_probe(sandbox, api).status_code == 200
        assert time.monotonic() - started >= 1.5
    elif kind == "hang":
        with pytest.raises(requests.ReadTimeout):
            api_probe(sandbox, api, timeout=1)
    else:
        with pytest.raises(requests.ConnectionError, match="[Cc]onnection refused"):
            api_probe(sandbox, api)
    sandbox.cli("heal", f"{api}-{kind}")
    assert api_probe(sandbox, api).status_code == 200


def test_sdp_rejects_a_wrong_key(sandbox: Sandbox) -> None:
    response = requests.get(sandbox.url("sdp", "/api/v3/tickets/T-1"), timeout=5,
                            headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


def test_faults_listed(sandbox: Sandbox) -> None:
    listed = sandbox.cli("faults").stdout
    for name in ("queue-flood", "workers-stopped", "worker-oom", "worker-crash-loop", "worker-bad-api-key",
                 "poison-job", "db-connections-exhausted", "db-long-query", "db-blocking-lock", "rls-disabled",
                 "rls-policy-dropped", "rls-not-forced", "rls-bypass-role", "rls-policy-unscoped",
                 "sdp-slow", "sdp-hang", "openai-429", "openai-refuse"):
        assert re.search(rf"^\s+{re.escape(name)}\s", listed, re.M), name
