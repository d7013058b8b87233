"""A handle on a running sandbox platform, for the tests against it: the
same clients (Redis, PostgreSQL, the webhook, Prometheus, the ServiceDesk Plus
stand-in) whichever platform runs it; the conftest of each platform's tests
adds what only that platform has.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import psycopg2.sql
import pytest
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "sandbox"
CLI = SANDBOX / "bin" / "sandbox"
T = TypeVar("T")


def read_env() -> dict[str, str]:
    values = {}
    for line in (SANDBOX / "sandbox.env").read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            key, _sep, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def wait_for(check: Callable[[], T], timeout: float, interval: float = 0.5, what: str = "condition") -> T:
    """Poll until `check` returns something truthy; its last value otherwise fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


@dataclass
class Sandbox:
    """Handle on the running sandbox, handed to the tests (which import
    nothing from here: conftest modules are not importable by name)."""

    env: dict[str, str]
    root: Path = SANDBOX
    # Added to every CLI call (`--platform kubernetes`), and where the CLI keeps
    # the platform's state (faults.json).
    platform_args: tuple[str, ...] = ()
    state: Path = field(default=SANDBOX / "state")
    wait_for = staticmethod(wait_for)

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(CLI), *args, *self.platform_args], capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"sandbox {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def port(self, name: str) -> int:
        return int(self.env[f"{name.upper()}_PORT"])

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port(name)}{path}"

    def secret(self, secret: str, key: str) -> str:
        return (SANDBOX / "secrets" / secret / key).read_text().strip()

    # -- clients
    def redis(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port("redis"))

    def pg(self, admin: bool = False) -> psycopg2.extensions.connection:
        user = self.env["POSTGRES_ADMIN_USER" if admin else "POSTGRES_APP_USER"]
        conn = psycopg2.connect(host="127.0.0.1", port=self.port("postgres"), dbname=self.env["POSTGRES_DB"],
                                user=user, connect_timeout=5,
                                password=self.secret("postgres", "admin_password" if admin else "app_password"))
        conn.autocommit = True
        return conn

    def sql(self, query: str, params: tuple = (), admin: bool = True) -> list[tuple]:
        conn = self.pg(admin)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params or None)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def visible_rows(self, tenant: str | None, table: str = "ticket_history") -> dict[str, int]:
        """Rows of `table` the app role sees, counted by tenant_id, with `tenant`'s
        context set (none at all for None)."""
        conn = self.pg()
        try:
            with conn, conn.cursor() as cur:
                if tenant:
                    cur.execute("SELECT set_tenant_context(%s)", (tenant,))
                cur.execute(psycopg2.sql.SQL("SELECT tenant_id, count(*) FROM {} GROUP BY tenant_id")
                            .format(psycopg2.sql.Identifier(table)))
                return dict(cur.fetchall())
        finally:
            conn.close()

    def visible_tickets(self, tenant: str | None) -> set[str]:
        """Tenants whose ticket_history rows the app role sees (with `tenant`'s context)."""
        return set(self.visible_rows(tenant, "ticket_history"))

    def active_faults(self) -> dict[str, list[str]]:
        """The faults the CLI records as active (state/faults.json)."""
        path = self.state / "faults.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # -- platform
    def webhook(self, tenant: str, body: dict[str, Any], secret: str | None = None,
                signature: str | None = None) -> requests.Response:
        raw = json.dumps(body).encode()
        if signature is None and secret is not None:
            signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-SDP-Signature"] = signature
        return requests.post(self.url("api", "/webhook/servicedesk"), params={"tenant_id": tenant},
                             data=raw, headers=headers, timeout=10)

    def signed_webhook(self, tenant: str, ticket_id: str, **extra: Any) -> requests.Response:
        return self.webhook(tenant, {"ticket_id": ticket_id, **extra},
                            self.secret(f"tenant-{tenant}-sdp", "webhook_secret"))

    def metrics(self) -> dict[str, float]:
        text = requests.get(self.url("api", "/metrics"), timeout=10).text
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line and not line.startswith("#")}

    def prom(self, query: str) -> float | None:
        data = requests.get(self.url("prometheus", "/api/v1/query"), params={"query": query}, timeout=10).json()
        result = data["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def prometheus_gaps(self) -> list[str]:
        """What a first diagnosis would find missing in Prometheus: the platform
        queries the runbooks read (worker memory comes from the kubelet's cAdvisor
        in production, not from the sandbox) without data, and rule groups not
        evaluated yet."""
        from ansible_collections.aiagents.runbooks.plugins.module_utils._prometheus import (  # pylint: disable=import-outside-toplevel
            RUNBOOK_QUERIES)

        gaps = [f"query {name} has no data" for name, query in RUNBOOK_QUERIES.items()
                if not name.startswith("worker_memory") and self.prom(query) is None]
        groups = requests.get(self.url("prometheus", "/api/v1/rules"), timeout=10).json()["data"]["groups"]
        gaps += [f"rule group {group['name']} not evaluated" for group in groups
                 if group.get("lastEvaluation", "0001-").startswith("0001-")]
        return gaps

    def notes(self, ticket_id: str) -> list[dict[str, Any]]:
        data = requests.get(f"http://127.0.0.1:{self.env['SDP_CONTROL_PORT']}/notes", timeout=10).json()
        return data["notes"].get(ticket_id, [])

    def note_editions(self, ticket_id: str) -> list[str]:
        """Which ServiceDesk Plus edition's API (on_premises, cloud) wrote each of the ticket's notes."""
        data = requests.get(f"http://127.0.0.1:{self.env['SDP_CONTROL_PORT']}/notes", timeout=10).json()
        return data["editions"].get(ticket_id, [])


def bring_up(box: Sandbox, needs: str, up_timeout: float) -> bool:
    """A session's sandbox: used as it is when healthy, else brought up through
    the CLI (a failure says what the tests need). True when this brought it up."""
    if box.cli("status", check=False, timeout=60).returncode == 0:
        return False
    up = box.cli("up", check=False, timeout=up_timeout)
    if up.returncode != 0:
        pytest.fail(f"`sandbox up {' '.join(box.platform_args)}` failed ({up.returncode}); these tests need "
                    f"{needs}:\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}")
    return True


def take_down(box: Sandbox) -> None:
    """Down again what the session brought up, unless SANDBOX_KEEP=1."""
    if os.environ.get("SANDBOX_KEEP") != "1":
        box.cli("down", check=False)


def heal_if_faulted(box: Sandbox) -> None:
    """Heal everything when a test left a fault recorded (it failed midway)."""
    state = box.state / "faults.json"
    if state.exists() and json.loads(state.read_text()):
        box.cli("heal")


def processes(match: Callable[[str, str], bool]) -> list[str]:
    """Running processes (pid and command line) for which match(cgroup file,
    command line) holds; this test's own process aside."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cgroup = (proc / "cgroup").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone meanwhile
        if match(cgroup, cmdline):
            found.append(f"{proc.name} {cmdline[:80]}")
    return found


def listening(port: int) -> bool:
    """Something accepts connections on the loopback port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def images_held() -> Iterator[None]:
    """While held, no other test session removes or rebuilds the platform image.
    `make test` runs the Docker and the Kubernetes tests side by side; each
    lifecycle test takes its sandbox down and up again, and the Docker one
    removes the image the Kubernetes `up` imports."""
    with open("/tmp/aiagents-runbooks-images.lock", "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
