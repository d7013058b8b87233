#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Move stuck or poison jobs to a quarantine list (and back), never deleting one."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_queue_quarantine
short_description: Move chosen queue jobs into a quarantine list, or restore them, without ever deleting one
version_added: 1.0.0
description:
  - Replaces the manual runbook's C(LPOP), which throws a customer's job away. Each chosen job moves,
    atomically on the Redis server, from its queue list into the quarantine list, wrapped in a record
    of why (O(reason)), when, and from which list. A job a worker takes first is left alone and
    reported in RV(gone).
  - O(state=restored) moves quarantined jobs of the queue back to the end the workers take from next.
  - Jobs are chosen by ticket id, by Celery task id, by tenant, or as the O(oldest) jobs of the base list;
    one of O(ticket_ids), O(task_ids), O(tenant_ids) or O(oldest) is required.
  - Choosing by tenant holds a flooding tenant's queued jobs aside so the other tenants are served
    (the runbook's "pause that tenant"); restoring by tenant and O(reason) resumes exactly those.
  - Idempotent when choosing by id - a job already in quarantine is not queued, so a second run moves nothing.
  - Nothing is half-done. Every selected quarantine record is checked before the first move - one without its
    job (or with a job that cannot be decoded) refuses the whole restore, naming it - and so is the type of each
    list a job goes to. Should a move still fail midway (the server lost), the failure lists in RV(moved)
    exactly the jobs that had moved before it.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  queue:
    description: Name of the queue list (its Celery priority lists are searched too).
    type: str
    default: enhancement_queue
  quarantine_key:
    description:
      - The quarantine list. Defaults to V(<queue>:quarantine).
      - Must be a list (or not exist yet) and not one of the queue's own lists; checked before anything moves.
    type: str
  state:
    description: V(quarantined) takes jobs off the queue; V(restored) puts quarantined jobs back.
    type: str
    choices: [quarantined, restored]
    default: quarantined
  position:
    description:
      - Where restored jobs go, in their original order (oldest first).
      - V(back) puts them behind the work queued meanwhile, so a resumed tenant does not starve the others.
        V(front) puts them where a worker takes them next.
      - By default V(back) for a selection by O(tenant_ids) (resuming a paused tenant) and V(front) for jobs
        selected by O(ticket_ids), O(task_ids) (a job taken off the head comes back to it).
    type: str
    choices: [back, front]
  ticket_ids:
    description: Jobs whose C(ticket_id) is one of these.
    type: list
    elements: str
  task_ids:
    description: Celery messages whose task id (header C(id)) is one of these.
    type: list
    elements: str
  tenant_ids:
    description:
      - Jobs of these tenants. With O(state=restored), quarantined jobs of these tenants.
      - Raise O(max_jobs) to the tenant's job count; the guard refuses a larger selection.
    type: list
    elements: str
  oldest:
    description:
      - Quarantine this many of the oldest jobs of the base list (index 0 for plain jobs, -1 for Celery).
        At least 0; a negative count is refused.
      - Not idempotent by nature - each run takes the jobs that are oldest then. Playbooks pass the ticket
        ids that M(aiagents.runbooks.redis_queue_info) reported instead.
    type: int
  reason:
    description:
      - Why the jobs are quarantined; stored with each. Required when O(state=quarantined).
      - With O(state=restored), only jobs quarantined for exactly this reason are restored.
      - A blank reason is refused when quarantining.
    type: str
  format:
    description: Layout of the queue items; V(auto) looks at the first item.
    type: str
    choices: [auto, plain, celery]
    default: auto
  max_jobs:
    description:
      - Refuse to touch more jobs than this in one run (a guard against a selector that matches too much). At least 1.
      - When more match, nothing moves, except when a tenant is paused in a queue of 20,000 jobs or more.
        There the one sweep takes at most this many (the newest), leaves the others in place, and fails
        saying so (see RV(moved_by)).
    type: int
    default: 100
extends_documentation_fragment:
  - aiagents.runbooks.redis
  - aiagents.runbooks.attributes.action
attributes:
  idempotent:
    description: A second run with the same selector changes nothing.
    support: partial
    details: Idempotent when jobs are chosen by O(ticket_ids) or O(task_ids); O(oldest) takes whatever is oldest at each run.
"""

EXAMPLES = r"""
- name: Quarantine the stuck job the diagnosis found
  aiagents.runbooks.redis_queue_quarantine:
    url: redis://127.0.0.1:6380/0
    ticket_ids: ["{{ queue.oldest.ticket_id }}"]
    reason: "stuck 45 min at the head of the queue (INC-2026-11-27)"

- name: Put it back once the worker bug is fixed
  aiagents.runbooks.redis_queue_quarantine:
    url: redis://127.0.0.1:6380/0
    ticket_ids: [TICKET-12345]
    state: restored

- name: Pause a flooding tenant - hold its queued jobs aside so the other tenants are served
  aiagents.runbooks.redis_queue_quarantine:
    url: redis://127.0.0.1:6380/0
    tenant_ids: [acme-corp]
    reason: "tenant acme-corp paused: 80% of the queue"
    max_jobs: 5000

- name: Resume it - exactly the jobs held for that reason
  aiagents.runbooks.redis_queue_quarantine:
    url: redis://127.0.0.1:6380/0
    tenant_ids: [acme-corp]
    reason: "tenant acme-corp paused: 80% of the queue"
    state: restored
    max_jobs: 5000

- name: Take a poison Celery message off the queue by task id
  aiagents.runbooks.redis_queue_quarantine:
    host: redis.internal
    password: "{{ vault_redis_password }}"
    format: celery
    task_ids: [3f0c1c9e-8f0e-4b7e-9d7a-2a4f1b6c0d11]
    reason: kills its worker with exit 139
"""

RETURN = r"""
moved:
  description:
    - Jobs moved (or, in check mode, that would move), to quarantine or back.
    - Also returned by a run that failed midway - exactly the jobs that had moved before the failure.
  returned: always
  type: list
  elements: dict
  sample: [{"ticket_id": "TICKET-12345", "tenant_id": "acme-corp", "task_id": null,
            "source": "enhancement_queue", "quarantined_at": "2026-11-27T18:00:00Z"}]
gone:
  description: Chosen jobs a worker took before they could be moved (nothing was lost; the worker has them).
  returned: always
  type: list
  elements: dict
  sample: []
not_found:
  description: Requested ticket, task or tenant ids matching no queued (or quarantined, when restoring) job.
  returned: always
  type: list
  elements: str
  sample: [TICKET-99999]
queue_depth:
  description: Depth of the queue (all priority lists) after the run.
  returned: always
  type: int
  sample: 74
quarantine_key:
  description: The quarantine list used.
  returned: always
  type: str
  sample: "enhancement_queue:quarantine"
quarantine_depth:
  description: Length of the quarantine list after the run.
  returned: always
  type: int
  sample: 1
moved_by:
  description:
    - How the jobs moved. C(one by one) when they are few and near the consumers' end (an atomic
      remove-and-push each). C(one sweep per list) when there are more than 50 or any lies 20,000 or more
      jobs deep - pausing a tenant in a deep queue. A sweep rebuilds the list in one pass from one end, in
      windows of at most 1000 jobs (about 192 KiB). Each window is one short atomic script, so no Redis
      command blocks the server for long. Producers and consumers keep working and the queue's order is
      kept. While a sweep runs, the jobs it has looked at wait in C(<list>:sweep:kept) and the queue
      looks shorter.
    - Pausing a tenant (O(tenant_ids)) in a queue of 20,000 jobs or more selects in the same sweep, so the
      list is read once and never at its middle. Reading the middle of a deep list walks it, and costs
      milliseconds per read. There O(max_jobs) is a cap, not a refusal. If more jobs match, the newest
      O(max_jobs) are taken and the others stay queued, in place, and the run fails saying so, listing
      what it took in RV(moved).
    - C(nothing moved) when nothing did.
  returned: always
  type: str
  sample: one sweep per list
