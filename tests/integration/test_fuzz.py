"""Every module, fuzzed from its own argument spec against live throwaway servers.

For any arguments, a module must end within its timeouts plus a small margin,
either succeed or fail with a one-line ``msg`` (never a traceback), and never
show a credential it was given - seeded, distinct, through every
credential-bearing option, on success and failure paths alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.harness import fuzz
from tests.harness.chaos import ANSWERS, ChaosServer
from tests.harness.servers import RedisServer, free_port, throwaway

MARGIN_S = 2.0  # interpreter and client overhead beyond the module's own timeouts
EXAMPLES = int(os.environ.get("AIAGENTS_FUZZ_EXAMPLES", "40"))  # per module; raise it for a longer hunt
MODULES = sorted(path.stem for path in (Path(__file__).resolve().parents[2] / "plugins/modules").glob("*.py"))


@dataclass
class Live:
    redis: RedisServer
    postgres: Any
    http: ChaosServer
    closed_port: int
    known_secrets: tuple[str, ...]


@pytest.fixture(scope="module")
def live(postgres_cluster) -> Iterator[Live]:
    redis_password = "RedisLivePw-7c1e9a"
    with throwaway(lambda workdir: RedisServer(workdir, password=redis_password), "redis-fuzz") as redis:
        client = redis.client()
        client.rpush("enhancement_queue", json.dumps({"ticket_id": "T-1", "tenant_id": "acme-corp",
                                                      "created_at": "2026-01-01T00:00:00Z"}),
                     b"\xff not json", json.dumps({"tenant_id": ["a", "b"], "created_at": 1.7e12}))
        chaos = ChaosServer()
        try:
            yield Live(redis, postgres_cluster, chaos, free_port(), (redis_password, postgres_cluster.password))
        finally:
            chaos.close()


def _kubeconfig(server: str, token: str) -> str:
    """A kubeconfig for an API server that is not there (or answers nonsense), with a token that must never show."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"aiagents-fuzz-kubeconfig-{abs(hash((server, token)))}.yaml"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fuzz",
        "clusters": [{"name": "fuzz", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "fuzz", "user": {"token": token}}],
        "contexts": [{"name": "fuzz", "context": {"cluster": "fuzz", "user": "fuzz", "namespace": "ai-agents"}}]}))
    path.chmod(0o600)
    return str(path)


