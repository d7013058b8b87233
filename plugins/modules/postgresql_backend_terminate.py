#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Terminate one diagnosed PostgreSQL backend - only if it still runs the query that was diagnosed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgresql_backend_terminate
short_description: Terminate one named PostgreSQL backend, guarded by the start time of the query diagnosed
version_added: 1.0.0
description:
  - The runbook's "terminate that backend only" - never a blanket kill. The backend is named by O(pid) and
    terminated with C(pg_terminate_backend()) only while its C(query_start) still equals O(query_start), as
    M(aiagents.runbooks.postgresql_activity_info) reported it; a pid reused by another connection, or a
    backend that moved on to another query, is left alone (RV(status=query_changed)).
  - Refuses (fails) on a superuser's backend, a replication (walsender) or other server process, and the
    module's own connection.
  - The check and the signal are one statement, so nothing can change between them.
  - A backend that is already gone is a no-op (RV(status=gone), not changed), so a second run changes nothing.
  - The login role must be a superuser or a member of C(pg_signal_backend) (or the backend's role).
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  pid:
    description: Process id of the backend to terminate (1 to 2147483647).
    type: int
    required: true
  query_start:
    description:
      - Start time of the query diagnosed, exactly as reported (for example
        V(2026-11-27T18:00:00.123456+00:00)); any format PostgreSQL reads as C(timestamptz).
    type: str
    required: true
  wait_seconds:
    description: Seconds to wait for the backend to exit after the signal (0 to 600).
    type: float
    default: 5
  statement_timeout:
    description:
      - Seconds the module's statements may take, 1 to 3600, besides O(wait_seconds). The server cancels a
        statement then; a server that does not answer at all is given up one second later.
      - The whole run ends within O(connect_timeout) + O(statement_timeout) + O(wait_seconds) + 1 seconds.
    type: int
    default: 10
extends_documentation_fragment:
  - aiagents.runbooks.postgres
  - aiagents.runbooks.attributes.action
attributes:
  idempotent:
    description: Once the backend is gone, running again changes nothing.
    support: full
"""

EXAMPLES = r"""
- name: Terminate the query stuck for 45 minutes (pid and start from postgresql_activity_info)
  aiagents.runbooks.postgresql_backend_terminate:
    login_host: 127.0.0.1
    login_password: "{{ vault_postgres_password }}"
    pid: 4242
    query_start: "2026-11-27T18:00:00.123456+00:00"
"""

RETURN = r"""
status:
  description:
    - V(terminated), V(signalled) (signal sent, not exited within O(wait_seconds)), V(would_terminate) (check mode),
      V(gone) (no such backend - nothing to do) or V(query_changed) (it runs another query now - left alone).
  returned: always
  type: str
  sample: terminated
backend:
  description: The backend as it was found, null when gone.
  returned: always
  type: dict
  sample: {"pid": 4242, "user": "aiagents", "application": "celery", "state": "active",
           "query_start": "2026-11-27T18:00:00.123456+00:00", "query": "SELECT ..."}
"""

from ansible_collections.aiagents.runbooks.plugins.module_utils import _postgres, _postgres_activity
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule

PID_MAX = 2147483647  # a PostgreSQL pid is an int4
WAIT_SECONDS_MAX = 600


def main() -> None:
    module = RunbookModule(
        argument_spec={
            **_postgres.postgres_argument_spec(),
            "pid": {"type": "int", "required": True},
            "query_start": {"type": "str", "required": True},
            "wait_seconds": {"type": "float", "default": 5},
            "statement_timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
        secrets=_postgres.connection_secrets,
    )
    _postgres.require_psycopg2(module)
    params = module.params
    if params["pid"] <= 0:
        module.fail_json(msg=f"terminate backend {params['pid']}: pid must be a positive process id")
    problem = (out_of_range("pid", params["pid"], maximum=PID_MAX)
               or out_of_range("wait_seconds", params["wait_seconds"], minimum=0, maximum=WAIT_SECONDS_MAX)
               or _postgres.seconds_error("statement_timeout", params["statement_timeout"],
                                          _postgres.STATEMENT_TIMEOUT_MAX)
               or _postgres.option_error(params))
    if problem:
        module.fail_json(msg=f"terminate backend {params['pid']}: {problem}")
    query_seconds = params["statement_timeout"] + params["wait_seconds"]
    budget = _postgres.Budget(params, query_seconds, "statement_timeout and wait_seconds")
    client = None
    try:
        client = _postgres.connect(params, options=f"-c statement_timeout={int(query_seconds * 1000)}", budget=budget)
        result = _postgres_activity.terminate(client, params["pid"], params["query_start"], module.check_mode,
                                              params["wait_seconds"])
    except RunbookError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:
        module.fail_json(msg=str(_postgres.translate(exc, "terminate", f"backend {params['pid']}")))
    finally:
        if client is not None:
            client.close()
    before = result["backend"]
    after = None if result["status"] in ("terminated", "signalled", "would_terminate") else before
    module.exit_json(diff={"before": {"backend": before}, "after": {"backend": after}}, **result)


if __name__ == "__main__":
    main()
