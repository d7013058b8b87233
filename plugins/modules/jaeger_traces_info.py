#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Summarise the platform's traces from Jaeger's query API: bottlenecks, dead jobs, slow API calls."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jaeger_traces_info
short_description: Find where the platform's enhancements spend their time, from Jaeger's HTTP API
version_added: 1.0.0
description:
  - Searches Jaeger's query API (Jaeger v2's C(/api/v3/traces), or the legacy C(/api/traces)) by service, tags (for example C(slow_trace=true), C(tenant_id),
    C(ticket_id)), minimum duration and lookback, and summarises the traces found - the slowest ones, the
    bottleneck stage of each (C(context_gathering), C(llm_synthesis), C(ticket_update)), traces that never reached
    C(ticket_update) (the worker died mid-job), and API spans slower than expected.
  - Findings point at the runbook to follow - C(traces_slow_context_gathering) (database_connection_issues),
    C(traces_slow_llm_synthesis) and C(traces_slow_ticket_update) (api_timeout), C(traces_incomplete)
    (worker_failures). An unreachable Jaeger is the finding C(jaeger_unreachable), not a failure; so is a Jaeger
    whose answer is not its trace JSON - the finding's summary says which.
  - A C(user:password@) or a query token in O(url) is used, never shown - not in findings, results or errors.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  url:
    description:
      - Base URL of Jaeger's query service, for example V(http://127.0.0.1:16686); the port, if given, from 1 to 65535.
      - A C(user:password@) in it is sent as basic authentication.
    type: str
    required: true
  service:
    description: The service whose traces to search.
    type: str
    default: ai-agents-worker
  tags:
    description: Span tags every returned trace must carry, for example C(slow_trace) V(true) or a C(tenant_id).
    type: dict
    default: {}
  min_duration:
    description: Only traces with a span at least this long (Go duration syntax, for example V(10s), V(500ms)).
    type: str
  lookback:
    description: How far back to search (Go duration syntax, plus V(d) for days, for example V(1h), V(30m), V(2d)).
    type: str
    default: 1h
  limit:
    description: Most traces to fetch, from 1 to 10000.
    type: int
    default: 100
  slow_seconds:
    description: A trace this long or longer (or tagged C(slow_trace=true)) is slow; above 0, at most 86400.
    type: float
    default: 10
  api_span_limits:
    description:
      - Expected upper bound in seconds per API span, each above 0 and at most 86400; slower spans are listed in
        RV(slow_api_spans).
    type: dict
    default: {"llm.openai.completion": 30, "api.servicedesk_plus.get_ticket": 2, "api.servicedesk_plus.update_ticket": 5}
  timeout:
    description: Seconds for Jaeger's whole answer, from DNS to its last byte; above 0 and at most 300.
    type: float
    default: 10
  validate_certs:
    description: Verify Jaeger's TLS certificate.
    type: bool
    default: true
  api:
    description:
      - Which query API to search. V(v3) is Jaeger v2's C(/api/v3/traces) (OTLP answers); V(legacy) the
        C(/api/traces) the Jaeger UI has used, which newer releases drop; V(auto) asks C(/api/v3) first and the
        legacy API when this Jaeger does not serve it (its 404 is not Jaeger's own error).
      - Either way the search covers O(lookback) back from now (sent as a start and end time - the query APIs have
        no lookback parameter), O(min_duration) is sent in Go's syntax, and O(tags) values are matched as exact
        strings (a boolean as V(true) or V(false)).
    type: str
    choices: [auto, v3, legacy]
    default: auto
extends_documentation_fragment:
  - aiagents.runbooks.attributes.info
"""

EXAMPLES = r"""
- name: Where do slow enhancements spend their time?
  aiagents.runbooks.jaeger_traces_info:
    url: http://127.0.0.1:16686
    tags:
      slow_trace: "true"
    lookback: 30m
  register: traces

- name: One tenant's traces
  aiagents.runbooks.jaeger_traces_info:
    url: http://127.0.0.1:16686
    tags:
      tenant_id: acme-corp
"""

RETURN = r"""
api:
  description: The query API that answered (V(v3) or V(legacy)); null when Jaeger could not be searched.
  returned: always
  type: str
  sample: v3
traces_examined:
  description: Traces returned by the search.
  returned: always
  type: int
  sample: 12
slowest:
  description: The ten slowest traces, with their stage durations and bottleneck.
  returned: always
  type: list
  elements: dict
  sample: [{"trace_id": "4bf92f3577b34da6", "duration_seconds": 41.2, "tenant_id": "acme-corp", "ticket_id": "TICKET-12345",
            "stages": {"webhook_receipt": 0.01, "context_gathering": 0.4, "llm_synthesis": 40.1, "ticket_update": 0.6},
            "bottleneck": "llm_synthesis", "complete": true, "slow": true, "error": false, "api_spans": []}]
bottlenecks:
  description: How many slow traces each stage is the bottleneck of.
  returned: always
  type: dict
  sample: {"llm_synthesis": 3, "context_gathering": 1}
incomplete:
  description: Traces without a ticket_update stage.
  returned: always
  type: list
  elements: dict
  sample: [{"trace_id": "a1b2", "tenant_id": "globex", "ticket_id": "TICKET-7", "stages": {"context_gathering": 0.3}}]
slow_api_spans:
  description: API spans slower than their limit.
  returned: always
  type: list
  elements: dict
  sample: [{"operation": "llm.openai.completion", "seconds": 39.5, "limit_seconds": 30, "trace_id": "4bf92f3577b34da6"}]
findings:
  description: C(traces_slow_*), C(traces_incomplete) or C(jaeger_unreachable), most severe first.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "traces_incomplete", "severity": "high", "summary": "1 traces never reached ticket_update...",
            "evidence": {}, "resolution": "Follow the worker_failures runbook...", "runbook": "worker_failures"}]
