"""postgresql_activity_info against real PostgreSQL: saturation, idle leaks, long queries and lock chains made for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.sql
import pytest

from tests.harness.servers import PostgresServer, _postgres_bin, throwaway
from tests.harness.slow import MARGIN, hung_postgres, silent_server, task_seconds, within

MODULE = "aiagents.runbooks.postgresql_activity_info"
ROLE_PASSWORD = "worker-role-pw-93d1"


def make_role(server, dbname: str = "postgres") -> str:
    role = "worker_" + uuid.uuid4().hex[:8]
    conn = server.connect(dbname)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", [ROLE_PASSWORD])
    conn.close()
    return role


def connect_as(server, role: str, dbname: str = "postgres", **kwargs):
    return server.connect(dbname, user=role, password=ROLE_PASSWORD, application_name="test-worker", **kwargs)


def activity(run_module, server, dbname="postgres", verbosity=0, **args):
    params = {"login_host": "127.0.0.1", "login_port": server.port, "login_user": "postgres",
              "login_password": server.password, "login_db": dbname, **args}
    run = run_module(MODULE, params, verbosity=verbosity)
    assert run.rc == 0, run.stdout
    return run.result


def superuser_sql(server, dbname: str, *statements: str) -> list[tuple]:
    """Statements as the superuser, each committed; the rows of the last."""
    conn = server.connect(dbname)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def ids(result) -> list[str]:
    return sorted(item["id"] for item in result["findings"])


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


class Background:
    """A statement running on its own connection in a thread (a query that blocks or sleeps)."""

    def __init__(self, conn, statement: str) -> None:
        self.conn = conn
        self.pid = conn.get_backend_pid()
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(statement,), daemon=True)
        self.thread.start()

    def _run(self, statement: str) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute(statement)
        except Exception as exc:  # terminated or cancelled: the test inspects it
            self.error = exc

    def close(self) -> None:
        try:
            self.conn.cancel()
        except Exception:
            pass
        self.thread.join(10)
        self.conn.close()


def backend_state(server, pid: int):
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT state, wait_event_type, now() - query_start FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cur.fetchone()
    conn.close()
    return row


def test_healthy_server_reports_version_and_connections(postgres_server, run_module):
    role = make_role(postgres_server)
    held = [connect_as(postgres_server, role) for _n in range(3)]
    try:
        result = activity(run_module, postgres_server)
    finally:
        for conn in held:
            conn.close()
    assert result["reachable"] is True and result["changed"] is False and result["findings"] == []
    assert result["server_version"].startswith("15.") and result["server_version_num"] // 10000 == 15
    conn = result["connections"]
    assert (conn["max_connections"], conn["superuser_reserved_connections"], conn["reserved_connections"]) == (40, 3, 0)
    assert conn["usable"] == 37 and conn["used"] == 4  # three held, plus the module's own
    assert {"user": role, "total": 3, "states": {"idle": 3}} in conn["by_user"]
    assert result["round_trips"] == 1


def test_saturation_is_found_and_a_full_server_is_a_finding_not_a_crash(postgres_server, run_module):
    role = make_role(postgres_server)
    held = [connect_as(postgres_server, role) for _n in range(33)]
    try:
        result = activity(run_module, postgres_server, thresholds={"idle_leak_count": 30})
        saturated = next(item for item in result["findings"] if item["id"] == "db_connections_saturated")
        assert saturated["severity"] == "high"  # 34 of 37: over 90 %, not full
        assert (saturated["evidence"]["used"], saturated["evidence"]["usable"]) == (34, 37)
        assert saturated["evidence"]["by_user"][0] == {"user": role, "total": 33, "states": {"idle": 33}}
        leak = next(item for item in result["findings"] if item["id"] == "db_idle_connection_leak")
        assert leak["evidence"]["user"] == role and leak["evidence"]["idle"] == 33
        assert leak["evidence"]["applications"] == {"test-worker": 33}

        held += [connect_as(postgres_server, role) for _n in range(4)]  # every usable slot taken
        with pytest.raises(psycopg2.OperationalError):
            connect_as(postgres_server, role)
        # As an ordinary role the module cannot get in either: that is the finding.
        blocked = activity(run_module, postgres_server, login_user=role, login_password=ROLE_PASSWORD)
        assert blocked["reachable"] is False and ids(blocked) == ["db_connections_saturated"]
        assert blocked["findings"][0]["severity"] == "critical"
        assert "reserved" in blocked["findings"][0]["evidence"]["error"]
        # A superuser still gets a reserved slot and sees the full picture.
        full = activity(run_module, postgres_server)
        saturated = next(item for item in full["findings"] if item["id"] == "db_connections_saturated")
        assert saturated["severity"] == "critical" and saturated["evidence"]["used"] == 38
    finally:
        for conn in held:
            conn.close()


def test_long_query_is_found_with_what_terminate_needs(postgres_db, run_module):
    server, dbname = postgres_db
    role = make_role(server, dbname)
    sleeper = Background(connect_as(server, role, dbname), "SELECT pg_sleep(30) /* stuck-report */")
    short = Background(connect_as(server, role, dbname), "SELECT pg_sleep(30)")
    try:
        wait_until(lambda: (backend_state(server, sleeper.pid) or [None])[0] == "active")
        time.sleep(1.2)
        result = activity(run_module, server, dbname, thresholds={"long_query_seconds": 1}, query_chars=20)
        long_ones = [item for item in result["findings"] if item["id"] == "db_long_running_query"]
        assert sorted(item["evidence"]["pid"] for item in long_ones) == sorted([sleeper.pid, short.pid])
        evidence = next(item["evidence"] for item in long_ones if item["evidence"]["pid"] == sleeper.pid)
        assert evidence["user"] == role and evidence["query"] == "SELECT pg_sleep(30) "  # cut to 20 chars
        assert evidence["query_seconds"] > 1 and evidence["query_start"].startswith("20")
        assert f"pid={sleeper.pid}" in next(item["resolution"] for item in long_ones if item["evidence"]["pid"] == sleeper.pid)
        assert long_ones[0]["severity"] == "medium"
        # Under the default threshold of 5 minutes they are not long.
        assert "db_long_running_query" not in ids(activity(run_module, server, dbname))
    finally:
        sleeper.close()
        short.close()


def test_lock_chain_and_idle_transaction_are_found(postgres_db, run_module):
    server, dbname = postgres_db
    role = make_role(server, dbname)
    setup = server.connect(dbname)
    setup.autocommit = True
    with setup.cursor() as cur:
        cur.execute("CREATE TABLE jobs (id int PRIMARY KEY, state text); INSERT INTO jobs VALUES (1, 'new')")
        cur.execute(f"GRANT ALL ON jobs TO {role}")
    setup.close()
    holder = connect_as(server, role, dbname)
    with holder.cursor() as cur:
        cur.execute("UPDATE jobs SET state = 'held' WHERE id = 1")  # psycopg2 leaves the transaction open
    waiter = Background(connect_as(server, role, dbname), "UPDATE jobs SET state = 'waiting' WHERE id = 1")
    migration = Background(connect_as(server, role, dbname), "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
    try:
        for pid in (waiter.pid, migration.pid):
            wait_until(lambda pid=pid: (backend_state(server, pid) or [None, None])[1] == "Lock")
        time.sleep(1.0)
        result = activity(run_module, server, dbname, thresholds={"lock_wait_seconds": 0.5,
                                                                  "idle_in_transaction_seconds": 0.5})
        chains = [item for item in result["findings"] if item["id"] == "db_blocking_locks"]
        assert len(chains) == 1
        evidence = chains[0]["evidence"]
        assert evidence["blocker_pid"] == holder.get_backend_pid()
        assert evidence["blocked_pids"] == sorted([waiter.pid, migration.pid])
        assert evidence["blocker"]["state"] == "idle in transaction"
        assert evidence["longest_wait_seconds"] >= 0.5
        by_pid = {item["pid"]: item["blocked_by"] for item in evidence["blocked"]}
        assert by_pid[waiter.pid] == [holder.get_backend_pid()]
        assert set(by_pid[migration.pid]) == {holder.get_backend_pid(), waiter.pid}
        idle = [item for item in result["findings"] if item["id"] == "db_idle_in_transaction"]
        assert [item["evidence"]["pid"] for item in idle] == [holder.get_backend_pid()]
        assert chains[0]["severity"] == "high"
        # Waits shorter than the default 30 s are normal life, not a finding.
        assert "db_blocking_locks" not in ids(activity(run_module, server, dbname))
    finally:
        holder.rollback()
        waiter.close()
        migration.close()
        holder.close()


def test_idle_leak_threshold_is_per_user(postgres_db, run_module):
    server, dbname = postgres_db
    leaky, tidy = make_role(server, dbname), make_role(server, dbname)
    held = [connect_as(server, leaky, dbname) for _n in range(6)] + [connect_as(server, tidy, dbname) for _n in range(2)]
    try:
        result = activity(run_module, server, dbname, thresholds={"idle_leak_count": 5})
        leaks = [item for item in result["findings"] if item["id"] == "db_idle_connection_leak"]
        assert [item["evidence"]["user"] for item in leaks] == [leaky]
        assert leaks[0]["evidence"]["idle"] == 6 and leaks[0]["severity"] == "medium"
    finally:
        for conn in held:
            conn.close()


def test_a_page_failing_its_checksum_is_suspected_corruption(run_module):
    """A real torn page: written behind the server's back, then read."""
    with throwaway(lambda workdir: PostgresServer(workdir, checksums=True), "postgres-checksums") as server:
        dbname = server.create_database("ledger")
        [(path,)] = superuser_sql(server, dbname, "CREATE TABLE entries AS SELECT g AS id, repeat('x', 200) AS note "
                                  "FROM generate_series(1, 100) g", "CHECKPOINT", "SELECT pg_relation_filepath('entries')")
        relation = server.datadir / path
        healthy = activity(run_module, server, dbname)
        assert healthy["integrity"] == {"data_checksums": True, "checksum_failures": []} and healthy["findings"] == []

        server.stop()
        with open(relation, "r+b") as page:
            page.seek(4096)
            page.write(b"\xff" * 64)
        server.start()
        conn = server.connect(dbname)
        with pytest.raises(psycopg2.errors.DataCorrupted), conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM entries")
        conn.close()

        result = activity(run_module, server, dbname)
        assert [(item["id"], item["severity"]) for item in result["findings"]] == [("db_corruption_suspected", "critical")]
        [failure] = result["integrity"]["checksum_failures"]
        assert (failure["database"], failure["failures"]) == ("ledger", 1) and failure["last_failure"]
        assert result["round_trips"] == 1


