"""The harness itself: its servers are the real programs, and faults are real."""

from __future__ import annotations

import psycopg2
import pytest
import redis


def test_redis_fixture_is_a_real_redis_server(redis_server):
    info = redis_server.client().info("server")
    assert info["process_id"] == redis_server.pid
    assert info["tcp_port"] == redis_server.port
    assert int(info["redis_version"].split(".")[0]) >= 6


def test_killing_redis_mid_test_is_seen_by_clients(redis_server):
    client = redis_server.client(socket_timeout=2)
    client.rpush("enhancement_queue", "job")
    redis_server.kill()
    with pytest.raises(redis.exceptions.ConnectionError):
        client.llen("enhancement_queue")
    redis_server.start()
    # Persistence is off: a crash loses the in-memory queue, which is what we want tests to see.
    assert redis_server.client().llen("enhancement_queue") == 0


def test_postgres_fixture_is_a_real_postgresql_server(postgres_db):
    server, dbname = postgres_db
    with server.connect(dbname) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        (version,) = cur.fetchone()
        cur.execute("SELECT current_database(), pg_backend_pid() <> 0")
        assert cur.fetchone() == (dbname, True)
    assert int(version.split(".")[0]) >= 15


def test_killing_postgres_mid_test_breaks_the_open_connection(postgres_server):
    conn = postgres_server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    postgres_server.kill()
    with pytest.raises(psycopg2.OperationalError):
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    with pytest.raises(psycopg2.OperationalError):
        postgres_server.connect()


def test_module_runs_through_ansible(run_module):
    run = run_module("aiagents.runbooks.preflight_info", {"require": ["redis", "psycopg2"]})
    assert run.rc == 0, run.stdout
    assert run.result["_event"] == "runner_on_ok"
    assert run.result["findings"] == []
    assert run.result["libraries"]["redis"]["available"] is True


def test_module_argument_errors_come_back_as_a_failed_task(run_module):
    run = run_module("aiagents.runbooks.preflight_info", {"require": ["mysql"]})
    assert run.rc != 0
    assert run.result["_event"] == "runner_on_failed"
    assert "value of require must be one or more of" in run.result["msg"]
