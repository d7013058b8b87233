"""postgresql_rls_info against a real PostgreSQL: each RLS fault made for real, found, and nothing changed."""

from __future__ import annotations

import pytest

from tests.harness.slow import MARGIN, hung_postgres, silent_server, task_seconds, within

MODULE = "aiagents.runbooks.postgresql_rls_info"
APP_PASSWORD = "app-role-pw-7c1e"
TENANT_TABLES = ("tenants", "ticket_history", "enhancement_history")
RLS_IDS = {"rls_disabled", "rls_not_forced", "rls_policy_missing", "rls_policy_not_tenant_scoped",
           "rls_bypass_role", "rls_tenant_leak", "rls_context_unset"}
POLICY = "tenant_id = COALESCE(current_setting('app.current_tenant_id', true), '')"


def build_platform(server, dbname: str) -> str:
    """The platform's RLS schema, done right: returns the (per-test) application role's name.

    Roles are cluster-wide and the cluster is shared by the session, so each test gets its own app role.
    """
    role = "aiagents_app_" + dbname[2:]
    conn = server.connect(dbname)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s NOSUPERUSER NOBYPASSRLS", [APP_PASSWORD])
        cur.execute("""
            CREATE TABLE tenants (tenant_id text PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());
            CREATE TABLE ticket_history (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants,
                                         ticket_id text NOT NULL, note text);
            CREATE TABLE enhancement_history (id bigserial PRIMARY KEY, tenant_id text NOT NULL REFERENCES tenants,
                                              ticket_id text NOT NULL, summary text);
            CREATE TABLE schema_migrations (version text PRIMARY KEY);  -- not tenant-scoped: never audited
            INSERT INTO tenants VALUES ('acme-corp', 'Acme'), ('globex', 'Globex'), ('initech', 'Initech');
            INSERT INTO ticket_history (tenant_id, ticket_id, note)
                SELECT t, 'TICKET-' || n, 'note' FROM unnest(ARRAY['acme-corp', 'acme-corp', 'globex', 'initech']) t,
                       generate_series(1, 5) n;
            INSERT INTO enhancement_history (tenant_id, ticket_id, summary)
                SELECT t, 'TICKET-' || n, 'summary' FROM unnest(ARRAY['acme-corp', 'globex']) t, generate_series(1, 3) n;
            CREATE FUNCTION set_tenant_context(p_tenant_id text) RETURNS void
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = p_tenant_id) THEN
                    RAISE EXCEPTION 'unknown tenant %', p_tenant_id;
                END IF;
                PERFORM set_config('app.current_tenant_id', p_tenant_id, true);
            END $$;
        """)
        for table in TENANT_TABLES:
            cur.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            cur.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            cur.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({POLICY})")
        cur.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cur.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cur.execute(f"GRANT EXECUTE ON FUNCTION set_tenant_context(text) TO {role}")
    conn.close()
    return role


def execute(server, dbname: str, *statements: str) -> None:
    conn = server.connect(dbname)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def snapshot(server, dbname: str) -> dict:
    """Catalog state of the tables, policies and roles, and a digest of every row of every table."""
    conn = server.connect(dbname)
    with conn.cursor() as cur:
        cur.execute("""SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)
                       FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1""")
        classes = cur.fetchall()
        cur.execute("SELECT polrelid::regclass::text, polname, polcmd, polpermissive, pg_get_expr(polqual, polrelid), "
                    "pg_get_expr(polwithcheck, polrelid) FROM pg_policy ORDER BY 1, 2")
        policies = cur.fetchall()
        cur.execute("SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles ORDER BY 1")
        roles = cur.fetchall()
        rows = {}
        for name, kind, *_rest in classes:
            if kind == "r":
                cur.execute(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')), count(*) "
                            f"FROM {name} t")
                rows[name] = cur.fetchone()
        cur.execute("SELECT last_value, is_called FROM ticket_history_id_seq")
        sequence = cur.fetchone()
    conn.close()
    return {"classes": classes, "policies": policies, "roles": roles, "rows": rows, "sequence": sequence}


