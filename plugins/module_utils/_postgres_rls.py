# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Row-level security audit and tenant-isolation proof, in a fixed number of round trips.

The number of statements sent does not depend on the number of tables: the catalog is read
in one query over pg_class/pg_policy/pg_attribute/pg_roles, and each probe covers every
table in one generated UNION ALL (identifiers composed with psycopg2.sql, values as
parameters). Everything runs in read-only transactions, except the optional write probe,
whose transaction is always rolled back.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding, sort_findings

try:
    from psycopg2 import sql
except ImportError:  # the module reports the missing client through _postgres.require_psycopg2()
    sql = None

RUNBOOK = "database_connection_issues"
PROBE_LIMIT = 1000  # rows counted per table and probe: enough to prove a leak, bounded on big tables
SAMPLE_ROWS = 50  # rows read per table (as admin) to discover tenants and which tables can prove isolation

CATALOG_SQL = """
WITH app AS (
  SELECT r.oid, r.rolname, r.rolsuper, r.rolbypassrls, r.rolcanlogin, r.rolinherit
  FROM pg_roles r WHERE r.rolname = %(role)s
), wanted AS (
  SELECT name, to_regclass(name) AS oid FROM unnest(%(tables)s::text[]) AS name
), tabs AS (
  SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relowner, a.atttypid, a.atttypmod
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = %(column)s AND a.attnum > 0 AND NOT a.attisdropped
  WHERE c.relkind IN ('r', 'p') AND CASE
    WHEN %(explicit)s THEN c.oid IN (SELECT oid FROM wanted)
    ELSE n.nspname = ANY(%(schemas)s::text[]) AND NOT c.relispartition AND a.attname IS NOT NULL
  END
)
SELECT json_build_object(
  'database', current_database(),
  'login', session_user,
  'version', current_setting('server_version_num')::int,
  'context_at_login', current_setting(%(setting)s, true),
  'app', (SELECT json_build_object('oid', app.oid::bigint, 'name', app.rolname, 'superuser', app.rolsuper,
                                   'bypassrls', app.rolbypassrls, 'can_login', app.rolcanlogin) FROM app),
  'missing', (SELECT coalesce(json_agg(name), '[]') FROM wanted WHERE oid IS NULL OR oid NOT IN (SELECT oid FROM tabs)),
  'tables', (SELECT coalesce(json_agg(json_build_object(
      'oid', t.oid::bigint, 'schema', t.nspname, 'name', t.relname,
      'rls_enabled', t.relrowsecurity, 'rls_forced', t.relforcerowsecurity,
      'owner', pg_get_userbyid(t.relowner),
      'column_type', CASE WHEN t.atttypid IS NOT NULL THEN format_type(t.atttypid, t.atttypmod) END,
      'app_is_owner', (SELECT pg_has_role(app.oid, t.relowner, 'USAGE') FROM app),
      'app_can_read', (SELECT t.atttypid IS NOT NULL AND has_schema_privilege(app.oid, t.nspname, 'USAGE')
                              AND has_column_privilege(app.oid, t.oid, %(column)s, 'SELECT') FROM app),
      'policies', (SELECT coalesce(json_agg(json_build_object(
          'name', p.polname, 'cmd', p.polcmd, 'permissive', p.polpermissive,
          'roles', CASE WHEN 0 = ANY(p.polroles) THEN ARRAY['public']::name[]
                        ELSE ARRAY(SELECT rolname FROM pg_roles WHERE oid = ANY(p.polroles) ORDER BY rolname) END,
          'applies', (SELECT 0 = ANY(p.polroles) OR EXISTS (
                        SELECT 1 FROM unnest(p.polroles) AS r(oid) WHERE pg_has_role(app.oid, r.oid, 'MEMBER')) FROM app),
          'using', pg_get_expr(p.polqual, p.polrelid),
          'check', pg_get_expr(p.polwithcheck, p.polrelid)) ORDER BY p.polname), '[]')
        FROM pg_policy p WHERE p.polrelid = t.oid)
    ) ORDER BY t.nspname, t.relname), '[]') FROM tabs t)
)
"""

