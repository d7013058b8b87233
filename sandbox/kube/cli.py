"""`sandbox ... --platform kubernetes`: the sandbox platform on the sandbox cluster.

Both sandboxes can run at the same time: the cluster and the platform on it
use ports of their own (sandbox/k8s/config.yaml, cluster.PORTS).
"""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

from kubernetes import client

from . import cluster, platform, quarterly
from .platform import KubePlatform  # noqa: F401  (sandbox/bin/sandbox runs the faults with it)

say = cluster.say


def cmd_up(args: list[str], prepare: Callable[[], None], settle: Callable[[], None]) -> int:
    if args:
        raise SystemExit("sandbox: up --platform kubernetes takes no other option "
                         "(the cluster's queue format is set in sandbox/k8s/config.yaml)")
    started = time.monotonic()
    prepare()
    platform.up()
    settle()
    say(f"up in {time.monotonic() - started:.0f}s")
    return cmd_status([])


def cmd_status(_: list[str]) -> int:
    components = cluster.status()
    ok = all(components.values())
    print(f"{'COMPONENT':<24} STATE")
    for name, healthy in components.items():
        print(f"{name:<24} {'healthy' if healthy else 'DOWN'}")
    if components["kube-apiserver"]:
        api = platform.api_client()
        pods = client.CoreV1Api(api).list_namespaced_pod(platform.NAMESPACE).items
        print(f"\n{'POD':<36} {'STATE':<22} RESTARTS")
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            restarts = sum(s.restart_count for s in pod.status.container_statuses or [])
            print(f"{pod.metadata.name:<36} {platform.pod_state(pod):<22} {restarts}")
        ready, waiting = platform.workloads_ready(api)
        ok = ok and ready
        if waiting:
            print("not ready: " + "; ".join(waiting))
    print(f"api server {cluster.API_URL}; admin kubeconfig {cluster.ADMIN_KUBECONFIG}; "
          f"runbooks kubeconfig {cluster.RUNBOOKS_KUBECONFIG}")
    print("status: " + ("healthy" if ok else "UNHEALTHY"))
    return 0 if ok else 1


def cmd_down(_: list[str]) -> int:
    left = platform.down()
    if left:
        say(f"left behind after down: {', '.join(left)}")
        return 1
    say("down: no process, mount, pod cgroup, containerd container, port or state of the cluster left")
    return 0


def cmd_build(_: list[str], prepare: Callable[[], None]) -> int:
    cluster.binaries()
    prepare()
    return 0


def cmd_quarterly_job(args: list[str]) -> int:
    """The collection's quarterly-validation CronJob installed on the cluster and run once now: the EE
    image built (scripts/build-ee) and imported, the manifests applied, a Job made from the CronJob."""
    if args:
        raise SystemExit("sandbox: quarterly-job --platform kubernetes takes no other option")
    if not cluster.status()["kube-apiserver"]:
        raise SystemExit("sandbox: the cluster is down; start it with: sandbox/bin/sandbox up --platform kubernetes")
    started = time.monotonic()
    if subprocess.run([str(quarterly.REPO / "scripts" / "build-ee"), quarterly.EE_IMAGE], check=False).returncode:
        raise SystemExit("sandbox: building the execution environment failed (see above)")
    api = platform.api_client()
    quarterly.install(api)
    name, state, log = quarterly.run_once(api)
    print("\n".join(log.splitlines()[-20:]))
    review = quarterly.review_path()
    if review.exists():
        health = json.loads(review.read_text()).get("health", "?")
        say(f"review: {review} ({health}); the job's log: "
            f"kubectl -n {platform.NAMESPACE} logs job/{name}")
    say(f"quarterly-job {state} in {time.monotonic() - started:.0f}s")
    return 0 if state == "succeeded" else 1