def audit(run_module, server, dbname, role, check=False, expect_ok=True, **args):
    params = {"login_host": "127.0.0.1", "login_port": server.port, "login_user": "postgres",
              "login_password": server.password, "login_db": dbname, "app_role": role, **args}
    run = run_module(MODULE, params, check=check)
    if expect_ok:
        assert run.rc == 0, run.stdout
    return run.result


def by_id(result) -> dict:
    found = {}
    for item in result["findings"]:
        assert item["id"] not in found, f"one finding per id: {item['id']} twice"
        found[item["id"]] = item
    return found


@pytest.mark.parametrize("context_function", [None, "set_tenant_context"])
def test_correct_schema_yields_no_rls_finding(postgres_db, run_module, context_function):
    server, dbname = postgres_db
    role = build_platform(server, dbname)
    result = audit(run_module, server, dbname, role, context_function=context_function, write_probe=True,
                   details="all")

    assert result["findings"] == []
    assert result["changed"] is False
    assert [table["table"] for table in result["tables"]] == [
        "public.enhancement_history", "public.tenants", "public.ticket_history"]
    assert result["role"] == {"name": role, "superuser": False, "bypassrls": False, "can_login": True, "owns": []}
    isolation = result["isolation"]
    assert isolation["performed"] is True and isolation["write_probe"] is True
    # Discovered from the data: acme-corp is in every table's sample, so it is tenant A.
    assert (isolation["tenant"], isolation["discovered"]) == ("acme-corp", True)
    assert isolation["other_tenant"] in ("globex", "initech") and isolation["unproven"] == []
    history = next(table for table in result["tables"] if table["table"] == "public.ticket_history")
    assert history["probe"]["rows_sampled"] == 20 and history["probe"]["other_tenant_rows"] is True
    assert history["probe"]["visible_other_tenants"] == 0
    assert history["probe"]["visible_without_context"] == {"never_set": 0, "reset_to_empty": 0}
    assert history["probe"]["write"]["update"] == "no_row_visible"
    assert history["probe"]["write"]["insert"] == "denied_by_policy"
    assert history["policies"][0]["tenant_scoped"] is True


def test_the_write_probe_finds_write_holes_and_changes_nothing(postgres_db, run_module):
    server, dbname = postgres_db
    role = build_platform(server, dbname)
    # Write holes: an open INSERT policy, and a table whose only policy lets everything through.
    execute(server, dbname, "CREATE POLICY open_insert ON ticket_history FOR INSERT WITH CHECK (true)",
            "CREATE TABLE shared_notes (tenant_id text, body text)",
            "INSERT INTO shared_notes VALUES ('acme-corp', 'a'), ('globex', 'g'), ('globex', 'g2')",
            "ALTER TABLE shared_notes ENABLE ROW LEVEL SECURITY", "ALTER TABLE shared_notes FORCE ROW LEVEL SECURITY",
            "CREATE POLICY open_all ON shared_notes USING (true)",
            f"GRANT SELECT, INSERT, UPDATE ON shared_notes TO {role}")
    before = snapshot(server, dbname)
    result = audit(run_module, server, dbname, role, write_probe=True)
    assert snapshot(server, dbname) == before  # the probe's inserts and updates were rolled back

    assert (result["isolation"]["tenant"], result["isolation"]["other_tenant"]) == ("acme-corp", "globex")
    found = by_id(result)
    assert set(found) == {"rls_tenant_leak", "rls_context_unset", "rls_policy_not_tenant_scoped"}
    leak = found["rls_tenant_leak"]
    assert leak["severity"] == "critical"
    assert leak["evidence"]["tables"] == ["public.shared_notes", "public.ticket_history"]
    notes = leak["evidence"]["details"]["public.shared_notes"]
    assert notes["visible_other_tenants"] == 2 and notes["sample_other_tenant"] == "globex"
    assert notes["write"] == {"update": "updated", "insert": "inserted"}
    history = leak["evidence"]["details"]["public.ticket_history"]
    # ticket_id is NOT NULL: the insert failed on it, after the policy had let tenant B's row in.
    assert history["visible_other_tenants"] == 0 and history["write"]["insert"] == "passed_policy:23502"
    assert history["write"]["update"] == "no_row_visible"
    assert found["rls_context_unset"]["evidence"]["tables"] == ["public.shared_notes"]
    assert found["rls_policy_not_tenant_scoped"]["evidence"]["tables"] == [
        "public.shared_notes", "public.ticket_history"]


