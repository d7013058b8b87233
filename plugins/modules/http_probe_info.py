#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe ServiceDesk Plus, OpenAI or any HTTP API concurrently, timing each phase."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: http_probe_info
short_description: Probe external APIs as the workers call them, and classify what is wrong
version_added: 1.0.0
description:
  - Sends one request to each endpoint (ServiceDesk Plus C(/api/v3/requests) of either edition, see O(endpoints[].sdp),
    OpenAI C(/v1/models), or any URL),
    all at once, and times DNS, connect, TLS, first byte and total for each.
  - Classifies each answer by the api_timeout runbook's bands and codes into findings - C(api_slow) (2-10 s),
    C(api_timeout) (over 10 s, or no answer within the timeout), C(api_auth_invalid) (401), C(api_forbidden) (403),
    C(api_rate_limited) (429, with C(Retry-After) or the rate-limit headers), C(api_server_error) (5xx),
    C(api_unreachable) (DNS failure, refused, TLS failure, not HTTP - the summary says which) - each naming the API.
  - For OpenAI (O(endpoints[].openai)) the error's type and code refine the status - C(api_quota_exhausted),
    C(api_key_scopes_missing), C(api_source_not_allowed), C(api_region_unsupported); for ServiceDesk Plus Cloud
    (O(endpoints[].sdp)) a stored access token that a refresh mends is C(sdp_token_expired).
  - The bearer credential comes from a variable or a secret file and is used, never shown - not in the result,
    not at C(-vvv), not in errors.
  - So are credentials in an O(endpoints[].url) (userinfo, and query values whose names look secret - C(api_key),
    C(token), C(signature), ...) and in O(endpoints[].headers) (C(Authorization), C(X-Api-Key), C(Cookie), any name
    with key, token, secret or auth in it) - masked in every result and error, the echoed arguments included.
  - O(timeout) bounds each probe's whole request - DNS, connect, TLS, sending, status line, headers and body - not
    each read, so a server that trickles its answer is cut at the deadline like one that never answers.
  - Every endpoint is checked before any is probed; a bad URL, method, header, CA file or number fails the module
    with one message naming the endpoint and option, and nothing is sent.
  - Why not M(ansible.builtin.uri) - it gives neither the timing breakdown nor concurrency.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  endpoints:
    description: The APIs to probe, at most 64 (all are probed at once).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: What the API is called in findings, for example V(ServiceDesk Plus (acme-corp)).
        type: str
        required: true
      url:
        description:
          - Full http(s) URL of the endpoint; the port, if given, from 1 to 65535.
          - A C(user:password@) in it is sent as basic authentication and never shown.
        type: str
        required: true
      method:
        description: HTTP method (a token such as V(GET), V(POST) or V(HEAD)).
        type: str
        default: GET
      headers:
        description: Extra request headers; names are HTTP tokens, values Latin-1 text without control characters.
        type: dict
        default: {}
      body:
        description: Request body, sent as given (UTF-8 encoded).
        type: str
      bearer_token:
        description: Sent as C(Authorization Bearer). Never logged.
        type: str
      bearer_token_file:
        description: File holding the bearer token (a mounted secret). Read on the host running the module.
        type: path
      expected_status:
        description: Statuses that mean healthy, each from 100 to 599.
        type: list
        elements: int
        default: [200]
      timeout:
        description: Seconds for this endpoint's whole request, above 0 and at most 300; defaults to O(timeout).
        type: float
      validate_certs:
        description: Verify the server's TLS certificate.
        type: bool
        default: true
      ca_path:
        description: CA bundle (PEM) to verify against; a file that cannot be read fails the module before any probe.
        type: path
      sdp:
        description:
          - Probe ServiceDesk Plus v3 the way its edition wants to be called. O(endpoints[].url) is then the SDP
            server (on premises) or the Cloud domain, and the probe asks for one row of the resource at
            C(<url>/api/v3/<resource>) (on premises) or C(<url>/app/<portal>/api/v3/<resource>) (Cloud),
            with the C(Accept) header V(application/vnd.manageengine.sdp.v3+json).
          - On premises the technician key goes in the C(authtoken) header. Cloud sends
            C(Authorization) V(Zoho-oauthtoken <access token>); without an access token, or when SDP refuses it
            (401), a fresh one is obtained from the refresh token at the accounts server and the probe is made
            again. A stored token that a refresh mends had expired - the C(sdp_token_expired) finding (refresh it;
            nothing to rotate) - while refused Cloud credentials are C(api_auth_invalid).
          - The freshly obtained access token is used, never returned.
        type: dict
        suboptions:
          edition:
            description: Which ServiceDesk Plus the tenant has.
            type: str
            choices: [on_premises, cloud]
            default: on_premises
          portal:
            description: The Cloud portal's name, the C(<portal>) of C(/app/<portal>/api/v3/). Required for Cloud.
            type: str
          accounts_url:
            description:
              - The Zoho accounts server of the portal's data centre (Cloud); from O(endpoints[].sdp.secret_dir) when
                it holds an C(accounts_url) file, else V(https://accounts.zoho.com).
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
            description: The access token the platform holds now (Cloud), to prove whether it still works. Never logged.
            type: str
          secret_dir:
            description:
              - A directory laid out like the tenant's secret (one file per key, as a Kubernetes secret volume), with
                C(api_key) (the technician key), C(client_id), C(client_secret), C(refresh_token), C(access_token),
                C(portal), C(accounts_url). Options given directly win over its files.
            type: path
          resource:
            description: The v3 resource to read, under C(api/v3).
            type: str
            default: requests
      openai:
        description:
          - Probe the OpenAI API as documented. O(endpoints[].url) is then the API's base (V(https://api.openai.com/v1)),
            the probe lists the models (C(GET /models)) with the bearer key, and an error is read by its type and
            code, not its status alone - C(api_quota_exhausted) (429 C(insufficient_quota), where retrying does not
            help, billing must act) apart from C(api_rate_limited) (429 C(rate_limit_exceeded)),
            C(api_key_scopes_missing) and C(api_source_not_allowed) (401 for a restricted key or an address off
            the allowlist) apart from C(api_auth_invalid) (401 incorrect key), and C(api_region_unsupported)
            (403) apart from C(api_forbidden).
          - The rate-limit headers (C(x-ratelimit-limit|remaining|reset-requests|tokens)) are returned and
            summarised in a rate-limit finding, whether or not the answer carries C(Retry-After).
          - A models probe proves the key may list models, not that it may create chat completions; the
            result's C(proved) says what was proved, and O(endpoints[].openai.check=chat_completions) proves the
            scope the workers use with the smallest real completion.
          - Give V({}) for no further settings.
        type: dict
        suboptions:
          check:
            description:
              - V(models) lists the models (C(GET /models), free); V(chat_completions) asks O(endpoints[].openai.model)
                for a one-token completion (C(POST /chat/completions)), which proves the workers' scope and costs a
                token.
            type: str
            choices: [models, chat_completions]
            default: models
          model:
            description: The model a V(chat_completions) check asks.
            type: str
            default: gpt-4o-mini
          organization:
            description: Sent as C(OpenAI-Organization).
            type: str
          project:
            description: Sent as C(OpenAI-Project).
            type: str
  timeout:
    description:
      - Seconds for each probe's whole request, from DNS to the last byte of the answer (they run concurrently),
        above 0 and at most 300.
    type: float
    default: 15
  slow_seconds:
    description: Total time above which an answer is slow (C(api_slow)); above 0 and at most 3600.
    type: float
    default: 2
  timeout_seconds:
    description: Total time above which an answer counts as a timeout (C(api_timeout)); above 0 and at most 3600.
    type: float
    default: 10
extends_documentation_fragment:
  - aiagents.runbooks.attributes.info
"""

EXAMPLES = r"""
- name: Probe the tenant's ServiceDesk Plus and OpenAI as the workers would
  aiagents.runbooks.http_probe_info:
    endpoints:
      - name: ServiceDesk Plus (acme-corp)
        url: https://sdp.acme.example
        sdp:
          authtoken: "{{ vault_acme_sdp_api_key }}"
        timeout: 5
      - name: ServiceDesk Plus Cloud (globex)
        url: https://sdpondemand.manageengine.com
        sdp:
          edition: cloud
          portal: globexit
          secret_dir: /run/secrets/aiagents/tenant-globex-sdp
      - name: OpenAI
        url: https://api.openai.example/v1
        bearer_token_file: /run/secrets/aiagents/openai-credentials/api_key
        openai: {}
  register: probes

- name: Show where the time went
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.status }} in {{ item.timings.total }} s ({{ item.classification }})"
  loop: "{{ probes.probes }}"
