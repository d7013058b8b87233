# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe HTTP APIs the way the workers call them, timing every phase.

Each probe goes through the collection's one HTTP client (_http), which
resolves, connects, negotiates TLS and sends the request itself, so the
result says where time went (DNS, connect, TLS, first byte, total) - what
tells a slow provider from a network problem - and ends every probe at its
deadline. Probes run concurrently: five hanging endpoints cost one timeout,
not five. Credentials are masked by the module (_redact.RunbookModule).
"""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http, _sdp
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import printable

READ_LIMIT = 64 * 1024  # we time the answer; we never need more of it than this
MAX_ENDPOINTS = 64  # all probed at once, one thread each
MAX_THRESHOLD = 3600.0  # seconds: slow_seconds and timeout_seconds

# classification -> (finding id, severity, what it means, what to do)
CLASSES = {
    "slow": ("api_slow", "medium", "answers slowly",
             "Watch provider status; if it persists, raise HTTPX_TIMEOUT to 60 and restart workers."),
    "timeout": ("api_timeout", "high", "times out",
                "Check the provider's status page; raise HTTPX_TIMEOUT to 60 if timeouts are config-bound; "
                "provider down 30+ min: page on-call and notify customers."),
    "auth_invalid": ("api_auth_invalid", "high", "rejects the credential (401)",
                     "Rotate the API key in its secret (api_key) and do a rolling restart of the workers."),
    "refresh_refused": ("api_auth_invalid", "high", "refuses the Cloud credentials",
                        "The refresh token or the OAuth client was refused: re-authorise the app in the Zoho API "
                        "console and store the new client_id, client_secret and refresh_token in the tenant's "
                        "secret. A new access token alone will not help."),
    "token_expired": ("sdp_token_expired", "medium", "refused the stored access token (401) and accepted a fresh one",
                      "The access token had expired (they last about an hour); the refresh token is good, so refresh "
                      "the token - nothing to rotate. If it recurs, check that whatever holds the token renews it "
                      "before it expires."),
    "forbidden": ("api_forbidden", "high", "refuses the request (403: missing permission)",
                  "Grant the API key the missing permission at the provider, or replace the key."),
    "rate_limited": ("api_rate_limited", "medium", "rate-limits us (429)",
                     "Reduce worker concurrency / raise CELERY_TASK_BACKOFF, pause intake; recurring: quota "
                     "review within 1 h."),
    "server_error": ("api_server_error", "high", "fails on its side (5xx)",
                     "Provider failure: wait and monitor, open a vendor ticket if it lasts."),
    "unreachable": ("api_unreachable", "high", "cannot be reached",
                    "Network, firewall or TLS problem (the summary says which): check DNS, egress and certificates "
                    "from the workers; escalate to the platform team within 2 h."),
    # OpenAI's errors that share a status with others and need other remedies (its error-codes guide).
    "quota_exhausted": ("api_quota_exhausted", "high", "refuses for lack of quota or credit (429 insufficient_quota)",
                        "Not a rate limit: retrying, backing off and pausing intake do not help. Escalate to whoever "
                        "owns the provider's billing (add credit or raise the spend limit); jobs fail until then."),
    "key_scopes_missing": ("api_key_scopes_missing", "high", "accepts the key but it lacks a permission (401)",
                           "Give the key the scopes the workers need (model.request for chat completions) at the "
                           "provider, or use an unrestricted key; a new key with the same restrictions will not help."),
    "source_not_allowed": ("api_source_not_allowed", "high", "refuses our source address (401 IP not authorized)",
                           "Add the workers' egress address to the project's IP allowlist at the provider, or send "
                           "from an allowed address; the key itself is fine."),
    "region_unsupported": ("api_region_unsupported", "high",
                           "refuses our country or region (403 unsupported_country_region_territory)",
                           "Not a key permission: the provider serves no requests from where the workers egress. "
                           "Route their traffic through a supported region."),
    "unexpected_status": ("api_unexpected_status", "medium", "answers with an unexpected status",
                          "Compare the endpoint and API version with the provider's documentation."),
}


class ProbeInputError(ValueError):
    """An endpoint or option the probes cannot run with: one sentence naming it."""


def check_options(params: dict[str, Any]) -> str | None:
    """The message refusing an out-of-range number among the module's options, or None."""
    endpoints = params.get("endpoints") or []
    if len(endpoints) > MAX_ENDPOINTS:
        return f"probe endpoints: at most {MAX_ENDPOINTS} endpoints at once, got {len(endpoints)}"
    problem = (_http.check_timeout("timeout", params.get("timeout"))
               or out_of_range("slow_seconds", params.get("slow_seconds"), above=0, maximum=MAX_THRESHOLD)
               or out_of_range("timeout_seconds", params.get("timeout_seconds"), above=0, maximum=MAX_THRESHOLD))
    if problem:
        return f"probe endpoints: {problem}"
    for endpoint in endpoints:
        problem = _http.check_timeout("timeout", endpoint.get("timeout")) or next(
            (message for status in endpoint.get("expected_status") or []
             for message in [out_of_range("expected_status", status, minimum=100, maximum=599)] if message), None)
        if problem:
            return f"probe {endpoint['name']}: {problem}"
    return None