def _fault_cases():
    return {
        "rls_disabled": (["ALTER TABLE ticket_history DISABLE ROW LEVEL SECURITY"], "public.ticket_history", "high"),
        "rls_not_forced": (["ALTER TABLE enhancement_history OWNER TO {role}",
                            "ALTER TABLE enhancement_history NO FORCE ROW LEVEL SECURITY"],
                           "public.enhancement_history", "high"),
        "rls_policy_missing": (["DROP POLICY tenant_isolation ON ticket_history"], "public.ticket_history", "high"),
        "rls_policy_not_tenant_scoped": (["CREATE POLICY support_read ON tenants FOR SELECT USING (name IS NOT NULL)"],
                                         "public.tenants", "high"),
        "rls_bypass_role": (["ALTER ROLE {role} BYPASSRLS"], None, "critical"),
        # An "admin tenant" bug: acme-corp's context sees everyone; the policy does reference the setting.
        "rls_tenant_leak": (["DROP POLICY tenant_isolation ON ticket_history",
                             "CREATE POLICY tenant_isolation ON ticket_history USING (" + POLICY
                             + " OR current_setting('app.current_tenant_id', true) = 'acme-corp')"],
                            "public.ticket_history", "critical"),
        # Fails open: with the setting unset or '', the policy compares tenant_id with itself.
        "rls_context_unset": (["DROP POLICY tenant_isolation ON enhancement_history",
                               "CREATE POLICY tenant_isolation ON enhancement_history USING (tenant_id = "
                               "COALESCE(NULLIF(current_setting('app.current_tenant_id', true), ''), tenant_id))"],
                              "public.enhancement_history", "critical"),
    }


# What else a fault truthfully implies (a disabled or owner-bypassed table leaks and fails open).
IMPLIED = {
    "rls_disabled": {"rls_tenant_leak", "rls_context_unset"},
    "rls_not_forced": {"rls_tenant_leak", "rls_context_unset"},
    "rls_policy_not_tenant_scoped": {"rls_tenant_leak", "rls_context_unset"},
    "rls_bypass_role": {"rls_tenant_leak", "rls_context_unset"},
}


@pytest.mark.parametrize("fault", sorted(_fault_cases()))
def test_each_rls_fault_is_detected_with_its_table(postgres_db, run_module, fault):
    server, dbname = postgres_db
    role = build_platform(server, dbname)
    statements, table, severity = _fault_cases()[fault]
    execute(server, dbname, *(statement.format(role=role) for statement in statements))
    before = snapshot(server, dbname)
    result = audit(run_module, server, dbname, role, tenants=["acme-corp", "globex"])
    assert snapshot(server, dbname) == before

    found = by_id(result)
    assert set(found) == {fault} | IMPLIED.get(fault, set())
    item = found[fault]
    assert item["severity"] == severity and item["evidence"]["role"] == role
    assert item["runbook"] == "database_connection_issues"
    assert "Never loosen" in item["resolution"]
    if table:
        assert item["evidence"]["tables"] == [table]
        assert table in item["summary"]
    else:
        assert item["evidence"]["attributes"] == ["BYPASSRLS"] and len(item["evidence"]["tables"]) == 3
    if fault in ("rls_tenant_leak", "rls_disabled"):
        detail = found["rls_tenant_leak"]["evidence"]["details"]["public.ticket_history"]
        assert detail["tenant_context"] == "acme-corp" and detail["visible_other_tenants"] == 10
    if fault == "rls_context_unset":
        detail = item["evidence"]["details"]["public.enhancement_history"]
        assert detail["visible_rows"] == {"never_set": 6, "reset_to_empty": 6}