# The write probe: for each table, try to change one row of tenant B and to insert a row of
# tenant B, as the application role with tenant A's context. Inputs come in as settings
# (set with parameters), results go out as one NOTICE; the caller always rolls back.
WRITE_PROBE_SQL = """
DO $probe$
DECLARE
  t record;
  n bigint;
  ins text;
  upd text;
  cols text;
  nulls text;
  results jsonb := '[]'::jsonb;
  other text := current_setting('aiagents.probe_tenant');
BEGIN
  FOR t IN SELECT c.oid, c.oid::regclass AS rel, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS typ
           FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
           WHERE c.oid = ANY (string_to_array(current_setting('aiagents.probe_tables'), ',')::oid[])
             AND a.attname = current_setting('aiagents.probe_column') AND a.attnum > 0
  LOOP
    BEGIN
      EXECUTE format('UPDATE %%s SET %%I = %%I WHERE ctid = (SELECT ctid FROM %%s WHERE %%I::text = $1 LIMIT 1)',
                     t.rel, t.col, t.col, t.rel, t.col) USING other;
      GET DIAGNOSTICS n = ROW_COUNT;
      upd := CASE WHEN n > 0 THEN 'updated' ELSE 'no_row_visible' END;
    EXCEPTION
      WHEN insufficient_privilege THEN
        upd := CASE WHEN SQLERRM LIKE '%%row-level security%%' THEN 'denied_by_policy' ELSE 'denied_by_privilege' END;
      WHEN OTHERS THEN upd := 'error:' || SQLSTATE;
    END;
    -- Every other column gets an explicit NULL: no default runs, so no sequence advances (nextval is not
    -- rolled back). The policy's WITH CHECK is evaluated before NOT NULL and other constraints.
    SELECT coalesce(string_agg(format(', %%I', attname), '' ORDER BY attnum), ''),
           coalesce(string_agg(', NULL', '' ORDER BY attnum), '')
      INTO cols, nulls
      FROM pg_attribute
     WHERE attrelid = t.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' AND attname <> t.col;
    BEGIN
      EXECUTE format('INSERT INTO %%s (%%I%%s) OVERRIDING SYSTEM VALUE VALUES (CAST($1 AS %%s)%%s)',
                     t.rel, t.col, cols, t.typ, nulls) USING other;
      ins := 'inserted';
    EXCEPTION
      WHEN insufficient_privilege THEN
        ins := CASE WHEN SQLERRM LIKE '%%row-level security%%' THEN 'denied_by_policy' ELSE 'denied_by_privilege' END;
      -- Constraints are checked after the policy's WITH CHECK: failing one means the policy let the row in.
      WHEN integrity_constraint_violation THEN ins := 'passed_policy:' || SQLSTATE;
      WHEN OTHERS THEN ins := 'error:' || SQLSTATE;
    END;
    results := results || jsonb_build_object('oid', t.oid::bigint, 'update', upd, 'insert', ins);
  END LOOP;
  RAISE NOTICE 'aiagents-write-probe %%', results::text;
END
$probe$
"""

WRITE_LEAKS = ("updated", "inserted")


def qualified(table: dict) -> str:
    return f"{table['schema']}.{table['name']}"


def _ident(name: str):
    """A possibly schema-qualified name as an identifier (each part quoted)."""
    return sql.Identifier(*name.split(".", 1))


def read_catalog(client, params: dict) -> dict:
    args = {
        "role": params["app_role"], "tables": list(params["tables"] or []), "explicit": bool(params["tables"]),
        "schemas": list(params["schemas"]), "column": params["tenant_column"], "setting": params["tenant_setting"],
    }
    return client.execute(CATALOG_SQL, args, label="catalog", fetch="one")[0]


def _union(parts):
    return sql.SQL(" UNION ALL ").join(parts)


