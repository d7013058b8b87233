#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbooks' Prometheus evidence in one call: values, the queue's trend, firing alerts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prometheus_info
short_description: Run the runbooks' PromQL against Prometheus and return values playbooks can reason about
version_added: 1.0.0
description:
  - Runs the runbooks' instant queries - current C(queue_depth), C(worker_active_count), success and failure
    rates, success rate percent, p95 latency, worker memory and its limit - plus any given in O(queries), and a
    range query of the queue depth over O(trend_window) classified as rising, falling, spiky or stable.
  - Reads which of the platform's alerts (EnhancementSuccessRateLow, QueueDepthHigh, WorkerDown, HighLatency)
    are firing or pending, and which alert rules are loaded.
  - A query that fails or returns no data is reported with status C(error) or C(empty) and a finding
    (C(metric_query_failed), C(metric_no_data)) - never fatal, and never a silent zero. An unreachable Prometheus
    is a finding too (C(prometheus_unreachable)), as is one whose answers are not Prometheus' JSON - the finding's
    summary says which.
  - A C(user:password@) or a query token in O(url) is used, never shown - not in findings, results or errors.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  url:
    description:
      - Base URL of Prometheus, for example V(http://127.0.0.1:9090); the port, if given, from 1 to 65535.
      - A C(user:password@) in it is sent as basic authentication.
    type: str
    required: true
  queries:
    description: Extra instant queries, by name; they run beside the runbook's own.
    type: dict
    default: {}
  include:
    description: Which of the runbook's queries to run (all by default).
    type: list
    elements: str
    choices: [queue_depth, worker_active_count, success_per_second, failure_per_second, success_rate_percent,
              p95_latency_seconds, intake_per_second, intake_5xx_per_second, intake_enqueue_errors,
              worker_memory_bytes, worker_memory_limit_bytes]
  trend_window:
    description: Seconds of queue depth history to classify (the runbook looks at 15 minutes); above 0, at most 604800.
    type: float
    default: 900
  trend_step:
    description:
      - Resolution of the trend query in seconds; defaults to O(trend_window) / 60.
      - At least O(trend_window) / 11000 (Prometheus gives at most 11000 points per series).
    type: float
  trend_min_change:
    description: Change in jobs below which the queue is never called rising, falling or spiky; 0 or more.
    type: float
    default: 5
  timeout:
    description:
      - Seconds for all of Prometheus' answers together (the requests run concurrently, before one deadline), from
        DNS to the last byte; above 0 and at most 300.
    type: float
    default: 10
  validate_certs:
    description: Verify Prometheus' TLS certificate.
    type: bool
    default: true
extends_documentation_fragment:
  - aiagents.runbooks.attributes.info
"""

EXAMPLES = r"""
- name: Read the platform's metrics
  aiagents.runbooks.prometheus_info:
    url: http://127.0.0.1:9090
  register: metrics

- name: Say whether the queue is still growing
  ansible.builtin.debug:
    msg: "queue {{ metrics.metrics.queue_depth.value }} jobs, {{ metrics.queue_trend.classification }}"
"""

RETURN = r"""
metrics:
  description: Each query by name - its PromQL, status (ok, empty, error), value (for a single series) and series.
  returned: always
  type: dict
  sample: {"queue_depth": {"query": "sum(queue_depth)", "status": "ok", "value": 75.0,
                           "series": [{"labels": {}, "value": 75.0}], "error": null}}
queue_trend:
  description: The queue depth over O(trend_window), classified.
  returned: always
  type: dict
  sample: {"classification": "rising", "points": 61, "first": 10.0, "last": 75.0, "min": 10.0, "max": 75.0,
           "change": 66.2, "per_minute": 4.4, "residual_stddev": 1.2}
alerts:
  description: Alerts pending or firing now.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "QueueDepthHigh", "state": "firing", "severity": "warning", "active_at": "2026-11-27T18:00:00Z",
            "value": "1.5e+02"}]
alerts_firing:
  description: Names of the firing alerts.
  returned: always
  type: list
  elements: str
  sample: [QueueDepthHigh]
alert_rules:
  description: Names of the alert rules Prometheus has loaded.
  returned: always
  type: list
  elements: str
  sample: [EnhancementSuccessRateLow, HighLatency, QueueDepthHigh, WorkerDown]
reachable:
  description: Whether Prometheus answered at all.
  returned: always
  type: bool
  sample: true
findings:
  description: C(prometheus_unreachable), C(metric_query_failed), C(metric_no_data).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "metric_no_data", "severity": "low", "summary": "Prometheus query worker_memory_bytes returned no data",
            "evidence": {}, "resolution": "Check the exporter is scraped..."}]
"""

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http, _prometheus
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding, sort_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule


def main() -> None:
    module = RunbookModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "queries": {"type": "dict", "default": {}},
            "include": {"type": "list", "elements": "str", "choices": list(_prometheus.RUNBOOK_QUERIES)},
            "trend_window": {"type": "float", "default": 900},
            "trend_step": {"type": "float"},
            "trend_min_change": {"type": "float", "default": 5},
            "timeout": {"type": "float", "default": 10},
            "validate_certs": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    problem = _prometheus.check_options(params)
    if problem:
        module.fail_json(msg=problem)
    try:
        prometheus = _prometheus.Prometheus(params["url"], params["timeout"], params["validate_certs"])
    except _http.HttpInputError as exc:
        module.fail_json(msg=f"query prometheus: {exc}")
    try:
        result = _prometheus.collect(prometheus, params)
    except RunbookError as exc:
        result = {"reachable": False, "metrics": {}, "queue_trend": {"classification": "unknown", "points": 0},
                  "alerts": [], "alerts_firing": [], "alert_rules": [],
                  "findings": [finding("prometheus_unreachable", "high", str(exc), {"prometheus": prometheus.shown},
                                       "Restore Prometheus; until then the runbooks judge from Redis, PostgreSQL "
                                       "and the containers alone.")]}
    result["findings"] = sort_findings(result["findings"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