def test_login_as_app_role_and_explicit_tables(postgres_db, run_module):
    server, dbname = postgres_db
    role = build_platform(server, dbname)
    execute(server, dbname, "ALTER TABLE ticket_history DISABLE ROW LEVEL SECURITY")
    result = audit(run_module, server, dbname, role, app_password=APP_PASSWORD, tables=["ticket_history"],
                   context_function="set_tenant_context")
    assert result["isolation"]["login"] == "app_role"
    assert [table["table"] for table in result["tables"]] == ["public.ticket_history"]
    assert set(by_id(result)) == {"rls_disabled", "rls_tenant_leak", "rls_context_unset"}
    assert APP_PASSWORD not in str(result)


def test_round_trips_do_not_grow_with_tables(postgres_db, run_module):
    server, dbname = postgres_db
    role = build_platform(server, dbname)
    small = audit(run_module, server, dbname, role, write_probe=True)
    statements = []
    for n in range(40):
        statements += [f"CREATE TABLE extra_{n} (id int, tenant_id text NOT NULL)",
                       f"INSERT INTO extra_{n} VALUES (1, 'acme-corp'), (2, 'globex')",
                       f"ALTER TABLE extra_{n} ENABLE ROW LEVEL SECURITY",
                       f"ALTER TABLE extra_{n} FORCE ROW LEVEL SECURITY",
                       f"CREATE POLICY tenant_isolation ON extra_{n} USING ({POLICY})",
                       f"GRANT SELECT, INSERT, UPDATE ON extra_{n} TO {role}"]
    execute(server, dbname, *statements)
    large = audit(run_module, server, dbname, role, write_probe=True)
    assert large["tables_audited"] == 43 and large["findings"] == [] and large["tables"] == []
    assert large["round_trips"] == small["round_trips"] <= 8
    assert large["statements"] == small["statements"]


def test_check_mode_runs_the_same_audit(postgres_db, run_module):
    server, dbname = postgres_db
    role = build_platform(server, dbname)
    execute(server, dbname, "ALTER TABLE tenants DISABLE ROW LEVEL SECURITY")
    result = audit(run_module, server, dbname, role, check=True)
    assert result["changed"] is False and "rls_disabled" in by_id(result)
    # By default only the tables a finding names are described in full.
    assert result["tables_audited"] == 3 and [table["table"] for table in result["tables"]] == ["public.tenants"]


@pytest.mark.parametrize("case, args, message", [
    ("missing role", {"app_role": "no_such_role"}, "audit RLS as role 'no_such_role': the application role does not exist"),
    ("no tenant column", {"tables": ["schema_migrations"]},
     "audit RLS of public.schema_migrations: no column 'tenant_id': not a tenant-scoped table"),
    ("unknown table", {"tables": ["tickets"]}, "audit RLS of tickets: no such table in database"),
    ("unknown database", {"login_db": "no_such_db"}, "the database does not exist"),
    ("wrong password", {"login_password": "wrong-pw-41"}, "authentication failed"),
    ("unknown context function", {"context_function": "set_tenant"}, "function set_tenant(unknown) does not exist"),
])
def test_bad_input_gives_one_clear_message(postgres_db, run_module, case, args, message):
    server, dbname = postgres_db
    role = build_platform(server, dbname)
    result = audit(run_module, server, dbname, role, expect_ok=False, **args)
    assert result["_event"] == "runner_on_failed", case
    assert message in result["msg"] and "Traceback" not in result["msg"]
    assert "\n" not in result["msg"].strip()
    assert "wrong-pw-41" not in str(result) and server.password not in str(result)


