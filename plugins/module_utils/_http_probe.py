# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe HTTP APIs the way the workers call them, timing every phase.

Each probe resolves, connects, negotiates TLS and sends its request itself,
so the result says where time went (DNS, connect, TLS, first byte, total),
which is what tells a slow provider from a network problem. Probes run
concurrently: five hanging endpoints cost one timeout, not five.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from ansible.module_utils.common.validation import check_type_dict
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

READ_LIMIT = 64 * 1024  # we time the answer; we never need more of it than this

# classification -> (finding id, severity, what it means, what to do)
CLASSES = {
    "slow": ("api_slow", "medium", "answers slowly",
             "Watch provider status; if it persists, raise HTTPX_TIMEOUT to 60 and restart workers."),
    "timeout": ("api_timeout", "high", "times out",
                "Check the provider's status page; raise HTTPX_TIMEOUT to 60 if timeouts are config-bound; "
                "provider down 30+ min: page on-call and notify customers."),
    "auth_invalid": ("api_auth_invalid", "high", "rejects the credential (401)",
                     "Rotate the API key in its secret (api_key) and do a rolling restart of the workers."),
    "forbidden": ("api_forbidden", "high", "refuses the request (403: missing permission)",
                  "Grant the API key the missing permission at the provider, or replace the key."),
    "rate_limited": ("api_rate_limited", "medium", "rate-limits us (429)",
                     "Reduce worker concurrency / raise CELERY_TASK_BACKOFF, pause intake; recurring: quota "
                     "review within 1 h."),
    "server_error": ("api_server_error", "high", "fails on its side (5xx)",
                     "Provider failure: wait and monitor, open a vendor ticket if it lasts."),
    "unreachable": ("api_unreachable", "high", "cannot be reached (DNS or connection refused)",
                    "Network or firewall problem: check DNS and egress from the workers; escalate to the "
                    "platform team within 2 h."),
    "unexpected_status": ("api_unexpected_status", "medium", "answers with an unexpected status",
                          "Compare the endpoint and API version with the provider's documentation."),
}


class ProbeInputError(ValueError):
    pass