def _strategies(live: Live, secret: str) -> tuple[dict[str, Any], dict[str, st.SearchStrategy]]:
    """Base arguments that reach the live servers, and loopback-only strategies for what touches the network."""
    chaos = live.http.port
    ports = [live.redis.port, live.closed_port, 0, 70000, -1, "x", None]
    redis_url = st.just(f"redis://:{live.known_secrets[0]}@127.0.0.1:{live.redis.port}/0")

    @st.composite
    def fuzzed_redis_url(draw):
        userinfo = ":" + fuzz.decorated(draw, secret)
        return fuzz.url(draw, ["redis", "rediss", "unix", "http", ""], ["127.0.0.1", "[::1]", "[::1", ""], ports,
                        st.sampled_from(["/0", "/abc", "/-1", "/99999", "", "/0?db=1", "/0#x"]), userinfo)

    @st.composite
    def fuzzed_http_url(draw):
        return fuzz.url(draw, ["http", "https", "ftp", "HTTP", ""], ["127.0.0.1", "[::1]", "[::1", ""],
                        [chaos, chaos, live.closed_port, 0, 99999, "x", None],
                        st.sampled_from(["/", "/api/v1", f"/x?token={secret}", "/\r\n", "/ä", "/%zz", ""]),
                        "ops:" + fuzz.decorated(draw, secret))

    @st.composite
    def headers(draw):
        names = draw(st.lists(st.sampled_from(["Accept", "X-Api-Key", "Authorization", "X\r\nInjected",
                                               "Bad Name", "Ä-Header", ""]), max_size=3))
        return {name: fuzz.decorated(draw, secret) if name in ("X-Api-Key", "Authorization")
                else draw(st.sampled_from(["json", "ä€", "a\r\nb", "\x01", ""])) for name in names}

    @st.composite
    def connect_params(draw):
        return draw(st.fixed_dictionaries({}, optional={
            "password": st.just(fuzz.decorated(draw, secret)), "sslpassword": st.just(secret),
            "dsn": st.just(f"postgresql://u:{secret}@127.0.0.1:{live.closed_port}/x"),
            "options": st.sampled_from(["-c statement_timeout=abc", "", "-c x=1"]),
            "application_name": st.text(max_size=5), "keepalives": st.sampled_from([0, 1, "x"])}))

    @st.composite
    def endpoints(draw):
        def one():
            return st.fixed_dictionaries(
                {"name": st.sampled_from(["sdp", "openai", "", "ä"]), "url": fuzzed_http_url()},
                optional={"method": st.sampled_from(["GET", "POST", "GET\r\nX: y", "", "GÉT", "get"]),
                          "headers": headers(), "body": st.sampled_from(["{}", "ä€", "\x00", ""]),
                          "bearer_token": st.just(fuzz.decorated(draw, secret)),
                          "timeout": st.sampled_from([0.5, 1, 0, -1, float("inf"), float("nan"), 1e9]),
                          "expected_status": st.lists(st.integers(-1, 700), max_size=2),
                          "validate_certs": st.booleans(),
                          "ca_path": st.sampled_from(["/nonexistent.pem", "/dev/null"])})
        return draw(st.lists(one(), max_size=3))

    postgres = {"login_host": "127.0.0.1", "login_port": live.postgres.port, "login_user": "postgres",
                "login_password": live.known_secrets[1], "login_db": "postgres", "connect_timeout": 2}
    http_url = f"http://ops:{secret}@127.0.0.1:{chaos}"
    base = {
        "celery_workers_info": {"url": f"redis://:{live.known_secrets[0]}@127.0.0.1:{live.redis.port}/0",
                                "connect_timeout": 1, "timeout": 0.5, "confirm_timeout": 0.5},
        "docker_service_info": {"project": "aiagents-fuzz", "service": "none", "timeout": 5},
        "kubernetes_workers_info": {"deployment": "celery-worker", "namespace": "ai-agents", "timeout": 2,
                                    "kubeconfig": _kubeconfig(f"https://127.0.0.1:{live.closed_port}", secret)},
        "http_probe_info": {"endpoints": [{"name": "p", "url": f"{http_url}/health?api_key={secret}",
                                           "headers": {"X-Api-Key": secret}}], "timeout": 1},
        "jaeger_traces_info": {"url": http_url, "timeout": 1},
        "postgresql_activity_info": dict(postgres),
        "postgresql_backend_terminate": {**postgres, "pid": 999999, "query_start": "2026-01-01T00:00:00Z"},
        "postgresql_rls_info": {**postgres, "app_role": "fuzz_app", "app_password": secret, "probe": False},
        "preflight_info": {"require": ["redis"]},
        "prometheus_info": {"url": http_url, "timeout": 1},
        "redis_queue_info": {"url": f"redis://:{live.known_secrets[0]}@127.0.0.1:{live.redis.port}/0",
                             "connect_timeout": 1},
        "redis_queue_quarantine": {"url": f"redis://:{live.known_secrets[0]}@127.0.0.1:{live.redis.port}/0",
                                   "connect_timeout": 1, "ticket_ids": ["T-404"], "reason": "fuzz"},
        "sdp_incident": {"url": http_url, "sdp": {"authtoken": secret}, "key": "fuzz-1", "subject": "fuzz",
                         "description": "report", "timeout": 1},
        "webhook_send": {"url": f"http://127.0.0.1:{chaos}/webhook/servicedesk?tenant_id=a&token={secret}",
                         "body": {"ticket": "T-1"}, "secret": secret, "timeout": 1},
    }
    timeouts = st.sampled_from([0.5, 1, 2, 0, -1, float("inf"), float("nan"), 1e9, "abc"])
    overrides: dict[str, st.SearchStrategy] = {
        "url": st.one_of(redis_url, fuzzed_redis_url(), fuzzed_http_url()),
        "host": st.sampled_from(["127.0.0.1", "::1", "", " ", "127.0.0.1:6379"]),
        "login_host": st.sampled_from(["127.0.0.1", "::1", "", "/nonexistent-socket-dir"]),
        "port": st.sampled_from(ports), "login_port": st.sampled_from([*ports, live.postgres.port]),
        "password": st.just(secret).map(lambda s: s + "/#"), "login_password": st.just(secret),
        "app_password": st.just(secret), "secret": st.sampled_from([secret, "ab", ""]),
        "username": st.sampled_from(["default", "", "ä"]), "login_user": st.sampled_from(["postgres", "nobody", ""]),
        "docker_host": st.sampled_from(["unix:///var/run/docker.sock", f"tcp://127.0.0.1:{live.closed_port}",
                                        "unix:///nonexistent.sock", "garbage", ""]),
        "headers": headers(), "connect_params": connect_params(), "endpoints": endpoints(),
        "connect_timeout": timeouts, "timeout": timeouts, "confirm_timeout": timeouts,
        "statement_timeout": st.sampled_from([1, 5, 0, -1, "abc", 10**9]), "wait_seconds": timeouts,
        "log_since": st.sampled_from([0, -1, 10**12, "x"]),
        "kubeconfig": st.sampled_from([_kubeconfig(f"https://127.0.0.1:{live.closed_port}", secret),
                                       _kubeconfig(f"http://127.0.0.1:{chaos}", secret), "/nonexistent", "/dev/null"]),
        "context": st.sampled_from(["fuzz", "missing", ""]),
    }
    return base, overrides


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret and secret in text]


