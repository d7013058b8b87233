"""The pure parts of the PostgreSQL helpers: options, error classes, policy reading, lock chains."""

from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils import _postgres, _postgres_activity, _postgres_rls

PARAMS = {"login_host": "db.internal", "login_port": 5433, "login_user": "ops", "login_password": "s3cret",
          "login_db": "ai_agents", "login_unix_socket": "", "ssl_mode": "require", "ca_cert": None, "ssl_cert": None,
          "ssl_key": None, "connect_timeout": 3, "connect_params": {"target_session_attrs": "read-write"}}


def test_conn_kwargs_map_community_option_names_to_libpq():
    kwargs = _postgres.conn_kwargs(PARAMS)
    assert kwargs == {"host": "db.internal", "port": 5433, "user": "ops", "password": "s3cret", "dbname": "ai_agents",
                      "sslmode": "require", "connect_timeout": 3, "application_name": "aiagents.runbooks",
                      "target_session_attrs": "read-write"}
    as_app = _postgres.conn_kwargs(PARAMS, user="aiagents_app", password="app-pw")
    assert (as_app["user"], as_app["password"]) == ("aiagents_app", "app-pw")


def test_describe_never_carries_the_password():
    assert _postgres.describe(PARAMS) == "postgresql://ops@db.internal:5433/ai_agents"
    assert "s3cret" not in _postgres.describe(PARAMS)


def test_password_is_no_log_in_the_argument_spec():
    spec = _postgres.postgres_argument_spec()
    assert spec["login_password"]["no_log"] is True
    assert spec["login_db"]["aliases"] == ["db"]


@pytest.mark.parametrize("message, kind", [
    ('connection to server at "127.0.0.1", port 1 failed: Connection refused', "unreachable"),
    ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "x"',
     "auth"),
    ('FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "x", database "y"', "auth"),
    ('FATAL:  database "nope" does not exist', "database"),
    ("FATAL:  remaining connection slots are reserved for non-replication superuser connections", "saturated"),
    ("FATAL:  sorry, too many clients already", "saturated"),
    ("timeout expired", "unreachable"),
])
def test_connect_errors_are_classified(message, kind):
    failure = _postgres.classify_connect_error(Exception(message + "\nsecond line"), "postgresql://x@h:1/d")
    assert failure.kind == kind
    assert str(failure).startswith("connect to postgresql://x@h:1/d: ") and "second line" not in str(failure)


POLICY_PARAMS = {"tenant_setting": "app.current_tenant_id", "tenant_functions": ["current_tenant"],
                 "tenant_column": "tenant_id"}


@pytest.mark.parametrize("expression, scoped", [
    ("(tenant_id = COALESCE(current_setting('app.current_tenant_id'::text, true), ''::text))", True),
    ("(tenant_id = current_tenant())", True),
    ("true", False),
    ("(name IS NOT NULL)", False),
    ("(other_tenant_id = current_setting('app.current_tenant_id'::text, true))", False),
    ("(current_setting('app.current_tenant_id'::text, true) IS NOT NULL)", False),
    (None, False),
])
def test_policy_scoping(expression, scoped):
    assert _postgres_rls.tenant_scoped(expression, POLICY_PARAMS) is scoped


def test_insert_policy_is_judged_by_its_check_expression():
    table = {"policies": [
        {"cmd": "a", "using": None, "check": "true"},
        {"cmd": "*", "using": "(tenant_id = current_setting('app.current_tenant_id'::text))", "check": None},
    ]}
    _postgres_rls.describe_policies(table, POLICY_PARAMS)
    assert [policy["tenant_scoped"] for policy in table["policies"]] == [False, True]


def test_tenants_are_picked_by_presence_then_name():
    samples = {1: {"rows": 5, "tenants": ["globex", "acme-corp"]}, 2: {"rows": 2, "tenants": ["globex", "acme-corp"]},
               3: {"rows": 1, "tenants": ["initech"]}}
    assert _postgres_rls.pick_tenants({"tenants": None}, samples) == ("acme-corp", "globex", True)
    assert _postgres_rls.pick_tenants({"tenants": ["initech"]}, samples) == ("initech", "acme-corp", False)
    assert _postgres_rls.pick_tenants({"tenants": None}, {}) == (None, None, True)


def backend(pid, state="active", blocked_by=(), seconds=10.0, user="aiagents"):
    return {"pid": pid, "user": user, "database": "ai_agents", "application": "celery", "client": "127.0.0.1",
            "state": state, "query_start": "2026-11-27T18:00:00.000001+00:00", "xact_start": None,
            "query_seconds": seconds, "state_seconds": seconds, "wait_event_type": "Lock" if blocked_by else None,
            "wait_event": None, "blocked_by": list(blocked_by), "query": "SELECT 1"}


