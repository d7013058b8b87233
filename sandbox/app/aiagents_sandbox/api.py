"""The webhook API and the platform's metrics exporter.

POST /webhook/servicedesk?tenant_id=ID   SDP webhook: HMAC-SHA256 (hex) of the
    raw body in X-SDP-Signature, keyed with the tenant's webhook secret.
    202 queued | 401 bad/missing signature | 404 unknown tenant | 400 bad body
    | 503 tenant lookup or enqueue failed (logged: "enqueue failed tenant_id=...
    ticket_id=...: <reason>: <error>", so the lost tickets can be sent again)
GET  /metrics                            Prometheus text, with this process's
    webhook_requests_total{code} and webhook_enqueue_errors_total{reason}
GET  /healthz                            Redis and PostgreSQL reachable

The webhook secret is looked up per request (tenant row -> secret file), so a
tenant onboarded at run time works without a restart.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg2
import psycopg2.errors
import redis

from . import metrics
from .celery_app import app, settings
from .config import read_secret
from .jobqueue import enqueue

log = logging.getLogger("aiagents.api")
broker = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
_ping_lock = threading.Lock()

# The intake's own counters, kept in this process (the api renders its own /metrics, and they must count
# while Redis refuses writes). Known label values start at 0, so rate() answers from the first scrapes.
ENQUEUE_ERRORS = ("oom", "readonly", "misconf", "max_clients", "connection", "other")
_intake_lock = threading.Lock()
_responses: dict[str, int] = {code: 0 for code in ("202", "503")}
_enqueue_errors: dict[str, int] = dict.fromkeys(ENQUEUE_ERRORS, 0)


def enqueue_error_reason(exc: BaseException) -> str:
    """Why Redis (through redis-py or kombu) refused the job, as a metric label."""
    text = str(exc)
    for reason, marker in (("oom", "maxmemory"), ("readonly", "read only replica"), ("misconf", "MISCONF"),
                           ("max_clients", "max number of clients")):
        if marker in text:
            return reason
    return "connection" if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OSError)) else "other"


def intake_metrics() -> str:
    with _intake_lock:
        responses, errors = dict(_responses), dict(_enqueue_errors)
    lines = ["# HELP webhook_requests_total Webhooks received by this api process, by HTTP status.",
             "# TYPE webhook_requests_total counter"]
    lines += [f'webhook_requests_total{{code="{code}"}} {count}' for code, count in sorted(responses.items())]
    lines += ["# HELP webhook_enqueue_errors_total Webhooks whose job the queue refused, by reason.",
              "# TYPE webhook_enqueue_errors_total counter"]
    lines += [f'webhook_enqueue_errors_total{{reason="{reason}"}} {count}' for reason, count in sorted(errors.items())]
    return "\n".join(lines) + "\n"


def tenant_webhook_secret(tenant_id: str) -> tuple[bool, str | None]:
    """(tenant exists, its webhook secret or None), seen as the app role."""
    conn = psycopg2.connect(settings.dsn())
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT set_tenant_context(%s)", (tenant_id,))
            cur.execute("SELECT sdp_credentials_secret, webhook_secret_ref FROM tenants WHERE tenant_id = %s",
                        (tenant_id,))
            row = cur.fetchone()
    except psycopg2.errors.NoDataFound:  # set_tenant_context: unknown or suspended
        return False, None
    finally:
        conn.close()
    if row is None:
        return False, None
    credentials, ref = row
    secret, _, key = (ref or f"{credentials}/webhook_secret").partition("/")
    return True, read_secret(secret, key or "webhook_secret")


def active_workers() -> int:
    """Workers answering a Celery ping through the broker (one at a time:
    concurrent scrapes must not multiply the broadcast traffic)."""
    with _ping_lock:
        try:
            return len(app.control.ping(timeout=1.0) or [])
        except Exception as exc:  # broker down: no worker can be reached
            log.warning("celery ping failed: %s", exc)
            return 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            try:
                text = metrics.render(broker, settings.queue_name, active_workers()) + intake_metrics()
            except redis.RedisError as exc:
                self._reply(503, {"error": f"redis unavailable: {exc}"})
                return
            self._reply(200, text, "text/plain; version=0.0.4")
        elif path == "/healthz":
            try:
                broker.ping()
                psycopg2.connect(settings.dsn()).close()
            except (redis.RedisError, psycopg2.Error) as exc:
                self._reply(503, {"status": "unhealthy", "error": str(exc).strip()})
                return
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        status = self._webhook()
        if status is not None:
            with _intake_lock:
                _responses[str(status)] = _responses.get(str(status), 0) + 1

    def _webhook(self) -> int | None:
        """Handle a webhook; the status replied (None for a path that is not the webhook)."""
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if parts.path != "/webhook/servicedesk":
            self._reply(404, {"error": "not found"})
            return None
        tenant_id = parse_qs(parts.query).get("tenant_id", [""])[0]
        try:
            exists, secret = tenant_webhook_secret(tenant_id)
        except psycopg2.Error as exc:
            log.error("tenant lookup failed tenant_id=%s: %s", tenant_id, str(exc).strip())
            self._reply(503, {"error": "tenant lookup failed"})
            return 503
        if not exists:
            self._reply(404, {"error": f"unknown tenant {tenant_id!r}"})
            return 404
        signature = self.headers.get("X-SDP-Signature", "").strip().lower()
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() if secret else None
        if expected is None or not hmac.compare_digest(signature, expected):
            log.warning("webhook rejected tenant_id=%s: %s", tenant_id,
                        "no webhook secret configured" if expected is None else "bad or missing signature")
            self._reply(401, {"error": "invalid signature"})
            return 401
        try:
            payload = json.loads(body)
            ticket = payload.get("ticket") or payload.get("request") or payload
            ticket_id = str(ticket.get("ticket_id") or ticket["id"])
            priority = payload.get("priority")
        except (ValueError, KeyError, AttributeError, TypeError):
            self._reply(400, {"error": "body must be JSON with ticket_id (or ticket.id)"})
            return 400
        try:
            enqueue(broker, ticket_id, tenant_id, priority=int(priority) if priority is not None else None)
        except Exception as exc:  # pylint: disable=broad-except  # redis-py's or kombu's: the queue refused it
            reason = enqueue_error_reason(exc)
            with _intake_lock:
                _enqueue_errors[reason] = _enqueue_errors.get(reason, 0) + 1
            log.error("enqueue failed tenant_id=%s ticket_id=%s: %s: %s", tenant_id, ticket_id, reason,
                      str(exc).strip()[:300])
            self._reply(503, {"error": "the queue refused the job; try again later"})
            return 503
        log.info("webhook queued tenant_id=%s ticket_id=%s", tenant_id, ticket_id)
        self._reply(202, {"status": "queued", "tenant_id": tenant_id, "ticket_id": ticket_id,
                          "queue_format": settings.queue_format})
        return 202

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug(fmt, *args)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = ThreadingHTTPServer((settings.bind, settings.api_port), Handler)
    server.daemon_threads = True
    log.info("api listening on %s:%d (queue format %s)", settings.bind, settings.api_port, settings.queue_format)
    server.serve_forever()


if __name__ == "__main__":
    main()
