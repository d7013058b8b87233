# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes provider's reading of the workers: the same WORKER_RECORD as Docker's, built from pods.

One Deployment's pods (by its own selector), their container status, the
settings the pod gets (its env and the ConfigMaps it takes env from), the
kubelet's events of the last hour, and the logs of the current and the
previous run - through the kubernetes Python client, read-only.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import (
    analyse_logs,
    mask_urls,
    shown_env,
)

TIMEOUT_MAX = 600
HOUR = 3600
# Kubernetes quantities (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/).
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|(k|M|G|T|P|E)|e([0-9]+)|m)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
# A container the kubelet holds back from restarting, or cannot start, by Docker's words for it.
_WAITING_STATE = {"CrashLoopBackOff": "restarting", "ContainerCreating": "created", "PodInitializing": "created"}


def quantity_bytes(text: str | None) -> int | None:
    """Bytes of a memory quantity ("2Gi", "512M", "1e9", "1073741824"); None for none or one unreadable."""
    if not text:
        return None
    match = _QUANTITY.match(str(text).strip())
    if not match:
        return None
    number, binary, decimal, exponent = match.group(1), match.group(2), match.group(3), match.group(4)
    if str(text).strip().endswith("m") and not binary and not decimal:
        return int(float(number) / 1000)
    scale = _BINARY.get(binary) or _DECIMAL.get(decimal) or (10 ** int(exponent) if exponent else 1)
    return int(float(number) * scale)


def _iso(moment) -> str | None:
    """RFC 3339 of the client's datetime (UTC, as the API gives it)."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(moment) -> float | None:
    return moment.timestamp() if moment is not None else None


def container_state(status) -> tuple[str | None, bool]:
    """(Docker's word for the container's state, whether it runs) from its status."""
    if status is None or status.state is None:
        return "created", False
    if status.state.running is not None:
        return "running", True
    if status.state.waiting is not None:
        reason = status.state.waiting.reason or "waiting"
        return _WAITING_STATE.get(reason, reason[:1].lower() + reason[1:]), False
    return "exited", False


def health(status, has_probe: bool) -> str | None:
    """The readiness verdict: healthy, starting (not yet ready, in its first probe period), unhealthy; None without a probe."""
    if not has_probe or status is None:
        return None
    if status.ready:
        return "healthy"
    running = status.state.running if status.state else None
    if running is not None and running.started_at is not None and time.time() - running.started_at.timestamp() < 60:
        return "starting"
    return "unhealthy"


def restarts_last_hour(pod, status, now: float) -> int | None:
    """Restarts in the last hour. Exact when the pod is younger than an hour (all its restarts are in it) or
    its last run ended more than an hour ago (none are); otherwise unknown (None): the kubelet keeps only
    the last termination, and an event's count spans its whole life."""
    if status is None:
        return 0
    created = _seconds(pod.metadata.creation_timestamp)
    last = status.last_state.terminated if status.last_state else None
    if created is not None and now - created <= HOUR:
        return int(status.restart_count or 0)
    if last is None or (last.finished_at is not None and now - last.finished_at.timestamp() > HOUR):
        return 0
    return None


def env_of(container, config_maps: dict[str, dict[str, str]]) -> dict[str, str]:
    """The environment the container gets: its ConfigMaps' keys first, its own env over them. A value from
    a Secret or a field is not read (named only by where it comes from)."""
    env: dict[str, str] = {}
    for source in container.env_from or []:
        if source.config_map_ref is not None:
            prefix = source.prefix or ""
            env.update({prefix + key: value for key, value in config_maps.get(source.config_map_ref.name, {}).items()})
    for var in container.env or []:
        if var.value is not None:
            env[var.name] = var.value
        elif var.value_from is not None and var.value_from.config_map_key_ref is not None:
            ref = var.value_from.config_map_key_ref
            if ref.key in config_maps.get(ref.name, {}):
                env[var.name] = config_maps[ref.name][ref.key]
    return env


def _log_lines(core, pod, container: str, params: dict[str, Any], previous: bool, since: int) -> list[str]:
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    kwargs: dict[str, Any] = {"container": container, "tail_lines": params["log_lines"], "previous": previous,
                              "_request_timeout": params["timeout"]}
    if since:
        kwargs["since_seconds"] = max(1, int(time.time() - since))
    try:
        # Raw: with urllib3 2 the client "deserializes" the body to the repr of its bytes (b'...\\n...'),
        # one line with every newline escaped, in which no log signal is ever found.
        response = core.read_namespaced_pod_log(pod.metadata.name, pod.metadata.namespace,
                                                _preload_content=False, **kwargs)
    except ApiException as exc:
        if exc.status in (400, 404):  # no previous run, or a container not started yet: no lines
            return []
        raise
    text = response.data.decode("utf-8", errors="replace")
    return [mask_urls(line) for line in text.splitlines()]


