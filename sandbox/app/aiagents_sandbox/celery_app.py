"""The Celery application shared by the worker (consumer), the api (producer
in `celery` queue format, and the ping behind worker_active_count) and ops."""
from __future__ import annotations

from celery import Celery

from .config import Settings

settings = Settings()
TASK_NAME = "aiagents.enhance_ticket"
# In `plain` format the list belongs to the plain consumer; Celery then only
# listens on an internal queue (its remote control still answers pings).
CELERY_QUEUE = settings.queue_name if settings.queue_format == "celery" else "aiagents_internal"

app = Celery("aiagents", broker=settings.redis_url)
app.conf.update(
    task_default_queue=CELERY_QUEUE,
    task_serializer="json", accept_content=["json"], result_backend=None, task_ignore_result=True,
    # Messages stay in `unacked` while their task runs and are not prefetched
    # in bulk, so queue depth and unacked reflect reality.
    task_acks_late=True, worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": 3600, "queue_order_strategy": "priority",
                              "priority_steps": [0, 3, 6, 9], "sep": "\x06\x16"},
    worker_hijack_root_logger=False, broker_connection_retry_on_startup=True,
    worker_send_task_events=False,
)
