"""postgresql_backend_terminate: exactly the diagnosed backend goes, guarded, idempotent, check mode honest."""

from __future__ import annotations


import psycopg2
import psycopg2.extras
import pytest

from tests.harness.servers import PidNamespacePostgresServer, throwaway
from tests.harness.slow import MARGIN, hung_postgres, silent_server, task_seconds, within
from tests.integration.test_postgresql_activity_info import (
    ROLE_PASSWORD,
    Background,
    backend_state,
    connect_as,
    make_role,
    wait_until,
)

MODULE = "aiagents.runbooks.postgresql_backend_terminate"
ACTIVITY = "aiagents.runbooks.postgresql_activity_info"


def login(server, dbname="postgres") -> dict:
    return {"login_host": "127.0.0.1", "login_port": server.port, "login_user": "postgres",
            "login_password": server.password, "login_db": dbname}


def terminate(run_module, server, check=False, verbosity=0, **args):
    return run_module(MODULE, {**login(server), **args}, check=check, verbosity=verbosity)


def diagnosed(run_module, server, dbname, pid: int) -> dict:
    """pid and query_start of a long query, as postgresql_activity_info reports them."""
    run = run_module(ACTIVITY, {**login(server, dbname), "thresholds": {"long_query_seconds": 0.2}})
    assert run.rc == 0, run.stdout
    return next(item["evidence"] for item in run.result["findings"]
                if item["id"] == "db_long_running_query" and item["evidence"]["pid"] == pid)


@pytest.fixture
def sleepers(postgres_db):
    server, dbname = postgres_db
    role = make_role(server, dbname)
    started = [Background(connect_as(server, role, dbname), "SELECT pg_sleep(60)") for _n in range(2)]
    for sleeper in started:
        wait_until(lambda sleeper=sleeper: (backend_state(server, sleeper.pid) or [None])[0] == "active")
    yield server, dbname, role, started
    for sleeper in started:
        sleeper.close()


def test_check_then_terminate_then_noop(sleepers, run_module):
    server, dbname, role, (target, bystander) = sleepers
    evidence = diagnosed(run_module, server, dbname, target.pid)
    args = {"pid": target.pid, "query_start": evidence["query_start"]}

    checked = terminate(run_module, server, check=True, **args)
    assert checked.rc == 0, checked.stdout
    assert (checked.result["changed"], checked.result["status"]) == (True, "would_terminate")
    assert backend_state(server, target.pid)[0] == "active"  # check mode touched nothing

    done = terminate(run_module, server, **args)
    assert done.rc == 0, done.stdout
    assert (done.result["changed"], done.result["status"]) == (True, "terminated")
    assert done.result["backend"]["user"] == role and done.result["backend"]["pid"] == target.pid
    assert backend_state(server, target.pid) is None
    target.thread.join(5)
    assert isinstance(target.error, psycopg2.OperationalError)  # the client saw its connection end
    assert backend_state(server, bystander.pid)[0] == "active" and bystander.error is None  # exactly one went

    again = terminate(run_module, server, **args)
    assert again.rc == 0 and (again.result["changed"], again.result["status"]) == (False, "gone")
    assert "nothing to do" in again.result["msg"]
    assert terminate(run_module, server, check=True, **args).result["changed"] is False


def test_a_different_query_on_the_same_pid_is_left_alone(sleepers, run_module):
    server, dbname, _role, (target, _bystander) = sleepers
    evidence = diagnosed(run_module, server, dbname, target.pid)
    stale = evidence["query_start"].replace(evidence["query_start"][:4], str(int(evidence["query_start"][:4]) - 1), 1)
    run = terminate(run_module, server, pid=target.pid, query_start=stale)
    assert run.rc == 0 and (run.result["changed"], run.result["status"]) == (False, "query_changed")
    assert backend_state(server, target.pid)[0] == "active"