def sample_tenants(client, tables: list[dict], column: str) -> dict[int, dict]:
    """As the login role: up to 3 distinct tenant ids among the first rows of each table."""
    col = sql.Identifier(column)
    parts, params = [], []
    for table in tables:
        parts.append(sql.SQL(
            "(SELECT %s::oid, count(*), (array_agg(DISTINCT v ORDER BY v))[1:3] "
            "FROM (SELECT {col}::text AS v FROM {tbl} LIMIT %s) AS x)"
        ).format(col=col, tbl=sql.Identifier(table["schema"], table["name"])))
        params += [table["oid"], SAMPLE_ROWS]
    # One statement in autocommit: its own transaction, read-only by the session's default.
    rows = client.execute(_union(parts), params, label="sample tenants (login role)")
    return {oid: {"rows": count, "tenants": [value for value in (values or []) if value is not None]}
            for oid, count, values in rows}


def _visible_union(tables: list[dict], column: str):
    """Rows visible per table, other than tenant $1's (all rows when $1 is NULL); prepared once, run per probe.

    The tenant is compared as text, so a hostile or ill-typed tenant id is only ever data; the index on the
    tenant column is still used through the policy's own condition.
    """
    col = sql.Identifier(column)
    parts = []
    for table in tables:
        parts.append(sql.SQL(
            "(SELECT %s::oid, count(*), min(v) FROM (SELECT {col}::text AS v FROM {tbl} "
            "WHERE $1::text IS NULL OR {col}::text IS DISTINCT FROM $1::text LIMIT %s) AS x)"
        ).format(col=col, tbl=sql.Identifier(table["schema"], table["name"])))
    return _union(parts)


def _visible_params(tables: list[dict]) -> list:
    params: list = []
    for table in tables:
        params += [table["oid"], PROBE_LIMIT]
    return params


class Prober:
    """Runs the probes as the application role, on the login session (SET ROLE) or its own login."""

    def __init__(self, client, params: dict, as_login: bool) -> None:
        self.client = client
        self.params = params
        self.as_login = as_login
        self.prepared = False

    def _begin(self, mode: str = "READ ONLY"):
        role = sql.SQL("") if self.as_login else sql.SQL("SET LOCAL ROLE {}; ").format(
            sql.Identifier(self.params["app_role"]))
        # ROLLBACK first: ends whatever the previous batch left open (a no-op warning otherwise).
        return sql.SQL("ROLLBACK; BEGIN {mode}; {role}").format(mode=sql.SQL(mode), role=role)

    def _context(self, tenant: str):
        if self.params["context_function"]:
            return sql.SQL("SELECT {}(%s); ").format(_ident(self.params["context_function"])), [tenant]
        return sql.SQL("SELECT set_config(%s, %s, true); "), [self.params["tenant_setting"], tenant]

    def visible(self, tables: list[dict], state: str, tenant: str | None = None) -> dict[int, dict]:
        """Rows visible per table: with no context (never set / reset to ''), or other tenants' with A's.

        The first probe prepares the statement with a generic plan; the others only execute it, so the
        500-branch query is planned once (the plan is kept while the role stays the same).
        """
        head, params = self._begin() + sql.SQL("SET LOCAL plan_cache_mode = force_generic_plan; "), []
        if not self.prepared:
            head += sql.SQL("PREPARE aiagents_rls_probe(text) AS {}; ").format(
                _visible_union(tables, self.params["tenant_column"]))
            params += _visible_params(tables)
            self.prepared = True
        if state == "reset":
            head += sql.SQL("SELECT set_config(%s, '', true); ")
            params.append(self.params["tenant_setting"])
        elif state == "tenant":
            context, context_params = self._context(tenant)
            head, params = head + context, params + context_params
        query = head + sql.SQL("EXECUTE aiagents_rls_probe(%s)")
        rows = self.client.execute(query, params + [tenant if state == "tenant" else None],
                                   label=f"isolation probe ({state})")
        return {oid: {"rows": count, "sample": sample} for oid, count, sample in rows}

    def writable(self, tables: list[dict], tenant: str, other: str) -> dict[int, dict]:
        context, params = self._context(tenant)
        query = (self._begin("READ WRITE") + sql.SQL("SET LOCAL lock_timeout = '2s'; ") + context
                 + sql.SQL("SELECT set_config('aiagents.probe_tenant', %s, true), "
                           "set_config('aiagents.probe_tables', %s, true), "
                           "set_config('aiagents.probe_column', %s, true); ")
                 + sql.SQL(WRITE_PROBE_SQL) + sql.SQL("; ROLLBACK"))
        params += [other, ",".join(str(table["oid"]) for table in tables), self.params["tenant_column"]]
        del self.client.conn.notices[:]
        self.client.execute(query, params, label="write probe (rolled back)", fetch="none")
        for notice in self.client.notices:
            if "aiagents-write-probe " in notice:
                payload = notice.split("aiagents-write-probe ", 1)[1].strip()
                return {item["oid"]: item for item in json.loads(payload)}
        raise RunbookError("probe writes", "as the application role", "the probe returned no result")

    def end(self) -> None:
        self.client.execute("ROLLBACK", label="end probe transaction", fetch="none")


