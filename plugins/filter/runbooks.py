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
import time
from urllib.parse import urlsplit

from ansible_collections.aiagents.runbooks.plugins.module_utils import _redis, _storage
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding
from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import docker_time

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


def pool_findings(containers, pool_range, overflow_range, raised=None, plan=None):
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
    evidence = {"settings": wrong}
    resolution = ("Set DATABASE_POOL_SIZE / DATABASE_MAX_OVERFLOW back in range (20/30 when the pool is exhausted, "
                  "if the database has the connections) and restart the workers.")
    if plan:
        evidence["capacity"] = {key: plan.get(key) for key in ("processes", "plans", "target")}
        resolution = (f"Resolve would {plan['explanation']}." if plan.get("target")
                      else f"Escalate to the DBA: {plan['explanation']}.")
    return [finding("db_pool_misconfigured", "medium", f"workers' connection pool is outside the normal range: {described}",
                    evidence, resolution)]


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


_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4,
          "ki": 1024, "mi": 1024 ** 2, "gi": 1024 ** 3, "ti": 1024 ** 4}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?|b)?b?\s*$", re.I)


def memory_bytes(value):
    """Bytes of a memory size: a number of bytes, Kubernetes (512Mi, 4Gi) or Docker (512m, 1g, binary) notation."""
    if isinstance(value, bool):
        raise ValueError(f"memory size {value!r} is not a size")
    if isinstance(value, (int, float)):
        return int(value)
    match = _MEMORY.match(str(value))
    if not match:
        raise ValueError(f"memory size {value!r} is not a size (e.g. 1073741824, 1Gi, 1g)")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    # Docker's k/m/g are binary; so are Kubernetes' Ki/Mi/Gi. Only Kubernetes' bare K/M/G are decimal.
    docker_binary = unit in ("k", "m", "g", "t") and match.group(2).islower()
    return int(number * (1024 ** ("kmgt".index(unit) + 1) if docker_binary else _UNITS[unit]))


def env_list(settings):
    """A container's env entries ([{name, value}], values as strings) from a {NAME: value} mapping."""
    if not isinstance(settings, dict):
        raise ValueError(f"settings must be a mapping of NAME: value, not {type(settings).__name__}")
    return [{"name": str(name), "value": str(value).lower() if isinstance(value, bool) else str(value)}
            for name, value in settings.items()]