def test_refuses_superuser_backends(postgres_cluster, run_module):
    sleeper = Background(postgres_cluster.connect(), "SELECT pg_sleep(60)")
    try:
        wait_until(lambda: (backend_state(postgres_cluster, sleeper.pid) or [None])[0] == "active")
        run = terminate(run_module, postgres_cluster, pid=sleeper.pid, query_start="2000-01-01T00:00:00Z")
        assert run.rc != 0
        assert run.result["msg"] == f"refuse to terminate backend {sleeper.pid}: it belongs to superuser 'postgres'"
        assert backend_state(postgres_cluster, sleeper.pid)[0] == "active"
    finally:
        sleeper.close()


def test_refuses_replication_backends(postgres_cluster, run_module):
    conn = psycopg2.connect(connection_factory=psycopg2.extras.PhysicalReplicationConnection, connect_timeout=5,
                            **postgres_cluster.dsn())
    try:
        pid = conn.get_backend_pid()
        wait_until(lambda: backend_state(postgres_cluster, pid) is not None)
        run = terminate(run_module, postgres_cluster, pid=pid, query_start="2000-01-01T00:00:00Z")
        assert run.rc != 0
        assert run.result["msg"].startswith(f"refuse to terminate backend {pid}: it is a walsender backend")
        assert backend_state(postgres_cluster, pid) is not None
    finally:
        conn.close()


@pytest.fixture
def pid_namespace_postgres():
    """A server whose next backend pid is known in advance (see PidNamespacePostgresServer)."""
    with throwaway(PidNamespacePostgresServer, "postgres-pidns", end="stop") as server:
        yield server


def test_refuses_its_own_backend(pid_namespace_postgres, run_module):
    server = pid_namespace_postgres
    role = make_role(server)
    bystander = Background(connect_as(server, role), "SELECT pg_sleep(60)")
    try:
        wait_until(lambda: (backend_state(server, bystander.pid) or [None])[0] == "active")
        own = server.next_backend_pid()  # the module's connection is the next one the server sees
        run = terminate(run_module, server, pid=own, query_start="2000-01-01T00:00:00Z")
        assert run.rc != 0, run.stdout
        assert run.result["msg"] == f"refuse to terminate backend {own}: it is this module's own connection"

        # That backend really was the module's: the server logged it as the module's application name...
        wait_until(lambda: any("disconnection:" in line for line in server.log_of(own)))
        authorized = [line for line in server.log_of(own) if "connection authorized:" in line]
        assert len(authorized) == 1 and "application_name=aiagents.runbooks" in authorized[0], server.log_of(own)
        # ...and nothing was terminated: not the module's connection (it closed itself), not the bystander.
        assert "terminating connection due to administrator command" not in server.log.read_text()
        assert backend_state(server, bystander.pid)[0] == "active" and bystander.error is None
    finally:
        bystander.close()


@pytest.mark.parametrize("args, message", [
    ({"pid": -5, "query_start": "2026-01-01T00:00:00Z"}, "terminate backend -5: pid must be a positive process id"),
    ({"pid": "abc", "query_start": "2026-01-01T00:00:00Z"}, "argument 'pid' is of type"),
    ({"pid": 1, "query_start": "not a time"}, "terminate backend 1: invalid input syntax for type timestamp"),
])
def test_bad_input_gives_one_clear_message(postgres_cluster, run_module, args, message):
    run = terminate(run_module, postgres_cluster, **args)
    assert run.rc != 0 and message in run.result["msg"] and "Traceback" not in run.result["msg"]


def test_unknown_pid_is_a_noop(postgres_cluster, run_module):
    run = terminate(run_module, postgres_cluster, pid=4194000, query_start="2026-01-01T00:00:00Z")
    assert run.rc == 0 and (run.result["changed"], run.result["status"]) == (False, "gone")


def test_password_never_reaches_output_even_at_vvv(sleepers, run_module):
    server, dbname, role, (target, _bystander) = sleepers
    evidence = diagnosed(run_module, server, dbname, target.pid)
    # Log in as the backend's own role (allowed to signal its own backends), password at -vvv.
    run = run_module(MODULE, {**login(server), "login_user": role, "login_password": ROLE_PASSWORD,
                              "pid": target.pid, "query_start": evidence["query_start"]}, verbosity=3)
    assert run.rc == 0 and run.result["status"] == "terminated"
    assert ROLE_PASSWORD not in run.stdout and server.password not in run.stdout