@pytest.mark.parametrize("name", MODULES)
def test_fuzzed_arguments_end_in_bounded_time_with_a_sentence_and_no_secret(name: str, live: Live) -> None:
    spec = fuzz.module_spec(name)
    options = spec["argument_spec"]

    # No shrinking: each call costs real I/O, and the first failing call, printed whole, is the report.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, report_multiple_bugs=False,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def call(data: st.DataObject) -> None:
        secret = data.draw(st.composite(fuzz.secret_token)(), label="secret")
        base, overrides = _strategies(live, secret)
        args = {key: value for key, value in base[name].items() if key in options}
        fuzzed = data.draw(st.sets(st.sampled_from(sorted(options)), max_size=3), label="options")
        for option in sorted(fuzzed):
            args[option] = data.draw(fuzz.value_for(options[option], overrides, option), label=option)
        live.http.answer = data.draw(st.sampled_from([*sorted(ANSWERS), "by-path"]), label="answer")
        check_mode = data.draw(st.booleans(), label="check_mode")

        outcome = fuzz.run_in_process(name, args, check_mode=check_mode)

        result = outcome.result
        limit = fuzz.timeout_budget(args, options) + MARGIN_S
        assert outcome.elapsed <= limit, f"{name} took {outcome.elapsed:.1f}s (limit {limit:.1f}s) with {args!r}"
        assert "Traceback" not in outcome.output and "exception" not in result, outcome.output[-3000:]
        if result.get("failed"):
            assert isinstance(result.get("msg"), str) and result["msg"].strip(), result
            assert "\n" not in result["msg"].strip(), f"not one sentence: {result['msg']!r}"
        assert _leaks(outcome.output, [secret, *live.known_secrets]) == [], outcome.output[-3000:]

    call()


def test_the_fuzz_harness_reads_the_real_spec_and_catches_a_leak(live: Live) -> None:
    """The harness itself: specs come from the modules, and a seeded secret in output is caught."""
    spec = fuzz.module_spec("redis_queue_info")["argument_spec"]
    assert spec["password"]["no_log"] is True and "thresholds" in spec
    outcome = fuzz.run_in_process("redis_queue_info", {"url": f"redis://:{live.known_secrets[0]}@127.0.0.1:"
                                                              f"{live.redis.port}/0", "connect_timeout": 1})
    assert outcome.result.get("failed") is not True, outcome.result
    assert outcome.result["depth"] >= 1
    assert _leaks("x Zq0123456789abXk y", ["Zq0123456789abXk"]) == ["Zq0123456789abXk"]
    assert fuzz.timeout_budget({"connect_timeout": 1, "endpoints": [{"timeout": 2}, {"timeout": -1}]},
                               {"connect_timeout": {"type": "float"},
                                "endpoints": {"type": "list", "options": {"timeout": {"type": "float"}}}}) == 3