def tenant_scoped(expression: str | None, params: dict) -> bool:
    """Does a policy expression tie rows to the tenant setting (or a tenant function) by the tenant column?"""
    if not expression:
        return False
    markers = [params["tenant_setting"]] + list(params["tenant_functions"] or [])
    mentions_context = any(marker.lower() in expression.lower() for marker in markers)
    mentions_column = re.search(rf"\b{re.escape(params['tenant_column'])}\b", expression) is not None
    return mentions_context and mentions_column


def describe_policies(table: dict, params: dict) -> None:
    for policy in table["policies"]:
        checks = []
        if policy["cmd"] in ("*", "r", "w", "d"):
            checks.append(policy["using"])
        if policy["cmd"] in ("a", "w", "*") and policy["check"] is not None:
            checks.append(policy["check"])
        policy["tenant_scoped"] = all(tenant_scoped(expression, params) for expression in checks) if checks else False


def pick_tenants(params: dict, samples: dict[int, dict]) -> tuple[str | None, str | None, bool]:
    given = list(params["tenants"] or [])
    seen = Counter(value for sample in samples.values() for value in sample["tenants"])
    # The tenant present in most tables' samples first (ties by name, so runs are repeatable).
    ranked = [value for value, _n in sorted(seen.items(), key=lambda item: (-item[1], item[0]))]
    if given:
        first = given[0]
        return first, given[1] if len(given) > 1 else next((value for value in ranked if value != first), None), False
    return (ranked[0] if ranked else None), (ranked[1] if len(ranked) > 1 else None), True


