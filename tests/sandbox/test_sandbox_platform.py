"""The sandbox platform, tested against the running Compose project: the
webhook -> worker -> SDP note -> Prometheus path in both queue formats, the
webhook's authentication, tenant isolation, the alert rules, and every fault
taking effect and being healed."""
from __future__ import annotations

import base64
import http.server
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import psycopg2
import psycopg2.errors
import pytest
import redis
import requests

from tests.harness.storage_faults import check_disk_faults, check_xid_fault

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
    for service in ("redis", "postgres", "api", "worker", "prometheus", "alertmanager", "sdp", "openai", "jaeger"):
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
    # The worker records the job after it posts the note: wait for the row too.
    assert sandbox.wait_for(lambda: history_status(sandbox, ticket), 10, what="enhancement_history row") \
        == [("success", None)]
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


def test_app_role_sees_tickets_of_its_tenant_only_and_cannot_bypass_rls(sandbox: Sandbox) -> None:
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


def test_prometheus_alerts_go_through_alertmanager_to_the_rulebooks_webhook(sandbox: Sandbox) -> None:
    """Prometheus sends its alerts to the sandbox's Alertmanager, which notifies the webhook the collection's
    rulebook listens on (EDA_WEBHOOK_PORT), resolved alerts included. Here a listener of the test's stands in
    for the rulebook; the whole chain, rulebook and alert rule included, is tested with the rulebook."""
    active = requests.get(sandbox.url("prometheus", "/api/v1/alertmanagers"), timeout=10).json()["data"]
    assert [am["url"] for am in active["activeAlertmanagers"]] == \
        [f"http://127.0.0.1:{sandbox.port('alertmanager')}/api/v2/alerts"]
    status = requests.get(sandbox.url("alertmanager", "/api/v2/status"), timeout=10).json()
    assert status["cluster"]["status"] == "disabled"  # one instance, no gossip

    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the handler's API)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", sandbox.port("eda_webhook")), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"SandboxProbe{uuid.uuid4().hex[:6]}"
    alert = {"labels": {"alertname": name, "severity": "warning"}, "annotations": {"summary": "probe"}}
    try:
        requests.post(sandbox.url("alertmanager", "/api/v2/alerts"), json=[alert], timeout=10).raise_for_status()
        firing = sandbox.wait_for(lambda: [n for n in received if n["groupLabels"].get("alertname") == name], 30,
                                  0.5, "the firing notification at the webhook")[0]
        assert firing["version"] == "4" and firing["status"] == "firing"
        assert firing["alerts"][0]["labels"]["alertname"] == name and firing["alerts"][0]["fingerprint"]
        ended = datetime.now(timezone.utc).isoformat()
        requests.post(sandbox.url("alertmanager", "/api/v2/alerts"), json=[{**alert, "endsAt": ended}],
                      timeout=10).raise_for_status()
        sandbox.wait_for(lambda: [n for n in received if n["groupLabels"].get("alertname") == name
                                  and n["status"] == "resolved"], 40, 0.5, "the resolved notification")
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- queue

QUEUE = "enhancement_queue"
TENANTS = ("acme-corp", "globex")
TASK_NAME = "aiagents.enhance_ticket"
# Celery's Redis priority siblings (priority_steps 0/3/6/9, separator \x06\x16).
PRIORITY_LISTS = {0: QUEUE, 3: QUEUE + "\x06\x163", 6: QUEUE + "\x06\x166", 9: QUEUE + "\x06\x169"}