recovered:
  description:
    - Lists on which a sweep left unfinished by an earlier run (its controller died) was finished first.
      Nothing more was taken by it; the jobs it had held aside are back in their place.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible_collections.aiagents.runbooks.plugins.module_utils import _quarantine, _queue, _redis
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule


def main() -> None:
    module = RunbookModule(
        argument_spec={
            **_redis.redis_argument_spec(),
            "queue": {"type": "str", "default": "enhancement_queue"},
            "quarantine_key": {"type": "str", "no_log": False},
            "state": {"type": "str", "choices": ["quarantined", "restored"], "default": "quarantined"},
            "position": {"type": "str", "choices": ["back", "front"]},
            "ticket_ids": {"type": "list", "elements": "str"},
            "task_ids": {"type": "list", "elements": "str"},
            "tenant_ids": {"type": "list", "elements": "str"},
            "oldest": {"type": "int"},
            "reason": {"type": "str"},
            "format": {"type": "str", "choices": list(_queue.FORMATS), "default": "auto"},
            "max_jobs": {"type": "int", "default": 100},
        },
        mutually_exclusive=_redis.redis_mutually_exclusive(),
        required_if=[("state", "quarantined", ("reason",))],
        required_one_of=[("ticket_ids", "task_ids", "tenant_ids", "oldest")],
        supports_check_mode=True,
    )
    _redis.require_redis(module)
    params = module.params
    operation = "quarantine jobs of" if params["state"] == "quarantined" else "restore jobs to"
    refused = _quarantine.check_options(params)
    if refused:
        module.fail_json(msg=f"{operation} {params['queue']!r}: {refused}")
    target = f"queue {params['queue']!r} on {_redis.describe(params)}"
    try:
        client = _redis.connect(params)
        result = _quarantine.run(client, params, module.check_mode, target)
    except (_quarantine.MoveFailed, _quarantine.OverLimit) as exc:
        module.fail_json(msg=str(exc), changed=bool(exc.moved), moved=exc.moved)
    except RunbookError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except  # one sentence, never a traceback
        module.fail_json(msg=str(_redis.translate(exc, operation, target)))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
