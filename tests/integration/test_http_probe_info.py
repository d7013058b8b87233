"""http_probe_info against the sandbox's ServiceDesk Plus and OpenAI stand-ins."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import forms
from tests.harness.ansible import run_playbook_cli
from tests.harness.servers import free_port
from tests.harness.slow import silent_server, trickle_server
from tests.harness.standins import running, secrets_dir

MODULE = "aiagents.runbooks.http_probe_info"
SDP_KEY = "sdp-key-7c1f0e55d2a94b7e"
OPENAI_KEY = "sk-test-3b9d2c5e8f1a4d6b"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    return secrets_dir(tmp_path_factory, {"tenant-acme-corp-sdp": {"api_key": SDP_KEY},
                                          "openai-credentials": {"api_key": OPENAI_KEY}})


@pytest.fixture(scope="module")
def sdp(secrets):
    with running("sdp", secrets) as standin:
        yield standin


@pytest.fixture(scope="module")
def openai(secrets):
    with running("openai", secrets) as standin:
        yield standin


@pytest.fixture(autouse=True)
def healed(sdp, openai):
    sdp.heal()
    openai.heal()
    yield
    sdp.heal()
    openai.heal()


def endpoints(sdp, openai, sdp_key=SDP_KEY):
    return [{"name": "ServiceDesk Plus (acme-corp)", "url": sdp.url, "sdp": {"authtoken": sdp_key}},
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
        ({"status": 500}, "api_server_error", "high"),
        ({"status": 502}, "api_server_error", "high"),
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
    eps = [{"name": "SDP of a deleted tenant", "url": "https://sdp.no-such-tenant.invalid/api/v3/requests"},
           {"name": "Nothing listening", "url": f"http://127.0.0.1:{free_port()}/v1/models"}]
    result = probe(run_module, eps)
    assert [f["id"] for f in result["findings"]] == ["api_unreachable", "api_unreachable"]
    assert result["probes"][0]["error"] == "dns" and result["probes"][1]["error"] == "refused"


def test_five_hanging_endpoints_cost_one_timeout(run_module, sdp, openai):
    """Five probes that never get an answer cost one 2 s timeout, in the module and in the whole Ansible call."""
    def timed(eps):
        started = time.monotonic()
        result = probe(run_module, eps, timeout=2)
        return time.monotonic() - started, result

    # Baseline: the same Ansible call probing one endpoint that answers at once (before and after, so a
    # momentarily busy machine during one of them does not count against the probes).
    fast = [{"name": "SDP", "url": sdp.url, "sdp": {"authtoken": SDP_KEY}}]
    baseline_before, result = timed(fast)
    assert result["findings"] == [] and result["elapsed"] < 0.5, result
    openai.fault(hang=True)
    wall, result = timed([{"name": f"OpenAI #{n}", "url": f"{openai.url}/v1/models"} for n in range(5)])
    baseline_after = timed(fast)[0]
    baseline = max(baseline_before, baseline_after)

    assert [f["id"] for f in result["findings"]] == ["api_timeout"] * 5
    assert [p["error"] for p in result["probes"]] == ["timeout"] * 5
    assert 1.9 <= result["elapsed"] <= 2.6, result["elapsed"]  # concurrent: one timeout, not five (10 s)
    for item in result["probes"]:
        assert 1.9 <= item["timings"]["total"] <= 2.6, item
    # Nothing around the probes waits on them either (no serial retries, no join on hung connections).
    assert wall - baseline < 2.0 + 1.0, (wall, baseline_before, baseline_after)


def test_invalid_url_is_one_clear_message(run_module):
    run = run_module(MODULE, {"endpoints": [{"name": "SDP", "url": "ftp://sdp.example/api"}]})
    assert run.rc != 0
    assert run.result["msg"] == "probe SDP: url must be http(s)://host[:port]/path, got 'ftp://sdp.example/api'"


# Each credential distinct, so a leak says which way it got out.
QUERY_KEY = "QRYKEY-5e1d9a7c3b"          # ?api_key=
QUERY_TOKEN = "QRYTOK-8f2c4e6a0d"        # &token=
HEADER_KEY = "HDRKEY-2b7e9c1f5a"         # X-Api-Key:
HEADER_AUTH = "HDRAUTH-6d3a8f0b4c"       # Authorization: Basic ...
URL_PASSWORD = "URLPASS-9c4f1a7e2d"      # http://svc:...@host
BAD_URL_KEY = "BADURLKEY-1f8e3c5b7a"     # ?api_key= of a URL the module rejects
SECRETS = (SDP_KEY, OPENAI_KEY, QUERY_KEY, QUERY_TOKEN, HEADER_KEY, HEADER_AUTH, URL_PASSWORD, BAD_URL_KEY)
MASK = "*" * 8  # how Ansible masks a no_log value inside a longer string

SECRET_PLAYBOOK = """
- name: Probe with credentials in every place they can be given
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Probe - one healthy, one refusing the key (401), one unreachable
      aiagents.runbooks.http_probe_info:
        endpoints: "{{ probe_endpoints }}"
        timeout: 4
      register: probed

    - name: The same endpoints with an invalid option value (fails in argument validation)
      aiagents.runbooks.http_probe_info:
        endpoints: "{{ probe_endpoints }}"
        timeout: soon
      register: invalid_option
      ignore_errors: true

    - name: A URL the module rejects, with a credential in its query (fails in the module)
      aiagents.runbooks.http_probe_info:
        endpoints: "{{ rejected_endpoints }}"
      register: invalid_url
      ignore_errors: true

    - name: Show what was registered
      ansible.builtin.debug:
        var: "{{ item }}"
      loop: [probed, invalid_option, invalid_url]

    - name: Keep what was registered
      ansible.builtin.copy:
        content: "{{ {'probed': probed, 'invalid_option': invalid_option, 'invalid_url': invalid_url} | to_json }}"
        dest: "{{ registered_file }}"
        mode: "0600"
