"""The enhancement worker: `celery -A aiagents_sandbox.worker worker`.

One job = one ticket of one tenant: set the tenant context and gather history
and inventory through RLS, fetch the ticket from ServiceDesk Plus, ask OpenAI
for a summary, post it back as a work note, record the outcome in
`enhancement_history`, the metrics and a trace.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis
import requests
from celery import bootsteps
from celery.worker.control import control_command

from . import metrics
from .celery_app import TASK_NAME, app, settings
from .config import env, read_secret
from .db import Pool, tenant_transaction
from .tracing import Trace

log = logging.getLogger("aiagents.worker")
HEARTBEAT = Path("/tmp/worker-heartbeat")
JAEGER_INGEST = f"http://{settings.jaeger_host}:{settings.jaeger_port}/api/ingest"
OPENAI_URL = env("OPENAI_BASE_URL", f"http://{settings.openai_host}:{settings.openai_port}/v1")
WORKER_NAME = env("WORKER_NODE_NAME", "worker")

pool = Pool(settings)
broker = redis.Redis.from_url(settings.redis_url)
_http = threading.local()


class ApiError(Exception):
    """An external API failed; `retryable` for 429, 5xx and network errors."""

    def __init__(self, api: str, message: str, retryable: bool) -> None:
        super().__init__(f"{api}: {message}")
        self.retryable = retryable


def call_api(api: str, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
    """One API call with HTTPX_TIMEOUT and CELERY_TASK_MAX_RETRIES retries,
    backing off CELERY_TASK_BACKOFF * 2**attempt seconds (or Retry-After).
    401 is returned to the caller (an SDP Cloud token may want a refresh)."""
    session = getattr(_http, "session", None) or requests.Session()
    _http.session = session
    for attempt in range(settings.max_retries + 1):
        delay = settings.backoff * 2**attempt
        try:
            response = session.request(method, url, headers=headers, timeout=settings.httpx_timeout, **kwargs)
            if response.status_code < 400 or response.status_code == 401:
                return response
            # Out of quota or credit is a 429 too, but no wait mends it: never retried.
            retryable = (response.status_code == 429 and not out_of_quota(response)) or response.status_code >= 500
            error = ApiError(api, f"HTTP {response.status_code} {response.reason}: {response.text[:200]}", retryable)
            if response.status_code == 429:
                delay = min(retry_delay(response.headers) or delay, delay * 4)
        except (requests.ConnectionError, requests.Timeout) as exc:
            error = ApiError(api, f"{type(exc).__name__}: {exc}", True)
        if not error.retryable or attempt == settings.max_retries:
            raise error
        log.warning("%s failed (%s), retry %d/%d in %.0fs", api, error, attempt + 1, settings.max_retries, delay)
        time.sleep(delay)
    raise AssertionError("unreachable")


QUOTA_ERRORS = {"insufficient_quota", "credit_balance_exhausted"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def out_of_quota(response: requests.Response) -> bool:
    """OpenAI's 429 for exhausted quota or credit (its type or its code says so), not a rate limit."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and bool({error.get("type"), error.get("code")} & QUOTA_ERRORS)


def retry_delay(headers: Any) -> float | None:
    """Seconds to wait after a 429: Retry-After when sent, else the latest x-ratelimit reset (`6m0s`, `120ms`)."""
    if headers.get("Retry-After", "").isdigit():
        return float(headers["Retry-After"])
    resets = [sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION.findall(value))
              for value in (headers.get("x-ratelimit-reset-requests"), headers.get("x-ratelimit-reset-tokens"))
              if value and _DURATION.findall(value)]
    return max(resets) if resets else None


def _refused(api: str, response: requests.Response) -> ApiError:
    return ApiError(api, f"HTTP {response.status_code} {response.reason}: {response.text[:200]}", False)


