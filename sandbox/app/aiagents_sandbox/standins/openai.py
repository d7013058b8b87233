"""OpenAI stand-in: `/v1/models` and `/v1/chat/completions` with the real
response and error shapes. The valid key is the `openai-credentials` secret's
`api_key` (or one issued on the control port), unless revoked. Every completion takes OPENAI_BASE_LATENCY_MS, like a real LLM."""
from __future__ import annotations

import time
import uuid
from typing import Any

from ..config import env_int, read_secret
from .common import Request, Response, StandIn

MODELS = ("gpt-4o-mini", "gpt-4o")
ERRORS: dict[int, tuple[str, str | None, str]] = {
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "You are not allowed to access this resource."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 500. Please try again in 20s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def _error(status: int, message: str | None = None) -> dict[str, Any]:
    kind, code, default = ERRORS.get(status, ERRORS[500])
    return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}


class OpenAI(StandIn):
    name = "openai"

    def __init__(self) -> None:
        super().__init__("OPENAI_PORT", "OPENAI_CONTROL_PORT")
        self.base_latency = env_int("OPENAI_BASE_LATENCY_MS", 0) / 1000

    def error_body(self, status: int) -> Any:
        return _error(status)

    def handle(self, request: Request) -> Response:
        current = read_secret("openai-credentials", "api_key")
        if not self.key_valid(request.bearer, {current} if current else set()):
            return 401, _error(401), {}
        if request.path == "/v1/models" and request.method == "GET":
            return 200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1715367049, "owned_by": "system"} for m in MODELS]}, {}
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
                "system_fingerprint": "fp_sandbox"}, {"x-request-id": uuid.uuid4().hex}
        return 404, _error(404, f"Invalid URL ({request.method} {request.path})"), {}


if __name__ == "__main__":
    OpenAI().serve()
