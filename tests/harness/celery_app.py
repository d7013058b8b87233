"""A real Celery app for tests: the platform's task name and queue, on any broker.

Tests produce genuine Celery envelopes with it (send_task) and run genuine
workers (`celery -A tests.harness.celery_app worker`) against a throwaway Redis.
"""

from __future__ import annotations

import os
import time

from celery import Celery

QUEUE = "enhancement_queue"
TASK = "aiagents.enhance_ticket"

app = Celery("aiagents_tests", broker=os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=QUEUE,
    broker_transport_options={"priority_steps": [0, 3, 6, 9], "queue_order_strategy": "priority"},
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name=TASK)
def enhance_ticket(tenant_id: str, ticket_id: str, created_at: str | None = None, seconds: float = 0.0) -> str:
    """Stands in for the platform's job: only its duration matters to these tests."""
    time.sleep(seconds)
    return f"{tenant_id}/{ticket_id}"


def producer(broker_url: str) -> Celery:
    """A client app bound to `broker_url`, for send_task."""
    client = Celery("aiagents_tests_producer", broker=broker_url, set_as_current=False)
    client.conf.update(task_default_queue=QUEUE, broker_transport_options=app.conf.broker_transport_options)
    return client
