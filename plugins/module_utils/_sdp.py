# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ServiceDesk Plus v3, as each edition speaks it.

On-premises (https://www.manageengine.com/products/service-desk/sdpop-v3-api/):
`<server>/api/v3/<resource>`, the technician key in the `authtoken` header.
Cloud (https://www.manageengine.com/products/service-desk/sdpod-v3-api/):
`<domain>/app/<portal>/api/v3/<resource>`, `Authorization: Zoho-oauthtoken
<access token>`; access tokens expire (about an hour) and are renewed at the
Zoho accounts server's `/oauth/v2/token` with a refresh token. Both want
`Accept: application/vnd.manageengine.sdp.v3+json`, take writes as JSON in
the `input_data` form field and answer with a `response_status`.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote, urlencode

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http

EDITIONS = ("on_premises", "cloud")
V3_ACCEPT = "application/vnd.manageengine.sdp.v3+json"
DEFAULT_ACCOUNTS_URL = "https://accounts.zoho.com"
# What a secret directory (one file per key, as a Kubernetes secret volume) may hold.
SECRET_FILES = ("api_key", "client_id", "client_secret", "refresh_token", "access_token", "portal", "accounts_url")
SECRET_FIELDS = ("authtoken", "client_secret", "refresh_token", "access_token")

SPEC = {
    "edition": {"type": "str", "choices": list(EDITIONS), "default": "on_premises"},
    "portal": {"type": "str"},
    "accounts_url": {"type": "str"},
    "authtoken": {"type": "str", "no_log": True},
    "client_id": {"type": "str"},
    "client_secret": {"type": "str", "no_log": True},
    "refresh_token": {"type": "str", "no_log": True},
    "access_token": {"type": "str", "no_log": True},
    "secret_dir": {"type": "path"},
    "resource": {"type": "str", "default": "requests"},
}


class SdpInputError(ValueError):
    """Settings that cannot reach ServiceDesk Plus: one sentence naming the option."""


class RefreshRefused(Exception):
    """The accounts server gave no access token; the message says what it answered."""


def settings(options: dict[str, Any]) -> dict[str, Any]:
    """The options, completed from `secret_dir` (the options win) and checked for the edition."""
    found = {key: value for key, value in options.items() if value is not None}
    if found.get("secret_dir"):
        for name in SECRET_FILES:
            key = "authtoken" if name == "api_key" else name
            if key in found:
                continue
            path = os.path.join(found["secret_dir"], name)
            try:
                with open(path, encoding="utf-8") as handle:
                    value = handle.read(64 * 1024).strip()
            except FileNotFoundError:
                continue
            except (OSError, UnicodeError) as exc:
                cause = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise SdpInputError(f"sdp.secret_dir: {path!r} cannot be read: {cause}") from None
            if value:
                found[key] = value
    edition = found.get("edition") or "on_premises"
    found["edition"] = edition
    if edition == "on_premises" and not found.get("authtoken"):
        raise SdpInputError("sdp.authtoken (or an api_key file in sdp.secret_dir) is required on premises")
    if edition == "cloud":
        if not found.get("portal"):
            raise SdpInputError("sdp.portal is required for ServiceDesk Plus Cloud (the <portal> of /app/<portal>/)")
        if "/" in found["portal"] or not found["portal"].strip():
            raise SdpInputError("sdp.portal must be the portal's name, not a path")
        refresh = [found.get(name) for name in ("client_id", "client_secret", "refresh_token")]
        if not found.get("access_token") and not all(refresh):
            raise SdpInputError("sdp: Cloud needs an access_token, or client_id, client_secret and refresh_token "
                                "to obtain one")
        found.setdefault("accounts_url", DEFAULT_ACCOUNTS_URL)
    resource = found.get("resource") or "requests"
    if resource.startswith("/") or ".." in resource.split("/"):
        raise SdpInputError("sdp.resource must be a path under api/v3, such as requests")
    found["resource"] = resource
    return found


def secrets_of(found: dict[str, Any]) -> list[str]:
    """Every credential in the settings, to be masked wherever it might surface."""
    return [found[name] for name in SECRET_FIELDS if found.get(name)]


def can_refresh(found: dict[str, Any]) -> bool:
    return all(found.get(name) for name in ("client_id", "client_secret", "refresh_token"))


def api_url(base: str, found: dict[str, Any], query: dict[str, Any] | None = None) -> str:
    """`base` (the server, or the Cloud domain) + the edition's path to the resource."""
    prefix = f"/app/{quote(found['portal'], safe='')}/api/v3" if found["edition"] == "cloud" else "/api/v3"
    params = {key: json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else value
              for key, value in (query or {}).items()}
    return _http.join_url(base, f"{prefix}/{found['resource']}", params)


def auth_headers(found: dict[str, Any], access_token: str | None = None) -> dict[str, str]:
    headers = {"Accept": V3_ACCEPT}
    if found["edition"] == "cloud":
        headers["Authorization"] = f"Zoho-oauthtoken {access_token or found.get('access_token') or ''}"
    else:
        headers["authtoken"] = found["authtoken"]
    return headers


def refresh(found: dict[str, Any], timeout: float, deadline: float | None = None,
            validate_certs: bool = True, ca_path: str | None = None) -> str:
    """A fresh access token from the refresh token, or RefreshRefused saying what the accounts server answered.

    Zoho answers a refresh token or client it does not know with HTTP 200 and an `error` field, so
    success is an `access_token` in the answer, whatever the status.
    """
    body = urlencode({"refresh_token": found["refresh_token"], "client_id": found["client_id"],
                      "client_secret": found["client_secret"], "grant_type": "refresh_token"})
    prepared = _http.prepare(_http.join_url(found["accounts_url"], "/oauth/v2/token"), "POST",
                             {"Content-Type": "application/x-www-form-urlencoded"}, body, validate_certs, ca_path)
    status, answer = _http.get_json(prepared, timeout, deadline)
    if isinstance(answer, dict) and isinstance(answer.get("access_token"), str) and answer["access_token"]:
        return answer["access_token"]
    said = answer.get("error") if isinstance(answer, dict) and isinstance(answer.get("error"), str) else None
    raise RefreshRefused(f"the accounts server refused the refresh token ({said or f'HTTP {status}'})")