def test_server_down_is_a_finding(postgres_server, run_module):
    port = postgres_server.port
    postgres_server.stop()
    result = activity(run_module, postgres_server, connect_timeout=2)
    assert result["reachable"] is False and ids(result) == ["db_unreachable"]
    item = result["findings"][0]
    assert item["severity"] == "critical" and item["evidence"]["port"] == port
    assert "Connection refused" in item["evidence"]["error"] or "refused" in item["summary"]


def test_wrong_password_is_a_finding_and_never_printed(postgres_cluster, run_module):
    result = activity(run_module, postgres_cluster, login_password="Wr0ng-but-secret-pw", verbosity=3)
    assert result["reachable"] is False and ids(result) == ["db_auth_failed"]
    assert "password authentication failed" in result["findings"][0]["summary"]


def test_password_never_reaches_output_even_at_vvv(postgres_cluster, run_module):
    params = {"login_host": "127.0.0.1", "login_port": postgres_cluster.port, "login_user": "postgres",
              "login_password": postgres_cluster.password}
    run = run_module(MODULE, params, verbosity=3)
    assert run.rc == 0 and run.result["reachable"] is True
    assert postgres_cluster.password not in run.stdout
    bad = run_module(MODULE, {**params, "login_password": "Wr0ng-but-secret-pw"}, verbosity=3)
    assert "Wr0ng-but-secret-pw" not in bad.stdout


