"""Benchmark: postgresql_rls_info on 500 tenant tables and 1,000 tenants, through Ansible.

Starts a throwaway PostgreSQL, builds the platform's RLS schema at scale (500 tables with a
tenant_id and its index, RLS enabled and forced, the tenant policy, a non-owner application
role, one small row per tenant per table), then measures in the same run, 5 times each:

  ping    ansible localhost -m ansible.builtin.ping                   (Ansible's own floor)
  audit   ansible localhost -m aiagents.runbooks.postgresql_rls_info   (catalog audit + isolation proof)
  write   the same with write_probe=true                               (updates/inserts, rolled back)

and prints the median wall times against the issue's 2 s target and the round trips the module
reports (which must not grow with the number of tables). Usage:

    .venv/bin/python benchmarks/postgresql_rls.py [--tables 500] [--tenants 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness.servers import PostgresServer, make_workdir  # noqa: E402  (repo path set above)

DBNAME = "ai_agents"
APP_ROLE = "aiagents_app"
TARGET_SECONDS = 2.0
POLICY = "tenant_id = COALESCE(current_setting('app.current_tenant_id', true), '')"


def build(server: PostgresServer, tables: int, tenants: int) -> float:
    started = time.monotonic()
    server.create_database(DBNAME)
    conn = server.connect(DBNAME)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        cur.execute("CREATE TABLE tenants (tenant_id text PRIMARY KEY, name text NOT NULL)")
        cur.execute("INSERT INTO tenants SELECT 'tenant-' || lpad(n::text, 4, '0'), 'Tenant ' || n "
                    "FROM generate_series(1, %s) n", [tenants])
        # One DO block builds every table server-side: one round trip, not thousands.
        cur.execute(f"""
            DO $build$
            BEGIN
              FOR n IN 1..{int(tables) - 1} LOOP
                EXECUTE format('CREATE TABLE %I (id int NOT NULL, tenant_id text NOT NULL, v smallint)', 'tenant_table_' || n);
                EXECUTE format('INSERT INTO %I SELECT row_number() OVER (), tenant_id, 1 FROM tenants', 'tenant_table_' || n);
                -- Every platform table is read per tenant, so each has its tenant_id index.
                EXECUTE format('CREATE INDEX ON %I (tenant_id)', 'tenant_table_' || n);
              END LOOP;
            END
            $build$""")
        cur.execute(f"""
            DO $rls$
            DECLARE t text;
            BEGIN
              FOR t IN SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                       WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attname = 'tenant_id'
              LOOP
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
                EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
                EXECUTE format('CREATE POLICY tenant_isolation ON %I USING ({POLICY.replace("'", "''")})', t);
              END LOOP;
            END
            $rls$""")
        cur.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
        cur.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
        cur.execute("ANALYZE")
        cur.execute("SELECT count(*), (SELECT count(*) FROM tenants) FROM pg_class "
                    "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relrowsecurity")
        counted = cur.fetchone()
    conn.close()
    assert counted == (tables, tenants), counted
    return time.monotonic() - started


def ansible(module: str, args: dict | None) -> tuple[float, dict]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = ["ansible", "localhost", "-m", module]
    if args is not None:
        command += ["-a", json.dumps(args)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=REPO)
    wall = time.monotonic() - started
    out = done.stdout
    # ansible.cfg's profile_tasks prints a timing line before the JSON document.
    document, _end = json.JSONDecoder().raw_decode(out[out.find("{"):])
    result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if done.returncode != 0:
        sys.exit(f"{module} failed: {result.get('msg')}")
    return wall, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    workdir = make_workdir("bench-pg")
    server = PostgresServer(workdir)
    server.start()
    try:
        built = build(server, args.tables, args.tenants)
        print(f"postgresql_rls_info: {args.tables} tenant tables (RLS enabled+forced, tenant policy), "
              f"{args.tenants:,} tenants, {(args.tables - 1) * args.tenants + args.tenants:,} rows; built in {built:.1f} s")
        audit_args = {"login_host": "127.0.0.1", "login_port": server.port, "login_user": server.superuser,
                      "login_password": server.password, "login_db": DBNAME, "app_role": APP_ROLE}
        rows = {"ping": [], "audit": [], "write": []}
        results = {}
        for _run in range(args.runs):
            rows["ping"].append(ansible("ansible.builtin.ping", None)[0])
            wall, results["audit"] = ansible("aiagents.runbooks.postgresql_rls_info", audit_args)
            rows["audit"].append(wall)
            wall, results["write"] = ansible("aiagents.runbooks.postgresql_rls_info", {**audit_args, "write_probe": True})
            rows["write"].append(wall)
        for key in ("audit", "write"):
            result = results[key]
            assert result["tables_audited"] == args.tables and result["isolation"]["performed"], key
            assert result["findings"] == [], [item["id"] for item in result["findings"]]
        small_wall, small = ansible("aiagents.runbooks.postgresql_rls_info", {**audit_args, "tables": ["tenants", "tenant_table_1"]})

        ping = statistics.median(rows["ping"])
        print(f"  {'':<44} {'median':>8} {'min':>7} {'max':>7}  round trips  db side")
        labels = {"ping": "ansible localhost -m ansible.builtin.ping",
                  "audit": "postgresql_rls_info (audit + isolation proof)",
                  "write": "  + write_probe (rolled back)"}
        for key, label in labels.items():
            walls = rows[key]
            extra = (f"  {results[key]['round_trips']:>11}  {results[key]['audit_seconds']:6.2f} s" if key in results else "")
            print(f"  {label:<44} {statistics.median(walls):7.2f}s {min(walls):6.2f}s {max(walls):6.2f}s{extra}")
        print(f"  round trips with 2 tables: {small['round_trips']} ({small_wall:.2f} s); with {args.tables}: "
              f"{results['audit']['round_trips']} - {', '.join(results['audit']['statements'])}")
        audit = statistics.median(rows["audit"])
        print("targets:")
        checks = [
            (f"full audit through Ansible <= {TARGET_SECONDS:.0f} s", f"{audit:.2f} s", audit <= TARGET_SECONDS),
            ("round trips do not grow with tables", f"{small['round_trips']} -> {results['audit']['round_trips']}",
             small["round_trips"] == results["audit"]["round_trips"]),
        ]
        for label, value, met in checks:
            print(f"  {label:<46} {value:>12}  {'met' if met else 'MISSED'}")
        print(f"  (the module's own share: {audit - ping:.2f} s above the empty ping)")
        return 0
    finally:
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
