#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything the high-queue-depth runbook asks of the Redis queue, in one read-only call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_queue_info
short_description: Analyse the enhancement queue in Redis (depth, ages, tenants) without writing to it
version_added: 1.0.0
description:
  - Reads the queue and its Celery priority lists page by page (never C(LRANGE 0 -1), no Lua) and answers
    what the high_queue_depth runbook asks, in one call - depth, format, oldest and newest job with
    their age, age distribution, jobs per tenant, jobs older than a threshold, malformed items,
    Celery C(unacked) messages, a small sample.
  - Understands plain JSON jobs (RPUSH, oldest at index 0) and Celery envelopes (LPUSH, oldest at
    index -1, base64 body, priority lists). Celery messages carry no enqueue time - their age comes
    from a C(created_at) in kwargs or headers, and is reported unknown otherwise.
  - Returns findings (C(queue_depth_elevated), C(queue_depth_high), C(queue_oldest_job_stale),
    C(queue_tenant_flood), C(queue_malformed_items), C(queue_age_unknown), C(queue_unacked_stale))
    judged against the runbook's thresholds, each overridable.
  - Read-only - it issues only C(TYPE), C(LLEN), C(LINDEX), C(LRANGE), C(HLEN), C(HMGET), C(ZCOUNT),
    C(ZRANGEBYSCORE). Memory stays bounded whatever the queue's size; when the queue moves while
    it is read, RV(consistent) is false and counts are approximate.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  queue:
    description: Name of the queue list.
    type: str
    default: enhancement_queue
  format:
    description: Layout of the items; V(auto) looks at the first item.
    type: str
    choices: [auto, plain, celery]
    default: auto
  thresholds:
    description:
      - The runbook's thresholds; any left out keep their default.
      - Each must be a finite number of at least 0 (O(thresholds.flood_share) at most 1); others are refused,
        naming the threshold.
    type: dict
    default: {}
    suboptions:
      depth_elevated:
        description: Depth from which the queue is elevated (C(queue_depth_elevated), low).
        type: int
        default: 50
      depth_capacity:
        description: Elevated depth above which it becomes a capacity question (medium).
        type: int
        default: 75
      depth_high:
        description: Depth above which C(queue_depth_high) fires (the QueueDepthHigh alert's threshold).
        type: int
        default: 100
      depth_page:
        description: Depth above which C(queue_depth_high) becomes critical - page on-call.
        type: int
        default: 500
      stale_seconds:
        description: Age of the oldest job above which C(queue_oldest_job_stale) fires; also the
          threshold of RV(older_than).
        type: float
        default: 1800
      flood_share:
        description: Share of the queue (0-1) one tenant must hold for C(queue_tenant_flood).
        type: float
        default: 0.5
      flood_min_depth:
        description: Queue depth below which no flood is reported.
        type: int
        default: 50
  unacked:
    description:
      - Also read Celery's unacknowledged deliveries. V(auto) does so when the format is C(celery).
    type: str
    choices: [auto, 'yes', 'no']
    default: auto
  unacked_key:
    description: Hash holding delivered-but-unacknowledged messages.
    type: str
    default: unacked
  unacked_index_key:
    description: Sorted set of delivery times of the unacknowledged messages.
    type: str
    default: unacked_index
  visibility_timeout:
    description: Seconds after which Celery redelivers an unacknowledged message. Must be above 0 and finite.
    type: float
    default: 3600
extends_documentation_fragment:
  - aiagents.runbooks.redis
  - aiagents.runbooks.broker_health
  - aiagents.runbooks.attributes.info
"""

EXAMPLES = r"""
- name: Read the queue of the sandbox platform
  aiagents.runbooks.redis_queue_info:
    url: redis://127.0.0.1:6380/0
  register: queue

- name: Celery layout, with a stricter staleness threshold
  aiagents.runbooks.redis_queue_info:
    host: redis.internal
    port: 6379
    password: "{{ vault_redis_password }}"
    format: celery
    thresholds:
      stale_seconds: 900
  register: queue

- name: Page when the oldest job is stale
  ansible.builtin.debug:
    msg: "{{ queue.findings | selectattr('id', 'eq', 'queue_oldest_job_stale') | map(attribute='summary') | first }}"
  when: queue.findings | selectattr('id', 'eq', 'queue_oldest_job_stale') | list | length > 0
"""

RETURN = r"""
queue:
  description: The queue read.
  returned: always
  type: str
  sample: enhancement_queue
format:
  description: The layout used to read the items.
  returned: always
  type: str
  sample: plain
depth:
  description:
    - Jobs queued, summed over the base and priority lists, counting those a quarantine sweep holds aside
      for a moment (RV(held_by_sweep)).
  returned: always
  type: int
  sample: 75
held_by_sweep:
  description:
    - Per queue list, jobs that a running quarantine sweep (M(aiagents.runbooks.redis_queue_quarantine)
      pausing a tenant) has set aside in C(<list>:sweep:kept) and puts back in place when it ends. A
      count that stays is a sweep a dead run left; the next quarantine or restore on the queue finishes it.
    - They are not scanned (ages, tenants) while aside.
  returned: always
  type: dict
  sample: {}
keys:
  description: Depth of each list read (priority lists shown with escaped separators).
  returned: always
  type: dict
  sample: {"enhancement_queue": 75, "enhancement_queue\\x06\\x163": 0}
consistent:
  description: False when the lists changed while they were read; counts are then approximate.
  returned: always
  type: bool
  sample: true
scan_seconds:
  description: Time spent reading and analysing the lists.
  returned: always
  type: float
  sample: 0.0312
scan_processes:
  description:
    - How many processes read the queue. A queue of 20,000 items or more is read by two, each its own half
      with its own connection, when the machine has two cores; otherwise, or when the second process fails
      (its half is then read again by the first), by one.
  returned: always
  type: int
  sample: 1
peak_rss_mb:
  description: Peak resident memory of the module process (or of its second reading process, if larger), in MiB
    (bounded whatever the queue size).
  returned: always
  type: float
  sample: 31.5
oldest:
  description: The job with the earliest C(created_at), or null when no job has a usable one.
  returned: always
  type: dict
  sample: {"ticket_id": "TICKET-1001", "tenant_id": "acme-corp", "created_at": "2026-11-27T10:00:00Z",
           "age_seconds": 2712.4, "task_id": null, "task": null,
           "position": {"key": "enhancement_queue", "index": 0}}
newest:
  description: The job with the latest C(created_at); same shape as RV(oldest).
  returned: always
  type: dict
  sample: {"ticket_id": "TICKET-1075", "tenant_id": "globex", "created_at": "2026-11-27T10:45:00Z",
           "age_seconds": 12.4, "task_id": null, "task": null,
           "position": {"key": "enhancement_queue", "index": 74}}
age_distribution:
  description: Jobs per age band.
  returned: always
  type: dict
  sample: {"<1m": 10, "1-5m": 40, "5-15m": 20, "15-30m": 4, "30-60m": 1, "1-6h": 0, ">6h": 0}
age_unknown:
  description: Jobs with no C(created_at).
  returned: always
  type: int
  sample: 0
created_at_unparsable:
  description:
    - Jobs whose C(created_at) could not be read as a time.
    - A time is an ISO 8601 string or a number of epoch seconds, or of epoch milliseconds from 1e11 on.
  returned: always
  type: int
  sample: 0
created_at_in_future:
  description: Jobs whose C(created_at) lies in the future (clock skew at the producer).
  returned: always
  type: int
  sample: 0
older_than:
  description: Jobs older than O(thresholds.stale_seconds), with a few of them.
  returned: always
  type: dict
  sample: {"seconds": 1800, "count": 1, "sample": []}
tenants:
  description:
    - Jobs per tenant, most first (top 20), with each tenant's share of the well-formed jobs.
    - C(tenant_id) is text; a job giving its tenant as an integer counts as that integer's digits
      (C(1) and C("1") are one tenant).
    - Jobs without a tenant (or with a malformed one) are counted under a null C(tenant_id) and never raise
      C(queue_tenant_flood).
  returned: always
  type: list
  elements: dict
  sample: [{"tenant_id": "acme-corp", "jobs": 60, "share": 0.8}, {"tenant_id": "globex", "jobs": 15, "share": 0.2}]
tenants_malformed:
  description: Jobs whose C(tenant_id) is neither text nor an integer (a list, an object, a boolean, a fraction).
  returned: always
  type: int
  sample: 0
tenants_distinct:
  description: Number of distinct tenants seen.
  returned: always
  type: int
  sample: 2
malformed:
  description: Items that are not jobs of the format, counted and sampled (never fatal).
  returned: always
  type: dict
  sample: {"count": 1, "sample": [{"key": "enhancement_queue", "index": 3, "bytes": 4, "preview": "\\xff\\xfe"}]}
sample:
  description: The first few jobs read.
  returned: always
  type: list
  elements: dict
  sample: []
unacked:
  description: Celery deliveries not yet acknowledged, and those older than the visibility timeout.
  returned: when the format is celery or O(unacked=yes)
  type: dict
  sample: {"count": 2, "stale_count": 1, "visibility_timeout": 3600, "stale_sample": []}
broker:
  description:
    - The broker's own health (with O(broker_health)) - memory against C(maxmemory) and the eviction policy,
      evicted keys, commands refused since Redis started (OOM, MISCONF, READONLY), the last save's status,
      clients against C(maxclients), blocked clients and the server's role.
  returned: when O(broker_health=true)
  type: dict
  sample: {"version": "7.0.15", "role": "primary", "read_only": false, "memory": {"used": 1794728, "max": 0,
           "policy": "noeviction", "ratio": null}, "evicted_keys": 0, "clients": {"connected": 6, "max": 10000,
           "blocked": 2, "ratio": 0.001, "rejected_connections": 0}, "refused": {"oom": 0, "misconf": 0,
           "readonly": 0}}
findings:
  description: What the runbook concludes, most severe first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Finding id from the runbook contract.
      type: str
      returned: always
      sample: queue_oldest_job_stale
    severity:
      description: info, low, medium, high or critical.
      type: str
      returned: always
      sample: high
    summary:
      description: One line for the operator.
      type: str
      returned: always
      sample: oldest job TICKET-1001 (tenant acme-corp) has waited 45 min (> 30 min) - page on-call
    evidence:
      description: The figures behind it.
      type: dict
      returned: always
      sample: {}
    resolution:
      description: What to do about it.
      type: str
      returned: always
      sample: Find ticket TICKET-1001 in the worker logs...
"""

import resource

from ansible_collections.aiagents.runbooks.plugins.module_utils import _broker, _queue, _redis
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import sort_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule

THRESHOLD_SPEC = {
    "depth_elevated": {"type": "int", "default": 50},
    "depth_capacity": {"type": "int", "default": 75},
    "depth_high": {"type": "int", "default": 100},
    "depth_page": {"type": "int", "default": 500},
    "stale_seconds": {"type": "float", "default": 1800},
    "flood_share": {"type": "float", "default": 0.5},
    "flood_min_depth": {"type": "int", "default": 50},
}
# What each threshold may be: counts and ages from 0, a share between 0 and 1; never NaN or infinite.
THRESHOLD_RANGES = {**{name: {"minimum": 0} for name in THRESHOLD_SPEC}, "flood_share": {"minimum": 0, "maximum": 1}}


def refusal(params: dict) -> str | None:
    """The message refusing an option out of its range (naming it), or None."""
    if not params["queue"]:
        return "queue must not be empty"
    for name, value in (params["thresholds"] or {}).items():
        refused = out_of_range(f"thresholds.{name}", value, **THRESHOLD_RANGES.get(name, {}))
        if refused:
            return refused
    return out_of_range("visibility_timeout", params["visibility_timeout"], above=0)


def _threshold(thresholds: dict, name: str):
    value = thresholds.get(name)
    return THRESHOLD_SPEC[name]["default"] if value is None else value


def main() -> None:
    module = RunbookModule(
        argument_spec={
            **_redis.redis_argument_spec(),
            **_broker.argument_spec(),
            "queue": {"type": "str", "default": "enhancement_queue"},
            "format": {"type": "str", "choices": list(_queue.FORMATS), "default": "auto"},
            "thresholds": {"type": "dict", "default": {}, "options": THRESHOLD_SPEC},
            "unacked": {"type": "str", "choices": ["auto", "yes", "no"], "default": "auto"},
            "unacked_key": {"type": "str", "default": "unacked", "no_log": False},
            "unacked_index_key": {"type": "str", "default": "unacked_index", "no_log": False},
            "visibility_timeout": {"type": "float", "default": 3600},
        },
        mutually_exclusive=_redis.redis_mutually_exclusive(),
        supports_check_mode=True,
    )
    _redis.require_redis(module)
    params = module.params
    thresholds = params["thresholds"] or {}
    refused = refusal(params) or _broker.refusal(params)
    if refused:
        module.fail_json(msg=f"read queue {params['queue']!r}: {refused}")
    target = f"queue {params['queue']!r} on {_redis.describe(params)}"
    try:
        client = _redis.connect(params)
        want_unacked = params["unacked"] == "yes" or (params["unacked"] == "auto" and params["format"] != "plain")
        unacked = {"hash": params["unacked_key"], "index": params["unacked_index_key"],
                   "visibility_timeout": params["visibility_timeout"]} if want_unacked else None
        result = _queue.read_queue(client, params["queue"], params["format"],
                                   _threshold(thresholds, "stale_seconds"), unacked)
        health, broker_findings = _broker.check(client, params)
    except TypeError as exc:
        module.fail_json(msg=f"read {target}: {exc}")
    except RunbookError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except  # one sentence, never a traceback
        module.fail_json(msg=str(_redis.translate(exc, "read", target)))
    if params["unacked"] == "auto" and result["format"] != "celery":
        result["unacked"] = None
    findings = sort_findings(_queue.queue_findings(result, thresholds) + broker_findings)
    if health is not None:
        result["broker"] = health
    # ru_maxrss is in KiB on Linux: the module's own peak, which the benchmark reports.
    # The second process reading a large queue (scan_processes) counts too: the larger peak of the two.
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    result["peak_rss_mb"] = round(peak / 1024, 1)
    module.exit_json(changed=False, findings=findings, **result)


if __name__ == "__main__":
    main()
