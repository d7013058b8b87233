#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pods of the workers' Deployment, with what a worker-failure diagnosis needs, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubernetes_workers_info
short_description: Describe a Deployment's pods as workers - state, restarts, exit codes, OOM, settings, logs
version_added: 1.0.0
description:
  - The Kubernetes provider's evidence call, the counterpart of M(aiagents.runbooks.docker_service_info). It
    returns the same worker records, built from the pods of one Deployment. Each record has the pod's phase
    and readiness and its restarts (in the last hour when that can be known). It has the last termination's
    reason (C(OOMKilled)) and exit code, C(CrashLoopBackOff) (state C(restarting)) and the memory limit in
    bytes. It has the settings the pod gets from its env and ConfigMaps, and what the logs of its current
    and previous run say.
  - With O(findings=true) also judges them by the worker_failures runbook, exactly as on Docker.
  - M(kubernetes.core.k8s_info) lists pods but neither reads their logs nor resolves their settings;
    M(kubernetes.core.k8s_log) reads one pod's log per call. Hence this module, which reads everything in one
    call, read-only, through the kubernetes Python client.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  deployment:
    description: The workers' Deployment; its own selector finds the pods.
    type: str
    required: true
  namespace:
    description: The platform's namespace.
    type: str
    required: true
  kubeconfig:
    description:
      - Path to the kubeconfig to use; the environment's C(K8S_AUTH_KUBECONFIG), then C(KUBECONFIG), then
        C(~/.kube/config) by default. Inside a pod without one, the pod's service account.
    type: path
  context:
    description: The kubeconfig context to use; its current context by default.
    type: str
  log_lines:
    description: How many of each pod's latest log lines to read, per run (0 reads none; at most 100000).
    type: int
    default: 500
  log_since:
    description: Read only the log lines written at or after this moment (Unix seconds); 0 reads the latest.
    type: int
    default: 0
  fresh_since:
    description:
      - Pods whose worker started at or after this moment (Unix seconds) are judged on their current run only
        (not on the previous run's logs, and with no restart counted), for example workers a resolve has
        just restarted.
    type: int
    default: 0
  env_keys:
    description:
      - Settings to report. Values come from the container's env and the ConfigMaps it takes env from.
        Values from Secrets are never read. A secret-named key is masked, and the credentials in a URL are
        redacted.
    type: list
    elements: str
    default: []
  findings:
    description: Judge the pods as workers (the worker_failures runbook).
    type: bool
    default: false
  crash_loop_restarts:
    description: Restarts in the last hour above which a worker is crash-looping (3 or more while restarting count too).
    type: int
    default: 5
  timeout:
    description: Seconds the whole run may take (above 0, at most 600); an API server that does not answer in time ends it with a message.
    type: float
    default: 30
extends_documentation_fragment:
  - aiagents.runbooks.attributes.info
requirements:
  - kubernetes (the Python client)
notes:
  - Needs C(get) on deployments and configmaps, C(list) on pods and C(get) on C(pods/log) in the namespace
    (the runbooks' Role in C(sandbox/k8s/runbooks-rbac.yaml)).
  - Restarts in the last hour are exact for a pod younger than an hour, and when its last run ended more than
    an hour ago. Otherwise they are unknown (C(null)) and the lifetime count stands in. The kubelet keeps
    only the last termination.
  - A worker running now reports its last termination (C(exit_code), C(oom_killed), C(finished_at)) only
    when it ended in the last hour. The kubelet keeps it for the pod's whole life; an older one is history,
    not the incident at hand.
"""

EXAMPLES = r"""
- name: Describe the production workers and judge them
  aiagents.runbooks.kubernetes_workers_info:
    deployment: celery-worker
    namespace: ai-agents
    env_keys: [DATABASE_POOL_SIZE, HTTPX_TIMEOUT]
    findings: true
  register: workers
"""

RETURN = r"""
containers:
  description: One worker record per pod (the same fields as M(aiagents.runbooks.docker_service_info) returns).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "celery-worker-7d9c-abcde", "state": "running", "running": true, "health": "healthy",
            "restart_count": 0, "restarts_last_hour": 0, "exit_code": null, "oom_killed": false,
            "memory_limit_bytes": 2147483648, "env": {"DATABASE_POOL_SIZE": "5"}, "signals": {}, "log_tail": []}]
running:
  description: How many pods have their worker running.
  returned: always
  type: int
  sample: 2
deployment:
  description:
    - The Deployment's replicas (asked for, ready, updated), revision and generations.
    - C(rollout) judges whether the failures started with the current revision (C(undo_to), the previous
      revision, is set then; C(reason) says why or why not), with the pods of each revision by verdict.
  returned: always
  type: dict
  sample: {"name": "celery-worker", "namespace": "ai-agents", "replicas": 2, "ready_replicas": 2,
           "updated_replicas": 2, "revision": "3", "generation": 3, "observed_generation": 3,
           "rollout": {"revision": "3", "previous_revision": "2", "undo_to": "2",
                       "pods_by_revision": {"2": {"healthy": 2, "failing": 0, "starting": 0},
                                            "3": {"healthy": 0, "failing": 1, "starting": 0}},
                       "reason": "the failures started with revision 3 (1 pods fail, none is healthy);
                                  revision 2 still runs 2 healthy pods"}}
findings:
  description: With O(findings=true), the worker_failures findings, most severe first.
  returned: always
  type: list
  elements: dict
  sample: []
"""

import os

from ansible_collections.aiagents.runbooks.plugins.module_utils import _pods, _workers
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import sort_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule

try:
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException
except ImportError:
    k8s_config = None


def api_client(params):
    """A client for the kubeconfig asked for (or the environment's, or the pod's service account)."""
    path = params["kubeconfig"] or os.environ.get("K8S_AUTH_KUBECONFIG")
    try:
        return k8s_config.new_client_from_config(config_file=path, context=params["context"])
    except (ConfigException, FileNotFoundError, TypeError) as exc:
        if path or params["context"]:
            raise RunbookError("describe", "the cluster", f"cannot use kubeconfig {path or '(default)'}: {exc}") from None
    try:
        k8s_config.load_incluster_config()
    except ConfigException:
        raise RunbookError("describe", "the cluster", "no kubeconfig (set kubeconfig, K8S_AUTH_KUBECONFIG or "
                                                      "KUBECONFIG) and not running in a pod") from None
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    return client.ApiClient()


def main() -> None:
    module = RunbookModule(
        argument_spec={
            "deployment": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
            **_workers.READ_OPTIONS,
        },
        supports_check_mode=True,
    )
    if k8s_config is None:
        module.fail_json(msg="import kubernetes: the kubernetes Python client is not installed; run scripts/bootstrap.sh")
    params = module.params
    target = f"deployment {params['deployment']!r} in namespace {params['namespace']!r}"
    problem = _workers.read_options_error(params, _pods.TIMEOUT_MAX)
    if problem:
        module.fail_json(msg=f"describe {target}: {problem}")
    try:
        records, deployment = _pods.read_deployment_pods(api_client(params), params, target)
    except RunbookError as exc:
        module.fail_json(msg=str(exc))
    findings = _workers.worker_findings(records, params["crash_loop_restarts"]) if params["findings"] else []
    module.exit_json(changed=False, containers=records, running=sum(1 for r in records if r["running"]),
                     deployment=deployment, findings=sort_findings(findings))


if __name__ == "__main__":
    main()
