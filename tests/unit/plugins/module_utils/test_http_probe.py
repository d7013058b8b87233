"""http_probe_info's logic: which credentials the shared helper finds in its endpoints, what it refuses, how it classifies."""

from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http_probe, _redact
from ansible_collections.aiagents.runbooks.plugins.modules.http_probe_info import ENDPOINT_SPEC

SPEC = {"endpoints": {"type": "list", "elements": "dict", "options": ENDPOINT_SPEC}}


def test_no_redaction_code_of_its_own_remains():
    """One redaction helper serves every module: the probe's own copies are gone."""
    assert not {"redact", "secret_values", "is_secret_name", "_credential_forms"} & set(vars(_http_probe))


def test_the_shared_helper_finds_query_userinfo_header_and_bearer_credentials_of_endpoints():
    endpoints = [
        {"name": "a", "url": "https://svc:pw-1234@api.example/v1?api_key=qk-1234&page=2&X-Amz-Signature=s%2B12",
         "headers": {"X-Api-Key": "hk-1234", "Authorization": "Bearer ab-1234", "Cookie": "sid=ck-1234",
                     "Accept": "application/json"}},
        {"name": "b", "url": "https://tok-9876@api.example/v1", "bearer_token": "bt-1234"},
    ]
    found = _redact.spec_secrets({"endpoints": endpoints}, SPEC)
    assert {"pw-1234", "qk-1234", "s+12", "s%2B12", "hk-1234", "ab-1234", "sid=ck-1234", "tok-9876",
            "bt-1234"} <= found
    assert not {"2", "page", "application/json", "api.example"} & found


def test_headers_given_as_text_are_read_before_validation():
    found = _redact.spec_secrets({"endpoints": [{"url": "http://h/", "headers": "X-Api-Key=hk-2345, Accept=text/plain"}]},
                                 SPEC)
    assert "hk-2345" in found and "text/plain" not in found


@pytest.mark.parametrize(("params", "message"), [
    ({"timeout": 0.0}, "probe endpoints: timeout must be above 0, got 0.0"),
    ({"timeout": 300.5}, "probe endpoints: timeout must be at most 300, got 300.5"),
    ({"slow_seconds": float("inf")}, "probe endpoints: slow_seconds must be a finite number, got inf"),
    ({"timeout_seconds": -1.0}, "probe endpoints: timeout_seconds must be above 0, got -1.0"),
    ({"endpoints": [{"name": "SDP", "timeout": float("nan")}]}, "probe SDP: timeout must be a finite number, got nan"),
    ({"endpoints": [{"name": "SDP", "expected_status": [200, 42]}]},
     "probe SDP: expected_status must be at least 100, got 42"),
    ({"endpoints": [{"name": f"E{n}"} for n in range(65)]}, "probe endpoints: at most 64 endpoints at once, got 65"),
])
def test_out_of_range_options_are_refused_naming_the_option(params, message):
    assert _http_probe.check_options({"timeout": 15.0, "slow_seconds": 2.0, "timeout_seconds": 10.0,
                                      "endpoints": [], **params}) == message


def test_defaults_pass():
    assert _http_probe.check_options({"timeout": 15.0, "slow_seconds": 2.0, "timeout_seconds": 10.0,
                                      "endpoints": [{"name": "SDP", "timeout": None, "expected_status": [200]}]}) is None


@pytest.mark.parametrize(("endpoint", "message"), [
    ({"bearer_token": "tok\r\nen-1"}, "probe SDP: bearer_token contains a control character"),
    ({"bearer_token": "t\u00f6k\u2603"}, "probe SDP: bearer_token is not Latin-1 text"),
    ({"headers": {"X-Api-Key": "ab\x01cdef12"}}, "probe SDP: headers value of 'X-Api-Key' contains a control character"),
    ({"method": "GET /admin HTTP/1.1\r\n"},
     "probe SDP: method must be an HTTP method name such as GET or POST, got 'GET /admin HTTP/1.1\\r\\n'"),
])
def test_an_endpoint_that_cannot_be_sent_is_one_sentence_without_its_secret(endpoint, message):
    with pytest.raises(_http_probe.ProbeInputError) as caught:
        _http_probe.prepare({"name": "SDP", "url": "http://127.0.0.1:9/x", **endpoint})
    assert str(caught.value) == message


def test_one_bad_endpoint_stops_all_probes_before_any_is_sent(monkeypatch):
    sent = []
    monkeypatch.setattr(_http_probe, "probe", lambda *args: sent.append(args))
    with pytest.raises(_http_probe.ProbeInputError, match="^probe Bad: url port must be from 1 to 65535"):
        _http_probe.probe_all([{"name": "Good", "url": "http://127.0.0.1:9/"},
                               {"name": "Bad", "url": "http://127.0.0.1:65536/"}], 2, 2, 10)
    assert sent == []


@pytest.mark.parametrize(("status", "total", "error", "expected"), [
    (None, 2.0, "timeout", "timeout"), (None, 0.1, "tls", "unreachable"), (None, 0.1, "dns", "unreachable"),
    (401, 0.1, None, "auth_invalid"), (403, 0.1, None, "forbidden"), (429, 0.1, None, "rate_limited"),
    (503, 0.1, None, "server_error"), (404, 0.1, None, "unexpected_status"), (200, 12.0, None, "timeout"),
    (200, 3.0, None, "slow"), (200, 0.5, None, "ok"),
])
def test_classification_by_the_runbooks_bands(status, total, error, expected):
    assert _http_probe.classify(status, total, error, [200], 2, 10) == expected


def test_a_probe_cut_at_its_deadline_says_so_in_its_finding():
    result = {"name": "OpenAI", "url": "http://h/", "status": None, "error": "timeout", "retry_after": None,
              "detail": "no complete answer within 2 s", "classification": "timeout",
              "timings": {"dns": 0.0, "connect": 0.001, "tls": None, "first_byte": None, "total": 2.0}}
    [found] = _http_probe.probe_findings([result], 2, 10)
    assert found["summary"] == "OpenAI times out: no complete answer within 2 s"


def test_a_tls_failure_is_not_called_dns_or_refused():
    result = {"name": "SDP", "url": "https://h/", "status": None, "error": "tls", "retry_after": None,
              "detail": "TLS certificate of h is not trusted: self-signed certificate", "classification": "unreachable",
              "timings": dict.fromkeys(("dns", "connect", "tls", "first_byte", "total"))}
    [found] = _http_probe.probe_findings([result], 2, 10)
    assert found["summary"] == "SDP cannot be reached: TLS certificate of h is not trusted: self-signed certificate"
