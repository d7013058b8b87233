"""`down` leaves nothing behind, and `up` from nothing - no image built yet -
finishes within 10 minutes. Runs last among the sandbox tests (file order),
and leaves the sandbox up again for whatever follows."""
from __future__ import annotations

import subprocess
import time

import pytest

from tests.harness.sandbox import images_held, listening, processes

pytestmark = pytest.mark.sandbox

UP_BUDGET_S = 600


def docker(*args: str) -> list[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=120)
    return result.stdout.split()


def container_processes() -> list[str]:
    """Processes living in a container's cgroup (dockerd and containerd do not)."""
    return processes(lambda cgroup, _cmdline: "/docker/" in cgroup or "docker-" in cgroup)


def test_down_leaves_nothing_and_up_from_nothing_is_within_budget(sandbox):
    with images_held():
        project = sandbox.env["COMPOSE_PROJECT_NAME"]
        label = f"label=com.docker.compose.project={project}"
        ports = sorted(int(value) for key, value in sandbox.env.items() if key.endswith("_PORT"))
        sandbox.cli("fault", "db-long-query", "600")  # a fault holder container must go too

        down = sandbox.cli("down", timeout=180)

        assert "no container, volume, network or port left" in down.stdout
        assert docker("ps", "-a", "--filter", label, "--format", "{{.Names}}") == []
        assert docker("ps", "-a", "--filter", "label=aiagents.sandbox.fault", "--format", "{{.Names}}") == []
        assert docker("volume", "ls", "-q", "--filter", label) == []
        assert [port for port in ports if listening(port)] == []
        assert container_processes() == []
        # The data volumes' filesystems are unmounted, their data gone with them.
        volumes = str(sandbox.root / "state" / "volumes")
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            assert [line.split()[4] for line in handle if line.split()[4].startswith(volumes)] == []
        # Only the Kubernetes sandbox's own state may remain (it may be running beside).
        assert [path.name for path in (sandbox.root / "state").glob("*")] in ([], ["kube"])

        # From nothing: neither the platform image nor its debootstrap base exists.
        images = [sandbox.env["SANDBOX_IMAGE"], sandbox.env["SANDBOX_BASE_IMAGE"]]
        subprocess.run(["docker", "rmi", "-f", *images], capture_output=True, check=False)
        subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True, check=False)
        assert docker("images", "-q", images[0]) == [] and docker("images", "-q", images[1]) == []

        started = time.monotonic()
        up = sandbox.cli("up", timeout=UP_BUDGET_S + 60)
        took = time.monotonic() - started

        assert "building base image" in up.stdout, up.stdout
        assert "status: healthy" in up.stdout, up.stdout
        assert took <= UP_BUDGET_S, f"up from nothing took {took:.0f}s (budget {UP_BUDGET_S}s)"
        # A newcomer's first diagnosis sees the platform, not a Prometheus that has not scraped yet.
        assert sandbox.prometheus_gaps() == []
        print(f"up from nothing: {took:.0f}s")