class ServiceDesk:
    """A tenant's ServiceDesk Plus, spoken to as its edition's v3 API wants.

    On-premises: `<sdp_url>/api/v3/...` with the technician key in the
    `authtoken` header. Cloud (the secret holds client_id, client_secret,
    refresh_token, portal and accounts_url): `<sdp_url>/app/<portal>/api/v3/...`
    with `Authorization: Zoho-oauthtoken`, the access token fetched with the
    refresh token, kept until shortly before it expires, and fetched again
    once when SDP answers 401. Writes send JSON in the `input_data` field.
    """

    API = "servicedesk_plus"
    _tokens: dict[str, tuple[str, float]] = {}  # client_id -> (access token, when to renew), shared by threads
    _tokens_lock = threading.Lock()

    def __init__(self, sdp_url: str, secret: str) -> None:
        def field(name: str) -> str:
            return read_secret(secret, name) or ""

        self.sdp_url = sdp_url.rstrip("/")
        self.client_id = field("client_id")
        self.cloud = bool(self.client_id)
        if self.cloud:
            self.base = f"{self.sdp_url}/app/{field('portal')}/api/v3"
            self.accounts_url = field("accounts_url").rstrip("/")
            self.client_secret, self.refresh_token = field("client_secret"), field("refresh_token")
        else:
            self.base = f"{self.sdp_url}/api/v3"
            self.key = field("api_key") or read_secret("sdp-credentials", "api_key") or ""

    def get_request(self, ticket_id: str) -> dict[str, Any]:
        return self.call("GET", f"/requests/{ticket_id}").json()["request"]

    def add_note(self, ticket_id: str, description: str) -> None:
        note = {"request_note": {"description": description, "show_to_requester": False}}
        self.call("POST", f"/requests/{ticket_id}/notes", data={"input_data": json.dumps(note)})

    def download(self, content_url: str) -> bytes:
        return self.call("GET", content_url, absolute=True).content

    def call(self, method: str, path: str, absolute: bool = False, **kwargs: Any) -> requests.Response:
        url = (self.sdp_url if absolute else self.base) + path
        response = call_api(self.API, method, url, self.headers(), **kwargs)
        if response.status_code == 401 and self.cloud:
            log.info("servicedesk_plus: access token refused (401), refreshing it")
            response = call_api(self.API, method, url, self.headers(renew=True), **kwargs)
        if response.status_code >= 400:
            raise _refused(self.API, response)
        return response

    def headers(self, renew: bool = False) -> dict[str, str]:
        headers = {"Accept": "application/vnd.manageengine.sdp.v3+json"}
        if self.cloud:
            headers["Authorization"] = f"Zoho-oauthtoken {self.access_token(renew)}"
        else:
            headers["authtoken"] = self.key
        return headers

    def access_token(self, renew: bool) -> str:
        with self._tokens_lock:
            token, renew_at = self._tokens.get(self.client_id, ("", 0.0))
            if token and not renew and time.time() < renew_at:
                return token
            response = call_api("zoho_accounts", "POST", f"{self.accounts_url}/oauth/v2/token", {}, data={
                "refresh_token": self.refresh_token, "client_id": self.client_id,
                "client_secret": self.client_secret, "grant_type": "refresh_token"})
            answer = response.json() if response.status_code == 200 else {}
            if "access_token" not in answer:
                raise ApiError("servicedesk_plus", "the accounts server refused the refresh token: "
                               f"{answer.get('error') or response.status_code}", False)
            lifetime = float(answer.get("expires_in") or 3600)
            self._tokens[self.client_id] = (answer["access_token"], time.time() + lifetime * 0.9)
            return answer["access_token"]


