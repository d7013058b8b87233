# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judgements that combine several checks' results (no I/O: they run on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: queue_judgement
short_description: Judge throughput, time to drain and worker count for the high_queue_depth runbook
version_added: 1.0.0
description:
  - Combines M(aiagents.runbooks.redis_queue_info), M(aiagents.runbooks.prometheus_info) and
    M(aiagents.runbooks.celery_workers_info) results into the runbook's throughput findings
    (C(queue_low_throughput), C(queue_few_workers)) and an estimated time to drain.
positional: metrics, workers
options:
  _input:
    description: The registered result of redis_queue_info.
    type: dict
    required: true
  metrics:
    description: The registered result of prometheus_info.
    type: dict
    required: true
  workers:
    description: The registered result of celery_workers_info.
    type: dict
    required: true
  min_throughput:
    description: Successful jobs per second below which the workers are struggling.
    type: float
    default: 1.0
  min_workers:
    description: Live workers expected.
    type: int
    default: 2
  depth_elevated:
    description: Depth from which throughput matters.
    type: int
    default: 50
"""

EXAMPLES = r"""
judgement: "{{ queue | aiagents.runbooks.queue_judgement(metrics, workers, min_throughput=1.0) }}"
"""

RETURN = r"""
_value:
  description: depth, trend, throughput_per_second, drain_seconds and findings.
  type: dict