def describe_pod(core, pod, config_maps: dict[str, dict[str, str]], params: dict[str, Any], now: float) -> dict:
    """One worker record from a pod (its first container: the worker)."""
    spec_container = pod.spec.containers[0]
    statuses = {status.name: status for status in (pod.status.container_statuses or [])}
    status = statuses.get(spec_container.name)
    state, running = container_state(status)
    if pod.metadata.deletion_timestamp is not None:
        state = "removing"
    last = status.last_state.terminated if status is not None and status.last_state else None
    current_end = status.state.terminated if status is not None and status.state else None
    # A worker running now is judged on the last hour: an older termination is history, not this incident
    # (the kubelet keeps the last one for the pod's whole life; Docker forgets it when the container starts).
    if current_end is None and last is not None and running and last.finished_at is not None \
            and now - last.finished_at.timestamp() > HOUR:
        last = None
    ended = current_end or last
    started = status.state.running.started_at if status is not None and status.state and status.state.running else None
    log_since, fresh_since = params["log_since"], params["fresh_since"]
    recent = restarts_last_hour(pod, status, now)
    lines: list[str] = []
    if params["log_lines"]:
        fresh = bool(fresh_since and started is not None and started.timestamp() >= fresh_since)
        if fresh:
            log_since = max(log_since, int(started.timestamp()))
        elif status is not None and status.restart_count:
            # Docker keeps a container's logs across restarts; the kubelet keeps the previous run's.
            lines += _log_lines(core, pod, spec_container.name, params, True, log_since)
        lines += _log_lines(core, pod, spec_container.name, params, False, log_since)
        if fresh:
            recent = 0
    limits = (spec_container.resources.limits or {}) if spec_container.resources else {}
    return {
        "name": pod.metadata.name,
        "id": (pod.metadata.uid or "")[:12],
        # With host networking the processes see the node's name, which a namespaced account cannot read.
        "hostname": None if pod.spec.host_network else (pod.spec.hostname or pod.metadata.name),
        "state": state,
        "running": running and pod.metadata.deletion_timestamp is None,
        "health": health(status, spec_container.readiness_probe is not None),
        "restart_count": int(status.restart_count or 0) if status is not None else 0,
        "restarts_last_hour": recent,
        "exit_code": ended.exit_code if ended is not None else None,
        "oom_killed": bool(ended is not None and ended.reason == "OOMKilled"),
        "started_at": _iso(started),
        "finished_at": _iso(ended.finished_at) if ended is not None else None,
        "memory_limit_bytes": quantity_bytes(limits.get("memory")),
        "env": shown_env(env_of(spec_container, config_maps), params["env_keys"]),
        # Not running since a crash (back-off): its last run's last job was the job before that crash.
        "signals": analyse_logs(lines, died=not running and ended is not None
                                and (ended.reason == "OOMKilled" or ended.exit_code not in (0, None))),
        "log_tail": [line[:300] for line in lines[-20:]],
    }


def pod_verdict(record: dict) -> str:
    """healthy, failing or starting: how a worker pod fares, for judging a rollout."""
    if record["state"] == "removing":
        return "starting"  # on its way out: neither
    if not record["running"] or record["health"] == "unhealthy" or (record["restarts_last_hour"] or 0) > 0:
        return "failing"
    return "starting" if record["health"] == "starting" else "healthy"


def _revision_number(revision) -> int | None:
    try:
        return int(revision)
    except (TypeError, ValueError):
        return None


def rollout_judgement(revision, replica_sets: dict[str, str], pods: list[tuple[str, str]]) -> dict[str, Any]:
    """Whether the workers' failures started with the Deployment's current revision, so that undoing the
    rollout to the previous one is the remedy (`kubectl rollout undo`). replica_sets: the Deployment's
    ReplicaSets, {name: revision}; pods: (its ReplicaSet's name, pod_verdict) for each pod.

    A bad rollout: pods of the current revision fail and none of them is healthy, every failing pod is of
    the current revision, and the revision before it is kept to go back to (kubernetes.core.k8s_rollback
    goes back to exactly that one)."""
    current = _revision_number(revision)
    known = {number for number in map(_revision_number, replica_sets.values()) if number is not None}
    previous = current - 1 if current is not None and current - 1 in known else None
    counts: dict[str, dict[str, int]] = {}
    for replica_set, verdict in pods:
        pod_revision = str(replica_sets.get(replica_set, "unknown"))
        counts.setdefault(pod_revision, {"healthy": 0, "failing": 0, "starting": 0})[verdict] += 1
    mine = counts.get(str(current), {"healthy": 0, "failing": 0, "starting": 0})
    failing_elsewhere = sum(tally["failing"] for rev, tally in counts.items() if rev != str(current))
    judgement = {"revision": str(current) if current is not None else None,
                 "previous_revision": str(previous) if previous is not None else None,
                 "pods_by_revision": counts, "undo_to": None}
    if not mine["failing"]:
        judgement["reason"] = f"no pod of revision {current} fails"
    elif mine["healthy"]:
        judgement["reason"] = f"revision {current} has healthy pods too: not the rollout"
    elif failing_elsewhere:
        judgement["reason"] = f"pods of other revisions fail too ({failing_elsewhere}): not the rollout"
    elif previous is None:
        judgement["reason"] = f"revision {current - 1 if current else None} is not kept: nothing to go back to"
    else:
        judgement["undo_to"] = str(previous)
        healthy_before = counts.get(str(previous), {}).get("healthy", 0)
        judgement["reason"] = (f"the failures started with revision {current} ({mine['failing']} pods fail, none "
                               f"is healthy); revision {previous} " + (f"still runs {healthy_before} healthy pods"
                                                                       if healthy_before else "ran before it"))
    return judgement