def test_unknown_database_is_a_finding(postgres_cluster, run_module):
    result = activity(run_module, postgres_cluster, dbname="no_such_db")
    assert ids(result) == ["db_database_missing"]
    assert "no_such_db" in result["findings"][0]["summary"]


# What a write of any kind would change: the catalog (shared and of the database), sequences, settings
# (ALTER SYSTEM, per role/database), statistics resets, and the next transaction id - nothing that writes
# gets by without one, not even a temporary table.
SNAPSHOT_SQL = {
    "relations": "SELECT n.nspname, c.relname, c.relkind::text, c.relpersistence::text, c.relowner::regrole::text,"
                 " coalesce(c.relacl::text, '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                 " ORDER BY 1, 2",
    "columns": "SELECT attrelid::regclass::text, attname, atttypid::regtype::text, attnotnull FROM pg_attribute"
               " WHERE attnum > 0 AND NOT attisdropped"
               " AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) ORDER BY 1, 2",
    "functions": "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace NOT IN"
                 " ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) ORDER BY 1",
    "roles": "SELECT rolname, rolsuper, rolcanlogin, rolconnlimit, coalesce(rolvaliduntil::text, '') FROM pg_roles"
             " ORDER BY 1",
    "databases": "SELECT datname, datallowconn, datconnlimit FROM pg_database ORDER BY 1",
    "extensions": "SELECT extname, extversion FROM pg_extension ORDER BY 1",
    "role_settings": "SELECT setdatabase, setrole, setconfig::text FROM pg_db_role_setting ORDER BY 1, 2",
    "file_settings": "SELECT sourcefile, name, setting FROM pg_file_settings ORDER BY 1, 2, 3",
    "sequences": "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
    "stats_reset": "SELECT datname, coalesce(stats_reset::text, '') FROM pg_stat_database"
                   " UNION ALL SELECT 'bgwriter', stats_reset::text FROM pg_stat_bgwriter ORDER BY 1",
    "next_xid": "SELECT pg_snapshot_xmax(pg_current_snapshot())::text",
}