"""

import hashlib
import ipaddress
import re
from urllib.parse import urlsplit

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

TENANT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
MIN_SECRET_LENGTH = 32


def _value(result, *path):
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def queue_judgement(queue, metrics, workers, min_throughput=1.0, min_workers=2, depth_elevated=50):
    depth = _value(queue, "depth")
    throughput = _value(metrics, "metrics", "success_per_second", "value")
    worker_count = _value(workers, "worker_count")
    trend = _value(metrics, "queue_trend", "classification") or "unknown"
    found = []
    if depth is not None and throughput is not None and throughput < min_throughput and depth >= depth_elevated:
        found.append(finding(
            "queue_low_throughput", "medium",
            f"workers complete {throughput:.2f} jobs/s (< {min_throughput:g}/s) with {depth} queued; trend {trend}",
            {"throughput_per_second": throughput, "depth": depth, "trend": trend},
            "Check worker logs for rising failures and slow jobs (database_connection_issues, api_timeout).",
        ))
    if worker_count is not None and 0 < worker_count < min_workers:
        found.append(finding(
            "queue_few_workers", "medium", f"{worker_count} workers answer ({min_workers}+ expected)",
            {"workers": worker_count}, "Scale the workers; if they do not start, follow worker_failures.",
            runbook="worker_failures",
        ))
    drain = round(depth / throughput) if depth and throughput else None
    return {"depth": depth, "trend": trend, "throughput_per_second": throughput, "drain_seconds": drain,
            "workers": worker_count, "findings": found}


def invalid_settings(containers, expected):
    """{name: bad value} for worker settings in `expected` whose value is not a whole number."""
    bad = {}
    for container in containers or []:
        for key, value in (container.get("env") or {}).items():
            if key in expected and not str(value).strip().isdigit():
                bad[key] = value
    return bad


def config_findings(bad, expected):
    """A worker_config_invalid finding naming each bad setting and the value it will be reset to."""
    if not bad:
        return []
    described = ", ".join(f"{key}={value!r} (expected a number, e.g. {expected[key]})" for key, value in bad.items())
    return [finding("worker_config_invalid", "high", f"workers are configured with invalid settings: {described}",
                    {"invalid": bad, "reset_to": {key: expected[key] for key in bad}},
                    "Fix the settings (env/secret) and do a rolling restart of the workers.")]


def pool_findings(containers, pool_range, overflow_range, raised=None):
    """db_pool_misconfigured when a worker's DATABASE_POOL_SIZE / DATABASE_MAX_OVERFLOW leave the normal range.

    `raised` ({DATABASE_POOL_SIZE: 20, DATABASE_MAX_OVERFLOW: 30}) are the
    runbook's own settings for an exhausted pool: once resolve has set them
    they are a deliberate choice, not a misconfiguration.
    """
    wrong = {}
    deliberate = {key: str(value) for key, value in (raised or {}).items()}
    for container in containers or []:
        env = container.get("env") or {}
        for key, bounds in (("DATABASE_POOL_SIZE", pool_range), ("DATABASE_MAX_OVERFLOW", overflow_range)):
            value = str(env.get(key, "")).strip()
            if value.isdigit() and deliberate.get(key) == value:
                continue
            if value.isdigit() and not int(bounds["min"]) <= int(value) <= int(bounds["max"]):
                wrong[key] = {"value": int(value), "normal": f"{bounds['min']}-{bounds['max']}"}
    if not wrong:
        return []
    described = ", ".join(f"{key}={item['value']} (normal {item['normal']})" for key, item in wrong.items())
    return [finding("db_pool_misconfigured", "medium", f"workers' connection pool is outside the normal range: {described}",
                    {"settings": wrong},
                    "Set DATABASE_POOL_SIZE / DATABASE_MAX_OVERFLOW back in range (20/30 when the pool is exhausted) "
                    "and restart the workers.")]


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tenant_id_error(tenant_id):
    """Why `tenant_id` is not a valid tenant id, or None."""
    text = "" if tenant_id is None else str(tenant_id)
    if not text:
        return "tenant_id is required (lowercase letters, digits and hyphens, e.g. acme-corp)"
    if len(text) > 50:
        return f"tenant_id is {len(text)} characters long; at most 50 are allowed"
    if not TENANT_ID.match(text):
        return (f"tenant_id {text!r} is not valid: use lowercase letters, digits and hyphens only, "
                "starting and ending with a letter or digit (e.g. acme-corp)")
    return None


def onboarding_input_errors(inputs, allow_http_loopback=False):
    """One clear message per invalid onboarding input (an empty list when all are valid).

    `inputs` holds tenant_id, name, sdp_url, sdp_edition (on_premises, the default, or cloud),
    webhook_secret, and the edition's credentials: sdp_api_key on premises; sdp_portal,
    sdp_accounts_url, sdp_client_id, sdp_client_secret and sdp_refresh_token on Cloud. Secrets
    are judged by length only and never quoted back."""
    errors = []
    problem = tenant_id_error(inputs.get("tenant_id"))
    if problem:
        errors.append(problem)
    name = str(inputs.get("name") or "").strip()
    if not name:
        errors.append("name (the customer's display name) is required")
    elif len(name) > 200:
        errors.append(f"name is {len(name)} characters long; at most 200 are allowed")
    errors += _https_errors("sdp_url", str(inputs.get("sdp_url") or ""),
                            "https://sdpondemand.manageengine.com for Cloud, or the customer's own SDP",
                            allow_http_loopback)
    edition = str(inputs.get("sdp_edition") or "on_premises")
    if edition not in SDP_EDITIONS:
        errors.append(f"sdp_edition {edition!r} is not one of {', '.join(SDP_EDITIONS)}")
        edition = None
    credentials = [("sdp_api_key", "SDP API key")] if edition == "on_premises" else \
        [("sdp_client_id", "SDP Cloud client id"), ("sdp_client_secret", "SDP Cloud client secret"),
         ("sdp_refresh_token", "SDP Cloud refresh token")] if edition == "cloud" else []
    if edition == "cloud":
        portal = str(inputs.get("sdp_portal") or "")
        if not PORTAL_NAME.match(portal):
            errors.append(f"sdp_portal {portal!r} must be the Cloud portal's name, the <portal> of "
                          "https://sdpondemand.manageengine.com/app/<portal>/ (letters, digits, - and _)")
        errors += _https_errors("sdp_accounts_url", str(inputs.get("sdp_accounts_url") or ""),
                                "the accounts server of the portal's data centre (https://accounts.zoho.com)",
                                allow_http_loopback)
    for key, label in credentials + [("webhook_secret", "webhook secret")]:
        value = inputs.get(key)
        if value is None or str(value) == "":
            errors.append(f"the {label} is missing: give it from a vault file (-e @tenant.vault.yml)"
                          + (" or at the prompt" if key in ("sdp_api_key", "webhook_secret") else ""))
        elif key == "webhook_secret" and len(str(value)) < MIN_SECRET_LENGTH:
            errors.append(f"the {label} is {len(str(value))} characters long; at least {MIN_SECRET_LENGTH} are "
                          "required (openssl rand -hex 32)")
        elif any(ch.isspace() for ch in str(value)):
            errors.append(f"the {label} contains whitespace; paste it without spaces or line breaks")
    return errors


SDP_EDITIONS = ("on_premises", "cloud")
PORTAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def _https_errors(option, url, what, allow_http_loopback):
    """Why `url` cannot be this https endpoint (an empty list when it can)."""
    parts = urlsplit(url)
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if not url:
        return [f"{option} is required ({what})"]
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password \
            or parts.query or parts.fragment:
        return [f"{option} {url!r} is not a plain https URL with a host (no credentials, query or fragment)"]
    if parts.scheme == "http" and not (allow_http_loopback and _is_loopback(host)):
        return [f"{option} {url!r} must use https: credentials would travel in clear text"]
    return []


def secret_matches(stat_results, data):
    """True when every key of `data` has a file (ansible.builtin.stat results with sha256
    checksums, looped over the keys) holding its value, with or without a final newline."""
    if not data:
        return False
    checksums = {item.get("item"): (item.get("stat") or {}).get("checksum") for item in stat_results or []}
    for key, value in data.items():
        text = str(value).encode()
        if checksums.get(key) not in (hashlib.sha256(text).hexdigest(), hashlib.sha256(text + b"\n").hexdigest()):
            return False
    return True


class FilterModule:
    def filters(self):
        return {"queue_judgement": queue_judgement, "invalid_settings": invalid_settings,
                "config_findings": config_findings, "pool_findings": pool_findings,
                "tenant_id_error": tenant_id_error, "onboarding_input_errors": onboarding_input_errors,
                "secret_matches": secret_matches}