def request_headers(endpoint: dict[str, Any]) -> dict[str, Any]:
    headers: dict[str, Any] = {"User-Agent": "aiagents.runbooks/http_probe_info"}
    headers.update(endpoint.get("headers") or {})
    if endpoint.get("bearer_token"):
        headers["Authorization"] = f"Bearer {endpoint['bearer_token']}"
    return headers


def prepare(endpoint: dict[str, Any]) -> _http.Prepared:
    """The endpoint's request, checked before anything is sent.

    With `sdp` (settings already completed by _sdp.settings), `url` is the
    ServiceDesk Plus server or Cloud domain: the request goes to the edition's
    path for the resource, asking for one row, with the edition's login."""
    try:
        problem = _http.header_value_problem(endpoint["bearer_token"]) if endpoint.get("bearer_token") else None
        if problem:
            raise _http.HttpInputError("bearer_token", problem)
        url, headers, sdp = endpoint["url"], request_headers(endpoint), endpoint.get("sdp")
        method, body = endpoint.get("method") or "GET", endpoint.get("body")
        openai = endpoint.get("openai")
        if openai is not None:
            for name, header in (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project")):
                if openai.get(name):
                    headers[header] = openai[name]
            if (openai.get("check") or "models") == "chat_completions":
                # The smallest real completion: proves the key may create them (and costs one token).
                url, method = _http.join_url(url, "/chat/completions"), "POST"
                headers["Content-Type"] = "application/json"
                body = json.dumps({"model": openai.get("model") or "gpt-4o-mini", "max_tokens": 1,
                                   "messages": [{"role": "user", "content": "ping"}]})
            else:
                url = _http.join_url(url, "/models")
        if sdp:
            query = {"input_data": {"list_info": {"row_count": 1}}} if method.upper() == "GET" else None
            url = _sdp.api_url(url, sdp, query)
            for name, value in _sdp.auth_headers(sdp).items():
                problem = _http.header_value_problem(value)
                if problem:
                    raise _http.HttpInputError(f"sdp credential ({name})", problem)
                headers[name] = value
            if sdp["edition"] == "cloud":
                _http.prepare(sdp["accounts_url"], "POST", {}, "", endpoint.get("validate_certs", True),
                              endpoint.get("ca_path"))
        return _http.prepare(url, method, headers, body, endpoint.get("validate_certs", True), endpoint.get("ca_path"))
    except _http.HttpInputError as exc:
        raise ProbeInputError(f"probe {endpoint['name']}: {exc}") from None


def classify(status: int | None, total: float | None, error: str | None, expected: list[int],
             slow_seconds: float, timeout_seconds: float, token_expired: bool = False) -> str:
    if error == "timeout":
        return "timeout"
    if error == "refresh_refused":
        return "refresh_refused"
    if error is not None:
        return "unreachable"
    if status == 401:
        return "auth_invalid"
    if status == 403:
        return "forbidden"
    if status == 429:
        return "rate_limited"
    if status is not None and status >= 500:
        return "server_error"
    if status not in expected:
        return "unexpected_status"
    if total is not None and total > timeout_seconds:
        return "timeout"
    if total is not None and total > slow_seconds:
        return "slow"
    return "token_expired" if token_expired else "ok"


def probe(endpoint: dict[str, Any], prepared: _http.Prepared, timeout: float) -> dict[str, Any]:
    """One request, timed phase by phase; never raises for network trouble."""
    result: dict[str, Any] = {"name": endpoint["name"], "url": prepared.shown, "status": None,
                              "timings": dict.fromkeys(_http.PHASES), "error": None, "detail": None,
                              "retry_after": None, "token_refreshed": None, "token_expired": None,
                              "provider_error": None, "rate_limit": None, "proved": None}
    sdp = endpoint.get("sdp")
    try:
        if sdp and sdp["edition"] == "cloud":
            response = _probe_cloud(endpoint, sdp, prepared, timeout, result)
        else:
            response = _http.send(prepared, timeout, read_limit=READ_LIMIT)
    except _http.HttpError as exc:
        result.update(error=exc.kind, detail=exc.detail, timings=exc.timings)
        return result
    except _sdp.RefreshRefused as exc:
        result.update(error="refresh_refused", detail=str(exc))
        return result
    result.update(status=response.status, retry_after=response.header("Retry-After"), timings=response.timings)
    if endpoint.get("openai") is not None:
        result.update(openai_answer(response, endpoint["openai"].get("check") or "models"))
    return result


RATE_LIMIT_HEADERS = ("limit-requests", "remaining-requests", "reset-requests",
                      "limit-tokens", "remaining-tokens", "reset-tokens")
QUOTA_CODES = {"insufficient_quota", "credit_balance_exhausted", "billing_hard_limit_reached",
               "billing_not_active", "access_terminated"}
OPENAI_PROVED = {
    "models": "the key may list models (GET /models); that does not prove it may create chat completions",
    "chat_completions": "the key may create chat completions (POST /chat/completions, one token)",
}


def openai_answer(response: _http.Response, check: str = "models") -> dict[str, Any]:
    """What an OpenAI answer says beyond its status: the error's type and code (and the start of its
    message), the rate-limit headers, and what a successful probe proves."""
    limits = {name.replace("-", "_"): response.header(f"x-ratelimit-{name}") for name in RATE_LIMIT_HEADERS}
    error = None
    if response.status >= 400:
        try:
            document = json.loads(response.body)
        except (ValueError, RecursionError):
            document = None
        found = document.get("error") if isinstance(document, dict) else None
        if isinstance(found, dict):
            error = {key: found.get(key) if isinstance(found.get(key), str) else None for key in ("type", "code")}
            message = found.get("message")
            error["message"] = printable(message[:300]) if isinstance(message, str) else None
    return {"provider_error": error, "rate_limit": limits if any(limits.values()) else None,
            "proved": OPENAI_PROVED[check] if response.status == 200 else None}


def openai_class(status: int | None, error: dict[str, Any] | None) -> str | None:
    """The OpenAI-specific classification of an error answer, or None for the generic one."""
    if not error:
        return None
    words = {error.get("type"), error.get("code")}
    message = (error.get("message") or "").lower()
    if status == 429 and words & QUOTA_CODES:
        return "quota_exhausted"
    if status == 401 and "missing scopes" in message:
        return "key_scopes_missing"
    if status == 401 and ("ip_not_authorized" in words or "ip not authorized" in message or "allowlist" in message):
        return "source_not_allowed"
    if status == 403 and ("unsupported_country_region_territory" in words or "not supported" in message):
        return "region_unsupported"
    return None


def _probe_cloud(endpoint: dict[str, Any], sdp: dict[str, Any], prepared: _http.Prepared, timeout: float,
                 result: dict[str, Any]) -> _http.Response:
    """ServiceDesk Plus Cloud: with the stored access token; none, or refused (401), then with a fresh one
    from the refresh token - the whole within `timeout`. A refused token that a refresh mends has expired."""
    deadline = time.monotonic() + timeout
    certs = {"validate_certs": endpoint.get("validate_certs", True), "ca_path": endpoint.get("ca_path")}

    def with_token(token: str) -> _http.Prepared:
        return dataclasses.replace(prepared, headers={**prepared.headers, **_sdp.auth_headers(sdp, token)})

    result["token_refreshed"] = False
    if not sdp.get("access_token"):
        response = _http.send(with_token(_sdp.refresh(sdp, timeout, deadline, **certs)), timeout, deadline,
                              read_limit=READ_LIMIT)
        result["token_refreshed"] = True
        return response
    response = _http.send(prepared, timeout, deadline, read_limit=READ_LIMIT)
    if response.status != 401 or not _sdp.can_refresh(sdp):
        return response
    fresh = with_token(_sdp.refresh(sdp, timeout, deadline, **certs))
    result["token_refreshed"] = True
    response = _http.send(fresh, timeout, deadline, read_limit=READ_LIMIT)
    result["token_expired"] = response.status != 401
    return response


def probe_all(endpoints: list[dict[str, Any]], timeout: float, slow_seconds: float,
              timeout_seconds: float) -> list[dict[str, Any]]:
    """Every endpoint checked first (ProbeInputError: none is probed), then all probed at once."""
    prepared = [prepare(endpoint) for endpoint in endpoints]
    if not endpoints:
        return []
    with ThreadPoolExecutor(max_workers=len(endpoints)) as pool:
        results = list(pool.map(lambda pair: probe(pair[0], pair[1], pair[0].get("timeout") or timeout),
                                zip(endpoints, prepared)))
    for endpoint, result in zip(endpoints, results):
        result["classification"] = classify(result["status"], result["timings"]["total"], result["error"],
                                            endpoint.get("expected_status") or [200], slow_seconds,
                                            timeout_seconds, bool(result["token_expired"]))
        if endpoint.get("openai") is not None:
            result["classification"] = (openai_class(result["status"], result.get("provider_error"))
                                        or result["classification"])
    return results


def probe_findings(results: list[dict[str, Any]], slow_seconds: float, timeout_seconds: float) -> list[dict[str, Any]]:
    found = []
    for result in results:
        kind = result["classification"]
        if kind == "ok":
            continue
        finding_id, severity, meaning, resolution = CLASSES[kind]
        total = result["timings"]["total"]
        summary = f"{result['name']} {meaning}"
        if result["error"] == "timeout":
            summary += f": {result['detail']}"
        elif kind in ("slow", "timeout") and total is not None:
            bound = f"> {timeout_seconds:g} s" if kind == "timeout" else f"normal < {slow_seconds:g} s"
            summary += f": {total:.1f} s ({bound})"
        elif result["detail"]:
            summary += f": {result['detail']}"
        if kind == "rate_limited" and result["retry_after"]:
            summary += f"; Retry-After {result['retry_after']} s"
        limits = result.get("rate_limit") or {}
        if kind == "rate_limited" and limits:
            summary += (f"; {limits.get('remaining_requests')} of {limits.get('limit_requests')} requests left "
                        f"(reset in {limits.get('reset_requests')}), {limits.get('remaining_tokens')} of "
                        f"{limits.get('limit_tokens')} tokens left (reset in {limits.get('reset_tokens')})")
        if kind == "key_scopes_missing":
            summary += (" - the probe listed models; the workers' chat completions need model.request"
                        if "/models" in result["url"] else " - the workers' chat completions are refused")
        if result.get("provider_error") and kind not in ("rate_limited",):
            said = result["provider_error"]
            summary += f" [{said.get('code') or said.get('type')}]"
        evidence = {key: result.get(key) for key in ("name", "url", "status", "timings", "error", "detail",
                                                     "retry_after", "token_refreshed", "provider_error",
                                                     "rate_limit", "proved")}
        found.append(finding(finding_id, severity, summary, evidence, resolution))
    return found