def test_lock_chains_group_waiters_under_the_root_blocker():
    chains = _postgres_activity.lock_chains([
        backend(10, "idle in transaction"), backend(11, blocked_by=[10], seconds=40),
        backend(12, blocked_by=[10, 11], seconds=35), backend(20), backend(21, blocked_by=[20], seconds=2),
    ])
    assert [(chain["blocker"]["pid"], [item["pid"] for item in chain["blocked"]]) for chain in chains] == \
        [(10, [11, 12]), (20, [21])]
    assert chains[0]["longest_wait_seconds"] == 40


def test_findings_from_activity_use_the_thresholds():
    data = {"own_pid": 99, "max_connections": 100, "superuser_reserved": 3, "reserved": 0, "version": "15.18",
            "version_num": 150018, "data_checksums": True, "checksum_failures": [],
            "backends": [backend(n, "idle", user="leaky") for n in range(1, 89)]
            + [backend(200, seconds=400), backend(99, seconds=1000)]}
    thresholds = dict(_postgres_activity.DEFAULT_THRESHOLDS)
    summary = _postgres_activity.summarise(data, thresholds)
    assert summary["connections"]["usable"] == 97 and summary["connections"]["used"] == 90
    assert [item["pid"] for item in summary["long_running"]] == [200]  # never the module's own query
    found = _postgres_activity.activity_findings(summary, data, thresholds)
    assert [item["id"] for item in found] == [
        "db_connections_saturated", "db_idle_connection_leak", "db_long_running_query"]
    assert found[0]["severity"] == "high" and found[1]["evidence"]["idle"] == 88
    thresholds["saturation_ratio"] = 0.95
    relaxed = _postgres_activity.activity_findings(summary, data, thresholds)
    assert "db_connections_saturated" not in [item["id"] for item in relaxed]


def test_checksum_failures_are_suspected_corruption():
    data = {"own_pid": 99, "max_connections": 100, "superuser_reserved": 3, "reserved": 0, "version": "15.18",
            "version_num": 150018, "data_checksums": True, "backends": [backend(99)],
            "checksum_failures": [{"database": "ai_agents", "failures": 2, "last_failure": "2026-11-28T03:00:00+00:00"},
                                  {"database": "(shared catalogs)", "failures": 1, "last_failure": None}]}
    thresholds = dict(_postgres_activity.DEFAULT_THRESHOLDS)
    summary = _postgres_activity.summarise(data, thresholds)
    found = _postgres_activity.activity_findings(summary, data, thresholds)
    assert [(item["id"], item["severity"]) for item in found] == [("db_corruption_suspected", "critical")]
    assert found[0]["summary"].startswith("3 data page checksum failure(s) in ai_agents (2, last 2026-11-28")
    assert "stop writes" in found[0]["resolution"]
    data["checksum_failures"] = []
    assert _postgres_activity.activity_findings(_postgres_activity.summarise(data, thresholds), data, thresholds) == []


# --- Hardening: options refused with a sentence, no secret anywhere, a deadline over the whole connect ---

GOOD = {**PARAMS, "connect_params": {}}


@pytest.mark.parametrize("changes, message", [
    ({"login_port": 0}, "login_port must be at least 1, got 0"),
    ({"login_port": 70000}, "login_port must be at most 65535, got 70000"),
    ({"connect_timeout": 0}, "connect_timeout must be above 0, got 0"),
    ({"connect_timeout": -1}, "connect_timeout must be above 0, got -1"),
    ({"connect_timeout": 301}, "connect_timeout must be at most 300, got 301"),
    ({"connect_params": {"connect_timeout": "-1"}}, "connect_params.connect_timeout must be above 0, got '-1'"),
    ({"connect_params": {"connect_timeout": "soon"}}, "connect_params.connect_timeout must be a number, got 'soon'"),
    ({"connect_params": {"port": 0}}, "connect_params.port must be at least 1, got 0"),
    ({"connect_params": {"cursor_factory": "x"}}, "connect_params.cursor_factory is not a libpq connection parameter"),
    ({"connect_params": {"async": 1}}, "connect_params.async is not a libpq connection parameter"),
    ({"connect_params": {"options": ["-c", "x=1"]}}, "connect_params.options must be a string or a number, got list"),
])
def test_connection_options_out_of_range_are_refused_naming_the_option(changes, message):
    assert _postgres.option_error({**GOOD, **changes}) == message


def test_good_connection_options_pass():
    assert _postgres.option_error(GOOD) is None
    assert _postgres.option_error({**GOOD, "connect_timeout": 300, "login_port": 65535,
                                   "connect_params": {"connect_timeout": 1, "sslpassword": "x"}}) is None


@pytest.mark.parametrize("value, message", [
    (0, "statement_timeout must be above 0, got 0"),
    (-5, "statement_timeout must be above 0, got -5"),
    (10 ** 12, "statement_timeout must be at most 3600, got 1000000000000"),
])
def test_statement_timeout_out_of_range_is_refused(value, message):
    assert _postgres.seconds_error("statement_timeout", value, _postgres.STATEMENT_TIMEOUT_MAX) == message