"""


@pytest.mark.parametrize("in_process", ["1", "0"])
def test_a_known_secret_appears_in_no_output(sdp, openai, secrets, tmp_path, in_process):
    """Credentials from a variable, a secret file, a URL (query, userinfo) and headers reach
    neither stdout nor stderr of `ansible-playbook -vvv` nor the registered result - not when
    the module succeeds, not when an endpoint fails, not when the module itself fails."""
    openai.fault(status=401)  # failures are where secrets usually leak
    closed = free_port()
    extravars = {
        "probe_endpoints": [
            {"name": "ServiceDesk Plus (acme-corp)", "url": sdp.url, "sdp": {"authtoken": SDP_KEY}},
            {"name": "OpenAI", "url": f"{openai.url}/v1/models?api_key={QUERY_KEY}&token={QUERY_TOKEN}&page=2",
             "bearer_token_file": str(secrets / "openai-credentials/api_key"),
             "headers": {"X-Api-Key": HEADER_KEY, "X-Request-Id": "probe-visible-42"}},
            {"name": "Gone", "url": f"http://svc:{URL_PASSWORD}@127.0.0.1:{closed}/health",
             "headers": {"Authorization": f"Basic {HEADER_AUTH}"}},
        ],
        "rejected_endpoints": [{"name": "Bad", "url": f"ftp://sdp.example/api?api_key={BAD_URL_KEY}"}],
        "registered_file": str(tmp_path / "registered.json"),
    }
    (tmp_path / "vars.json").write_text(json.dumps(extravars))
    (tmp_path / "secrets.yml").write_text(SECRET_PLAYBOOK)
    run = run_playbook_cli(tmp_path / "secrets.yml", tmp_path / "vars.json", verbosity=3,
                           env={"AIAGENTS_RUNBOOKS_IN_PROCESS": in_process})
    assert run.rc == 0, run.stdout + run.stderr
    registered_text = (tmp_path / "registered.json").read_text()
    registered = json.loads(registered_text)

    leaks = [(secret, where) for secret in SECRETS
             for where, text in (("stdout", run.stdout), ("stderr", run.stderr), ("registered", registered_text))
             if secret in text]
    assert leaks == [], leaks

    # The runs did what the test needs: the module path asked for, each failure, the echoed arguments shown.
    assert ("AnsiballZ_http_probe_info.py" in run.stdout) == (in_process == "0")
    probed = registered["probed"]
    assert sorted(f["id"] for f in probed["findings"]) == ["api_auth_invalid", "api_unreachable"]
    assert [p["classification"] for p in probed["probes"]] == ["ok", "auth_invalid", "unreachable"]
    assert probed["probes"][1]["url"] == f"{openai.url}/v1/models?api_key=***&token=***&page=***"
    # -vvv printed the arguments each of the two runs of those endpoints was invoked with (`invocation`,
    # which a registered result does not keep): credentials masked (a URL's whole userinfo), the rest readable.
    echoed = (f"url: {openai.url}/v1/models?api_key={MASK}&token={MASK}&page=2",
              "X-Api-Key: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "X-Request-Id: probe-visible-42",
              f"url: http://{MASK}@127.0.0.1:{closed}/health", "Authorization: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER",
              "authtoken: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
    assert {line: run.stdout.count(line) for line in echoed} == dict.fromkeys(echoed, 2), run.stdout
    assert f"url: ftp://sdp.example/api?api_key={MASK}" in run.stdout

    invalid_option = registered["invalid_option"]
    assert invalid_option["failed"] is True and "timeout" in invalid_option["msg"], invalid_option
    invalid_url = registered["invalid_url"]
    assert invalid_url["failed"] is True
    assert invalid_url["msg"] == "probe Bad: url must be http(s)://host[:port]/path, got 'ftp://sdp.example/api?api_key=***'"


# --- Issue 14: bounded time, no secret anywhere, no crash on any input -------------------------------------------

def timed_probe(run_module, eps, **args):
    started = time.monotonic()
    run = run_module(MODULE, {"endpoints": eps, **args})
    return time.monotonic() - started, run


def test_a_trickling_or_silent_server_costs_the_timeout_and_no_more(run_module, sdp):
    """One byte every half second keeps every read alive: only a deadline on the whole request ends it."""
    fast = [{"name": "SDP", "url": sdp.url, "sdp": {"authtoken": SDP_KEY}}]
    baseline = timed_probe(run_module, fast)[0]
    with trickle_server() as trickle, silent_server() as silent:
        wall, run = timed_probe(run_module, [{"name": "Trickle", "url": f"http://127.0.0.1:{trickle.port}/v1/models"},
                                             {"name": "Silent", "url": f"http://127.0.0.1:{silent.port}/v1/models"}],
                                timeout=2)
        assert trickle.connections == 1 and silent.connections == 1
    baseline = max(baseline, timed_probe(run_module, fast)[0])
    assert run.rc == 0, run.stdout
    result = run.result
    assert [p["error"] for p in result["probes"]] == ["timeout", "timeout"], result["probes"]
    assert [p["detail"] for p in result["probes"]] == ["no complete answer within 2 s"] * 2
    assert result["elapsed"] <= 2.6, result["elapsed"]
    for item in result["probes"]:
        assert 1.9 <= item["timings"]["total"] <= 2.6, item
    assert wall - baseline <= 2.0 + 1.5, (wall, baseline)


@pytest.mark.parametrize(("args", "endpoint", "message"), [
    ({"timeout": 0}, {}, "probe endpoints: timeout must be above 0, got 0.0"),
    ({"timeout": "inf"}, {}, "probe endpoints: timeout must be a finite number, got inf"),
    ({"timeout": 301}, {}, "probe endpoints: timeout must be at most 300, got 301.0"),
    ({"slow_seconds": -1}, {}, "probe endpoints: slow_seconds must be above 0, got -1.0"),
    ({"timeout_seconds": "nan"}, {}, "probe endpoints: timeout_seconds must be a finite number, got nan"),
    ({}, {"timeout": -2}, "probe SDP: timeout must be above 0, got -2.0"),
    ({}, {"expected_status": [200, 1000]}, "probe SDP: expected_status must be at most 599, got 1000"),
])
def test_out_of_range_numbers_are_refused_naming_the_option(run_module, args, endpoint, message):
    run = run_module(MODULE, {"endpoints": [{"name": "SDP", "url": "http://127.0.0.1:9/x", **endpoint}], **args})
    assert run.rc != 0
    assert run.result["msg"] == message
    assert "Traceback" not in run.stdout


@pytest.mark.parametrize(("endpoint", "message"), [
    ({"headers": {"X-Note": "na\u00efve \u2603"}}, "probe Bad: headers value of 'X-Note' is not Latin-1 text"),
    ({"headers": {"X-Evil\r\nInjected": "1"}}, "probe Bad: headers name 'X-Evil\\r\\nInjected' is not an HTTP "
                                               "header name"),
    ({"headers": {"X-Api-Key": "ab\x01cdef12"}},
     "probe Bad: headers value of 'X-Api-Key' contains a control character"),
    ({"method": "GET\r\nX-Injected: 1"}, "probe Bad: method must be an HTTP method name such as GET or POST, "
                                         "got 'GET\\r\\nX-Injected: 1'"),
    ({"url": "http://127.0.0.1:70000/x"}, "probe Bad: url port must be from 1 to 65535, got '70000'"),
    ({"url": "http://[::1/x"}, "probe Bad: url is malformed, got '<malformed url>'"),
    ({"url": "http://127.0.0.1:9/a b"}, "probe Bad: url must not contain spaces or control characters"),
    ({"url": "https://127.0.0.1:9/x", "ca_path": "/nonexistent/ca.pem"},
     "probe Bad: ca_path '/nonexistent/ca.pem' cannot be read: No such file or directory"),
    ({"bearer_token": "tok\nen-123456"}, "probe Bad: bearer_token contains a control character"),
])
def test_bad_input_is_one_sentence_and_nothing_is_probed(run_module, endpoint, message):
    with silent_server() as first:
        run = run_module(MODULE, {"endpoints": [{"name": "First", "url": f"http://127.0.0.1:{first.port}/"},
                                                {"name": "Bad", "url": "http://127.0.0.1:9/x", **endpoint}],
                                  "timeout": 2})
        time.sleep(0.3)  # a connection, had one been made, is accepted by now
        assert first.connections == 0  # the good endpoint is not probed when another is refused: nothing half-done
    assert run.rc != 0
    assert run.result["msg"] == message
    assert "Traceback" not in run.stdout and "unreachable" not in run.result["msg"]


def test_a_body_and_headers_beyond_ascii_are_sent(run_module, openai):
    eps = [{"name": "OpenAI", "url": f"{openai.url}/v1/models", "bearer_token": OPENAI_KEY, "method": "POST",
            "body": "na\u00efve \u2603 \u65e5\u672c", "headers": {"X-Note": "caf\u00e9"}, "expected_status": [200, 404, 405]}]
    result = probe(run_module, eps)
    assert result["probes"][0]["error"] is None and result["probes"][0]["status"] in (200, 404, 405), result


CTRL_KEY = "ab\x01cdef12"  # a header value with a control character: its escaped forms must not leak either


@pytest.mark.parametrize("verbosity", [3])
def test_no_form_of_any_secret_in_output_on_success_or_failure(run_module, sdp, openai, verbosity):
    openai.fault(status=401)
    closed = free_port()
    good = [{"name": "SDP", "url": f"http://svc:{URL_PASSWORD}@127.0.0.1:{sdp.port}?token={QUERY_TOKEN}",
             "sdp": {"authtoken": SDP_KEY}, "headers": {"X-Api-Key": HEADER_KEY}},
            {"name": "OpenAI", "url": f"{openai.url}/v1/models?api_key={QUERY_KEY}", "bearer_token": OPENAI_KEY},
            {"name": "Gone", "url": f"http://svc:{URL_PASSWORD}@127.0.0.1:{closed}/health?token={QUERY_TOKEN}"}]
    bad = [*good, {"name": "Ctrl", "url": f"http://127.0.0.1:{closed}/x", "headers": {"X-Api-Key": CTRL_KEY}}]
    runs = [run_module(MODULE, {"endpoints": good, "timeout": 3}, verbosity=verbosity),
            run_module(MODULE, {"endpoints": bad, "timeout": 3}, verbosity=verbosity)]
    assert runs[0].rc == 0 and runs[1].rc != 0
    assert [p["classification"] for p in runs[0].result["probes"]] == ["ok", "auth_invalid", "unreachable"]
    assert runs[1].result["msg"] == "probe Ctrl: headers value of 'X-Api-Key' contains a control character"
    every_form = {form for secret in (*SECRETS, CTRL_KEY) for form in forms(secret) if len(form) >= 4}
    for run in runs:
        text = run.stdout + json.dumps(run.results)
        assert [form for form in every_form if form in text] == []