"""

from collections import Counter

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http, _jaeger
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding, sort_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule, redact_url


def main() -> None:
    module = RunbookModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "service": {"type": "str", "default": "ai-agents-worker"},
            "tags": {"type": "dict", "default": {}},
            "min_duration": {"type": "str"},
            "lookback": {"type": "str", "default": "1h"},
            "limit": {"type": "int", "default": 100},
            "slow_seconds": {"type": "float", "default": 10},
            "api_span_limits": {"type": "dict", "default": dict(_jaeger.API_SPAN_LIMITS)},
            "timeout": {"type": "float", "default": 10},
            "validate_certs": {"type": "bool", "default": True},
            "api": {"type": "str", "choices": list(_jaeger.APIS), "default": "auto"},
        },
        supports_check_mode=True,
    )
    params = module.params
    problem = _jaeger.check_options(params)
    if problem:
        module.fail_json(msg=problem)
    try:
        _http.prepare(params["url"], validate_certs=params["validate_certs"])  # before anything is sent
    except _http.HttpInputError as exc:
        module.fail_json(msg=f"search traces: {exc}")
    query = {"service": params["service"], "lookback": params["lookback"], "limit": params["limit"],
             "tags": params["tags"], "min_duration": params["min_duration"]}
    limits = {**_jaeger.API_SPAN_LIMITS, **{k: float(v) for k, v in params["api_span_limits"].items()}}
    try:
        traces, api = _jaeger.search(params["url"], query, params["timeout"], params["validate_certs"], params["api"])
    except RunbookError as exc:
        module.exit_json(changed=False, traces_examined=0, slowest=[], bottlenecks={}, incomplete=[], slow_api_spans=[],
                         api=None,
                         findings=[finding("jaeger_unreachable", "medium", str(exc), {"jaeger": redact_url(params["url"])},
                                           "Traces are unavailable: judge from metrics and logs; restore Jaeger.")])
    summaries = [_jaeger.summarise(trace, params["slow_seconds"]) for trace in traces]
    findings, slow_api = _jaeger.trace_findings(summaries, limits)
    slowest = sorted(summaries, key=lambda item: -item["duration_seconds"])[:10]
    module.exit_json(
        changed=False,
        api=api,
        traces_examined=len(summaries),
        slowest=slowest,
        bottlenecks=dict(Counter(item["bottleneck"] for item in summaries if item["slow"] and item["bottleneck"])),
        incomplete=[{key: item[key] for key in ("trace_id", "tenant_id", "ticket_id", "stages")}
                    for item in summaries if not item["complete"]],
        slow_api_spans=slow_api,
        findings=sort_findings(findings),
    )


if __name__ == "__main__":
    main()
