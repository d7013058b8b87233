#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Celery workers as the broker sees them: who answers, what they run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: celery_workers_info
short_description: List the Celery workers that answer through the Redis broker, with their tasks and pools
version_added: 1.0.0
description:
  - Broadcasts Celery's remote-control C(ping) through the broker, then asks the workers that answered
    for their active tasks (and how long each has run), pool size, processed counts, the queues they
    consume and their software versions (Celery, kombu, Python - the C(software) section of Celery's
    C(report), nothing else of it). Needs only the broker's address - no application code.
  - No worker answering gives the finding C(queue_no_workers) (critical; follow worker_failures). Workers
    that answer but do not consume the queue give C(queue_not_consumed) (with O(check_queue_consumed)); tasks running longer than
    O(long_task_seconds) give C(worker_task_long_running).
  - Leaves the queue and its jobs untouched - the broadcast travels on Celery's own control channel.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  queue:
    description: The queue the workers are expected to consume.
    type: str
    default: enhancement_queue
  timeout:
    description:
      - Seconds to wait for ping replies. Every call waits this long, however many workers exist,
        so keep it short; a worker that answers later is not counted.
      - Above 0 and at most 300. However the broker behaves, the whole run takes at most twice
        O(connect_timeout) (a connection check, then the inspection's own), plus 4 times O(timeout),
        plus O(confirm_timeout).
    type: float
    default: 1.0
  expected_workers:
    description:
      - How many workers the platform runs (its running containers or pods), when the caller knows.
        The first ping then ends as soon as that many answered instead of waiting all of O(timeout);
        a missing or hung worker still costs the whole O(timeout). V(0), unknown, waits O(timeout).
      - A worker beyond that count that answers late is not counted.
    type: int
    default: 0
  confirm_timeout:
    description:
      - When no worker answered within O(timeout), ping once more and wait this many seconds before
        concluding C(queue_no_workers), a page. V(0) concludes at once. At most 300.
    type: float
    default: 3.0
  long_task_seconds:
    description: Active tasks running longer than this are reported. At least 0 and finite.
    type: float
    default: 300
  check_queue_consumed:
    description:
      - Report C(queue_not_consumed) when no worker consumes O(queue) as a Celery queue.
      - Leave off for the plain JSON layout, whose list the workers read outside Celery's queue machinery.
    type: bool
    default: false
extends_documentation_fragment:
  - aiagents.runbooks.redis
  - aiagents.runbooks.broker_health
  - aiagents.runbooks.attributes.info
requirements:
  - celery
"""

EXAMPLES = r"""
- name: Who is processing the queue?
  aiagents.runbooks.celery_workers_info:
    url: redis://127.0.0.1:6380/0
  register: workers

- name: Escalate to worker_failures when nobody answers
  ansible.builtin.debug:
    msg: "{{ workers.findings[0].summary }}"
  when: workers.worker_count == 0
"""

RETURN = r"""
worker_count:
  description: Workers that answered the ping.
  returned: always
  type: int
  sample: 2
pings:
  description: Pings sent - 2 when nobody answered the first and O(confirm_timeout) confirmed it.
  returned: always
  type: int
  sample: 1
workers:
  description: One entry per worker that answered.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "celery@worker-1", "ping": true, "pid": 7, "uptime_seconds": 3600,
            "active": [{"id": "5c7e…", "name": "enhance_ticket", "runtime_seconds": 12.5,
                        "tenant_id": "acme-corp", "ticket_id": "TICKET-12345", "worker_pid": 9}],
            "pool": {"implementation": "celery.concurrency.prefork:TaskPool", "max_concurrency": 4, "processes": [9, 10, 11, 12]},
            "processed": {"enhance_ticket": 120}, "processed_total": 120, "queues": ["enhancement_queue"],
            "software": {"celery": "5.4.0", "kombu": "5.4.2", "py": "3.11.2", "billiard": "4.2.1", "redis": "5.2.1"}}]
active_tasks:
  description: Tasks being executed right now, over all workers.
  returned: always
  type: int
  sample: 3
broker:
  description:
    - The broker's own health (with O(broker_health)), read before the workers are asked, in the shape
      M(aiagents.runbooks.redis_queue_info) returns it. Also returned when the inspection fails, since a broker
      that refuses writes cannot carry the ping.
  returned: when O(broker_health=true)
  type: dict
  sample: {"role": "primary", "read_only": false, "writes_refused": "OOM"}
findings:
  description: C(queue_no_workers), C(queue_not_consumed), C(worker_task_long_running), most severe first.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "queue_no_workers", "severity": "critical", "summary": "no Celery worker answered...",
            "evidence": {"workers": 0}, "resolution": "Follow the worker_failures runbook...",
            "runbook": "worker_failures"}]
"""

import time

from ansible_collections.aiagents.runbooks.plugins.module_utils import _broker, _celery, _redis
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import sort_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule


def main() -> None:
    module = RunbookModule(
        argument_spec={
            **_redis.redis_argument_spec(),
            **_broker.argument_spec(),
            "queue": {"type": "str", "default": "enhancement_queue"},
            "timeout": {"type": "float", "default": 1.0},
            "confirm_timeout": {"type": "float", "default": 3.0},
            "expected_workers": {"type": "int", "default": 0},
            "long_task_seconds": {"type": "float", "default": 300},
            "check_queue_consumed": {"type": "bool", "default": False},
        },
        mutually_exclusive=_redis.redis_mutually_exclusive(),
        supports_check_mode=True,
    )
    _redis.require_redis(module)
    if _celery.Celery is None:
        module.fail_json(msg="import celery: the celery package is not installed; run scripts/bootstrap.sh")
    params = module.params
    target = f"celery workers via {_redis.describe(params)}"
    refused = _celery.refusal(params) or _broker.refusal(params)
    if refused:
        module.fail_json(msg=f"inspect {target}: {refused}")
    health, broker_findings = None, []
    try:
        client = _redis.connect(params)  # a clear message now beats kombu's reconnect loop later
        try:
            health, broker_findings = _broker.check(client, params)
        finally:
            client.close()
        raw, pings = _celery.inspect_workers(_redis.settings(params), params["timeout"], params["confirm_timeout"],
                                             expected=params["expected_workers"])
    except RunbookError as exc:
        # The broker's health, when read, explains why the inspection failed (writes refused): kept.
        module.fail_json(msg=str(exc), findings=sort_findings(broker_findings), **_broker_result(health))
    except Exception as exc:  # pylint: disable=broad-except  # one sentence, never a traceback
        module.fail_json(msg=str(_redis.translate(exc, "inspect", target)), findings=sort_findings(broker_findings),
                         **_broker_result(health))
    workers = _celery.describe_workers(raw, time.time())
    module.exit_json(
        changed=False,
        worker_count=len(workers),
        pings=pings,
        workers=workers,
        active_tasks=sum(len(worker["active"]) for worker in workers),
        findings=sort_findings(_celery.worker_findings(
            workers, params["queue"], params["long_task_seconds"], params["check_queue_consumed"]) + broker_findings),
        **_broker_result(health),
    )


def _broker_result(health: dict | None) -> dict:
    return {} if health is None else {"broker": health}


if __name__ == "__main__":
    main()
