#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit row-level security of every tenant table and prove tenant isolation, in one read-only call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgresql_rls_info
short_description: Audit row-level security of the tenant tables and prove tenant isolation as the application role
version_added: 1.0.0
description:
  - Finds the tenant-scoped tables (those with a O(tenant_column) in O(schemas), or the O(tables) listed) and
    checks each - RLS enabled, FORCE ROW LEVEL SECURITY where the application role owns it, a permissive
    policy for the role, every such policy referencing the tenant setting. Checks the role itself for
    SUPERUSER and BYPASSRLS.
  - Then proves isolation as the application role - with no tenant context (never set, and reset to an empty
    string as a pooled session sees it after C(SET LOCAL)) no tenant row may be visible; with tenant A's
    context no row of another tenant may be visible. With O(write_probe=true) it also tries to update and
    insert a row of tenant B, inside a transaction that is always rolled back.
  - The module logs in as O(login_user) and takes the application role with C(SET LOCAL ROLE) (the login
    role must be a superuser or a member of it); with O(app_password) it logs in as the application role
    instead.
  - Read-only - the session runs with C(default_transaction_read_only) on and every probe is rolled back.
    The number of statements does not grow with the number of tables (RV(round_trips)).
  - Findings C(rls_disabled), C(rls_not_forced), C(rls_policy_missing), C(rls_policy_not_tenant_scoped),
    C(rls_bypass_role), C(rls_tenant_leak), C(rls_context_unset).
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  app_role:
    description: The role the application's workers connect as.
    type: str
    required: true
  app_password:
    description: Log in as O(app_role) with this password for the probes, instead of C(SET ROLE). Never logged.
    type: str
  schemas:
    description: Schemas searched for tenant tables when O(tables) is not given.
    type: list
    elements: str
    default: [public]
  tables:
    description: Audit exactly these tables (V(schema.table) or V(table)); each must have O(tenant_column).
    type: list
    elements: str
  tenant_column:
    description: The column naming a row's tenant.
    type: str
    default: tenant_id
  tenant_setting:
    description: The setting that carries the tenant context, which policies must reference.
    type: str
    default: app.current_tenant_id
  context_function:
    description:
      - Set the tenant context by calling this function with the tenant id (for example V(set_tenant_context)),
        as the application does. By default the module calls C(set_config(tenant_setting, tenant, true)).
    type: str
  tenant_functions:
    description: Functions whose use in a policy counts as referencing the tenant context, besides O(tenant_setting).
    type: list
    elements: str
    default: []
  tenants:
    description:
      - Tenant ids to probe with; the first is tenant A, the second tenant B (write probe). By default both are
        taken from the data (read as the login role).
    type: list
    elements: str
  probe:
    description: Prove isolation as the application role; V(false) audits the catalog only.
    type: bool
    default: true
  write_probe:
    description: Also try to update and insert a row of tenant B as tenant A. The transaction is always rolled back.
    type: bool
    default: false
  statement_timeout:
    description:
      - Seconds the audit's statements may take in all, 1 to 3600; the server also cancels any one statement
        at this limit, and a server that does not answer at all is given up one second later.
      - The whole run ends within O(connect_timeout) + O(statement_timeout) + 1 seconds, with
        O(app_password)'s second connection included.
    type: int
    default: 30
  details:
    description:
      - Which tables RV(tables) describes - V(problems) those a finding names, V(all) every table audited.
      - Hundreds of tables in detail make a large result that Ansible is slow to carry.
    type: str
    choices: [problems, all]
    default: problems
extends_documentation_fragment:
  - aiagents.runbooks.postgres
  - aiagents.runbooks.attributes.info
"""

EXAMPLES = r"""
- name: Audit the sandbox platform's tenant tables as the application role
  aiagents.runbooks.postgresql_rls_info:
    login_host: 127.0.0.1
    login_user: postgres
    login_password: "{{ vault_postgres_password }}"
    login_db: ai_agents
    app_role: aiagents_app
    context_function: set_tenant_context
  register: rls

- name: Page security on a leak
  ansible.builtin.debug:
    msg: "{{ rls.findings | selectattr('id', 'eq', 'rls_tenant_leak') | map(attribute='summary') | first }}"
  when: rls.findings | selectattr('id', 'eq', 'rls_tenant_leak') | list | length > 0
"""

RETURN = r"""
database:
  description: The database audited.
  returned: always
  type: str
  sample: ai_agents
role:
  description: The application role and what makes it bypass RLS.
  returned: always
  type: dict
  sample: {"name": "aiagents_app", "superuser": false, "bypassrls": false, "can_login": true, "owns": []}
tables_audited:
  description: Number of tenant tables audited.
  returned: always
  type: int
  sample: 3