def snapshot(server, dbname: str) -> dict:
    conn = server.connect(dbname)
    conn.autocommit = True
    taken = {}
    with conn.cursor() as cur:
        for name, statement in SNAPSHOT_SQL.items():
            cur.execute(statement)
            taken[name] = cur.fetchall()
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        for (table,) in cur.fetchall():
            cur.execute(psycopg2.sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t"
            ).format(psycopg2.sql.Identifier(table)))
            taken[f"rows of {table}"] = cur.fetchone()
    conn.close()
    return taken


@pytest.fixture
def quiet_postgres():
    """A server of this test's own with autovacuum off: nothing but the test writes to it."""
    with throwaway(lambda workdir: PostgresServer(workdir, {"autovacuum": "off"}), "postgres-quiet") as server:
        yield server


def test_the_module_changes_nothing(quiet_postgres, run_module):
    """Read-only: with every finding it can make present, catalog, rows and transaction ids stay as they were."""
    server = quiet_postgres
    dbname = server.create_database("shop")
    role = make_role(server, dbname)
    setup = server.connect(dbname)
    setup.autocommit = True
    with setup.cursor() as cur:
        cur.execute("CREATE TABLE jobs (id serial PRIMARY KEY, state text NOT NULL)")
        cur.execute("INSERT INTO jobs (state) SELECT 'new' FROM generate_series(1, 50)")
        cur.execute("CREATE TABLE audit (at timestamptz DEFAULT now(), note text)")
        cur.execute("INSERT INTO audit (note) VALUES ('one'), ('two')")
        cur.execute(f"GRANT ALL ON jobs TO {role}")
    setup.close()
    holder = connect_as(server, role, dbname)
    with holder.cursor() as cur:
        cur.execute("UPDATE jobs SET state = 'held' WHERE id = 1")  # left open: idle in transaction, a blocker
    waiter = Background(connect_as(server, role, dbname), "UPDATE jobs SET state = 'waiting' WHERE id = 1")
    sleeper = Background(connect_as(server, role, dbname), "SELECT pg_sleep(60)")
    idle = [connect_as(server, role, dbname) for _n in range(3)]
    try:
        wait_until(lambda: (backend_state(server, waiter.pid) or [None, None])[1] == "Lock")
        wait_until(lambda: (backend_state(server, sleeper.pid) or [None])[0] == "active")
        time.sleep(0.6)
        before = snapshot(server, dbname)
        result = activity(run_module, server, dbname, thresholds={
            "long_query_seconds": 0.5, "lock_wait_seconds": 0.5, "idle_in_transaction_seconds": 0.5,
            "idle_leak_count": 2})
        after = snapshot(server, dbname)

        assert ids(result) == ["db_blocking_locks", "db_idle_connection_leak", "db_idle_in_transaction",
                               "db_long_running_query", "db_long_running_query"]  # it looked at everything
        assert result["changed"] is False
        assert before["rows of jobs"][0] == 50 and before["rows of audit"][0] == 2
        assert {name: after[name] for name in before if after[name] != before[name]} == {}
        assert after.keys() == before.keys()
        # Nor did it signal anyone: every session still runs, or waits, as it did.
        assert backend_state(server, sleeper.pid)[0] == "active" and sleeper.error is None
        assert backend_state(server, waiter.pid)[1] == "Lock" and waiter.error is None
    finally:
        holder.rollback()
        for conn in idle:
            conn.close()
        waiter.close()
        sleeper.close()
        holder.close()


