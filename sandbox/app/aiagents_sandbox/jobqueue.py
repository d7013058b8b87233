"""Enqueue and inspect jobs in both queue formats.

plain:  JSON {"ticket_id","tenant_id","created_at"} RPUSHed (oldest at index 0)
celery: Celery envelopes LPUSHed by Celery itself (oldest at index -1), with
        priority sibling lists; created_at travels in the task kwargs.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import redis

from .celery_app import TASK_NAME, app, settings
from .metrics import PRIORITY_SUFFIXES


def utc_iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def enqueue(client: redis.Redis, ticket_id: str, tenant_id: str, created_at: str | None = None,
            priority: int | None = None) -> None:
    job = {"ticket_id": ticket_id, "tenant_id": tenant_id, "created_at": created_at or utc_iso()}
    if settings.queue_format == "plain":
        client.rpush(settings.queue_name, json.dumps(job))
    else:
        app.send_task(TASK_NAME, kwargs=job, queue=settings.queue_name, priority=priority)


def job_of(raw: bytes) -> dict | None:
    """The job inside a queue item of either format, or None if unreadable."""
    try:
        item = json.loads(raw)
        if "body" in item and "headers" in item:
            _args, kwargs, _embed = json.loads(base64.b64decode(item["body"]))
            return kwargs
        return item
    except (ValueError, TypeError, KeyError):
        return None


def queue_lists() -> Iterator[str]:
    for suffix in PRIORITY_SUFFIXES:
        yield settings.queue_name + suffix


def remove_where(client: redis.Redis, predicate: Callable[[dict], bool]) -> int:
    """Remove queued jobs matching `predicate` (sandbox clean-up of its own
    injected jobs only)."""
    removed = 0
    for name in queue_lists():
        for raw in client.lrange(name, 0, -1):
            job = job_of(raw)
            if job is not None and predicate(job):
                removed += client.lrem(name, 1, raw)
    # Runbooks may have quarantined some (records name the ticket and tenant).
    quarantine = f"{settings.queue_name}:quarantine"
    for raw in client.lrange(quarantine, 0, -1):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and predicate(record):
            removed += client.lrem(quarantine, 1, raw)
    return removed