def test_hostile_tenant_id_is_only_data(postgres_db, run_module):
    server, dbname = postgres_db
    role = build_platform(server, dbname)
    before = snapshot(server, dbname)
    hostile = "x'; DROP TABLE ticket_history;--"
    result = audit(run_module, server, dbname, role, tenants=[hostile, "globex"], write_probe=True)
    assert result["isolation"]["tenant"] == hostile and result["findings"] == []
    assert snapshot(server, dbname) == before
    # Through set_tenant_context, the platform's own validation refuses it: one clear message.
    result = audit(run_module, server, dbname, role, expect_ok=False, tenants=[hostile],
                   context_function="set_tenant_context")
    assert "unknown tenant x'; DROP TABLE ticket_history;--" in result["msg"]
    assert snapshot(server, dbname) == before


def test_server_down_is_one_clear_message(postgres_server, run_module):
    port = postgres_server.port
    postgres_server.stop()
    run = run_module(MODULE, {"login_host": "127.0.0.1", "login_port": port, "login_password": "pw-never-shown",
                              "app_role": "aiagents_app", "connect_timeout": 2}, verbosity=3)
    assert run.rc != 0
    assert run.result["msg"].startswith(f"connect to postgresql://postgres@127.0.0.1:{port}/postgres: unreachable")
    assert "pw-never-shown" not in run.stdout


@pytest.mark.parametrize("args, message", [
    ({"statement_timeout": 10 ** 12}, "statement_timeout must be at most 3600, got 1000000000000"),
    ({"statement_timeout": -1}, "statement_timeout must be above 0, got -1"),
    ({"connect_timeout": -1}, "connect_timeout must be above 0, got -1"),
    ({"login_port": 65536}, "login_port must be at most 65535, got 65536"),
    ({"connect_params": {"cursor_factory": "x"}}, "connect_params.cursor_factory is not a libpq connection parameter"),
])
def test_out_of_range_input_is_refused_before_connecting(run_module, args, message):
    with silent_server() as server:
        run = within(0, run_module, MODULE, {"login_host": "127.0.0.1", "login_port": server.port,
                                             "app_role": "aiagents_app", **args})
        assert run.rc != 0, run.stdout
        msg = run.result["msg"]
        assert msg.startswith("audit RLS of postgresql://postgres@127.0.0.1:") and msg.endswith(message), msg
        assert server.connections == 0


def test_a_server_that_stops_answering_after_login_is_bounded_by_statement_timeout(run_module):
    with hung_postgres("trickle") as server:
        run = within(2 + 2 + 1 + MARGIN, run_module, MODULE, {
            "login_host": "127.0.0.1", "login_port": server.port, "app_role": "aiagents_app", "connect_timeout": 2,
            "statement_timeout": 2})
        assert run.rc != 0
        assert run.result["msg"] == (f"query postgresql://postgres@127.0.0.1:{server.port}/postgres: no answer to "
                                     "the catalog statement within statement_timeout (2 s)")
        assert task_seconds(run, MODULE) < 2 + 2 + 1 + MARGIN


def test_a_dsn_with_a_password_in_connect_params_is_masked_even_at_vvv(postgres_db, run_module):
    server, dbname = postgres_db
    role = build_platform(server, dbname)

    def dsn(password):
        return {"dsn": f"host=127.0.0.1 port={server.port} user=postgres password={password} dbname={dbname}"}

    good = run_module(MODULE, {"app_role": role, "connect_params": dsn(server.password),
                               "app_password": APP_PASSWORD}, verbosity=3)
    assert good.rc == 0 and good.result["findings"] == [], good.stdout
    assert server.password not in good.stdout and APP_PASSWORD not in good.stdout
    bad = run_module(MODULE, {"app_role": role, "connect_params": dsn("Wr0ng-dsn-pw")}, verbosity=3)
    assert bad.rc != 0 and "authentication failed" in bad.result["msg"]
    assert "Wr0ng-dsn-pw" not in bad.stdout and "Wr0ng-dsn-pw" not in str(bad.result)
