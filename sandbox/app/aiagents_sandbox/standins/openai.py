"""OpenAI stand-in: `/v1/models` and `/v1/chat/completions` with the documented
answers, errors and rate-limit headers.

Followed (each rule's case in tests/integration/test_openai_contract.py):
- https://platform.openai.com/docs/guides/error-codes - 401 comes as an
  incorrect key (`invalid_api_key`), a restricted key missing a scope
  ("Missing scopes: ...") or a source address off the allowlist ("IP not
  authorized"); 403 is an unsupported country, region or territory; 429 is
  either a rate limit (`rate_limit_exceeded`) or exhausted quota or credit
  (`insufficient_quota`, `credit_balance_exhausted`), which retrying does
  not mend.
- https://platform.openai.com/docs/guides/rate-limits - every model request's
  answer carries `x-ratelimit-limit|remaining|reset-requests|tokens`, the
  resets written as durations (`1s`, `6m0s`).
The documents do not say whether a 429 carries `Retry-After`: a rate limit
here sends one (`retry_after` fault setting: `no` leaves it out), exhausted
quota never does.

The valid key is the `openai-credentials` secret's `api_key` (or one issued
on the control port), unless revoked. Every completion takes
OPENAI_BASE_LATENCY_MS, like a real LLM.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from ..config import env_int, read_secret
from .common import Request, Response, StandIn

MODELS = ("gpt-4o-mini", "gpt-4o")
REQUESTS_PER_MINUTE, TOKENS_PER_MINUTE = 500, 200000
# fault code -> (status, type, code, message); the first of each status is its default.
ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "invalid_api_key": (401, "invalid_request_error", "invalid_api_key",
                        "Incorrect API key provided: {key}. You can find your API key at "
                        "https://platform.openai.com/account/api-keys."),
    "missing_scopes": (401, "invalid_request_error", None,
                       "You have insufficient permissions for this operation. Missing scopes: model.request. "
                       "Check that you have the correct role in your organization (Reader, Writer, Owner) and "
                       "project (Member, Owner), and if you're using a restricted API key, that it has the "
                       "necessary scopes."),
    "ip_not_authorized": (401, "invalid_request_error", "ip_not_authorized",
                          "IP not authorized: your request was made from an address that is not on this "
                          "project's IP allowlist."),
    "unsupported_country_region_territory": (403, "request_forbidden", "unsupported_country_region_territory",
                                             "Country, region, or territory not supported"),
    "rate_limit_exceeded": (429, "requests", "rate_limit_exceeded",
                            "Rate limit reached for gpt-4o-mini in organization org-sandbox on requests per min "
                            "(RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms."),
    "insufficient_quota": (429, "insufficient_quota", "insufficient_quota",
                           "You exceeded your current quota, please check your plan and billing details. For more "
                           "information on this error, read the docs: "
                           "https://platform.openai.com/docs/guides/error-codes/api-errors."),
    "credit_balance_exhausted": (429, "insufficient_quota", "credit_balance_exhausted",
                                 "Your credit balance is too low to access the API. Please go to Billing to "
                                 "purchase credits."),
    "server_error": (500, "server_error", None,
                     "The server had an error while processing your request. Sorry about that!"),
    "overloaded": (503, "server_error", None, "The engine is currently overloaded, please try again later."),
}
DEFAULT_FOR_STATUS = {401: "invalid_api_key", 403: "unsupported_country_region_territory",
                      429: "rate_limit_exceeded", 500: "server_error", 503: "overloaded"}


def _error(status: int, code: str = "", key: str | None = None) -> dict[str, Any]:
    chosen = code if ERRORS.get(code, (None,))[0] == status else DEFAULT_FOR_STATUS.get(status, "server_error")
    _status, kind, error_code, message = ERRORS[chosen]
    shown = f"{key[:3]}****{key[-4:]}" if key and len(key) > 8 else "****"
    return {"error": {"message": message.format(key=shown), "type": kind, "param": None, "code": error_code}}


def rate_limit_headers(exhausted: bool = False) -> dict[str, str]:
    """The rate-limit guide's headers: limits, what is left, and when each resets (a duration)."""
    return {"x-ratelimit-limit-requests": str(REQUESTS_PER_MINUTE),
            "x-ratelimit-limit-tokens": str(TOKENS_PER_MINUTE),
            "x-ratelimit-remaining-requests": "0" if exhausted else str(REQUESTS_PER_MINUTE - 1),
            "x-ratelimit-remaining-tokens": "0" if exhausted else str(TOKENS_PER_MINUTE - 16),
            "x-ratelimit-reset-requests": "1s" if exhausted else "120ms",
            "x-ratelimit-reset-tokens": "6m0s" if exhausted else "5ms"}


# The provider's status page (status.openai.com), served here beside the API: Statuspage's public
# API, whose status rollup carries an indicator - none, minor, major or critical - and a description.
STATUS_PATH = "/api/v2/status.json"


def status_page() -> dict[str, Any]:
    return {"page": {"id": "sandbox", "name": "OpenAI", "url": "https://status.openai.com", "time_zone": "Etc/UTC",
                     "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())},
            "status": {"indicator": "none", "description": "All Systems Operational"}}


class OpenAI(StandIn):
    name = "openai"

    def __init__(self) -> None:
        super().__init__("OPENAI_PORT", "OPENAI_CONTROL_PORT")
        self.base_latency = env_int("OPENAI_BASE_LATENCY_MS", 0) / 1000

    def error_body(self, status: int, code: str = "") -> Any:
        return _error(status, code)

    def error_headers(self, status: int, code: str = "") -> dict[str, str]:
        if status != 429 or _error(429, code)["error"]["type"] == "insufficient_quota":
            return {}  # exhausted quota: waiting does not help, and nothing says when to retry
        headers = rate_limit_headers(exhausted=True)
        if self.faults.retry_after:
            headers["Retry-After"] = "20"
        return headers

    def handle(self, request: Request) -> Response:
        if request.path == STATUS_PATH and request.method == "GET":
            return 200, status_page(), {}  # public: no key, as status.openai.com
        current = read_secret("openai-credentials", "api_key")
        if not self.key_valid(request.bearer, {current} if current else set()):
            return 401, _error(401, "invalid_api_key", request.bearer), {}
        if request.path == "/v1/models" and request.method == "GET":
            return 200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1715367049, "owned_by": "system"} for m in MODELS]}, \
                rate_limit_headers()
        if request.path == "/v1/chat/completions" and request.method == "POST":
            payload = request.json()
            messages = payload.get("messages") or []
            if not messages:
                return 400, {"error": {"message": "'messages' is a required property",
                                       "type": "invalid_request_error", "param": "messages", "code": None}}, {}
            time.sleep(self.base_latency)
            prompt = " ".join(str(m.get("content", "")) for m in messages)
            text = ("Summary for the engineer: " + prompt[:160].replace("\n", " ")
                    + " — Suggested next step: check the similar resolved tickets listed above.")
            prompt_tokens, completion_tokens = len(prompt.split()), len(text.split())
            return 200, {
                "id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
                "created": int(time.time()), "model": payload.get("model", MODELS[0]),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
                "system_fingerprint": "fp_sandbox"}, {"x-request-id": uuid.uuid4().hex, **rate_limit_headers()}
        return 404, {"error": {"message": f"Invalid URL ({request.method} {request.path})",
                               "type": "invalid_request_error", "param": None, "code": None}}, {}


if __name__ == "__main__":
    OpenAI().serve()
