#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection health of PostgreSQL as the database runbook asks it, in one read-only call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgresql_activity_info
short_description: Diagnose PostgreSQL connections - reachability, slots used, idle leaks, long queries, lock chains
version_added: 1.0.0
description:
  - Connects as the workers would and reports reachability and authentication as findings
    (C(db_unreachable), C(db_auth_failed), C(db_database_missing)); the module then still succeeds, so a
    diagnosis of a database that is down completes.
  - Reads C(pg_stat_activity) in one statement - connections used against those usable by ordinary roles
    (C(max_connections) minus C(superuser_reserved_connections), and minus C(reserved_connections) on
    PostgreSQL 16 and later), by user and by state, transactions left idle, queries active longer than a
    threshold, and lock chains through C(pg_blocking_pids()).
  - Findings C(db_connections_saturated), C(db_idle_connection_leak), C(db_idle_in_transaction),
    C(db_long_running_query) and C(db_blocking_locks) name the pids and the C(query_start) that
    M(aiagents.runbooks.postgresql_backend_terminate) needs.
  - Data page checksum failures counted in C(pg_stat_database) (PostgreSQL 12 and later, on a cluster with
    data checksums) are C(db_corruption_suspected), critical.
  - The oldest unfrozen transaction id of each database (C(age(datfrozenxid))) against the wraparound point,
    2^31 transactions - C(db_xid_wraparound), high from O(thresholds.xid_age_high), critical once fewer than
    40 million are left (PostgreSQL warns) and when it refuses new ones (3 million left - every write fails).
  - Log in as a superuser or a member of C(pg_read_all_stats) to see other roles' queries.
  - Read-only - the session runs with C(default_transaction_read_only) on.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  thresholds:
    description: The runbook's thresholds; any left out keep their default.
    type: dict
    default: {}
    suboptions:
      long_query_seconds:
        description: Queries active longer than this are C(db_long_running_query) (0 or more, finite).
        type: float
        default: 300
      saturation_ratio:
        description: Share (0 to 1) of the usable connections in use from which C(db_connections_saturated) fires.
        type: float
        default: 0.9
      idle_leak_count:
        description: Idle connections of one user from which C(db_idle_connection_leak) fires (1 or more).
        type: int
        default: 20
      idle_in_transaction_seconds:
        description: A transaction idle longer than this is C(db_idle_in_transaction) (0 or more, finite).
        type: float
        default: 300
      lock_wait_seconds:
        description: A lock chain whose longest waiter waited this long is C(db_blocking_locks) (0 or more, finite).
        type: float
        default: 30
      xid_age_high:
        description: Age of a database's oldest unfrozen transaction id from which C(db_xid_wraparound) fires
          (0 to 2^31).
        type: int
        default: 1000000000
  query_chars:
    description: Query texts are cut to this many characters (0 to 1048576).
    type: int
    default: 300
  statement_timeout:
    description:
      - Seconds the activity query may run, 1 to 3600. The server cancels it then; a server that does not
        answer at all is given up one second later and reported as C(db_unreachable).
      - The whole run ends within O(connect_timeout) + O(statement_timeout) + 1 seconds.
    type: int
    default: 10
extends_documentation_fragment:
  - aiagents.runbooks.postgres
  - aiagents.runbooks.attributes.info
"""

EXAMPLES = r"""
- name: Diagnose the platform database's connections
  aiagents.runbooks.postgresql_activity_info:
    login_host: 127.0.0.1
    login_user: postgres
    login_password: "{{ vault_postgres_password }}"
    login_db: ai_agents
    thresholds:
      long_query_seconds: 120
  register: activity

- name: Terminate the stuck query that was diagnosed, and only that one
  aiagents.runbooks.postgresql_backend_terminate:
    login_host: 127.0.0.1
    login_password: "{{ vault_postgres_password }}"
    pid: "{{ item.evidence.pid }}"
    query_start: "{{ item.evidence.query_start }}"
  loop: "{{ activity.findings | selectattr('id', 'eq', 'db_long_running_query') | list }}"
"""

RETURN = r"""
reachable:
  description: Whether the module could log in and read the activity.
  returned: always
  type: bool
  sample: true
server_version:
  description: PostgreSQL's version, null when unreachable.
  returned: always
  type: str
  sample: "15.18 (Debian 15.18-0+deb12u1)"
server_version_num:
  description: The version as a number, null when unreachable.
  returned: always
  type: int
  sample: 150018
connections:
  description: Client connections used against the usable slots, by state and by user (null when unreachable).
  returned: always
  type: dict
  sample: {"used": 37, "usable": 37, "max_connections": 40, "superuser_reserved_connections": 3,
           "reserved_connections": 0, "ratio": 1.0, "by_state": {"idle": 36, "active": 1},
           "by_user": [{"user": "aiagents", "total": 36, "states": {"idle": 36}}]}
