#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The containers of a Compose service, with what a worker-failure diagnosis needs, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_service_info
short_description: Describe a Docker Compose service's containers - state, restarts, exit codes, OOM, logs
version_added: 1.0.0
description:
  - Lists the containers of one service of a Compose project through the Docker Engine API and returns, per
    container, its state, health, restart count, last exit code, whether it was OOM-killed, its memory limit,
    selected environment variables, and what its recent logs say (OOM, segfaults, exceptions, unreachable
    dependencies, the job before each restart).
  - With O(findings=true) also judges them by the worker_failures runbook - C(workers_all_down), C(worker_crash_loop),
    C(worker_oom_killed), C(worker_segfault), C(worker_exception), C(worker_sigterm), C(worker_dependency_unreachable),
    C(worker_poison_job).
  - The Docker provider's evidence call; the Kubernetes provider builds the same records from kubernetes.core.
    M(community.docker.docker_container_info) describes one named container and returns no logs, hence this module.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  project:
    description: Compose project name (label C(com.docker.compose.project)).
    type: str
    required: true
  service:
    description: Compose service name (label C(com.docker.compose.service)).
    type: str
    required: true
  log_lines:
    description: How many of each container's latest log lines to read (0 reads none; at most 100000).
    type: int
    default: 500
  log_since:
    description:
      - Read only the log lines written at or after this moment (Unix seconds), for example since a dependency
        was restarted. 0 reads the latest O(log_lines) whenever they were written.
    type: int
    default: 0
  fresh_since:
    description:
      - Containers started at or after this moment (Unix seconds) are judged on the logs of their current
        run only, for example workers a resolve has just restarted. 0 judges every container on its latest
        O(log_lines), whenever written.
    type: int
    default: 0
  env_keys:
    description:
      - Environment variables to report (values of other variables, which may be secrets, are never read out).
      - A secret-named one (C(*PASSWORD*), C(*TOKEN*), C(*KEY*), ...) is reported masked, and the credentials of a
        URL in a value or a log line are redacted.
    type: list
    elements: str
    default: []
  findings:
    description: Judge the containers as workers (the worker_failures runbook).
    type: bool
    default: false
  crash_loop_restarts:
    description:
      - Restarts in the last hour above which a worker is crash-looping (0 or more); 3 or more in the hour
        while it is restarting count too. The daemon's event log says when each container died.
    type: int
    default: 5
  docker_host:
    description: Docker daemon address; the environment's C(DOCKER_HOST) or the local socket by default.
    type: str
  timeout:
    description:
      - Seconds the whole run may take, above 0 and at most 600 - connecting to the daemon, listing, inspecting
        and reading every container's logs. A daemon that does not answer in time, or answers too slowly, ends
        the run with a message.
    type: float
    default: 30
extends_documentation_fragment:
  - aiagents.runbooks.attributes.info
requirements:
  - docker (the Python SDK)
"""

EXAMPLES = r"""
- name: Describe the sandbox's workers and judge them
  aiagents.runbooks.docker_service_info:
    project: aiagents
    service: worker
    env_keys: [DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW, HTTPX_TIMEOUT]
    findings: true
  register: workers
"""

RETURN = r"""
containers:
  description: One record per container of the service (stopped ones included).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "aiagents-worker-1", "state": "running", "running": true, "health": "healthy", "restart_count": 0,
            "restarts_last_hour": 0, "exit_code": 0, "oom_killed": false, "started_at": "2026-11-27T18:00:00Z", "memory_limit_bytes": 536870912,
            "env": {"DATABASE_POOL_SIZE": "5"}, "signals": {"oom": 0, "segfault": 0, "exceptions": {},
            "exception_lines": [], "dependency_errors": [], "last_ticket_before_restart": []}, "log_tail": []}]
running:
  description: How many containers are running.
  returned: always
  type: int
  sample: 2
findings:
  description: With O(findings=true), the worker_failures findings, most severe first.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "worker_oom_killed", "severity": "high", "summary": "worker memory exhausted: ...",
            "evidence": {}, "resolution": "Raise the worker memory limit..."}]
"""

from ansible_collections.aiagents.runbooks.plugins.module_utils import _workers
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import sort_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule

try:
    import docker
except ImportError:
    docker = None


def main() -> None:
    module = RunbookModule(
        argument_spec={
            "project": {"type": "str", "required": True},
            "service": {"type": "str", "required": True},
            "docker_host": {"type": "str"},
            **_workers.READ_OPTIONS,
        },
        supports_check_mode=True,
    )
    if docker is None:
        module.fail_json(msg="import docker: the docker Python SDK is not installed; run scripts/bootstrap.sh")
    params = module.params
    target = f"service {params['service']!r} of compose project {params['project']!r}"
    problem = _workers.read_options_error(params)
    if problem:
        module.fail_json(msg=f"describe {target}: {problem}")
    try:
        records = _workers.read_docker_service(docker, params, target)
    except RunbookError as exc:
        module.fail_json(msg=str(exc))
    findings = _workers.worker_findings(records, params["crash_loop_restarts"]) if params["findings"] else []
    module.exit_json(changed=False, containers=records, running=sum(1 for r in records if r["running"]),
                     findings=sort_findings(findings))


if __name__ == "__main__":
    main()
