"""Fixtures for the tests against the running sandbox platform.

The session fixture `sandbox` brings the sandbox up through its CLI when it is
not healthy yet (first build included) and fails clearly when that does not
work. It is left running afterwards when it was already up, or when
SANDBOX_KEEP=1; otherwise it is taken down at the end of the session.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness.sandbox import bring_up, heal_if_faulted, read_env, take_down
from tests.harness.sandbox import Sandbox as PlatformSandbox


class Sandbox(PlatformSandbox):
    """The sandbox on Docker: its containers too."""

    def workers(self) -> list[dict[str, Any]]:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=aiagents",
                              "--filter", "label=com.docker.compose.service=worker"],
                             capture_output=True, text=True, check=True).stdout.split()
        if not ids:
            return []
        return json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                         check=True).stdout)

    def every_worker(self, condition) -> bool:
        """condition(container) holds for every worker container - and there is at least one (an `all` over
        no workers would hold, whatever it checks)."""
        workers = self.workers()
        assert workers, "no worker container exists"
        return all(condition(worker) for worker in workers)

    def logs(self, container: str) -> str:
        result = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=False)
        return result.stdout + result.stderr


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(read_env())
    brought_up = bring_up(box, "Docker with the platform image buildable", 900)
    yield box
    if brought_up:
        take_down(box)


@pytest.fixture()
def healed(sandbox: Sandbox) -> Iterator[Sandbox]:
    """A test that injects faults ends with none active: when it did not heal
    what it broke (it failed midway), heal everything."""
    yield sandbox
    heal_if_faulted(sandbox)
