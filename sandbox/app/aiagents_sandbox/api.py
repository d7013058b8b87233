"""The webhook API and the platform's metrics exporter.

POST /webhook/servicedesk?tenant_id=ID   SDP webhook: HMAC-SHA256 (hex) of the
    raw body in X-SDP-Signature, keyed with the tenant's webhook secret.
    202 queued | 401 bad/missing signature | 404 unknown tenant | 400 bad body
GET  /metrics                            Prometheus text
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
                text = metrics.render(broker, settings.queue_name, active_workers())
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
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if parts.path != "/webhook/servicedesk":
            self._reply(404, {"error": "not found"})
            return
        tenant_id = parse_qs(parts.query).get("tenant_id", [""])[0]
        try:
            exists, secret = tenant_webhook_secret(tenant_id)
        except psycopg2.Error as exc:
            log.error("tenant lookup failed tenant_id=%s: %s", tenant_id, str(exc).strip())
            self._reply(503, {"error": "tenant lookup failed"})
            return
        if not exists:
            self._reply(404, {"error": f"unknown tenant {tenant_id!r}"})
            return
        signature = self.headers.get("X-SDP-Signature", "").strip().lower()
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() if secret else None
        if expected is None or not hmac.compare_digest(signature, expected):
            log.warning("webhook rejected tenant_id=%s: %s", tenant_id,
                        "no webhook secret configured" if expected is None else "bad or missing signature")
            self._reply(401, {"error": "invalid signature"})
            return
        try:
            payload = json.loads(body)
            ticket = payload.get("ticket") or payload.get("request") or payload
            ticket_id = str(ticket.get("ticket_id") or ticket["id"])
            priority = payload.get("priority")
        except (ValueError, KeyError, AttributeError, TypeError):
            self._reply(400, {"error": "body must be JSON with ticket_id (or ticket.id)"})
            return
        enqueue(broker, ticket_id, tenant_id, priority=int(priority) if priority is not None else None)
        log.info("webhook queued tenant_id=%s ticket_id=%s", tenant_id, ticket_id)
        self._reply(202, {"status": "queued", "tenant_id": tenant_id, "ticket_id": ticket_id,
                          "queue_format": settings.queue_format})

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