def process_job(ticket_id: str, tenant_id: str, created_at: str | None) -> str:
    """Run one enhancement; returns "success" or "failure" (never raises)."""
    trace = Trace(JAEGER_INGEST, {"tenant_id": tenant_id, "ticket_id": ticket_id})
    wait = ""
    if created_at:
        try:
            enqueued = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            wait = f" queue_wait_s={(datetime.now(timezone.utc) - enqueued).total_seconds():.0f}"
        except ValueError:
            wait = " queue_wait_s=unknown"
    log.info("job started tenant_id=%s ticket_id=%s%s", tenant_id, ticket_id, wait)
    status, summary, error = "failure", None, None
    try:
        with trace.span("webhook_receipt"):
            if not ticket_id or not tenant_id:
                raise ValueError("job without ticket_id or tenant_id")
        with trace.span("context_gathering"):
            with pool.connection() as conn, tenant_transaction(conn, tenant_id) as cur:
                cur.execute("SELECT sdp_url, sdp_credentials_secret FROM tenants WHERE tenant_id = %s", (tenant_id,))
                row = cur.fetchone()
                if row is None:
                    raise LookupError(f"tenant {tenant_id} not visible under its own context")
                sdp_url, secret = row
                cur.execute("SELECT ticket_id, subject, resolution FROM ticket_history "
                            "ORDER BY created_at DESC LIMIT 5")
                history = cur.fetchall()
                cur.execute("SELECT hostname, role FROM system_inventory ORDER BY hostname")
                inventory = cur.fetchall()
            desk = ServiceDesk(sdp_url, secret or "sdp-credentials")
            with trace.span("api.servicedesk_plus.get_ticket"):
                ticket = desk.get_request(ticket_id)
            for attachment in ticket.get("attachments", []):
                # Read whole into memory, as the platform does: a huge one is a poison job.
                content = desk.download(attachment["content_url"])
                log.info("attachment %s: %d bytes", attachment.get("name"), len(content))
        with trace.span("llm_synthesis"):
            prompt = (f"Ticket {ticket_id}: {ticket['subject']}. {ticket.get('description', '')}\n"
                      "Similar resolved tickets: " + "; ".join(f"{t} {s} -> {r}" for t, s, r in history)
                      + "\nSystems: " + ", ".join(f"{h} ({r})" for h, r in inventory))
            with trace.span("llm.openai.completion", model="gpt-4o-mini"):
                openai_key = env("OPENAI_API_KEY") or read_secret("openai-credentials", "api_key") or ""
                response = call_api("openai", "POST", f"{OPENAI_URL}/chat/completions",
                                    {"Authorization": f"Bearer {openai_key}"},
                                    json={"model": "gpt-4o-mini", "messages": [
                                        {"role": "system", "content": "Summarise for the service desk engineer."},
                                        {"role": "user", "content": prompt}]})
                if response.status_code == 401:
                    raise _refused("openai", response)
                summary = response.json()["choices"][0]["message"]["content"]
        with trace.span("ticket_update"):
            with trace.span("api.servicedesk_plus.update_ticket"):
                desk.add_note(ticket_id, f"AI summary: {summary}")
        status = "success"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.exception("job failed tenant_id=%s ticket_id=%s error=%s", tenant_id, ticket_id, error)
    duration = trace.finish(error=status != "success", slow_after_s=settings.slow_trace_seconds)
    try:
        with pool.connection() as conn, tenant_transaction(conn, tenant_id) as cur:
            cur.execute("INSERT INTO enhancement_history (tenant_id, ticket_id, status, summary, error, "
                        "duration_ms, worker) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (tenant_id, ticket_id, status, summary, error, int(duration * 1000), WORKER_NAME))
    except Exception as exc:
        log.error("recording history failed tenant_id=%s ticket_id=%s: %s", tenant_id, ticket_id, exc)
    metrics.record(broker, tenant_id or "unknown", status, duration)
    log.info("job %s tenant_id=%s ticket_id=%s duration_s=%.2f", "succeeded" if status == "success" else "failed",
             tenant_id, ticket_id, duration)
    return status


@app.task(name=TASK_NAME)
def enhance_ticket(ticket_id: str, tenant_id: str, created_at: str | None = None) -> str:
    return process_job(ticket_id, tenant_id, created_at)


class PlainQueueConsumer(bootsteps.StartStopStep):
    """Consumes plain JSON jobs (QUEUE_FORMAT=plain): CELERY_CONCURRENCY threads
    each BLPOP one job and run the task, so the list drains only as fast as
    jobs finish. Also keeps the heartbeat file the health check reads."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, worker: Any) -> None:
        self.threads = [threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat")]
        if settings.queue_format == "plain":
            self.threads += [threading.Thread(target=self._consume, daemon=True, name=f"plain-{i}")
                             for i in range(settings.concurrency)]
        for thread in self.threads:
            thread.start()

    def stop(self, worker: Any) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def _heartbeat(self) -> None:
        while not self.stopping.is_set():
            HEARTBEAT.touch()
            self.stopping.wait(5)

    def _consume(self) -> None:
        client = redis.Redis.from_url(settings.redis_url)
        while not self.stopping.is_set():
            if FROZEN.is_set():  # hung: takes no more work, and never says why
                self.stopping.wait(1)
                continue
            try:
                item = client.blpop([settings.queue_name], timeout=1)
            except redis.RedisError as exc:
                log.error("redis unavailable: %s", exc)
                self.stopping.wait(2)
                continue
            if item is None:
                continue
            try:
                job = json.loads(item[1])
                enhance_ticket.apply(kwargs={"ticket_id": job["ticket_id"], "tenant_id": job["tenant_id"],
                                             "created_at": job.get("created_at")})
            except (ValueError, KeyError, TypeError) as exc:
                log.error("unreadable job dropped: %r (%s)", item[1][:200], exc)


app.steps["worker"].add(PlainQueueConsumer)


# Fault injection: a hung worker. Its container runs and its heartbeat goes on,
# but it takes no job and its main thread is stuck in a call at the next
# remote-control message (a ping), so it answers nothing more.
FROZEN = threading.Event()


@control_command()
def sandbox_freeze(state: Any) -> dict[str, str]:
    """Fault injection: hang this worker (see FROZEN)."""
    FROZEN.set()
    log.warning("freezing on request (fault injection)")
    return {"ok": "frozen"}


@control_command(name="ping")
def sandbox_ping(state: Any, **kwargs: Any) -> dict[str, str]:
    """Celery's ping - unless the worker is hung: then stuck, as a call that never returns."""
    while FROZEN.is_set():
        time.sleep(60)
    return {"ok": "pong"}


@control_command(args=[("mb", int)], signature="[mb]")
def sandbox_hog_memory(state: Any, mb: int = 4096) -> dict[str, str]:
    """Fault injection: allocate (and touch) memory until the container's
    mem_limit gets the worker OOM-killed."""
    def hog() -> None:
        blocks = []
        for _ in range(mb // 64):
            blocks.append(b"\x01" * (64 << 20))
            time.sleep(0.02)
    threading.Thread(target=hog, daemon=True).start()
    log.warning("allocating %d MiB on request (fault injection)", mb)
    return {"ok": f"allocating {mb} MiB"}


if os.environ.get("SANDBOX_ROLE") == "worker":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/%(threadName)s] %(name)s %(message)s")
