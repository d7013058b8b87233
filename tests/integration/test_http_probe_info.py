"""http_probe_info against the sandbox's ServiceDesk Plus and OpenAI stand-ins."""

from __future__ import annotations

import pytest

from tests.harness.servers import free_port
from tests.harness.standins import StandIn, write_secret

MODULE = "aiagents.runbooks.http_probe_info"
SDP_KEY = "sdp-key-7c1f0e55d2a94b7e"
OPENAI_KEY = "sk-test-3b9d2c5e8f1a4d6b"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    path = tmp_path_factory.mktemp("secrets")
    write_secret(path, "tenant-acme-corp-sdp", "api_key", SDP_KEY)
    write_secret(path, "openai-credentials", "api_key", OPENAI_KEY)
    return path


@pytest.fixture(scope="module")
def sdp(secrets):
    standin = StandIn("sdp", secrets)
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def openai(secrets):
    standin = StandIn("openai", secrets)
    yield standin
    standin.stop()


@pytest.fixture(autouse=True)
def healed(sdp, openai):
    sdp.heal()
    openai.heal()
    yield
    sdp.heal()
    openai.heal()


def endpoints(sdp, openai, sdp_key=SDP_KEY):
    return [{"name": "ServiceDesk Plus (acme-corp)", "url": f"{sdp.url}/api/v3/tickets", "bearer_token": sdp_key},
            {"name": "OpenAI", "url": f"{openai.url}/v1/models", "bearer_token": OPENAI_KEY}]


def probe(run_module, eps, **args):
    run = run_module(MODULE, {"endpoints": eps, **args})
    assert run.rc == 0, run.stdout
    return run.result


def test_healthy_endpoints_yield_no_finding_and_full_timings(run_module, sdp, openai):
    result = probe(run_module, endpoints(sdp, openai))
    assert result["findings"] == []
    for item in result["probes"]:
        assert (item["status"], item["classification"]) == (200, "ok")
        timings = item["timings"]
        assert 0 <= timings["dns"] <= timings["connect"] <= timings["first_byte"] <= timings["total"] < 2
        assert timings["tls"] is None  # plain http to the stand-ins


@pytest.mark.parametrize(
    ("faults", "finding", "severity"),
    [
        ({"latency_ms": 2500}, "api_slow", "medium"),
        ({"status": 401}, "api_auth_invalid", "high"),
        ({"status": 403}, "api_forbidden", "high"),
        ({"status": 429}, "api_rate_limited", "medium"),
        ({"status": 503}, "api_server_error", "high"),
        ({"hang": True}, "api_timeout", "high"),
        ({"refuse": True}, "api_unreachable", "high"),
    ],
)
def test_each_fault_yields_its_finding_naming_the_api(run_module, sdp, openai, faults, finding, severity):
    openai.fault(**faults)
    result = probe(run_module, endpoints(sdp, openai), timeout=4)
    assert [(f["id"], f["severity"]) for f in result["findings"]] == [(finding, severity)]
    assert result["findings"][0]["summary"].startswith("OpenAI ")
    assert result["probes"][0]["classification"] == "ok"  # the healthy one stays healthy
    if finding == "api_rate_limited":
        assert result["probes"][1]["retry_after"] == "20" and "Retry-After 20 s" in result["findings"][0]["summary"]


def test_slower_than_ten_seconds_is_a_timeout_even_when_it_answers(run_module, sdp, openai):
    openai.fault(latency_ms=1200)
    result = probe(run_module, endpoints(sdp, openai)[1:], slow_seconds=0.5, timeout_seconds=1.0)
    assert [f["id"] for f in result["findings"]] == ["api_timeout"]
    assert result["probes"][0]["status"] == 200


def test_a_wrong_key_is_auth_invalid(run_module, sdp, openai):
    result = probe(run_module, endpoints(sdp, openai, sdp_key="not-the-key"))
    assert [f["id"] for f in result["findings"]] == ["api_auth_invalid"]
    assert "ServiceDesk Plus (acme-corp)" in result["findings"][0]["summary"]


def test_unknown_host_and_closed_port_are_unreachable(run_module):
    eps = [{"name": "SDP of a deleted tenant", "url": "https://sdp.no-such-tenant.invalid/api/v3/tickets"},
           {"name": "Nothing listening", "url": f"http://127.0.0.1:{free_port()}/v1/models"}]
    result = probe(run_module, eps)
    assert [f["id"] for f in result["findings"]] == ["api_unreachable", "api_unreachable"]
    assert result["probes"][0]["error"] == "dns" and result["probes"][1]["error"] == "refused"


def test_five_hanging_endpoints_cost_one_timeout(run_module, sdp, openai):
    openai.fault(hang=True)
    eps = [{"name": f"OpenAI #{n}", "url": f"{openai.url}/v1/models"} for n in range(5)]
    result = probe(run_module, eps, timeout=2)
    assert [f["id"] for f in result["findings"]] == ["api_timeout"] * 5
    assert 1.9 <= result["elapsed"] < 3.0, result["elapsed"]


def test_invalid_url_is_one_clear_message(run_module):
    run = run_module(MODULE, {"endpoints": [{"name": "SDP", "url": "ftp://sdp.example/api"}]})
    assert run.rc != 0
    assert run.result["msg"] == "probe SDP: url must be http(s)://host[:port]/path, got 'ftp://sdp.example/api'"


def test_a_known_secret_appears_in_no_output(run_module, sdp, openai, secrets, tmp_path):
    """Credentials from a variable, a secret file and a URL query: none reach stdout, even at -vvv."""
    openai.fault(status=401)  # failures are where secrets usually leak
    eps = endpoints(sdp, openai)
    eps[1] = {"name": "OpenAI", "url": f"{openai.url}/v1/models?api_key={OPENAI_KEY}",
              "bearer_token_file": str(secrets / "openai-credentials/api_key")}
    run = run_module(MODULE, {"endpoints": eps}, verbosity=3)
    assert run.rc == 0, run.stdout
    assert [f["id"] for f in run.result["findings"]] == ["api_auth_invalid"]
    for secret in (SDP_KEY, OPENAI_KEY):
        assert secret not in run.stdout
        assert secret not in repr(run.results)
    assert "api_key=***" in run.stdout