# --- Hardening: every timeout bounds the whole run, no secret anywhere, a sentence for every bad input ---


def test_connect_timeout_bounds_the_whole_connect_even_across_a_host_list(run_module):
    """libpq restarts connect_timeout for every host: four silent hosts took 4 x 2 s, and a negative one forever."""
    with silent_server() as server:
        params = {"login_host": ",".join(["127.0.0.1"] * 4), "login_port": server.port, "login_password": "x-pw-x",
                  "connect_timeout": 2}
        run = within(2 + MARGIN, run_module, MODULE, params)
        assert run.rc == 0, run.stdout
        assert run.result["reachable"] is False and ids(run.result) == ["db_unreachable"]
        assert "timed out: no answer within connect_timeout (2 s)" in run.result["findings"][0]["summary"]
        assert server.connections == 1  # gave up during the first host: the deadline is for all of them
        assert task_seconds(run, MODULE) < 2 + MARGIN


@pytest.mark.parametrize("after_login", ["silent", "trickle"])
def test_a_server_that_stops_answering_after_login_is_bounded_by_statement_timeout(run_module, after_login):
    with hung_postgres(after_login) as server:
        params = {"login_host": "127.0.0.1", "login_port": server.port, "login_password": "x-pw-x",
                  "connect_timeout": 2, "statement_timeout": 2}
        run = within(2 + 2 + 1 + MARGIN, run_module, MODULE, params)
        assert run.rc == 0, run.stdout
        assert run.result["reachable"] is False and ids(run.result) == ["db_unreachable"]
        assert "no answer to the activity statement within statement_timeout (2 s)" in \
            run.result["findings"][0]["summary"]
        assert task_seconds(run, MODULE) < 2 + 2 + 1 + MARGIN


@pytest.mark.parametrize("args, message", [
    ({"connect_timeout": -1}, "connect_timeout must be above 0, got -1"),
    ({"connect_timeout": 0}, "connect_timeout must be above 0, got 0"),
    ({"login_port": 70000}, "login_port must be at most 65535, got 70000"),
    ({"statement_timeout": 10 ** 12}, "statement_timeout must be at most 3600"),
    ({"query_chars": -1}, "query_chars must be at least 0, got -1"),
    ({"thresholds": {"idle_leak_count": 0}}, "thresholds.idle_leak_count must be at least 1, got 0"),
    ({"thresholds": {"long_query_seconds": "inf"}}, "thresholds.long_query_seconds must be a finite number"),
    ({"thresholds": {"saturation_ratio": -1}}, "thresholds.saturation_ratio must be at least 0"),
])
def test_out_of_range_input_is_refused_before_connecting(run_module, args, message):
    with silent_server() as server:
        run = within(0, run_module, MODULE, {"login_host": "127.0.0.1", "login_port": server.port, **args})
        assert run.rc != 0, run.stdout
        msg = run.result["msg"]
        assert msg.startswith("read activity of postgresql://postgres@127.0.0.1:") and message in msg, msg
        assert "\n" not in msg.strip() and "Traceback" not in msg
        assert server.connections == 0  # refused before anything was tried