"""

RETURN = r"""
probes:
  description:
    - One result per endpoint, in the order given.
    - For OpenAI (O(endpoints[].openai)), C(provider_error) holds the error's C(type), C(code) and the start of its
      C(message), C(rate_limit) the C(x-ratelimit-*) headers, and C(proved) what a successful probe proves.
    - For ServiceDesk Plus Cloud, C(token_refreshed) says whether a fresh access token was obtained and
      C(token_expired) whether the stored one was refused and a fresh one accepted (null for other endpoints).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "OpenAI", "url": "https://api.openai.example/v1/models", "status": 429,
            "classification": "rate_limited", "retry_after": "20", "error": null, "detail": null,
            "timings": {"dns": 0.002, "connect": 0.01, "tls": 0.05, "first_byte": 0.3, "total": 0.31}}]
findings:
  description: One finding per endpoint that is not healthy, most severe first.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "api_rate_limited", "severity": "medium", "summary": "OpenAI rate-limits us (429); Retry-After 20 s",
            "evidence": {}, "resolution": "Reduce worker concurrency..."}]
elapsed:
  description: Wall time of all probes together.
  returned: always
  type: float
  sample: 2.01
"""

import time

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http_probe, _sdp
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import sort_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule

ENDPOINT_SPEC = {
    "name": {"type": "str", "required": True},
    "url": {"type": "str", "required": True},
    "method": {"type": "str", "default": "GET"},
    "headers": {"type": "dict", "default": {}},
    "body": {"type": "str"},
    "bearer_token": {"type": "str", "no_log": True},
    "bearer_token_file": {"type": "path"},
    "expected_status": {"type": "list", "elements": "int", "default": [200]},
    "timeout": {"type": "float"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "sdp": {"type": "dict", "options": _sdp.SPEC},
    "openai": {"type": "dict", "options": {
        "organization": {"type": "str"}, "project": {"type": "str"},
        "check": {"type": "str", "choices": ["models", "chat_completions"], "default": "models"},
        "model": {"type": "str", "default": "gpt-4o-mini"}}},
}


def load_token(module: RunbookModule, endpoint: dict) -> None:
    if endpoint.get("bearer_token_file") and not endpoint.get("bearer_token"):
        try:
            with open(endpoint["bearer_token_file"], encoding="utf-8") as handle:
                endpoint["bearer_token"] = handle.read(64 * 1024).strip()  # a token, not whatever the path holds
        except (OSError, UnicodeError) as exc:
            cause = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            module.fail_json(msg=f"probe {endpoint['name']}: bearer_token_file {endpoint['bearer_token_file']!r} "
                                 f"cannot be read: {cause}")
        module.protect([endpoint["bearer_token"]])  # masked wherever it might surface


def main() -> None:
    module = RunbookModule(
        argument_spec={
            "endpoints": {"type": "list", "elements": "dict", "required": True, "options": ENDPOINT_SPEC,
                          "mutually_exclusive": [("bearer_token", "bearer_token_file")]},
            "timeout": {"type": "float", "default": 15},
            "slow_seconds": {"type": "float", "default": 2},
            "timeout_seconds": {"type": "float", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    problem = _http_probe.check_options(params)
    if problem:
        module.fail_json(msg=problem)
    endpoints = [dict(endpoint) for endpoint in params["endpoints"]]
    for endpoint in endpoints:
        load_token(module, endpoint)
        if endpoint.get("sdp"):
            try:
                endpoint["sdp"] = _sdp.settings(endpoint["sdp"])
            except _sdp.SdpInputError as exc:
                module.fail_json(msg=f"probe {endpoint['name']}: {exc}")
            module.protect(_sdp.secrets_of(endpoint["sdp"]))  # also those read from secret_dir
    started = time.monotonic()
    try:
        results = _http_probe.probe_all(endpoints, params["timeout"], params["slow_seconds"],
                                        params["timeout_seconds"])
    except _http_probe.ProbeInputError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=False,
        probes=results,
        elapsed=round(time.monotonic() - started, 3),
        findings=sort_findings(_http_probe.probe_findings(results, params["slow_seconds"], params["timeout_seconds"])),
    )


if __name__ == "__main__":
    main()
