#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Send one webhook signed the way ServiceDesk Plus signs it (HMAC-SHA256 of the raw body)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: webhook_send
short_description: Send a webhook signed with HMAC-SHA256, as ServiceDesk Plus sends it
version_added: 1.0.0
description:
  - Posts O(body) to O(url) with the hex HMAC-SHA256 of the exact bytes sent, keyed with O(secret), in the
    O(signature_header) header - what the platform's webhook endpoint verifies. Onboarding uses it to prove a
    new tenant's webhook secret end to end before the operator configures SDP.
  - M(ansible.builtin.uri) cannot compute the signature over the bytes it sends; that is all this module adds.
  - The secret is never returned, logged or shown in errors; the signature is not returned either, nor the values
    of O(url)'s query (a C(token=) in it stays secret).
  - O(timeout) bounds the whole delivery - DNS, connect, TLS, sending, and the answer to its last byte.
  - In check mode nothing is sent.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  url:
    description:
      - The webhook endpoint, for example V(https://platform.example.com/webhook/servicedesk?tenant_id=acme-corp).
      - The port, if given, from 1 to 65535.
    type: str
    required: true
  body:
    description: The JSON document to send (serialised compactly; the signature covers exactly those bytes).
    type: dict
    required: true
  secret:
    description: The tenant's webhook secret (the HMAC key), at least 4 characters (a shorter one could not be masked).
    type: str
    required: true
  signature_header:
    description: Header carrying the signature (an HTTP header name).
    type: str
    default: X-SDP-Signature
  expected_status:
    description: Statuses that mean the platform accepted the webhook, each from 100 to 599.
    type: list
    elements: int
    default: [200, 202]
  timeout:
    description:
      - Seconds for the whole delivery and answer (SDP's own webhook timeout is 30 s); above 0 and at most 300.
    type: float
    default: 30
  validate_certs:
    description: Verify the platform's TLS certificate.
    type: bool
    default: true
extends_documentation_fragment:
  - aiagents.runbooks.attributes.action
attributes:
  idempotent:
    description: Every run sends one more webhook (the platform queues one more job).
    support: none
"""

EXAMPLES = r"""
- name: Send the new tenant's signed test webhook
  aiagents.runbooks.webhook_send:
    url: "https://platform.example.com/webhook/servicedesk?tenant_id=acme-corp"
    body: {ticket: {id: "ONBOARDING-TEST"}}
    secret: "{{ vault_acme_webhook_secret }}"
  register: sent
"""

RETURN = r"""
status:
  description: HTTP status the platform answered (null when it could not be reached; C(-1) in check mode).
  returned: always
  type: int
  sample: 202
json:
  description: The answer's JSON document, when it was JSON.
  returned: when the answer is JSON
  type: dict
  sample: {"status": "queued", "tenant_id": "acme-corp", "ticket_id": "ONBOARDING-TEST"}
elapsed_s:
  description: Seconds the request took.
  returned: always
  type: float
  sample: 0.021
sent_at:
  description: When the webhook was sent (UTC, ISO 8601), to find the job it caused.
  returned: always
  type: str
  sample: "2026-11-27T21:00:00.123456Z"
"""

import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import MIN_MASKED_LENGTH, RunbookModule


def sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def check(params: dict) -> str | None:
    """Why the webhook cannot be sent with these options (nothing secret in the answer), or None."""
    statuses = [out_of_range("expected_status", status, minimum=100, maximum=599) for status in params["expected_status"]]
    problem = _http.check_timeout("timeout", params["timeout"]) or next((item for item in statuses if item), None)
    header = params["signature_header"]
    if not problem and _http.header_name_problem(header):
        problem = f"signature_header {header!r} {_http.header_name_problem(header)}"
    if not problem and len(params["secret"]) < MIN_MASKED_LENGTH:
        problem = f"secret must be at least {MIN_MASKED_LENGTH} characters long"
    return f"send webhook: {problem}" if problem else None


def main() -> None:
    module = RunbookModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "body": {"type": "dict", "required": True},
            "secret": {"type": "str", "required": True, "no_log": True},
            "signature_header": {"type": "str", "default": "X-SDP-Signature"},
            "expected_status": {"type": "list", "elements": "int", "default": [200, 202]},
            "timeout": {"type": "float", "default": 30},
            "validate_certs": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    problem = check(params)
    if problem:
        module.fail_json(msg=problem)
    payload = json.dumps(params["body"], separators=(",", ":"), sort_keys=True).encode()
    signature = sign(params["secret"], payload)
    module.protect([signature])
    headers = {"Content-Type": "application/json", params["signature_header"]: signature}
    try:
        prepared = _http.prepare(params["url"], "POST", headers, payload, params["validate_certs"])
    except _http.HttpInputError as exc:
        module.fail_json(msg=f"send webhook: {exc}")
    sent_at = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if module.check_mode:
        module.exit_json(changed=True, status=-1, elapsed_s=0.0, sent_at=sent_at,
                         msg=f"would send a signed webhook to {prepared.shown}")
    started = time.monotonic()
    try:
        response = _http.send(prepared, params["timeout"], read_limit=1024 * 1024)
    except _http.HttpError as exc:
        module.fail_json(msg=f"deliver webhook to {prepared.shown}: {exc}",
                         status=None, elapsed_s=round(time.monotonic() - started, 3), sent_at=sent_at)
    status, text = response.status, response.body.decode("utf-8", "replace")
    result = {"status": status, "elapsed_s": round(time.monotonic() - started, 3), "sent_at": sent_at}
    try:
        document = json.loads(text) if text else None
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict):
        result["json"] = document
    if status not in params["expected_status"]:
        reason = document.get("error") if isinstance(document, dict) and document.get("error") else text
        detail = " ".join(str(reason).split())[:200] or "(no answer text)"  # one line, whatever the platform wrote
        module.fail_json(msg=f"deliver webhook to {prepared.shown}: the platform answered {status}: {detail}", **result)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