idle_in_transaction:
  description: Backends with a transaction open and idle.
  returned: always
  type: list
  elements: dict
  sample: []
long_running:
  description: Active queries older than O(thresholds.long_query_seconds).
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4242, "user": "aiagents", "query_start": "2026-11-27T18:00:00.123456+00:00",
            "query_seconds": 412.5, "state": "active", "query": "SELECT ..."}]
blocking:
  description: Lock chains - each root blocker and the backends waiting behind it.
  returned: always
  type: list
  elements: dict
  sample: [{"blocker": {"pid": 4242}, "blocked": [{"pid": 4243, "blocked_by": [4242]}], "longest_wait_seconds": 45.0}]
integrity:
  description: >-
    Whether the cluster has data checksums, and the databases where reads failed them (null when
    unreachable).
  returned: always
  type: dict
  sample: {"data_checksums": true, "checksum_failures": [{"database": "ai_agents", "failures": 1,
           "last_failure": "2026-11-28T03:00:00.123456+00:00"}]}
transaction_ids:
  description: >-
    The database whose oldest unfrozen transaction id is the oldest (C(age(datfrozenxid))), and
    C(autovacuum_freeze_max_age) (null when unreachable).
  returned: always
  type: dict
  sample: {"oldest": {"database": "ai_agents", "age": 1200000123, "connectable": true},
           "autovacuum_freeze_max_age": 200000000}
own_pid:
  description: The module's own backend (left out of the lists above, counted in RV(connections)).
  returned: when reachable
  type: int
  sample: 4300
round_trips:
  description: Statements sent to the server.
  returned: always
  type: int
  sample: 1
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
      sample: db_long_running_query
    severity:
      description: info, low, medium, high or critical.
      type: str
      returned: always
      sample: medium
    summary:
      description: One line for the operator.
      type: str
      returned: always
      sample: query of aiagents (pid 4242) has run 412 s (> 300 s)
    evidence:
      description: The figures behind it (pids, query_start, durations, truncated query text).
      type: dict
      returned: always
      sample: {"pid": 4242, "query_start": "2026-11-27T18:00:00.123456+00:00", "query_seconds": 412.5}
    resolution:
      description: What to do about it.
      type: str
      returned: always
      sample: Check what it is; if it is stuck, terminate that backend only...
    runbook:
      description: The runbook this finding belongs to.
      type: str
      returned: always
      sample: database_connection_issues
"""

from ansible_collections.aiagents.runbooks.plugins.module_utils import _postgres, _postgres_activity
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule

THRESHOLD_SPEC = {name: {"type": "int" if isinstance(value, int) else "float", "default": value}
                  for name, value in _postgres_activity.DEFAULT_THRESHOLDS.items()}


def main() -> None:
    module = RunbookModule(
        argument_spec={
            **_postgres.postgres_argument_spec(),
            "thresholds": {"type": "dict", "default": {}, "options": THRESHOLD_SPEC},
            "query_chars": {"type": "int", "default": 300},
            "statement_timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
        secrets=_postgres.connection_secrets,
    )
    _postgres.require_psycopg2(module)
    params = module.params
    thresholds = {**_postgres_activity.DEFAULT_THRESHOLDS,
                  **{key: value for key, value in (params["thresholds"] or {}).items() if value is not None}}
    problem = _postgres_activity.input_error(params, thresholds)
    if problem:
        module.fail_json(msg=f"read activity of {_postgres.describe(params)}: {problem}")
    budget = _postgres.Budget(params, params["statement_timeout"])
    options = f"-c default_transaction_read_only=on -c statement_timeout={params['statement_timeout'] * 1000}"
    client = None
    try:
        client = _postgres.connect(params, options=options, budget=budget)
        data = _postgres_activity.read_activity(client, params["query_chars"])
    except (_postgres.ConnectFailure, _postgres.QueryTimeout) as exc:  # a server down or hung: a finding
        module.exit_json(changed=False, reachable=False, server_version=None, server_version_num=None,
                         connections=None, idle_in_transaction=[], long_running=[], blocking=[], integrity=None,
                         transaction_ids=None,
                         round_trips=client.round_trips if client else 0,
                         findings=_postgres_activity.unreachable_findings(exc, params))
    except RunbookError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:
        module.fail_json(msg=str(_postgres.translate(exc, "read activity of", _postgres.describe(params))))
    finally:
        if client is not None:
            client.close()
    summary = _postgres_activity.summarise(data, thresholds)
    findings = _postgres_activity.activity_findings(summary, data, thresholds)
    module.exit_json(changed=False, reachable=True, round_trips=client.round_trips, activity_seconds=data["query_seconds"],
                     findings=findings, **summary)


if __name__ == "__main__":
    main()