@pytest.mark.parametrize("thresholds, message", [
    ({"idle_leak_count": 0}, "thresholds.idle_leak_count must be at least 1, got 0"),
    ({"idle_leak_count": -3}, "thresholds.idle_leak_count must be at least 1, got -3"),
    ({"long_query_seconds": -1.0}, "thresholds.long_query_seconds must be at least 0, got -1.0"),
    ({"long_query_seconds": float("inf")}, "thresholds.long_query_seconds must be a finite number, got inf"),
    ({"lock_wait_seconds": float("nan")}, "thresholds.lock_wait_seconds must be a finite number, got nan"),
    ({"idle_in_transaction_seconds": float("-inf")},
     "thresholds.idle_in_transaction_seconds must be a finite number, got -inf"),
    ({"saturation_ratio": 1.5}, "thresholds.saturation_ratio must be at most 1, got 1.5"),
    ({"saturation_ratio": -0.1}, "thresholds.saturation_ratio must be at least 0, got -0.1"),
])
def test_thresholds_out_of_range_are_refused(thresholds, message):
    assert _postgres_activity.threshold_error({**_postgres_activity.DEFAULT_THRESHOLDS, **thresholds}) == message


def test_default_thresholds_pass():
    assert _postgres_activity.threshold_error(_postgres_activity.DEFAULT_THRESHOLDS) is None


@pytest.mark.parametrize("message, expected", [
    ('FATAL:  invalid value for parameter "statement_timeout": "abc"', "invalid statement_timeout"),
    ('FATAL:  1000000000000000 is outside the valid range for parameter "statement_timeout" (0 .. 2147483647)',
     "invalid statement_timeout"),
    ('FATAL:  unrecognized configuration parameter "statment_timeout"', "invalid statment_timeout"),
    ('invalid dsn: invalid connection option "passwrd"', "invalid connection parameter"),
    ('invalid sslmode value: "bogus"', "invalid connection parameter"),
    ('invalid integer value "abc" for connection option "connect_timeout"', "invalid connection parameter"),
])
def test_a_bad_setting_is_named_never_called_a_timeout(message, expected):
    failure = _postgres.classify_connect_error(Exception(message), "postgresql://x@h:1/d")
    assert not isinstance(failure, _postgres.ConnectFailure)  # a wrong option, not a finding about the server
    assert expected in str(failure) and "timed out" not in str(failure)


def test_timeout_expired_is_still_a_timeout():
    failure = _postgres.classify_connect_error(Exception("timeout expired"), "postgresql://x@h:1/d")
    assert failure.kind == "unreachable" and "timed out" in str(failure)


@pytest.mark.parametrize("params, secret", [
    ({"connect_params": {"dsn": "postgresql://ops:Dsn-Secret-1@db:5432/app"}}, "Dsn-Secret-1"),
    ({"connect_params": {"dsn": "host=db user=ops password='kv secret 2' dbname=app"}}, "kv secret 2"),
    ({"connect_params": {"dsn": "host=db password=KvPlain-3"}}, "KvPlain-3"),
    ({"connect_params": {"dsn": "postgresql://db/app?password=Query-Secret-4"}}, "Query-Secret-4"),
    ({"login_db": "host=db password=InDbName-5 dbname=app"}, "InDbName-5"),
    ({"login_host": "postgresql://ops:InHost-6@db/app"}, "InHost-6"),
])
def test_credentials_hidden_in_connection_strings_are_found(params, secret):
    assert secret in _postgres.connection_secrets(params)


def test_connection_secrets_never_raise_on_odd_input():
    for params in ({}, {"connect_params": "text"}, {"connect_params": None}, {"connect_params": {"dsn": 5}},
                   {"login_db": None}, {"connect_params": {"dsn": "password='unterminated"}}):
        _postgres.connection_secrets(params)


@pytest.fixture
def green_reset():
    import psycopg2.extensions

    yield
    psycopg2.extensions.set_wait_callback(None)  # the module process keeps it; this test process must not


def test_connect_timeout_bounds_the_whole_connect_across_a_host_list(green_reset):
    """libpq's connect_timeout restarts for every host (and is at least 2 s): the module's deadline does not."""
    import time

    from tests.harness.slow import silent_server

    with silent_server() as server:
        params = {**GOOD, "login_host": ",".join(["127.0.0.1"] * 4), "login_port": server.port, "ssl_mode": "disable",
                  "connect_timeout": 1}
        started = time.monotonic()
        with pytest.raises(_postgres.ConnectFailure) as failure:
            _postgres.connect(params, budget=_postgres.Budget(params, 5))
        elapsed = time.monotonic() - started
    assert failure.value.kind == "unreachable"
    assert "no answer within connect_timeout (1 s)" in str(failure.value)
    assert 0.9 < elapsed < 1.8 and server.connections == 1