def projected_secrets(deployment, container):
    """How a Deployment's container mounts its secrets: the first projected volume it mounts, as
    {index, name, sources (secret names, in order), default_mode, read_only}; None when it mounts none."""
    spec = ((deployment or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    mounts = {mount.get("name"): mount for wanted in spec.get("containers") or [] if wanted.get("name") == container
              for mount in wanted.get("volumeMounts") or []}
    for index, volume in enumerate(spec.get("volumes") or []):
        if "projected" in volume and volume.get("name") in mounts:
            projected = volume["projected"] or {}
            return {"index": index, "name": volume["name"],
                    "sources": [source["secret"]["name"] for source in projected.get("sources") or []
                                if "secret" in source],
                    "default_mode": projected.get("defaultMode", 0o644),
                    "read_only": bool(mounts[volume["name"]].get("readOnly"))}
    return None


def rollout_status(deployment):
    """Where a Deployment's rollout is, as `kubectl rollout status` judges it: {state, reason}, state
    complete, progressing or failed (its progress deadline passed). Complete needs the controller to
    have seen the latest spec, every replica updated and available, and no old replica left: status
    alone (ready = available) is true for a moment after a patch, while the old pods still serve."""
    if not deployment:
        return {"state": "failed", "reason": "the deployment does not exist"}
    spec, meta = deployment.get("spec") or {}, deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    if (status.get("observedGeneration") or 0) < (meta.get("generation") or 0):
        return {"state": "progressing", "reason": "the controller has not seen the latest spec yet"}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return {"state": "failed", "reason": f"the rollout missed its progress deadline: {condition.get('message')}"}
    wanted = spec.get("replicas", 1)
    updated, replicas = status.get("updatedReplicas") or 0, status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < wanted:
        return {"state": "progressing", "reason": f"{updated} of {wanted} replicas updated"}
    if replicas > updated:
        return {"state": "progressing", "reason": f"{replicas - updated} old replicas pending termination"}
    if available < updated:
        return {"state": "progressing", "reason": f"{available} of {updated} updated replicas available"}
    return {"state": "complete", "reason": f"{updated} replicas updated and available"}


def projected_source(secret, keys):
    """The projected-volume source mounting `secret`'s keys at <secret>/<key>, the platform's layout."""
    return {"secret": {"name": secret, "items": [{"key": key, "path": f"{secret}/{key}"} for key in keys]}}


def scale_target(current, configured, ceiling):
    """How many workers to run: max(current, configured), capped by ceiling, never fewer than run now.

    {target, change, reason}: change is false when the target is what runs already."""
    current, configured, ceiling = int(current), int(configured), int(ceiling)
    wanted = max(current, configured)
    target = max(current, min(wanted, ceiling))
    if target == current:
        reason = (f"{current} workers run, at or above the ceiling of {ceiling}: not scaled further"
                  if current >= ceiling and configured > current
                  else f"{current} workers run, at least the {configured} configured: nothing to add")
        return {"target": current, "change": False, "reason": reason}
    capped = " (capped by the ceiling)" if wanted > ceiling else ""
    return {"target": target, "change": True,
            "reason": f"{current} -> {target} workers: max(running {current}, configured {configured}){capped}, "
                      f"ceiling {ceiling}"}


def memory_target(current, factor=1.5, cap="4Gi", options=("factor", "cap")):
    """The memory limit to raise OOM-killed workers to: current x factor, never lower than current, capped.

    {limit_bytes, change, reason}; change is false (escalate) when there is no current limit to start from
    or the workers are at the cap already. `options` names factor and cap in the caller's terms, for errors."""
    try:
        ceiling = memory_bytes(cap)
    except ValueError as exc:
        raise ValueError(f"{options[1]}: {exc}") from None
    if float(factor) <= 1:
        raise ValueError(f"{options[0]} {factor!r} must be above 1 (the limit is raised from the current one)")
    if current in (None, "", 0, "0"):
        return {"limit_bytes": None, "change": False,
                "reason": "the workers have no memory limit: the host ran out, not the container; escalate"}
    current = memory_bytes(current)
    if current >= ceiling:
        return {"limit_bytes": current, "change": False,
                "reason": f"the workers' limit {_mib(current)} is at the cap {_mib(ceiling)}: not raised further; "
                          "escalate to engineering to look for the leak"}
    target = min(max(int(current * float(factor)), current), ceiling)
    target -= target % (1024 * 1024) if target > 1024 * 1024 and target != ceiling else 0
    return {"limit_bytes": target, "change": True,
            "reason": f"{_mib(current)} x {float(factor):g} = {_mib(target)}"
                      + (f" (capped at {_mib(ceiling)})" if target == ceiling else "")}


def broker_limits(health, found, memory_factor=1.5, memory_cap="4Gi", clients_factor=1.5, clients_cap=10000):
    """The broker limits to raise for the findings `found`: maxmemory (redis_memory_full) and maxclients
    (redis_clients_near_limit), each the current one x its factor, capped, never lowered; never a flush nor an
    evicting policy. {raise: [{name, value, finding, reason}], refused: [{finding, reason}]} (at the cap)."""
    for name, factor in (("high_queue_depth_broker_memory_factor", memory_factor),
                         ("high_queue_depth_broker_clients_factor", clients_factor)):
        if float(factor) <= 1:
            raise ValueError(f"{name} {factor!r} must be above 1 (a limit is raised from the current one)")
    health, found = health or {}, list(found or [])
    # (setting, finding, its current value, factor, cap, how a value is shown, what to do at the cap)
    limits = [("maxmemory", "redis_memory_full", (health.get("memory") or {}).get("max"), memory_factor,
               memory_bytes(memory_cap), _mib, "give Redis more memory, or escalate to engineering for the queue's "
               "growth"),
              ("maxclients", "redis_clients_near_limit", (health.get("clients") or {}).get("max"), clients_factor,
               int(clients_cap), str, "find the client holding connections (CLIENT LIST)")]
    raised, refused = [], []
    for setting, finding_id, current, factor, ceiling, shown, at_cap in limits:
        if finding_id not in found or not current:
            continue
        current = int(current)
        target = min(max(int(current * float(factor)), current + 1), ceiling)
        if target <= current:
            refused.append({"finding": finding_id, "reason": f"{setting} {shown(current)} is at the cap "
                                                             f"{shown(ceiling)}: not raised further; {at_cap}"})
        else:
            raised.append({"name": setting, "value": str(target), "finding": finding_id,
                           "reason": f"{setting} {shown(current)} x {float(factor):g} = {shown(target)}"
                                     + (f" (capped at {shown(ceiling)})" if target == ceiling else "")})
    return {"raise": raised, "refused": refused}


def intake_findings(metrics, containers=None, error_share=0.5):
    """The intake (the webhook API) failing to take work in now, from its metrics (prometheus_info's result, the
    last 2 minutes) and its logs (platform_intake's containers, the same window; a job queued after the last
    refusal clears it): intake_enqueue_failing when the queue refused jobs - critical when at
    least `error_share` of the webhooks failed, or their rate is unknown - else intake_server_errors for 5xx
    answers with no refused job (a tenant lookup failing: the database)."""
    results = (metrics or {}).get("metrics") or {}

    def value(name):
        item = results.get(name) or {}
        return item.get("value") if item.get("status") == "ok" else None

    total, failed = value("intake_per_second"), value("intake_5xx_per_second") or 0.0
    refused = {str(series.get("labels", {}).get("reason", "unknown")): round(float(series["value"]))
               for series in (results.get("intake_enqueue_errors") or {}).get("series") or []
               if series.get("value")}
    refused = {reason: count for reason, count in refused.items() if count > 0}
    logged = [(item.get("signals") or {}).get("enqueue_failed") for item in containers or []]
    logged = [entry for entry in logged if isinstance(entry, dict)]
    logged_count = sum(int(entry.get("since_queued") or 0) for entry in logged)
    tickets = [ticket for entry in logged for ticket in entry.get("tickets") or []][-20:]
    # The logs, where they say so, tell whether it fails now: a job queued after the last refusal means the
    # refusals in the metrics' window are past.
    recovered = bool(logged) and any(entry.get("count") for entry in logged) and not logged_count
    if recovered or (not refused and not logged_count and failed <= 0):
        return []
    share = failed / total if total else None
    evidence = {"webhooks_per_second": total, "failed_per_second": round(failed, 3),
                "failed_share": round(share, 3) if share is not None else None, "refused_by_reason_2m": refused,
                "refused_in_logs": sum(int(entry.get("count") or 0) for entry in logged), "refused_tickets": tickets}
    shown = f"{share:.0%} of webhooks answered 5xx" if share is not None else "the webhooks' rate is unknown"
    if refused or logged_count:
        count = sum(refused.values()) or evidence["refused_in_logs"]
        reasons = ", ".join(f"{reason} {number}" for reason, number in sorted(refused.items())) or "see its logs"
        severity = "critical" if share is None or share >= float(error_share) else "high"
        return [finding("intake_enqueue_failing", severity,
                        f"the webhook API could not queue {count} jobs ({reasons}); {shown}: tickets created now "
                        "get no enhancement", evidence,
                        "Fix what refuses the job - the broker (the redis_* findings, or redis_unreachable) - then "
                        "have the refused tickets sent again: the webhook API's log names each (tenant_id, "
                        "ticket_id), listed here too.")]
    return [finding("intake_server_errors", "high",
                    f"the webhook API answers 5xx ({failed:.2f}/s; {shown}) with no job refused by the queue",
                    evidence, "Read the webhook API's logs: a failing tenant lookup points to the database "
                    "(database_connection_issues).", "database_connection_issues")]


def storage_volumes(volumes, df_results=None, log_results=None):
    """The data volumes as the platform's storage_info read them (df and the service's log, per volume)."""
    return _storage.describe(volumes or [], list(df_results or []), list(log_results or []))


def storage_findings(records, high=None, critical=None):
    """The storage findings of the data volumes (storage_volumes' records): near full from `high` of the
    volume used (critical from `critical`; each by default _storage.THRESHOLDS'), and PostgreSQL refusing writes
    for lack of space."""
    high = _storage.THRESHOLDS["high"] if high is None else high
    critical = _storage.THRESHOLDS["critical"] if critical is None else critical
    try:
        high, critical = float(high), float(critical)
    except (TypeError, ValueError):
        raise ValueError(f"storage thresholds must be numbers, got {high!r} and {critical!r}") from None
    if not 0 < high <= critical <= 1:
        raise ValueError(f"storage thresholds must satisfy 0 < high ({high:g}) <= critical ({critical:g}) <= 1: "
                         "they are shares of the volume used")
    return _storage.findings(records or [], {"high": high, "critical": critical})


def redis_login(url):
    """community.general.redis's connection options from a Redis URL (redis:// or rediss://)."""
    try:
        parsed = _redis.parse_url(str(url))
    except Exception as exc:  # RunbookError: the message names no part of the URL
        raise ValueError(str(exc)) from None
    return {"login_host": parsed["host"], "login_port": parsed["port"] or 6379, "login_user": parsed.get("username"),
            "login_password": parsed.get("password"), "tls": bool(parsed.get("tls"))}


def _mib(value):
    return f"{value / 1024 / 1024:g} MiB"


def pool_plan(containers, max_connections, candidates, api_processes=1, reserve=10, concurrency=4):
    """Which pool setting the workers can be given without outgrowing the database.

    Every process that holds a pool (running worker replicas x Celery concurrency, plus the api's processes)
    may open pool + overflow connections; with `reserve` kept free, the total must stay within
    max_connections. `candidates` ([{DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW}], preferred first) are tried
    in order; the first above the current setting that fits is the target. {processes, current, plans,
    target (None: nothing fits - escalate), explanation}."""
    running = [item for item in containers or [] if item.get("running")]
    env = next((item.get("env") or {} for item in running), {})
    per_worker = _whole(env.get("CELERY_CONCURRENCY"), int(concurrency))
    processes = len(running) * per_worker + int(api_processes)
    current = {"DATABASE_POOL_SIZE": _whole(env.get("DATABASE_POOL_SIZE"), 0),
               "DATABASE_MAX_OVERFLOW": _whole(env.get("DATABASE_MAX_OVERFLOW"), 0)}
    plans = []
    for candidate in candidates or []:
        pool, overflow = int(candidate["DATABASE_POOL_SIZE"]), int(candidate["DATABASE_MAX_OVERFLOW"])
        needed = processes * (pool + overflow) + int(reserve)
        plans.append({"DATABASE_POOL_SIZE": pool, "DATABASE_MAX_OVERFLOW": overflow, "needed": needed,
                      "fits": max_connections is not None and needed <= int(max_connections),
                      "raises": pool + overflow > current["DATABASE_POOL_SIZE"] + current["DATABASE_MAX_OVERFLOW"]})
    target = next((plan for plan in plans if plan["fits"] and plan["raises"]), None)
    arithmetic = "; ".join(
        f"{plan['DATABASE_POOL_SIZE']}/{plan['DATABASE_MAX_OVERFLOW']}: {len(running)} workers x {per_worker} "
        f"processes + {int(api_processes)} api = {processes} pools"
        f" x {plan['DATABASE_POOL_SIZE'] + plan['DATABASE_MAX_OVERFLOW']} + {int(reserve)} reserve"
        f" = {plan['needed']} of max_connections {max_connections} ({'fits' if plan['fits'] else 'too many'})"
        for plan in plans)
    if max_connections is None:
        explanation = "max_connections is unknown (the database did not answer): the pool is not changed"
    elif target:
        explanation = f"set {target['DATABASE_POOL_SIZE']}/{target['DATABASE_MAX_OVERFLOW']}: {arithmetic}"
    else:
        explanation = f"no pool setting above the current one fits the database: {arithmetic}; escalate to the DBA"
    return {"processes": processes, "current": current, "plans": plans, "target": target,
            "explanation": explanation}


def _whole(value, default):
    text = str(value if value is not None else "").strip()
    return int(text) if text.isdigit() else int(default)


def hung_findings(containers, answering, grace_seconds=60, now=None):
    """worker_hung: a worker whose container runs (and has run for grace_seconds) but which answers no ping
    through the broker - frozen, or stuck in a call. `answering` is celery_workers_info's result; a broker
    that could not be asked proves nothing, so then nothing is concluded."""
    if not isinstance(answering, dict) or answering.get("failed") or "workers" not in answering:
        return []
    nodes = {str(worker.get("name", "")).rpartition("@")[2] for worker in answering.get("workers") or []}
    moment = time.time() if now is None else float(now)
    hung = []
    for container in containers or []:
        started = docker_time(container.get("started_at"))
        # Celery names its node <name>@<host>, the host being the worker's host name, its container id (with
        # host networking every container has the host's name) or its pod name: any of them answers for it.
        identities = {container.get(key) for key in ("hostname", "id", "name")} - {None, ""}
        if not container.get("running") or identities & nodes:
            continue
        if started is None or moment - started < float(grace_seconds):
            continue  # just started: not answering yet is normal
        signals = container.get("signals") or {}
        hung.append({"name": container["name"], "hostname": container["hostname"],
                     "started_at": container.get("started_at"), "last_job": signals.get("last_job"),
                     "silent_for_s": round(moment - started) if not signals.get("last_job") else None})
    if not hung:
        return []
    described = ", ".join(f"{item['name']} (last job: {item['last_job'] or 'none since its start, ' + str(item['started_at'])})"
                          for item in hung)
    return [finding("worker_hung", "high", f"{len(hung)} workers run but answer nothing and take no work: {described}",
                    {"workers": hung, "answering": sorted(nodes)},
                    "Restart the hung workers only (the others go on working), then check they answer; if it "
                    "recurs, take a thread dump before the restart and escalate to engineering.")]


RESUME = "ansible-playbook playbooks/resume.yml -e resume={target}"


def pause_entry(item):
    """A pause record ({key: target, value: {reason, runbook, at}}) as the runbooks show it, with how to resume."""
    target, record = item["key"], item.get("value") or {}
    kind, name = ("tenant", target.split(":", 1)[1]) if target.startswith("tenant:") else ("service", target)
    return {"target": target, "kind": kind, "name": name, "reason": record.get("reason", ""),
            "runbook": record.get("runbook", ""), "at": record.get("at", ""),
            "resume": RESUME.format(target=target)}


def pause_findings(pauses):
    """platform_paused: what a runbook stopped or held on purpose and is still paused; no runbook starts it
    again unless told to (runbooks_resume_paused), so every diagnose says so, with how to resume."""
    pauses = list(pauses or [])
    if not pauses:
        return []
    described = "; ".join(f"{'tenant ' if item['kind'] == 'tenant' else 'the '}{item['name']}"
                          f"{'' if item['kind'] == 'tenant' else ' service'} ({item['reason']}, by "
                          f"{item['runbook'] or 'a runbook'} at {item['at'] or '?'})" for item in pauses)
    # Low: a deliberate state with its cause reported (and paged) on its own; it leaves the verdict alone
    # but stays an open item of the escalation until resumed.
    return [finding("platform_paused", "low", f"paused on purpose: {described}",
                    {"pauses": pauses},
                    "Resume once the cause is dealt with: " + "; ".join(item["resume"] for item in pauses) + ".")]


def make_finding(finding_id, severity, summary, evidence=None, resolution="", runbook=None):
    """A finding built in YAML, checked like every other (the report takes no hand-made dict)."""
    return finding(str(finding_id), str(severity), str(summary).strip(), evidence, str(resolution or "").strip(),
                   runbook)


def failing_on(containers, dependency):
    """Names of the running workers whose logs (read since a restart of `dependency`) show they still cannot
    reach it. A worker that shows nothing - an idle queue gave it no reason to try - is not among them."""
    return [item["name"] for item in containers or []
            if item.get("running") and dependency in ((item.get("signals") or {}).get("unreachable") or [])]


def finding_outcomes(findings):
    """{finding id: outcome} of a resolve report's findings; not_acted carries its why (not_acted:guard)."""
    outcomes = {}
    for item in findings or []:
        outcome = item.get("outcome")
        outcomes[item["id"]] = f"{outcome}:{item.get('why')}" if outcome == "not_acted" else outcome
    return outcomes


def probe_endpoints(apis, rotated=None):
    """The http_probe_info endpoints of `apis` (their `secret` is the platform's name, not a probe option).

    An API whose secret was just rotated is probed with the key it was rotated to, not the credential the
    inventory names: on Kubernetes that file is a copy on the controller that the rotation, which writes the
    Secret in the cluster, never touches.
    """
    rotated = rotated or {}
    endpoints = []
    for api in apis or []:
        endpoint = {key: value for key, value in api.items() if key != "secret"}
        key = rotated.get(api.get("secret")) if api.get("secret") else None
        if key and isinstance(endpoint.get("sdp"), dict):
            if (endpoint["sdp"].get("edition") or "on_premises") == "on_premises":  # Cloud keys are OAuth tokens
                endpoint["sdp"] = {**endpoint["sdp"], "authtoken": key}  # the option wins over secret_dir
        elif key:
            endpoint.pop("bearer_token_file", None)
            endpoint["bearer_token"] = key
        endpoints.append(endpoint)
    return endpoints


class FilterModule:
    def filters(self):
        return {"queue_judgement": queue_judgement, "invalid_settings": invalid_settings,
                "config_findings": config_findings, "pool_findings": pool_findings,
                "tenant_id_error": tenant_id_error, "onboarding_input_errors": onboarding_input_errors,
                "secret_matches": secret_matches, "memory_bytes": memory_bytes, "scale_target": scale_target,
                "memory_target": memory_target, "broker_limits": broker_limits, "redis_login": redis_login,
                "intake_findings": intake_findings, "storage_volumes": storage_volumes,
                "storage_findings": storage_findings,
                "pool_plan": pool_plan, "finding_outcomes": finding_outcomes,
                "hung_findings": hung_findings, "pause_entry": pause_entry, "pause_findings": pause_findings,
                "finding": make_finding, "failing_on": failing_on, "env_list": env_list,
                "projected_secrets": projected_secrets, "projected_source": projected_source,
                "rollout_status": rollout_status, "probe_endpoints": probe_endpoints}