def audit(client, params: dict, app_client=None) -> dict[str, Any]:
    started = time.monotonic()
    catalog = read_catalog(client, params)
    column = params["tenant_column"]
    if catalog["missing"]:
        raise RunbookError("audit RLS of", ", ".join(catalog["missing"]), "no such table in database "
                           f"{catalog['database']!r}")
    if catalog["app"] is None:
        raise RunbookError("audit RLS as", f"role {params['app_role']!r}", "the application role does not exist")
    tables = catalog["tables"]
    lacking = [qualified(table) for table in tables if table["column_type"] is None]
    if lacking:
        raise RunbookError("audit RLS of", ", ".join(lacking), f"no column {column!r}: not a tenant-scoped table")
    for table in tables:
        describe_policies(table, params)
    app = catalog["app"]

    isolation: dict[str, Any] = {"performed": False, "login": "app_role" if app_client else "set_role"}
    readable = [table for table in tables if table["app_can_read"]]
    isolation["unreadable"] = [qualified(table) for table in tables if not table["app_can_read"]]
    if readable and params["probe"]:
        samples = sample_tenants(client, readable, column)
        tenant, other, discovered = pick_tenants(params, samples)
        prober = Prober(app_client or client, params, as_login=app_client is not None)
        unset = prober.visible(readable, "unset")
        reset = prober.visible(readable, "reset")
        isolation.update({"performed": True, "tenant": tenant, "other_tenant": other, "discovered": discovered})
        leak = prober.visible(readable, "tenant", tenant) if tenant is not None else {}
        write = prober.writable(readable, tenant, other) if params["write_probe"] and tenant and other else {}
        prober.end()
        for table in readable:
            oid = table["oid"]
            sample = samples.get(oid, {"rows": 0, "tenants": []})
            table["probe"] = {
                "rows_sampled": sample["rows"],
                "other_tenant_rows": any(value != tenant for value in sample["tenants"]) if tenant else False,
                "visible_without_context": {"never_set": unset[oid]["rows"], "reset_to_empty": reset[oid]["rows"]},
                "sample_without_context": unset[oid]["sample"] or reset[oid]["sample"],
                "visible_other_tenants": leak[oid]["rows"] if oid in leak else None,
                "sample_other_tenant": leak[oid]["sample"] if oid in leak else None,
            }
            if oid in write:
                table["probe"]["write"] = {"update": write[oid]["update"], "insert": write[oid]["insert"]}
        isolation["unproven"] = [qualified(table) for table in readable if not table["probe"]["other_tenant_rows"]]
        isolation["write_probe"] = bool(write)
        if params["write_probe"] and not write:
            isolation["write_probe_skipped"] = "two distinct tenants are needed (none or one found)"
    result = {
        "database": catalog["database"],
        "server_version_num": catalog["version"],
        "login_user": catalog["login"],
        "context_at_login": catalog["context_at_login"],
        "role": {"name": app["name"], "superuser": app["superuser"], "bypassrls": app["bypassrls"],
                 "can_login": app["can_login"],
                 "owns": [qualified(table) for table in tables if table["app_is_owner"]]},
        "tables_audited": len(tables),
        "isolation": isolation,
    }
    result["findings"] = sort_findings(rls_findings(tables, app, params, isolation))
    # Every table in detail is a large result (Ansible pays for each byte it parses): by default only
    # the tables a finding names.
    named = {name for item in result["findings"] for name in item["evidence"].get("tables", [])}
    result["tables"] = [{key: value for key, value in table.items() if key not in ("oid", "app_is_owner")}
                        | {"table": qualified(table), "app_is_owner": table["app_is_owner"]}
                        for table in tables if params["details"] == "all" or qualified(table) in named]
    result["audit_seconds"] = round(time.monotonic() - started, 4)
    return result


def _names(tables: list[dict], limit: int = 5) -> str:
    names = [qualified(table) for table in tables]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


ESCALATE = ("Escalate to the DBA and security on-call with this evidence; change RLS only through a reviewed "
            "migration. Never loosen or drop a policy to make errors go away.")


