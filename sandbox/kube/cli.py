"""`sandbox ... --platform kubernetes`: the sandbox platform on the sandbox cluster.

Both sandboxes can run at the same time: the cluster and the platform on it
use ports of their own (sandbox/k8s/config.yaml, cluster.PORTS).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from kubernetes import client

from . import cluster, platform
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