@pytest.mark.parametrize("args, message", [
    ({"wait_seconds": -1}, "wait_seconds must be at least 0, got -1"),
    ({"wait_seconds": "inf"}, "wait_seconds must be a finite number"),
    ({"wait_seconds": 601}, "wait_seconds must be at most 600"),
    ({"pid": 2 ** 31}, "pid must be at most 2147483647"),
    ({"statement_timeout": 0}, "statement_timeout must be above 0, got 0"),
    ({"connect_timeout": -1}, "connect_timeout must be above 0, got -1"),
    ({"login_port": 0}, "login_port must be at least 1, got 0"),
])
def test_out_of_range_input_is_refused_before_connecting(run_module, args, message):
    with silent_server() as server:
        run = within(0, run_module, MODULE, {"login_host": "127.0.0.1", "login_port": server.port, "pid": 4242,
                                             "query_start": "2026-01-01T00:00:00Z", **args})
        assert run.rc != 0, run.stdout
        msg = run.result["msg"]
        assert msg.startswith(f"terminate backend {args.get('pid', 4242)}: ") and message in msg, msg
        assert "\n" not in msg.strip() and "Traceback" not in msg
        assert server.connections == 0


def test_a_silent_server_is_given_up_within_connect_timeout(run_module):
    with silent_server() as server:
        run = within(2 + MARGIN, run_module, MODULE, {
            "login_host": "127.0.0.1,127.0.0.1,127.0.0.1", "login_port": server.port, "connect_timeout": 2,
            "pid": 4242, "query_start": "2026-01-01T00:00:00Z"})
        assert run.rc != 0
        assert run.result["msg"] == (f"connect to postgresql://postgres@127.0.0.1,127.0.0.1,127.0.0.1:{server.port}"
                                     "/postgres: timed out: no answer within connect_timeout (2 s)")
        assert server.connections == 1 and task_seconds(run, MODULE) < 2 + MARGIN


def test_a_server_that_stops_answering_after_login_is_given_up(run_module):
    with hung_postgres() as server:
        run = within(2 + 3 + 1 + MARGIN, run_module, MODULE, {
            "login_host": "127.0.0.1", "login_port": server.port, "connect_timeout": 2, "statement_timeout": 2,
            "wait_seconds": 1, "pid": 4242, "query_start": "2026-01-01T00:00:00Z"})
        assert run.rc != 0
        assert run.result["msg"].endswith("no answer to the inspect backend statement within statement_timeout and "
                                          "wait_seconds (3 s)"), run.result["msg"]
        assert task_seconds(run, MODULE) < 2 + 3 + 1 + MARGIN


def test_a_password_in_connect_params_is_masked_even_at_vvv(sleepers, run_module):
    server, dbname, role, (target, _bystander) = sleepers
    evidence = diagnosed(run_module, server, dbname, target.pid)
    args = {"login_host": "127.0.0.1", "login_port": server.port, "login_db": dbname, "login_user": role,
            "pid": target.pid, "query_start": evidence["query_start"]}
    bad = run_module(MODULE, {**args, "connect_params": {"password": "Wr0ng-param-pw"}}, verbosity=3)
    assert bad.rc != 0 and "authentication failed" in bad.result["msg"]
    assert "Wr0ng-param-pw" not in bad.stdout and "Wr0ng-param-pw" not in str(bad.result)
    assert backend_state(server, target.pid)[0] == "active"  # nothing half-done
    run = run_module(MODULE, {**args, "connect_params": {"password": ROLE_PASSWORD}}, verbosity=3)
    assert run.rc == 0 and run.result["status"] == "terminated", run.stdout
    assert ROLE_PASSWORD not in run.stdout and ROLE_PASSWORD not in str(run.result)