def rls_findings(tables: list[dict], app: dict, params: dict, isolation: dict) -> list[dict]:
    role = app["name"]
    out = []

    def add(finding_id, severity, hits, summary, details, resolution):
        if hits:
            out.append(finding(finding_id, severity, summary.format(names=_names(hits), role=role, n=len(hits)),
                               {"role": role, "tables": [qualified(table) for table in hits],
                                "details": {qualified(table): details(table) for table in hits}},
                               f"{resolution} {ESCALATE}", runbook=RUNBOOK))

    if app["superuser"] or app["bypassrls"]:
        attrs = [name for name, on in (("SUPERUSER", app["superuser"]), ("BYPASSRLS", app["bypassrls"])) if on]
        out.append(finding(
            "rls_bypass_role", "critical",
            f"application role {role} is {' and '.join(attrs)}: row-level security never applies to it, "
            f"every tenant's rows are visible on all {len(tables)} tenant tables",
            {"role": role, "attributes": attrs, "tables": [qualified(table) for table in tables]},
            f"Treat as a tenant-isolation incident: the application must connect as a role with NOSUPERUSER "
            f"NOBYPASSRLS (ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS, or a new non-privileged role) and must not "
            f"own the tables. {ESCALATE}", runbook=RUNBOOK))
    add("rls_disabled", "high", [table for table in tables if not table["rls_enabled"]],
        "row-level security is disabled on {n} tenant table(s): {names}",
        lambda table: {"owner": table["owner"], "policies": [policy["name"] for policy in table["policies"]]},
        "ALTER TABLE ... ENABLE ROW LEVEL SECURITY and FORCE ROW LEVEL SECURITY, with the tenant policy, "
        "in a migration.")
    add("rls_not_forced", "high",
        [table for table in tables if table["rls_enabled"] and not table["rls_forced"] and table["app_is_owner"]],
        "application role {role} owns {n} tenant table(s) without FORCE ROW LEVEL SECURITY, so RLS does not "
        "apply to it: {names}",
        lambda table: {"owner": table["owner"], "rls_forced": False},
        "ALTER TABLE ... FORCE ROW LEVEL SECURITY, and move ownership to a migration role the application "
        "does not log in as.")
    permissive = {qualified(table): [policy for policy in table["policies"] if policy["applies"] and policy["permissive"]
                                     and policy["cmd"] in ("*", "r")] for table in tables}
    add("rls_policy_missing", "high",
        [table for table in tables if table["rls_enabled"] and not permissive[qualified(table)]],
        "{n} tenant table(s) have RLS enabled but no permissive SELECT policy for {role}: every query of the "
        "application returns no rows: {names}",
        lambda table: {"policies": [{"name": policy["name"], "cmd": policy["cmd"], "roles": policy["roles"],
                                     "permissive": policy["permissive"]} for policy in table["policies"]]},
        "Restore the tenant policy (USING tenant_id = current_setting('app.current_tenant_id', true)) from the "
        "schema migrations.")
    add("rls_policy_not_tenant_scoped", "high",
        [table for table in tables if table["rls_enabled"] and any(
            policy["applies"] and policy["permissive"] and not policy["tenant_scoped"] for policy in table["policies"])],
        "{n} tenant table(s) have a permissive policy for {role} that does not reference the tenant setting "
        f"{params['tenant_setting']!r}: {{names}}",
        lambda table: {"policies": [{"name": policy["name"], "cmd": policy["cmd"], "using": policy["using"],
                                     "check": policy["check"]} for policy in table["policies"]
                                    if policy["applies"] and policy["permissive"] and not policy["tenant_scoped"]]},
        "A permissive policy is OR-ed with the others, so one unscoped policy opens the table: replace it with "
        "a tenant-scoped one.")
    if isolation.get("performed"):
        probed = [table for table in tables if "probe" in table]
        leaks = [table for table in probed if (table["probe"]["visible_other_tenants"] or 0) > 0
                 or table["probe"].get("write", {}).get("update") in WRITE_LEAKS
                 or str(table["probe"].get("write", {}).get("insert", "")).startswith(("inserted", "passed_policy"))]
        add("rls_tenant_leak", "critical", leaks,
            f"as {{role}} with tenant {isolation['tenant']!r}'s context, rows of other tenants are visible or "
            "writable in {n} table(s): {names}",
            lambda table: {"tenant_context": isolation["tenant"], **table["probe"]},
            "Treat as a security incident: page security and the DBA now, consider pausing intake for the "
            "affected tenants, and keep this evidence.")
        add("rls_context_unset", "critical",
            [table for table in probed if max(table["probe"]["visible_without_context"].values()) > 0],
            "with no tenant context set, {role} sees tenant rows in {n} table(s) - the policy fails open: {names}",
            lambda table: {"visible_rows": table["probe"]["visible_without_context"],
                           "sample_tenant": table["probe"]["sample_without_context"],
                           "using": [policy["using"] for policy in table["policies"] if policy["applies"]]},
            "The policy must deny when the setting is unset or '' (current_setting(..., true) returns '' after "
            "SET LOCAL on a pooled session): compare tenant_id to the setting without a fallback.")
    return out
