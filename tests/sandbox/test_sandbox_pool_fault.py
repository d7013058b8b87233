"""The worker-pool-shrunk fault (the quarterly review's "shrink the DB pool"):
the workers restart with a one-connection pool, still process work, and heal
gives them the normal pool back."""
from __future__ import annotations

import re
import uuid

import pytest

pytestmark = pytest.mark.sandbox

STARTED = re.compile(r"DATABASE_POOL_SIZE=(\d+) DATABASE_MAX_OVERFLOW=(\d+)")


def pool_settings(sandbox) -> set[tuple[str, str]]:
    """Each running worker's pool, from the line it logs when it starts (its last start)."""
    settings = set()
    for worker in sandbox.workers():
        if worker["State"]["Running"]:
            found = STARTED.findall(sandbox.logs(worker["Name"].lstrip("/")))
            settings.add(found[-1] if found else ("?", "?"))
    return settings


def processed(sandbox, ticket: str) -> bool:
    return sandbox.sql("SELECT status FROM enhancement_history WHERE ticket_id = %s", (ticket,)) == [("success",)]


def test_pool_shrunk_then_healed(healed):
    sandbox = healed
    normal = (sandbox.env["DATABASE_POOL_SIZE"], sandbox.env["DATABASE_MAX_OVERFLOW"])
    assert pool_settings(sandbox) == {normal}

    sandbox.cli("fault", "worker-pool-shrunk")
    sandbox.wait_for(lambda: pool_settings(sandbox) == {("1", "0")}, 60, 1, "workers restarted with a one-connection pool")
    env = [dict(item.split("=", 1) for item in w["Config"]["Env"]) for w in sandbox.workers()]
    assert {(e["DATABASE_POOL_SIZE"], e["DATABASE_MAX_OVERFLOW"]) for e in env} == {("1", "0")}
    tickets = [f"POOL-{uuid.uuid4().hex[:8].upper()}" for _job in range(4)]
    for ticket in tickets:
        assert sandbox.signed_webhook("acme-corp", ticket).status_code == 202
    sandbox.wait_for(lambda: all(processed(sandbox, t) for t in tickets), 60, 1, "jobs through the small pool")

    sandbox.cli("heal", "worker-pool-shrunk")
    assert pool_settings(sandbox) == {normal}
