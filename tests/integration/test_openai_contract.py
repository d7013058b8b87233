"""OpenAI: the stand-in answers as OpenAI documents, and http_probe_info tells its errors apart.

Documents followed:
  [CODES]  https://platform.openai.com/docs/guides/error-codes   (API errors: 401 kinds, 403, the two 429s)
  [LIMITS] https://platform.openai.com/docs/guides/rate-limits   (x-ratelimit-* headers, resets as durations)
  [MODELS] https://platform.openai.com/docs/api-reference/models/list
  [STATUS] Statuspage's public API, which every Statuspage page documents at /api (for example
           https://www.githubstatus.com/api): GET /api/v2/status.json, no key, a status rollup whose
           indicator is none, minor, major or critical, with a description
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.harness.standins import running, secrets_dir

MODULE = "aiagents.runbooks.http_probe_info"
KEY = "sk-contract-5e1b7c9a2d4f6e80"


@pytest.fixture(scope="module")
def openai(tmp_path_factory):
    with running("openai", secrets_dir(tmp_path_factory, {"openai-credentials": {"api_key": KEY}})) as standin:
        yield standin


@pytest.fixture(autouse=True)
def healed(openai):
    openai.heal()
    yield
    openai.heal()


def call(openai, path="/v1/models", key=KEY, body=None):
    """(status, JSON answer, headers) of one request; any status is an answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{openai.url}{path}", data=data, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


# ------------------------------------------------------------- the contract --

def test_an_incorrect_key_is_401_invalid_api_key_and_the_key_is_not_echoed_whole(openai):
    # [CODES] "401 - Incorrect API key provided".
    status, answer, _headers = call(openai, key="sk-wrong-0123456789abcdef")
    assert status == 401 and answer["error"]["code"] == "invalid_api_key"
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert "sk-wrong-0123456789abcdef" not in answer["error"]["message"]


@pytest.mark.parametrize(("code", "status", "said"), [
    ("missing_scopes", 401, "Missing scopes"),            # [CODES] restricted key lacking a scope
    ("ip_not_authorized", 401, "IP not authorized"),      # [CODES] "401 - IP not authorized"
    ("unsupported_country_region_territory", 403, "Country, region, or territory not supported"),  # [CODES]
])
def test_the_other_401s_and_the_403_say_which_they_are(openai, code, status, said):
    openai.fault(status=status, code=code)
    got, answer, _headers = call(openai)
    assert got == status and said in answer["error"]["message"]


def test_a_rate_limit_and_exhausted_quota_are_both_429_and_say_which(openai):
    # [CODES] "429 - Rate limit reached for requests" vs "429 - You exceeded your current quota".
    openai.fault(status=429)
    status, answer, headers = call(openai)
    assert (status, answer["error"]["code"]) == (429, "rate_limit_exceeded")
    assert headers["x-ratelimit-remaining-requests"] == "0" and headers["x-ratelimit-reset-tokens"] == "6m0s"
    openai.fault(status=429, code="insufficient_quota")
    status, answer, headers = call(openai)
    assert (status, answer["error"]["type"], answer["error"]["code"]) == (429, "insufficient_quota",
                                                                          "insufficient_quota")
    assert "Retry-After" not in headers and "current quota" in answer["error"]["message"]


