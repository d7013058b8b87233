"""`down --platform kubernetes` leaves nothing of the cluster behind, and `up`
with the components already built has every pod Ready within 3 minutes. Runs
last among the Kubernetes tests (file order) and leaves the cluster up."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harness.sandbox import images_held, listening, processes

if TYPE_CHECKING:
    from conftest import KubeSandbox

pytestmark = pytest.mark.kubernetes

UP_BUDGET_S = 180
CLUSTER_PORTS = (12379, 12380, 16443, 10250, 10248, 10257, 10259)
RUN_DIR = "/run/aiagents-sandbox-kube"


def cluster_processes(state: Path) -> list[str]:
    """Processes of the cluster: a component, a shim, or anything in a pod cgroup."""
    return processes(lambda cgroup, cmdline: "/kubepods" in cgroup or str(state) in cmdline
                     or RUN_DIR in cmdline or "aiagents-runbooks/kube" in cmdline)


def mounts_under(*paths: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    return [point for point in points if point.startswith(paths)]


def test_down_leaves_nothing_and_up_is_within_budget(kube: KubeSandbox) -> None:
    with images_held():
        ports = [*CLUSTER_PORTS, *(int(value) for key, value in kube.env.items() if key.endswith("_PORT"))]
        kube.cli("fault", "db-long-query", "600")  # a fault holder pod must go too

        down = kube.cli("down", timeout=300)

        left = "no process, mount, pod cgroup, containerd container, port or state of the cluster left"
        assert left in down.stdout, down.stdout
        assert cluster_processes(kube.state) == []
        assert mounts_under(str(kube.state), RUN_DIR) == []
        assert not any(Path("/sys/fs/cgroup").glob("*/kubepods"))
        assert [port for port in ports if listening(port)] == []
        assert not kube.state.exists() and not Path(RUN_DIR).exists()

        started = time.monotonic()
        up = kube.cli("up", timeout=UP_BUDGET_S + 120)
        took = time.monotonic() - started

        assert "status: healthy" in up.stdout, up.stdout
        assert "importing" in up.stdout  # containerd's store went with the state
        assert took <= UP_BUDGET_S, f"up took {took:.0f}s (budget {UP_BUDGET_S}s)"
        # A newcomer's first diagnosis sees the platform, not a Prometheus that has not scraped yet.
        assert kube.prometheus_gaps() == []
        print(f"up with the components built: {took:.0f}s")