def selector_of(deployment) -> str:
    labels = (deployment.spec.selector.match_labels or {}) if deployment.spec.selector else {}
    if not labels:
        raise ValueError(f"deployment {deployment.metadata.name!r} selects its pods by expressions only")
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def read_deployment_pods(api_client, params: dict[str, Any], target: str) -> tuple[list[dict], dict[str, Any]]:
    """(worker records, the deployment's facts) - all of it within ``timeout`` seconds."""
    from kubernetes import client as k8s  # pylint: disable=import-outside-toplevel

    box: dict[str, Any] = {}
    namespace, name, timeout = params["namespace"], params["deployment"], params["timeout"]

    def read() -> None:
        try:
            apps, core = k8s.AppsV1Api(api_client), k8s.CoreV1Api(api_client)
            deployment = apps.read_namespaced_deployment(name, namespace, _request_timeout=timeout)
            selector = selector_of(deployment)
            pods = core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=timeout).items
            # The Deployment's ReplicaSets: which revision each pod runs.
            replica_sets = {rs.metadata.name: (rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision")
                            for rs in apps.list_namespaced_replica_set(namespace, label_selector=selector,
                                                                       _request_timeout=timeout).items
                            if any(owner.uid == deployment.metadata.uid for owner in rs.metadata.owner_references or [])}
            wanted = {source.config_map_ref.name for pod in pods[:1] for container in pod.spec.containers[:1]
                      for source in container.env_from or [] if source.config_map_ref is not None}
            wanted |= {var.value_from.config_map_key_ref.name for pod in pods[:1]
                       for container in pod.spec.containers[:1] for var in container.env or []
                       if var.value_from is not None and var.value_from.config_map_key_ref is not None}
            config_maps = {}
            for config_map in sorted(wanted):
                config_maps[config_map] = core.read_namespaced_config_map(
                    config_map, namespace, _request_timeout=timeout).data or {}
            now = time.time()
            # Each pod's logs are a request or two of their own: read the pods side by side.
            pods = sorted(pods, key=lambda pod: pod.metadata.name)
            with ThreadPoolExecutor(max_workers=max(1, min(8, len(pods)))) as pool:
                box["records"] = list(pool.map(lambda pod: describe_pod(core, pod, config_maps, params, now), pods))
            annotations = deployment.metadata.annotations or {}
            owners = [next((owner.name for owner in pod.metadata.owner_references or [] if owner.kind == "ReplicaSet"), "")
                      for pod in pods]
            box["deployment"] = {
                "name": name,
                "namespace": namespace,
                "replicas": deployment.spec.replicas,
                "ready_replicas": deployment.status.ready_replicas or 0,
                "updated_replicas": deployment.status.updated_replicas or 0,
                "revision": annotations.get("deployment.kubernetes.io/revision"),
                "generation": deployment.metadata.generation,
                "observed_generation": deployment.status.observed_generation,
                "rollout": rollout_judgement(annotations.get("deployment.kubernetes.io/revision"), replica_sets,
                                             [(owner, pod_verdict(record))
                                              for owner, record in zip(owners, box["records"])]),
            }
        except Exception as exc:  # reported by the caller, in one line
            box["error"] = exc

    thread = threading.Thread(target=read, name="kubernetes_workers_info", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise RunbookError("describe", target, f"the API server did not answer within timeout ({timeout:g} s)")
    if "error" in box:
        raise RunbookError("describe", target, api_error(box["error"]))
    return box["records"], box["deployment"]


def api_error(exc: BaseException) -> str:
    """One line for an API or connection error: the status and the server's message, never a traceback."""
    status = getattr(exc, "status", None)
    if status:
        body = getattr(exc, "body", None) or ""
        message = re.search(r'"message":\s*"((?:[^"\\]|\\.)*)"', body if isinstance(body, str) else "")
        reason = message.group(1) if message else (getattr(exc, "reason", "") or "")
        hint = {401: " (the kubeconfig's credentials were refused)",
                403: " (the account lacks this permission: see sandbox/k8s/runbooks-rbac.yaml)"}.get(status, "")
        return f"HTTP {status}: {mask_urls(str(reason))}{hint}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {mask_urls(text)}"
