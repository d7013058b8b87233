"""Queue contents for tests and benchmarks, in both layouts."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from tests.harness.celery_app import QUEUE, TASK, producer


def iso_ago(seconds: float, now: float | None = None) -> str:
    moment = (now if now is not None else time.time()) - seconds
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def plain_job(ticket_id: str, tenant_id: str, created_at: str | None) -> bytes:
    job = {"ticket_id": ticket_id, "tenant_id": tenant_id}
    if created_at is not None:
        job["created_at"] = created_at
    return json.dumps(job).encode()


def push_plain(client, jobs: list[tuple[str, str, str | None]], queue: str = QUEUE) -> None:
    """RPUSH, oldest first: the runbooks' layout."""
    with client.pipeline(transaction=False) as pipe:
        for ticket_id, tenant_id, created_at in jobs:
            pipe.rpush(queue, plain_job(ticket_id, tenant_id, created_at))
        pipe.execute()


def send_celery(broker_url: str, jobs: list[tuple[str, str, str | None]], priority: int | None = None) -> list[str]:
    """Real Celery messages via send_task; returns their task ids, oldest first."""
    app = producer(broker_url)
    ids = []
    try:
        for ticket_id, tenant_id, created_at in jobs:
            kwargs = {"tenant_id": tenant_id, "ticket_id": ticket_id}
            if created_at is not None:
                kwargs["created_at"] = created_at
            options = {"queue": QUEUE}
            if priority is not None:
                options["priority"] = priority
            ids.append(app.send_task(TASK, kwargs=kwargs, **options).id)
    finally:
        app.close()
    return ids