def redact(url: str) -> str:
    """The URL without credentials: no userinfo, and query values hidden."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = "&".join(f"{pair.split('=', 1)[0]}=***" for pair in parts.query.split("&") if pair) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# A query parameter or header whose name contains one of these is a credential...
_SECRET_PARTS = ("key", "token", "secret", "passw", "pwd", "auth", "signature", "credential", "session", "cookie")
# ...and so is one with one of these as a whole word (a substring would hit "design", "passive", ...).
_SECRET_WORDS = {"sig", "pass", "pw", "code", "jwt"}
_AUTH_SCHEME = re.compile(r"^\s*(?:bearer|basic|token|digest|apikey|api-key)\s+(\S.*)$", re.IGNORECASE)
# A value found by its name that is this short is a flag (auth=1, session=on), not a credential: masking it
# would star out every "1" or "on" in the result. Explicit credentials (bearer_token, URL password) are always masked.
_MIN_GUESSED_LENGTH = 4


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or header of this name carries a credential (api_key, X-Api-Key, ...)."""
    lowered = str(name).lower()
    return (any(part in lowered for part in _SECRET_PARTS)
            or any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", lowered)))


def _credential_forms(value: Any, guessed: bool = False) -> set[str]:
    """A credential as given, and as it may also appear: without its auth scheme, URL-decoded."""
    text = str(value).strip() if value is not None else ""
    if not text or (guessed and len(text) < _MIN_GUESSED_LENGTH):
        return set()
    forms = {text}
    scheme = _AUTH_SCHEME.match(text)
    if scheme:
        forms.add(scheme.group(1).strip())
    forms |= {unquote(form) for form in forms}
    return {form for form in forms if form}


def _header_secrets(headers: Any) -> set[str]:
    if isinstance(headers, str) and headers.strip():
        # Not validated yet: a dict option may arrive as "k=v, k2=v2" or JSON text.
        try:
            headers = check_type_dict(headers)
        except (TypeError, ValueError):
            return {headers}  # cannot tell its parts apart: hide it whole (validation will reject it)
    if not isinstance(headers, dict):
        return set()
    found: set[str] = set()
    for name, value in headers.items():
        if is_secret_name(name):
            found |= _credential_forms(value, guessed=True)
    return found


def secret_values(endpoints: Any) -> set[str]:
    """Every credential in the endpoints' URLs (userinfo, secret-named query values) and headers.

    Takes the parameters as given, before or after validation, so the module can
    register them for masking (AnsibleModule.no_log_values) before anything it
    returns or fails with - invocation included - can show them.
    """
    found: set[str] = set()
    if not isinstance(endpoints, list):
        return found
    for endpoint in endpoints:
        if not isinstance(endpoint, dict):
            continue
        url = endpoint.get("url")
        if isinstance(url, str):
            try:
                parts = urlsplit(url)
                password = parts.password
            except ValueError:
                parts, password = None, None
            if password:
                found |= _credential_forms(password)
            if parts is not None and parts.username and password is None and "@" in parts.netloc:
                found |= _credential_forms(parts.username)  # https://TOKEN@host: the user part is the token
            if parts is not None and parts.query:
                for name, value in parse_qsl(parts.query, keep_blank_values=True):
                    if is_secret_name(name):
                        found |= _credential_forms(value, guessed=True)
                for pair in parts.query.split("&"):  # the raw (still encoded) value, as it sits in the URL
                    name, _sep, value = pair.partition("=")
                    if is_secret_name(unquote(name)):
                        found |= _credential_forms(value, guessed=True)
        found |= _header_secrets(endpoint.get("headers"))
        found |= _credential_forms(endpoint.get("bearer_token"))
    return found


def validate(endpoint: dict[str, Any]) -> None:
    parts = urlsplit(endpoint["url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeInputError(f"probe {endpoint['name']}: url must be http(s)://host[:port]/path, got {redact(endpoint['url'])!r}")


def classify(status: int | None, total: float | None, error: str | None, expected: list[int],
             slow_seconds: float, timeout_seconds: float) -> str:
    if error == "timeout":
        return "timeout"
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
    return "ok"


def probe(endpoint: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One request, timed phase by phase; never raises for network trouble."""
    parts = urlsplit(endpoint["url"])
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    timings: dict[str, float | None] = dict.fromkeys(("dns", "connect", "tls", "first_byte", "total"))
    result: dict[str, Any] = {"name": endpoint["name"], "url": redact(endpoint["url"]), "status": None,
                              "timings": timings, "error": None, "detail": None, "retry_after": None}
    started = time.monotonic()
    deadline = started + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        return left

    def mark(phase: str) -> None:
        timings[phase] = round(time.monotonic() - started, 4)

    sock = None
    try:
        try:
            infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            result.update(error="dns", detail=f"DNS lookup of {parts.hostname} failed: {exc.strerror}")
            return result
        mark("dns")
        family, kind, proto, _canon, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.settimeout(remaining())
        sock.connect(address)
        mark("connect")
        if https:
            context = ssl.create_default_context(cafile=endpoint.get("ca_path"))
            if not endpoint.get("validate_certs", True):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            sock.settimeout(remaining())
            sock = context.wrap_socket(sock, server_hostname=parts.hostname)
            mark("tls")
        connection = (http.client.HTTPSConnection if https else http.client.HTTPConnection)(parts.hostname, port)
        connection.sock = sock
        sock.settimeout(remaining())
        connection.request(endpoint.get("method") or "GET", urlunsplit(("", "", parts.path or "/", parts.query, "")),
                           body=endpoint.get("body"), headers=request_headers(endpoint))
        response = connection.getresponse()
        mark("first_byte")
        result["status"] = response.status
        result["retry_after"] = response.getheader("Retry-After")
        sock.settimeout(remaining())
        response.read(READ_LIMIT)
        mark("total")
    except (socket.timeout, TimeoutError):
        result.update(error="timeout", detail=f"no complete answer within {timeout:g} s")
    except ConnectionRefusedError:
        result.update(error="refused", detail=f"connection to {parts.hostname}:{port} refused")
    except ssl.SSLError as exc:
        result.update(error="tls", detail=f"TLS handshake with {parts.hostname} failed: {exc.reason}")
    except (OSError, http.client.HTTPException) as exc:
        result.update(error="connection", detail=f"{type(exc).__name__}: {exc}")
    finally:
        if sock is not None:
            sock.close()
    if timings["total"] is None and result["error"] is not None:
        timings["total"] = round(time.monotonic() - started, 4)
    return result


def request_headers(endpoint: dict[str, Any]) -> dict[str, str]:
    headers = {"User-Agent": "aiagents.runbooks/http_probe_info", "Accept": "application/json"}
    headers.update(endpoint.get("headers") or {})
    if endpoint.get("bearer_token"):
        headers["Authorization"] = f"Bearer {endpoint['bearer_token']}"
    return headers


def probe_all(endpoints: list[dict[str, Any]], timeout: float, slow_seconds: float,
              timeout_seconds: float) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(endpoints)))) as pool:
        results = list(pool.map(lambda endpoint: probe(endpoint, endpoint.get("timeout") or timeout), endpoints))
    for endpoint, result in zip(endpoints, results):
        result["classification"] = classify(result["status"], result["timings"]["total"], result["error"],
                                            endpoint.get("expected_status") or [200], slow_seconds,
                                            timeout_seconds)
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
        if kind in ("slow", "timeout") and total is not None:
            bound = f"> {timeout_seconds:g} s" if kind == "timeout" else f"normal < {slow_seconds:g} s"
            summary += f": {total:.1f} s ({bound})"
        elif result["detail"]:
            summary += f": {result['detail']}"
        if kind == "rate_limited" and result["retry_after"]:
            summary += f"; Retry-After {result['retry_after']} s"
        evidence = {key: result[key] for key in ("name", "url", "status", "timings", "error", "detail", "retry_after")}
        found.append(finding(finding_id, severity, summary, evidence, resolution))
    return found