def created_at(job: dict) -> datetime:
    return datetime.strptime(job["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def flood_number(ticket_id: str) -> int:
    return int(ticket_id.removeprefix("FLOOD-"))


def test_queue_flood_and_heal_plain(healed: Sandbox) -> None:
    sandbox = healed
    client = sandbox.redis()
    sandbox.cli("fault", "queue-flood", "300", "0.8", "45")
    # Two webhook jobs after the flood: RPUSH puts them behind it, in order.
    late = [unique_ticket(), unique_ticket()]
    for ticket in late:
        response = sandbox.signed_webhook("globex", ticket)
        assert response.status_code == 202 and response.json()["queue_format"] == "plain", response.text
    items = [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]
    flood = [item for item in items if item["ticket_id"].startswith("FLOOD-")]
    assert len(flood) > 200  # the workers drain a few from the head meanwhile
    assert all(set(item) == {"ticket_id", "tenant_id", "created_at"} for item in flood)
    # RPUSH: oldest at index 0, newest at -1 (only the head is consumed).
    numbers = [flood_number(item["ticket_id"]) for item in flood]
    assert numbers == list(range(numbers[0], 300)), "flood jobs not in push order (oldest first)"
    stamps = [created_at(item) for item in flood]
    assert stamps == sorted(stamps) and stamps[0] < stamps[-1]
    assert [item["ticket_id"] for item in items[-2:]] == late, "webhook jobs not appended at the tail in order"
    assert (datetime.now(timezone.utc) - stamps[0]).total_seconds() > 30 * 60
    share = sum(item["tenant_id"] == "acme-corp" for item in flood) / len(flood)
    assert 0.7 < share < 0.9
    # The plain format uses the one list only.
    assert [client.llen(name) for p, name in PRIORITY_LISTS.items() if p] == [0, 0, 0]
    assert sandbox.metrics()[f'queue_depth{{queue="{QUEUE}"}}'] > 100
    sandbox.cli("heal", "queue-flood")
    assert not [raw for raw in client.lrange(QUEUE, 0, -1) if b"FLOOD-" in raw]
    # Heal removed the injected jobs only: the webhook's jobs are still processed.
    sandbox.wait_for(lambda: all(sandbox.notes(ticket) for ticket in late), 60, what="webhook jobs processed")


def envelope(raw: bytes) -> tuple[dict, dict]:
    """A queued item as a Celery (kombu, protocol 2) message: (message, task
    kwargs); fails the test when it is anything else."""
    message = json.loads(raw)
    assert set(message) >= {"body", "content-encoding", "content-type", "headers", "properties"}, message
    assert (message["content-type"], message["content-encoding"]) == ("application/json", "utf-8"), message
    properties = message["properties"]
    assert properties["body_encoding"] == "base64", message
    assert properties["delivery_info"]["routing_key"] == QUEUE, message
    assert message["headers"]["task"] == TASK_NAME, message
    assert message["headers"]["id"] == properties["correlation_id"], message
    args, kwargs, embed = json.loads(base64.b64decode(message["body"]))
    assert args == [] and set(kwargs) == {"ticket_id", "tenant_id", "created_at"}, kwargs
    assert kwargs["tenant_id"] in TENANTS and kwargs["ticket_id"], kwargs
    created_at(kwargs)  # a valid timestamp
    assert isinstance(embed, dict) and set(embed) >= {"callbacks", "errbacks", "chain", "chord"}, embed
    return message, kwargs


def queued_tickets(client: redis.Redis) -> dict[int, list[str]]:
    """Ticket ids in each priority list, from index 0 to -1 (every item checked
    to be a Celery envelope)."""
    return {priority: [envelope(raw)[1]["ticket_id"] for raw in client.lrange(name, 0, -1)]
            for priority, name in PRIORITY_LISTS.items()}


def unacked_tickets(client: redis.Redis) -> dict[str, str]:
    """delivery tag -> ticket id of the messages in Celery's `unacked` hash."""
    found = {}
    for tag, value in client.hgetall("unacked").items():
        raw, _exchange, routing_key = json.loads(value)
        assert routing_key == QUEUE
        message, kwargs = envelope(json.dumps(raw).encode())
        assert message["properties"]["delivery_tag"] == tag.decode()
        found[tag.decode()] = kwargs["ticket_id"]
    return found


def purge_celery_leftovers(client: redis.Redis, tickets: list[str]) -> None:
    """Remove envelopes of the test's own tickets (and FLOOD-*) still queued or
    unacked: nothing consumes or restores them in the plain format."""
    def ours(raw: Any) -> bool:
        try:
            item = raw if isinstance(raw, dict) else json.loads(raw)
            kwargs = json.loads(base64.b64decode(item["body"]))[1]
        except (ValueError, TypeError, KeyError, IndexError):
            return False
        return kwargs.get("ticket_id") in tickets or str(kwargs.get("ticket_id")).startswith("FLOOD-")
    for name in PRIORITY_LISTS.values():
        for raw in client.lrange(name, 0, -1):
            if ours(raw):
                client.lrem(name, 1, raw)
    for tag, value in client.hgetall("unacked").items():
        if ours(json.loads(value)[0]):
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.fixture()
def celery_format(healed: Sandbox) -> Iterator[tuple[Sandbox, list[str]]]:
    """The sandbox in the celery queue format; back in plain at the end, even
    when the test (or switching) failed. Yields the list the test adds its
    tickets to, so leftovers can be removed."""
    sandbox, tickets = healed, []
    try:
        sandbox.cli("up", "--queue-format", "celery")
        yield sandbox, tickets
    finally:
        sandbox.cli("heal", check=False)  # still in celery format: the workers drain what is queued
        sandbox.cli("up", "--queue-format", "plain")
        purge_celery_leftovers(sandbox.redis(), tickets)
        assert "queue format: plain" in sandbox.cli("status").stdout
        assert sandbox.every_worker(lambda w: "QUEUE_FORMAT=plain" in w["Config"]["Env"])
        ticket = unique_ticket()
        response = sandbox.signed_webhook("acme-corp", ticket)
        assert response.status_code == 202 and response.json()["queue_format"] == "plain", response.text
        sandbox.wait_for(lambda: sandbox.notes(ticket), 30, what="a job processed in the plain format again")


def test_celery_queue_format(celery_format: tuple[Sandbox, list[str]]) -> None:
    """Celery envelopes end to end: LPUSH order, priority siblings, flood jobs
    as envelopes, and delivered messages held in `unacked` with their index."""
    sandbox, mine = celery_format
    client = sandbox.redis()
    sandbox.cli("fault", "workers-stopped")
    assert sandbox.every_worker(lambda w: w["State"]["Status"] == "exited")
    assert sandbox.metrics()[f'queue_depth{{queue="{QUEUE}"}}'] == 0
    assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0

    # Pushed oldest first; priority 5 rounds down to the 3 list.
    sent = [(unique_ticket(), priority) for priority in (None, 9, 0, 5, 9, 0)]
    for ticket, priority in sent:
        extra = {} if priority is None else {"priority": priority}
        response = sandbox.signed_webhook("globex", ticket, **extra)
        assert response.status_code == 202 and response.json()["queue_format"] == "celery", response.text
        mine.append(ticket)
    step = {None: 0, 0: 0, 5: 3, 9: 9}
    # LPUSH: the newest at index 0, the oldest at -1, in every list.
    expected = {p: [t for t, pri in reversed(sent) if step[pri] == p] for p in PRIORITY_LISTS}
    assert queued_tickets(client) == expected
    for name in PRIORITY_LISTS.values():  # each message carries the priority it was sent with
        for raw in client.lrange(name, 0, -1):
            message, kwargs = envelope(raw)
            assert (message["properties"].get("priority") or 0) == (dict(sent)[kwargs["ticket_id"]] or 0)
    assert sandbox.metrics()[f'queue_depth{{queue="{QUEUE}"}}'] == len(sent)

    # The flood pushes Celery envelopes too, spread over the priority lists.
    sandbox.cli("fault", "queue-flood", "120")
    flooded = queued_tickets(client)
    for priority in PRIORITY_LISTS:
        flood = [t for t in flooded[priority] if t.startswith("FLOOD-")]
        assert flood == [f"FLOOD-{i:05d}" for i in reversed(range(120)) if (0, 3, 6, 9)[i % 4] == priority]
        assert flooded[priority] == flood + expected[priority]  # newer than the webhook jobs: nearer index 0
    assert sandbox.metrics()[f'queue_depth{{queue="{QUEUE}"}}'] == 120 + len(sent)
    sandbox.cli("heal", "queue-flood")
    assert queued_tickets(client) == expected

    # Hold every job in flight: OpenAI answers after 8 s. Started workers take
    # the messages, which wait in `unacked` (indexed in `unacked_index`).
    sandbox.cli("fault", "openai-slow", "8")
    sandbox.cli("heal", "workers-stopped")
    unacked = sandbox.wait_for(lambda: (found := unacked_tickets(client)) and sorted(found.values()) == sorted(mine)
                               and found, 15, 0.2, "every message delivered and unacked")
    index = dict(client.zrange("unacked_index", 0, -1, withscores=True))
    assert {tag.decode() for tag in index} == set(unacked)
    assert all(abs(time.time() - stamp) < 60 for stamp in index.values())
    assert queued_tickets(client) == {p: [] for p in PRIORITY_LISTS}
    assert not any(sandbox.notes(ticket) for ticket in mine)  # still running, not done
    sandbox.cli("heal", "openai-slow")
    sandbox.wait_for(lambda: all(sandbox.notes(ticket) for ticket in mine), 60, what="every celery job processed")
    # Recorded just after the note.
    sandbox.wait_for(lambda: all(history_status(sandbox, ticket) == [("success", None)] for ticket in mine), 10,
                     what="every job recorded as a success")
    # Acknowledged after the task: gone from both.
    sandbox.wait_for(lambda: client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0, 15,
                     what="unacked and unacked_index emptied by the acks")


# ---------------------------------------------------------------- workers

def test_workers_stopped_and_healed(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "workers-stopped")
    assert sandbox.every_worker(lambda w: w["State"]["Status"] == "exited")
    assert sandbox.metrics()["worker_active_count"] == 0
    sandbox.cli("heal", "workers-stopped")
    assert sandbox.metrics()["worker_active_count"] == int(sandbox.env["WORKER_REPLICAS"])


def container_status(name: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_redis_down_and_healed(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "redis-down")
    assert container_status("aiagents-redis-1") == "exited"
    with pytest.raises(redis.ConnectionError):
        sandbox.redis().ping()
    # The workers keep running and say they lost their broker.
    assert sandbox.every_worker(lambda w: w["State"]["Status"] == "running")
    # Celery's consumer and the plain-queue threads each say so; the threads' lines
    # (every 2 s each) can crowd Celery's out of a short tail.
    sandbox.wait_for(lambda: all(re.search(r"Cannot connect to redis|redis unavailable", subprocess.run(
        ["docker", "logs", "--tail", "30", w["Name"].lstrip("/")], capture_output=True, text=True, check=True).stderr)
        for w in sandbox.workers()), 30, 1, "every worker logging the lost broker")
    sandbox.cli("heal", "redis-down")
    assert sandbox.redis().ping()
    sandbox.wait_for(lambda: sandbox.metrics()["worker_active_count"] == int(sandbox.env["WORKER_REPLICAS"]),
                     60, 1, "every worker back on the broker")


def checksum_failures(sandbox: Sandbox) -> int:
    return sandbox.sql("SELECT checksum_failures FROM pg_stat_database WHERE datname = current_database()")[0][0] or 0


def test_db_corrupt_page_fails_its_checksum_and_heals(healed: Sandbox) -> None:
    sandbox = healed
    assert sandbox.sql("SHOW data_checksums") == [("on",)]
    assert checksum_failures(sandbox) == 0
    sandbox.cli("fault", "db-corrupt-page")
    assert checksum_failures(sandbox) >= 1
    with pytest.raises(psycopg2.errors.DataCorrupted):
        sandbox.sql("SELECT count(*) FROM corruption_probe")
    # The rest of the database still serves the platform.
    assert sandbox.sql("SELECT count(*) FROM tenants")[0][0] >= 2
    sandbox.cli("heal", "db-corrupt-page")
    assert checksum_failures(sandbox) == 0
    assert sandbox.sql("SELECT to_regclass('corruption_probe')") == [(None,)]


def test_a_full_heal_starts_what_was_stopped(healed: Sandbox) -> None:
    """A runbook pausing intake stops the api; a full heal brings it back with the rest."""
    sandbox = healed
    subprocess.run(["docker", "stop", "aiagents-api-1"], check=True, capture_output=True)
    assert sandbox.cli("status", check=False).returncode != 0
    sandbox.cli("heal")
    assert container_status("aiagents-api-1") == "running"
    assert sandbox.cli("status", check=False).returncode == 0


def worker_restarts(sandbox: Sandbox) -> dict[str, tuple[str, int, str]]:
    """container name -> (id, RestartCount, status) of every worker container."""
    return {w["Name"].lstrip("/"): (w["Id"], w["RestartCount"], w["State"]["Status"]) for w in sandbox.workers()}


def assert_workers_settled(sandbox: Sandbox, seconds: float = 12) -> None:
    """Every worker healthy, and none restarted, recreated or killed for `seconds`."""
    settled = worker_restarts(sandbox)
    assert all(status == "running" for _id, _count, status in settled.values()), settled
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1)
        assert worker_restarts(sandbox) == settled, f"workers still restarting after heal: {settled}"
    assert sandbox.every_worker(lambda w: w["State"]["Health"]["Status"] == "healthy")


def test_worker_oom_kill(healed: Sandbox) -> None:
    sandbox = healed
    info = sorted(sandbox.workers(), key=lambda w: w["Name"])[0]  # the one the fault picks
    name, node, restarts = info["Name"].lstrip("/"), f"worker@{info['Id'][:12]}", info["RestartCount"]
    oom_line = f"worker {node} was OOMKilled"
    kills = sandbox.logs(name).count(oom_line)
    sandbox.cli("fault", "worker-oom")
    assert "worker-oom" in sandbox.active_faults()
    assert re.search(r"^\* worker-oom\s", sandbox.cli("faults").stdout, re.M)
    sandbox.wait_for(lambda: sandbox.logs(name).count(oom_line) == kills + 1, 60, what="OOM kill in the worker's log")

    def restarted() -> dict | None:
        info = next(w for w in sandbox.workers() if w["Name"].lstrip("/") == name)
        return info if info["RestartCount"] > restarts else None
    # Docker keeps the flag across the restart its policy makes.
    assert sandbox.wait_for(restarted, 30, what="the restart after the kill")["State"]["OOMKilled"] is True

    # The fault is one allocation (nothing persists in the container): heal
    # clears the recorded fault and brings every worker back healthy; the
    # killed worker then stays up (no further kill or restart) and works.
    sandbox.cli("heal", "worker-oom")
    assert "worker-oom" not in sandbox.active_faults()
    assert re.search(r"^  worker-oom\s", sandbox.cli("faults").stdout, re.M)
    assert sandbox.cli("status").returncode == 0
    assert_workers_settled(sandbox, 8)
    assert sandbox.logs(name).count(oom_line) == kills + 1
    assert sandbox.metrics()["worker_active_count"] == int(sandbox.env["WORKER_REPLICAS"])
    # Enough jobs at once to occupy every consumer thread, the restarted worker's too.
    tickets = [unique_ticket() for _job in range(2 * int(sandbox.env["WORKER_REPLICAS"]) * 4)]
    for ticket in tickets:
        assert sandbox.signed_webhook("acme-corp", ticket).status_code == 202

    def recorded() -> list[tuple] | None:
        rows = sandbox.sql("SELECT ticket_id, status, worker FROM enhancement_history WHERE ticket_id = ANY(%s)",
                           (tickets,))
        return rows if len(rows) == len(tickets) else None
    rows = sandbox.wait_for(recorded, 60, what="the jobs after heal")
    assert {status for _t, status, _w in rows} == {"success"}
    assert node in {worker for _t, _s, worker in rows}, "the OOM-killed worker processed none of the jobs"
    assert sandbox.logs(name).count(oom_line) == kills + 1


def test_worker_crash_loop(healed: Sandbox) -> None:
    sandbox = healed
    sandbox.cli("fault", "worker-crash-loop")
    sandbox.wait_for(lambda: min(w["RestartCount"] for w in sandbox.workers()) >= 3, 60, 1, "restart counts to rise")
    name = sandbox.workers()[0]["Name"].lstrip("/")
    assert "ValueError: invalid DATABASE_POOL_SIZE='ten'" in sandbox.logs(name)
    sandbox.cli("heal", "worker-crash-loop")
    assert sandbox.every_worker(lambda w: w["RestartCount"] == 0 and w["State"]["Health"]["Status"] == "healthy")


def test_bad_api_key_fails_every_job(healed: Sandbox) -> None:
    sandbox = healed
    override = sandbox.root / "state" / "worker.env"
    counter = 'enhancement_requests_total{status="failure",tenant_id="globex"}'
    before = sandbox.metrics().get(counter, 0)
    sandbox.cli("fault", "worker-bad-api-key")
    assert "OPENAI_API_KEY=sk-invalid-" in override.read_text()
    assert sandbox.every_worker(lambda w: any(e.startswith("OPENAI_API_KEY=sk-invalid-") for e in w["Config"]["Env"]))
    tickets = [unique_ticket() for _job in range(3)]
    for ticket in tickets:
        assert sandbox.signed_webhook("globex", ticket).status_code == 202
    sandbox.wait_for(lambda: all(history_status(sandbox, ticket) for ticket in tickets), 60,
                     what="every job recorded")
    for ticket in tickets:
        [(status, error)] = history_status(sandbox, ticket)
        assert status == "failure" and "openai: HTTP 401" in error, (ticket, status, error)
        assert not sandbox.notes(ticket)
    assert sandbox.metrics()[counter] >= before + len(tickets)

    sandbox.cli("heal", "worker-bad-api-key")
    assert not override.exists()
    assert not any(e.startswith("OPENAI_API_KEY=") for w in sandbox.workers() for e in w["Config"]["Env"])
    tickets = [unique_ticket() for _job in range(3)]
    for ticket in tickets:
        assert sandbox.signed_webhook("globex", ticket).status_code == 202
    sandbox.wait_for(lambda: all(history_status(sandbox, ticket) == [("success", None)] for ticket in tickets), 60,
                     what="jobs to succeed again")
    assert all(sandbox.notes(ticket) for ticket in tickets)


def queued_jobs(client: redis.Redis, ticket_id: str) -> int:
    """Jobs for `ticket_id` in any Redis list (the queue, its priority
    siblings, or anywhere a job might have been moved to)."""
    count = 0
    for key in client.scan_iter(count=1000):
        if client.type(key) == b"list":
            count += sum(ticket_id.encode() in raw for raw in client.lrange(key, 0, -1))
    return count


def test_poison_job_kills_its_worker(healed: Sandbox) -> None:
    sandbox = healed
    client = sandbox.redis()
    before = sum(count for _id, count, _status in worker_restarts(sandbox).values())
    # More poison jobs than consumer threads, so some still wait when heal runs.
    sandbox.cli("fault", "poison-job", "24")
    sandbox.wait_for(lambda: sum(c for _i, c, _s in worker_restarts(sandbox).values()) > before, 90, 0.5,
                     "a worker restart")
    logs = "".join(sandbox.logs(name) for name in worker_restarts(sandbox))
    assert re.search(r"job started tenant_id=acme-corp ticket_id=POISON-0001", logs)
    assert "OOMKilled" in logs
    assert queued_jobs(client, "POISON-0001") > 0

    # Heal deletes the injected jobs (`ops unpoison`: no quarantine, nothing
    # kept anywhere), the ticket loses its attachment, and the kills stop.
    sandbox.cli("heal", "poison-job")
    assert queued_jobs(client, "POISON-0001") == 0
    ticket = requests.get(sandbox.url("sdp", "/api/v3/requests/POISON-0001"), timeout=10, headers={
        "authtoken": sandbox.secret('tenant-acme-corp-sdp', 'api_key')}).json()["request"]
    assert ticket["attachments"] == []
    assert_workers_settled(sandbox, 15)
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


RLS_QUAL = "(tenant_id = COALESCE(current_setting('app.current_tenant_id'::text, true), ''::text))"


def rls_state(sandbox: Sandbox, table: str) -> dict[str, Any]:
    """Each ingredient of the isolation of `table`, separately."""
    app = sandbox.env["POSTGRES_APP_USER"]
    [(enabled, forced, owner, app_select)] = sandbox.sql(
        "SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner), has_table_privilege(%s, oid, 'SELECT') "
        "FROM pg_class WHERE relname = %s AND relkind = 'r'", (app, table))
    [(superuser, bypassrls)] = sandbox.sql("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (app,))
    policies = sandbox.sql("SELECT policyname, permissive, roles::text[], cmd, qual FROM pg_policies "
                           "WHERE tablename = %s ORDER BY policyname", (table,))
    return {"enabled": enabled, "forced": forced, "owner": owner, "app_select": app_select,
            "superuser": superuser, "bypassrls": bypassrls, "policies": [p[0] for p in policies],
            "policy": policies[0][1:] if len(policies) == 1 else None}


def assert_rls_intact(sandbox: Sandbox) -> None:
    """The canonical RLS, each condition on its own (a half-heal fails)."""
    for table in TENANT_TABLES:
        state = rls_state(sandbox, table)
        assert state["enabled"] is True, f"{table}: row-level security not enabled"
        assert state["forced"] is True, f"{table}: row-level security not forced"
        assert state["owner"] == sandbox.env["POSTGRES_ADMIN_USER"], f"{table}: owned by {state['owner']}"
        assert state["app_select"] is True, f"{table}: the app role lost SELECT"
        assert state["superuser"] is False, "the app role is superuser"
        assert state["bypassrls"] is False, "the app role has BYPASSRLS"
        assert state["policies"] == ["tenant_isolation"], f"{table}: policies {state['policies']}"
        assert state["policy"] == ("PERMISSIVE", ["public"], "ALL", RLS_QUAL), f"{table}: policy {state['policy']}"


@pytest.fixture()
def tenant_rows(sandbox: Sandbox) -> Iterator[None]:
    """Every tenant table holds rows of both tenants (enhancement_history gets
    one marker row per tenant, removed afterwards)."""
    marker = unique_ticket("RLS-CHECK")
    sandbox.sql("INSERT INTO enhancement_history (tenant_id, ticket_id, status, duration_ms) "
                "SELECT t, %s, 'success', 0 FROM unnest(%s::text[]) AS t", (marker, list(TENANTS)))
    try:
        yield
    finally:
        sandbox.sql("DELETE FROM enhancement_history WHERE ticket_id = %s", (marker,))


def admin_rows(sandbox: Sandbox, table: str) -> dict[str, int]:
    return dict(sandbox.sql(f"SELECT tenant_id, count(*) FROM {table} GROUP BY tenant_id"))  # noqa: S608 (constant)


def assert_isolated(sandbox: Sandbox) -> None:
    """As the app role, through RLS, on every tenant table: a tenant's context
    shows all of its rows and nothing else; no context shows nothing."""
    for table in TENANT_TABLES:
        for tenant in TENANTS:
            before = admin_rows(sandbox, table)
            seen = sandbox.visible_rows(tenant, table)
            after = admin_rows(sandbox, table)  # (jobs may add rows meanwhile)
            assert set(seen) == {tenant}, f"{table} with {tenant}'s context shows {seen}"
            assert before[tenant] <= seen[tenant] <= after[tenant], f"{table}: {tenant} sees {seen}, has {before}"
        assert sandbox.visible_rows(None, table) == {}, f"{table} without a context shows rows"


def test_app_role_sees_only_its_tenant(sandbox: Sandbox, tenant_rows: None) -> None:
    assert_isolated(sandbox)
    with pytest.raises(psycopg2.errors.NoDataFound):
        sandbox.visible_tickets("umbrella")
    assert_rls_intact(sandbox)


# Each RLS break (on ticket_history): what the catalogue shows, and what the
# app role then sees there with acme-corp's context.
RLS_FAULTS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "rls-disabled": ({"enabled": False}, {"acme-corp", "globex"}),
    "rls-policy-dropped": ({"policies": []}, set()),
    "rls-not-forced": ({"forced": False, "owner": "aiagents_app"}, {"acme-corp", "globex"}),
    "rls-bypass-role": ({"bypassrls": True}, {"acme-corp", "globex"}),
    "rls-policy-unscoped": ({"policies": ["tenant_isolation"], "policy": ("PERMISSIVE", ["public"], "ALL", "true")},
                            {"acme-corp", "globex"}),
}


@pytest.mark.parametrize("fault", RLS_FAULTS)
def test_rls_faults(healed: Sandbox, tenant_rows: None, fault: str) -> None:
    sandbox = healed
    broken, visible = RLS_FAULTS[fault]
    assert_rls_intact(sandbox)
    sandbox.cli("fault", fault)
    state = rls_state(sandbox, "ticket_history")
    for key, value in broken.items():
        assert state[key] == value, f"{fault}: {key} is {state[key]!r}"
    assert sandbox.visible_tickets("acme-corp") == visible
    sandbox.cli("heal", fault)
    assert_rls_intact(sandbox)
    assert_isolated(sandbox)


# ---------------------------------------------------------------- stand-ins

def api_probe(sandbox: Sandbox, api: str, timeout: float = 5) -> requests.Response:
    """GET the API as the workers' runbooks would, with a valid key."""
    if api == "sdp":
        return requests.get(sandbox.url("sdp", "/api/v3/requests"), timeout=timeout,
                            headers={"authtoken": sandbox.secret("tenant-acme-corp-sdp", "api_key"),
                                     "Accept": "application/vnd.manageengine.sdp.v3+json"})
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
        if kind == "429":  # OpenAI sends Retry-After; SDP documents none (clients must cope without)
            assert response.headers.get("Retry-After") == ("20" if api == "openai" else None)
        if api == "openai":
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        else:
            assert response.json()["response_status"]["status"] == "failed"
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
    response = requests.get(sandbox.url("sdp", "/api/v3/requests/T-1"), timeout=5, headers={"authtoken": "wrong"})
    assert response.status_code == 401
    assert response.json()["response_status"]["messages"][0]["status_code"] == 4022


def test_faults_listed(sandbox: Sandbox) -> None:
    listed = sandbox.cli("faults").stdout
    for name in ("queue-flood", "workers-stopped", "worker-oom", "worker-crash-loop", "worker-bad-api-key",
                 "poison-job", "redis-down", "db-down", "db-corrupt-page", "db-connections-exhausted", "db-long-query", "db-blocking-lock", "rls-disabled",
                 "rls-policy-dropped", "rls-not-forced", "rls-bypass-role", "rls-policy-unscoped",
                 "sdp-slow", "sdp-hang", "openai-429", "openai-refuse"):
        assert re.search(rf"^\s+{re.escape(name)}\s", listed, re.M), name


def test_data_volumes_fill_and_postgresql_refuses_writes_until_healed(healed: Sandbox) -> None:
    check_disk_faults(healed, healed.root / "state" / "volumes")


def test_transaction_ids_near_wraparound_and_healed(healed: Sandbox) -> None:
    check_xid_fault(healed)
