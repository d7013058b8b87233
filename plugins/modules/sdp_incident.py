#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open an incident request in ServiceDesk Plus for an alert, or add to the one already open."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sdp_incident
short_description: Open a ServiceDesk Plus incident request for an alert, or add a note to the one already open
version_added: 1.1.0
description:
  - Looks for an open request (status neither Resolved nor Closed) whose subject carries the mark
    C([runbooks <key>]) of O(key), the alert's identity (Alertmanager's fingerprint). When there is none, it adds
    a request with that mark, O(subject), O(description) and O(priority); when there is one, it adds O(description)
    to it as a note, so the same alert firing again updates its incident instead of opening another. Speaks ServiceDesk Plus v3 of either
    edition as M(aiagents.runbooks.http_probe_info) does (O(sdp)).
  - O(description) is text (a runbook report's Markdown), sent inside C(<pre>) and HTML-escaped, so it reads
    as written in SDP's HTML description and notes.
  - The credentials are never returned, logged or shown in errors.
  - In check mode only the search runs; the result says what would be added.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  url:
    description: The SDP server (on premises) or the Cloud domain, for example V(https://sdp.example.com).
    type: str
    required: true
  sdp:
    description:
      - How to call ServiceDesk Plus, as in M(aiagents.runbooks.http_probe_info)'s O(aiagents.runbooks.http_probe_info#module:endpoints[].sdp).
        The technician key (or the Cloud client) must be allowed to add and view requests and add notes.
    type: dict
    required: true
    suboptions:
      edition:
        description: Which ServiceDesk Plus it is.
        type: str
        choices: [on_premises, cloud]
        default: on_premises
      portal:
        description: The Cloud portal's name, the C(<portal>) of C(/app/<portal>/api/v3/). Required for Cloud.
        type: str
      accounts_url:
        description: The Zoho accounts server of the portal's data centre (Cloud); V(https://accounts.zoho.com) by default.
        type: str
      authtoken:
        description: The technician key (on premises). Never logged.
        type: str
      client_id:
        description: The OAuth client's id (Cloud).
        type: str
      client_secret:
        description: The OAuth client's secret (Cloud). Never logged.
        type: str
      refresh_token:
        description: The refresh token (Cloud). Never logged.
        type: str
      access_token:
        description: An access token (Cloud); renewed from the refresh token when missing or refused. Never logged.
        type: str
      secret_dir:
        description:
          - A directory laid out like a Kubernetes secret volume, with C(api_key) (the technician key), C(client_id),
            C(client_secret), C(refresh_token), C(access_token), C(portal), C(accounts_url). Options given directly
            win over its files.
        type: path
      resource:
        description: The v3 resource of requests, under C(api/v3).
        type: str
        default: requests
  key:
    description:
      - What identifies the incident across notifications (Alertmanager's alert fingerprint); letters, digits,
        C(-), C(_), C(.) and C(:), 1 to 64 characters.
    type: str
    required: true
  subject:
    description:
      - The request's subject after the mark, plain text on one line (line breaks become spaces); with the mark,
        cut to SDP Cloud's 250 characters.
    type: str
    required: true
  description:
    description: The text to file (a runbook report's Markdown), up to 1 MiB.
    type: str
    required: true
  priority:
    description: The new request's priority, by name as SDP's default priorities are named.
    type: str
    choices: [Low, Medium, High, Urgent]
    default: Medium
  timeout:
    description:
      - Seconds the whole filing may take (a token renewal, the search, the request or note); above 0 and at
        most 300.
    type: float
    default: 15
  validate_certs:
    description: Verify SDP's TLS certificate.
    type: bool
    default: true
attributes:
  check_mode:
    description: Searches only, and says whether it would add a request or a note.
    support: full
  diff_mode:
    description: No diff is shown.
    support: none
  platform:
    description: Runs on the controller (or any POSIX host).
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: File the report in the alert's incident
  aiagents.runbooks.sdp_incident:
    url: https://sdp.example.com
    sdp:
      secret_dir: /run/secrets/aiagents/sdp-credentials
    key: "{{ alert_fingerprint }}"
    subject: "QueueDepthHigh: queue_depth_high (page on-call)"
    description: "{{ lookup('ansible.builtin.file', report_dir ~ '/high_queue_depth/latest.md') }}"
    priority: High
"""

RETURN = r"""
request_id:
  description: The incident request's id (empty in check mode when one would be added).
  returned: always
  type: str
  sample: "100001"
action:
  description: V(added) a request, V(noted) an open one, or in check mode V(would_add) / V(would_note).
  returned: always
  type: str
  sample: noted
subject:
  description: The request's subject as filed (with its mark).
  returned: always
  type: str
  sample: "[runbooks 3f1c9a0b2d4e] QueueDepthHigh: queue_depth_high"
"""

import html
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http, _sdp
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule

KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
SUBJECT_LIMIT = 250  # SDP Cloud: "[Max-length : 250]"
DESCRIPTION_LIMIT = 1024 * 1024
# Statuses of a request that is over: a new notification opens a new incident.
CLOSED = ["Resolved", "Closed", "Cancelled"]


class SdpCallError(Exception):
    """SDP answered something other than success; the message says what, without credentials."""


def mark(key: str) -> str:
    return f"[runbooks {key}]"


def subject_line(key: str, subject: str) -> str:
    text = " ".join(f"{mark(key)} {subject}".split())
    return text if len(text) <= SUBJECT_LIMIT else text[:SUBJECT_LIMIT - 3] + "..."


def as_html(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def check(params: dict[str, Any]) -> str | None:
    if not KEY.match(params["key"] or ""):
        return "key must be 1-64 letters, digits, '-', '_', '.' or ':' (an alert fingerprint)"
    if not (params["subject"] or "").strip():
        return "subject must not be empty"
    if len(params["description"].encode()) > DESCRIPTION_LIMIT:
        return "description is larger than 1 MiB"
    return _http.check_timeout("timeout", params["timeout"])


class Sdp:
    """Calls to one SDP with the settings' credentials; a Cloud access token is renewed once when refused."""

    def __init__(self, url: str, found: dict[str, Any], timeout: float, validate_certs: bool) -> None:
        self.url, self.found, self.timeout, self.validate_certs = url, found, timeout, validate_certs
        self.token = found.get("access_token")
        self.deadline = time.monotonic() + timeout  # one bound for every call of the run

    def call(self, method: str, path: str = "", query: dict[str, Any] | None = None,
             form: dict[str, Any] | None = None) -> dict[str, Any]:
        for attempt in (1, 2):
            if self.found["edition"] == "cloud" and not self.token and _sdp.can_refresh(self.found):
                self.token = _sdp.refresh(self.found, self.timeout, self.deadline, validate_certs=self.validate_certs)
            url = _sdp.api_url(self.url, {**self.found, "resource": self.found["resource"] + path}, query)
            headers = _sdp.auth_headers(self.found, self.token)
            body = None
            if form is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                body = urlencode({"input_data": json.dumps(form, separators=(",", ":"))})
            prepared = _http.prepare(url, method, headers, body, self.validate_certs)
            status, answer = _http.get_json(prepared, self.timeout, self.deadline)
            if status == 401 and attempt == 1 and self.found["edition"] == "cloud" and _sdp.can_refresh(self.found):
                self.token = None  # expired or revoked: renew once
                continue
            statuses = answer.get("response_status") if isinstance(answer, dict) else None
            first = statuses[0] if isinstance(statuses, list) and statuses else statuses
            if status in (200, 201) and isinstance(first, dict) and first.get("status_code") == 2000:
                return answer
            raise SdpCallError(f"{method} {prepared.shown} answered {status}{_detail(first)}")
        raise SdpCallError("SDP refused the renewed access token too")

    def find_open(self, key: str) -> dict[str, Any] | None:
        criteria = [{"field": "subject", "condition": "contains", "value": mark(key)},
                    {"field": "status.name", "condition": "is not", "values": CLOSED, "logical_operator": "and"}]
        answer = self.call("GET", query={"input_data": {"list_info": {
            "row_count": 100, "start_index": 1, "sort_field": "created_time", "sort_order": "desc",
            "search_criteria": criteria}}})
        found = [item for item in answer.get("requests") or []
                 if isinstance(item, dict) and mark(key) in str(item.get("subject", ""))]
        return found[0] if found else None


def _detail(status: Any) -> str:
    """SDP's own status code and message, one line (never a credential: SDP does not echo them)."""
    if not isinstance(status, dict):
        return ""
    messages = status.get("messages") if isinstance(status.get("messages"), list) else []
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    code = first.get("status_code") or status.get("status_code")
    text = " ".join(str(first.get("message") or "").split())[:160]
    field = f" ({first['field']})" if first.get("field") else ""
    return f": {code} {text}{field}".rstrip() if code or text else ""


def main() -> None:
    module = RunbookModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "sdp": {"type": "dict", "required": True, "options": _sdp.SPEC},
            "key": {"type": "str", "required": True, "no_log": False},
            "subject": {"type": "str", "required": True},
            "description": {"type": "str", "required": True},
            "priority": {"type": "str", "choices": ["Low", "Medium", "High", "Urgent"], "default": "Medium"},
            "timeout": {"type": "float", "default": 15},
            "validate_certs": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    problem = check(params)
    if problem:
        module.fail_json(msg=f"file incident: {problem}")
    try:
        found = _sdp.settings(params["sdp"])
    except _sdp.SdpInputError as exc:
        module.fail_json(msg=f"file incident: {exc}")
    module.protect(_sdp.secrets_of(found))
    subject = subject_line(params["key"], params["subject"])
    sdp = Sdp(params["url"], found, params["timeout"], params["validate_certs"])
    try:
        current = sdp.find_open(params["key"])
        if module.check_mode:
            module.exit_json(changed=True, action="would_note" if current else "would_add",
                             request_id=str(current["id"]) if current else "", subject=subject)
        if current:
            sdp.call("POST", f"/{current['id']}/notes", form={"request_note": {
                "description": as_html(params["description"]), "show_to_requester": False}})
            module.exit_json(changed=True, action="noted", request_id=str(current["id"]),
                             subject=str(current.get("subject", subject)))
        answer = sdp.call("POST", form={"request": {"subject": subject, "description": as_html(params["description"]),
                                                    "priority": {"name": params["priority"]}}})
        request = answer.get("request") if isinstance(answer.get("request"), dict) else {}
        module.exit_json(changed=True, action="added", request_id=str(request.get("id", "")), subject=subject)
    except (_http.HttpInputError, _sdp.SdpInputError) as exc:
        module.fail_json(msg=f"file incident: {exc}")
    except (_http.HttpError, _sdp.RefreshRefused, SdpCallError) as exc:
        module.fail_json(msg=f"file incident in ServiceDesk Plus: {exc}")


if __name__ == "__main__":
    main()
