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
  - The secret is never returned, logged or shown in errors; the signature is not returned either.
  - In check mode nothing is sent.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  url:
    description: The webhook endpoint, for example V(https://platform.example.com/webhook/servicedesk?tenant_id=acme-corp).
    type: str
    required: true
  body:
    description: The JSON document to send (serialised compactly; the signature covers exactly those bytes).
    type: dict
    required: true
  secret:
    description: The tenant's webhook secret (the HMAC key).
    type: str
    required: true
  signature_header:
    description: Header carrying the signature.
    type: str
    default: X-SDP-Signature
  expected_status:
    description: Statuses that mean the platform accepted the webhook.
    type: list
    elements: int
    default: [200, 202]
  timeout:
    description: Seconds to wait for the answer (SDP's own webhook timeout is 30 s).
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
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url


def sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def main() -> None:
    module = AnsibleModule(
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
    parts = urlsplit(params["url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        module.fail_json(msg=f"webhook url {params['url']!r} is not an http(s) URL with a host")
    if not params["secret"]:
        module.fail_json(msg="webhook secret is empty")
    sent_at = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if module.check_mode:
        module.exit_json(changed=True, status=-1, elapsed_s=0.0, sent_at=sent_at,
                         msg=f"would send a signed webhook to {params['url']}")
    payload = json.dumps(params["body"], separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", params["signature_header"]: sign(params["secret"], payload)}
    started = time.monotonic()
    status, text = None, ""
    try:
        response = open_url(params["url"], data=payload, method="POST", headers=headers,
                            timeout=params["timeout"], validate_certs=params["validate_certs"])
        status, text = response.getcode(), response.read().decode("utf-8", "replace")
    except HTTPError as exc:
        status, text = exc.code, exc.read().decode("utf-8", "replace")
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        module.fail_json(msg=f"webhook to {params['url']} could not be delivered: {reason}",
                         status=None, elapsed_s=round(time.monotonic() - started, 3), sent_at=sent_at)
    result = {"status": status, "elapsed_s": round(time.monotonic() - started, 3), "sent_at": sent_at}
    try:
        document = json.loads(text) if text else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        result["json"] = document
    if status not in params["expected_status"]:
        detail = document.get("error") if isinstance(document, dict) else text[:200]
        module.fail_json(msg=f"webhook to {params['url']} answered {status}: {detail}", **result)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