def test_a_bad_statement_timeout_is_invalid_never_timed_out(postgres_cluster, run_module):
    params = {"login_host": "127.0.0.1", "login_port": postgres_cluster.port, "login_password": postgres_cluster.password}
    run = run_module(MODULE, {**params, "statement_timeout": "abc"})
    assert run.rc != 0 and "statement_timeout" in run.result["msg"] and "timed out" not in run.result["msg"]
    # Set around the option, through libpq's options: the server's refusal is named, not called a timeout.
    run = run_module(MODULE, {**params, "connect_params": {"options": "-c statement_timeout=abc"}})
    assert run.rc != 0, run.stdout
    assert "invalid statement_timeout" in run.result["msg"] and "timed out" not in run.result["msg"]


@pytest.mark.parametrize("where", ["password", "dsn"])
def test_a_password_in_connect_params_is_masked_everywhere_even_at_vvv(postgres_cluster, run_module, where):
    server = postgres_cluster
    params = {"login_host": "127.0.0.1", "login_port": server.port, "login_user": "postgres"}

    def connect_params(password):
        if where == "password":
            return {"password": password}
        return {"dsn": f"postgresql://postgres:{password}@127.0.0.1:{server.port}/postgres"}

    good = run_module(MODULE, {**params, "connect_params": connect_params(server.password)}, verbosity=3)
    assert good.rc == 0 and good.result["reachable"] is True, good.stdout
    assert server.password not in good.stdout and server.password not in str(good.result)
    assert "module_args" in good.result["invocation"]  # what -vvv shows, with the password masked
    bad = run_module(MODULE, {**params, "connect_params": connect_params("Wr0ng-in-params-pw")}, verbosity=3)
    assert bad.rc == 0 and ids(bad.result) == ["db_auth_failed"], bad.stdout
    assert "Wr0ng-in-params-pw" not in bad.stdout and "Wr0ng-in-params-pw" not in str(bad.result)


# One pg_xact segment holds the commit status of 2^20 transactions; pg_resetwal's documentation: a safe next
# transaction id is the segment after the largest file in pg_xact, times 0x100000 - with that segment present.
XACT_SEGMENT_XIDS = 0x100000


def test_transaction_ids_near_wraparound_are_a_finding(tmp_path, run_module):
    """A real cluster whose transaction counter pg_resetwal moved 1.2 billion on: every database's oldest
    unfrozen id is that old. Autovacuum would freeze them at once (they pass autovacuum_freeze_max_age), so it
    is held off for the test - as a cluster whose vacuum cannot keep up."""
    settings = {"autovacuum": "off", "autovacuum_freeze_max_age": "2000000000"}
    with throwaway(lambda workdir: PostgresServer(workdir, settings=settings), "postgres-xid", end="stop") as server:
        assert "db_xid_wraparound" not in [f["id"] for f in activity(run_module, server)["findings"]]
        server.stop()
        segment = 1200
        xact = server.datadir / "pg_xact" / f"{segment:04X}"
        xact.write_bytes(bytes(32 * 8192))
        if os.geteuid() == 0:
            shutil.chown(xact, "postgres", "postgres")
        subprocess.run([_postgres_bin("pg_resetwal"), "-x", str(segment * XACT_SEGMENT_XIDS), str(server.datadir)],
                       check=True, capture_output=True, **server._as_user)  # pylint: disable=protected-access
        server.start()
        result = activity(run_module, server)
        (found,) = [f for f in result["findings"] if f["id"] == "db_xid_wraparound"]
        assert found["severity"] == "high" and found["evidence"]["age"] > 1_200_000_000
        assert found["evidence"]["left"] == 2 ** 31 - found["evidence"]["age"]
        assert result["transaction_ids"]["autovacuum_freeze_max_age"] == 2_000_000_000
        # The resolution: a database-wide VACUUM (FREEZE) in each database, template0 let in for it.
        superuser_sql(server, "postgres", "ALTER DATABASE template0 ALLOW_CONNECTIONS true")
        for database in ("postgres", "template1", "template0"):
            superuser_sql(server, database, "VACUUM (FREEZE)")
        superuser_sql(server, "postgres", "ALTER DATABASE template0 ALLOW_CONNECTIONS false")
        after = activity(run_module, server)
        assert "db_xid_wraparound" not in [f["id"] for f in after["findings"]]
        assert after["transaction_ids"]["oldest"]["age"] < 1_000_000
