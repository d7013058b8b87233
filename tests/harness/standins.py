"""The sandbox's SaaS stand-ins (ServiceDesk Plus, OpenAI, Jaeger query API),
run as plain processes on free loopback ports for module tests.

Same code the sandbox's containers run (sandbox/app); faults are switched at
run time through each stand-in's control port, exactly as `sandbox fault` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.harness.servers import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
KINDS = {"sdp": "SDP", "openai": "OPENAI", "jaeger": "JAEGER"}


class StandIn:
    def __init__(self, kind: str, secrets_dir: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.control_port = free_port()
        prefix = KINDS[kind]
        env = {**os.environ, "PYTHONPATH": str(REPO / "sandbox/app"), "SANDBOX_BIND": "127.0.0.1",
               f"{prefix}_PORT": str(self.port), f"{prefix}_CONTROL_PORT": str(self.control_port),
               "SECRETS_DIR": str(secrets_dir), "OPENAI_BASE_LATENCY_MS": "0"}
        self.proc = subprocess.Popen([sys.executable, "-m", f"aiagents_sandbox.standins.{kind}"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.control_port, proc=self.proc)
        wait_for_port(self.port, proc=self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def control(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read() or b"{}")

    def fault(self, **faults) -> dict:
        return self.control("POST", "/faults", faults)

    def heal(self) -> dict:
        return self.control("DELETE", "/faults")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@contextmanager
def running(kind: str, secrets_dir: Path):
    """A stand-in for the length of the block (a module-scoped fixture's body)."""
    standin = StandIn(kind, secrets_dir)
    try:
        yield standin
    finally:
        standin.stop()


def secrets_dir(tmp_path_factory, values: dict[str, dict[str, str]]) -> Path:
    """A fresh secrets directory laid out like the platform's: {secret: {key: value}}."""
    path = tmp_path_factory.mktemp("secrets")
    for secret, keys in values.items():
        for key, value in keys.items():
            write_secret(path, secret, key, value)
    return path


def write_secret(secrets_dir: Path, secret: str, key: str, value: str) -> None:
    path = secrets_dir / secret
    path.mkdir(parents=True, exist_ok=True)
    (path / key).write_text(value)
    (path / key).chmod(0o600)