def test_every_model_answer_carries_the_rate_limit_headers(openai):
    # [LIMITS] limit, remaining and reset for requests and tokens; resets are durations.
    status, answer, headers = call(openai, "/v1/chat/completions",
                                   body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200 and answer["object"] == "chat.completion"
    for name in ("limit-requests", "remaining-requests", "reset-requests", "limit-tokens", "remaining-tokens",
                 "reset-tokens"):
        assert headers[f"x-ratelimit-{name}"], name
    assert headers["x-ratelimit-reset-requests"].endswith("ms")
    # [MODELS] the list of models.
    status, answer, _headers = call(openai)
    assert status == 200 and answer["object"] == "list" and {m["object"] for m in answer["data"]} == {"model"}


# --------------------------------------------------------- the collection --

def probe(run_module, openai, key=KEY):
    run = run_module(MODULE, {"endpoints": [{"name": "OpenAI", "url": f"{openai.url}/v1", "bearer_token": key,
                                             "openai": {}}], "timeout": 5})
    assert run.rc == 0, run.stdout
    return run.result["probes"][0], run.result["findings"]


@pytest.mark.parametrize(("fault", "classification", "finding"), [
    ({"status": 429}, "rate_limited", "api_rate_limited"),
    ({"status": 429, "retry_after": False}, "rate_limited", "api_rate_limited"),
    ({"status": 429, "code": "insufficient_quota"}, "quota_exhausted", "api_quota_exhausted"),
    ({"status": 429, "code": "credit_balance_exhausted"}, "quota_exhausted", "api_quota_exhausted"),
    ({"status": 401}, "auth_invalid", "api_auth_invalid"),
    ({"status": 401, "code": "missing_scopes"}, "key_scopes_missing", "api_key_scopes_missing"),
    ({"status": 401, "code": "ip_not_authorized"}, "source_not_allowed", "api_source_not_allowed"),
    ({"status": 403}, "region_unsupported", "api_region_unsupported"),
])
def test_each_documented_error_is_its_own_finding(run_module, openai, fault, classification, finding):
    openai.fault(**fault)
    result, findings = probe(run_module, openai)
    assert result["classification"] == classification
    assert [f["id"] for f in findings] == [finding]
    if finding == "api_quota_exhausted":
        assert "retrying" in findings[0]["resolution"] and "billing" in findings[0]["resolution"]
    if finding == "api_region_unsupported":
        assert "Not a key permission" in findings[0]["resolution"]


def test_a_rate_limit_is_read_from_the_headers_with_or_without_retry_after(run_module, openai):
    openai.fault(status=429, retry_after=False)
    result, [found] = probe(run_module, openai)
    assert result["retry_after"] is None
    assert result["rate_limit"]["remaining_requests"] == "0" and result["rate_limit"]["reset_tokens"] == "6m0s"
    assert "0 of 500 requests left (reset in 1s)" in found["summary"] and "reset in 6m0s" in found["summary"]


def test_a_healthy_probe_says_what_it_proved_and_no_more(run_module, openai):
    result, findings = probe(run_module, openai)
    assert (result["classification"], findings) == ("ok", [])
    assert result["url"] == f"{openai.url}/v1/models"
    assert "list models" in result["proved"] and "does not prove it may create chat completions" in result["proved"]
    assert result["rate_limit"]["limit_requests"] == "500"


def test_a_chat_completions_check_proves_the_workers_scope(run_module, openai):
    run = run_module(MODULE, {"endpoints": [{"name": "OpenAI", "url": f"{openai.url}/v1", "bearer_token": KEY,
                                             "openai": {"check": "chat_completions"}}], "timeout": 5})
    result = run.result["probes"][0]
    assert (result["status"], result["classification"]) == (200, "ok")
    assert result["url"] == f"{openai.url}/v1/chat/completions"
    assert result["proved"] == "the key may create chat completions (POST /chat/completions, one token)"
    # A restricted key refused on the models probe is named for what the workers need.
    openai.fault(status=401, code="missing_scopes")
    _result, [found] = probe(run_module, openai)
    assert found["id"] == "api_key_scopes_missing" and "chat completions need model.request" in found["summary"]


def test_the_status_page_answers_without_a_key_with_statuspage_s_rollup(openai):
    """[STATUS] The quarterly review checks the status page the api_timeout runbook points to."""
    with urllib.request.urlopen(f"{openai.url}/api/v2/status.json", timeout=5) as response:
        status, page = response.status, json.loads(response.read())
    assert status == 200
    assert page["status"]["indicator"] in ("none", "minor", "major", "critical")
    assert page["status"]["description"] and page["page"]["url"] == "https://status.openai.com"
    # Only the status page is public: the API still wants the key.
    assert call(openai, key="")[0] == 401