tables:
  description:
    - Tenant tables with their RLS state, policies and, when probed, what the application role saw - those a
      finding names, or all with O(details=all).
  returned: always
  type: list
  elements: dict
  sample: [{"table": "public.ticket_history", "rls_enabled": true, "rls_forced": true, "owner": "postgres",
            "app_is_owner": false, "app_can_read": true, "column_type": "text",
            "policies": [{"name": "tenant_isolation", "cmd": "*", "permissive": true, "roles": ["public"],
                          "applies": true, "tenant_scoped": true, "check": null,
                          "using": "(tenant_id = COALESCE(current_setting('app.current_tenant_id'::text, true), ''::text))"}],
            "probe": {"rows_sampled": 40, "other_tenant_rows": true,
                      "visible_without_context": {"never_set": 0, "reset_to_empty": 0},
                      "sample_without_context": null, "visible_other_tenants": 0, "sample_other_tenant": null}}]
isolation:
  description: How isolation was probed - tenants used, tables that could not prove it (no other tenant's rows, or unreadable).
  returned: always
  type: dict
  sample: {"performed": true, "login": "set_role", "tenant": "acme-corp", "other_tenant": "globex", "discovered": true,
           "unproven": [], "unreadable": [], "write_probe": false}
context_at_login:
  description: The tenant setting's value when the login session starts (a role or database default shows here).
  returned: always
  type: str
  sample: null
round_trips:
  description: Statements (batches) sent to the server; constant whatever the number of tables.
  returned: always
  type: int
  sample: 6
statements:
  description: What each round trip did.
  returned: always
  type: list
  elements: str
  sample: ["catalog", "sample tenants (login role)", "isolation probe (unset)"]
audit_seconds:
  description: Time spent on the database side of the audit.
  returned: always
  type: float
  sample: 0.21
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
      sample: rls_tenant_leak
    severity:
      description: info, low, medium, high or critical.
      type: str
      returned: always
      sample: critical
    summary:
      description: One line for the operator.
      type: str
      returned: always
      sample: as aiagents_app with tenant 'acme-corp''s context, rows of other tenants are visible or writable in 1 table(s)
    evidence:
      description: The role, the tables, and per table what was seen.
      type: dict
      returned: always
      sample: {"role": "aiagents_app", "tables": ["public.ticket_history"], "details": {}}
    resolution:
      description: What to do about it; RLS problems are escalated, never fixed by loosening a policy.
      type: str
      returned: always
      sample: Treat as a security incident...
    runbook:
      description: The runbook this finding belongs to.
      type: str
      returned: always
      sample: database_connection_issues
"""

from ansible_collections.aiagents.runbooks.plugins.module_utils import _postgres, _postgres_rls
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule


def main() -> None:
    module = RunbookModule(
        argument_spec={
            **_postgres.postgres_argument_spec(),
            "app_role": {"type": "str", "required": True},
            "app_password": {"type": "str", "no_log": True},
            "schemas": {"type": "list", "elements": "str", "default": ["public"]},
            "tables": {"type": "list", "elements": "str"},
            "tenant_column": {"type": "str", "default": "tenant_id"},
            "tenant_setting": {"type": "str", "default": "app.current_tenant_id"},
            "context_function": {"type": "str"},
            "tenant_functions": {"type": "list", "elements": "str", "default": []},
            "tenants": {"type": "list", "elements": "str"},
            "probe": {"type": "bool", "default": True},
            "write_probe": {"type": "bool", "default": False},
            "statement_timeout": {"type": "int", "default": 30},
            "details": {"type": "str", "choices": ["problems", "all"], "default": "problems"},
        },
        supports_check_mode=True,
        secrets=_postgres.connection_secrets,
    )
    _postgres.require_psycopg2(module)
    params = module.params
    problem = (_postgres.option_error(params)
               or _postgres.seconds_error("statement_timeout", params["statement_timeout"],
                                          _postgres.STATEMENT_TIMEOUT_MAX))
    if problem:
        module.fail_json(msg=f"audit RLS of {_postgres.describe(params)}: {problem}")
    budget = _postgres.Budget(params, params["statement_timeout"])
    # Read-only by default for every transaction of the session; only the write probe asks for READ WRITE.
    options = f"-c default_transaction_read_only=on -c statement_timeout={params['statement_timeout'] * 1000}"
    client = app_client = None
    try:
        client = _postgres.connect(params, options=options, budget=budget)
        if params["app_password"]:
            app_client = _postgres.connect(params, user=params["app_role"], password=params["app_password"],
                                           options=options, budget=budget)
        result = _postgres_rls.audit(client, params, app_client)
    except RunbookError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:
        module.fail_json(msg=str(_postgres.translate(exc, "audit RLS of", _postgres.describe(params))))
    finally:
        for each in (client, app_client):
            if each is not None:
                each.close()
    round_trips = client.round_trips + (app_client.round_trips if app_client else 0)
    statements = client.statements + (app_client.statements if app_client else [])
    if not result["tables_audited"]:
        module.warn(f"no table with a column {params['tenant_column']!r} in schemas {params['schemas']}: nothing to audit")
    module.exit_json(changed=False, round_trips=round_trips, statements=statements, **result)


if __name__ == "__main__":
    main()
