"""docker_service_info against a Docker Engine API of our own: bounded in time, no secret read out, bad input refused.

The real daemon is exercised by tests/sandbox; here a fake daemon on loopback answers exactly what the
Docker SDK asks, and misbehaving peers (tests/harness/slow.py) prove that ``timeout`` bounds the whole run.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.harness.slow import MARGIN, silent_server, task_seconds, trickle_server, within

MODULE = "aiagents.runbooks.docker_service_info"
DB_PASSWORD = "Db-Url-Secret-77"
REDIS_PASSWORD = "Redis-Env-Secret-88"

CONTAINER = {
    "Id": "c0ffee" * 10 + "abcd",
    "Name": "/shop-worker-1",
    "RestartCount": 1,
    "State": {"Status": "running", "ExitCode": 0, "OOMKilled": False, "StartedAt": "2026-11-27T18:00:00Z",
              "FinishedAt": "0001-01-01T00:00:00Z"},
    "Config": {"Tty": True, "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "worker"},
               "Env": ["DATABASE_POOL_SIZE=5", f"DATABASE_URL=postgresql://app:{DB_PASSWORD}@postgres:5432/app",
                       f"REDIS_PASSWORD={REDIS_PASSWORD}", "PATH=/usr/bin"]},
    "HostConfig": {"Memory": 536870912},
}
LOGS = ("celery@shop-worker-1 ready\n"
        f"connecting to postgresql://app:{DB_PASSWORD}@postgres:5432/app\n"
        "job succeeded tenant_id=acme ticket_id=T-1\n")


@contextmanager
def fake_docker():
    """A Docker Engine API answering version, container list, inspect and logs for one worker container."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            url = urlsplit(self.path)
            seen.append(url.path)
            path = url.path.split("/", 2)[-1] if url.path.startswith("/v1.") else url.path.lstrip("/")
            if path == "version":
                self._send({"ApiVersion": "1.43", "Version": "24.0.0", "MinAPIVersion": "1.12"})
            elif path == "containers/json":
                labels = json.loads(parse_qs(url.query)["filters"][0])["label"]
                wanted = all(label in ("com.docker.compose.project=shop", "com.docker.compose.service=worker")
                             for label in labels)
                self._send([{"Id": CONTAINER["Id"], "Names": [CONTAINER["Name"]]}] if wanted else [])
            elif path == f"containers/{CONTAINER['Id']}/json":
                self._send(CONTAINER)
            elif path == f"containers/{CONTAINER['Id']}/logs":
                self._send(LOGS.encode(), "application/vnd.docker.raw-stream")
            else:
                self._send({"message": f"no such path {url.path}"}, status=404)

        def _send(self, body, content_type: str = "application/json", status: int = 200) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_describes_the_service_and_never_reads_out_a_secret(run_module):
    with fake_docker() as (port, seen):
        run = run_module(MODULE, {"project": "shop", "service": "worker", "docker_host": f"tcp://127.0.0.1:{port}",
                                  "env_keys": ["DATABASE_POOL_SIZE", "DATABASE_URL", "REDIS_PASSWORD"],
                                  "findings": True, "timeout": 10}, verbosity=3)
    assert run.rc == 0, run.stdout
    [worker] = run.result["containers"]
    assert (worker["name"], worker["running"], worker["restart_count"]) == ("shop-worker-1", True, 1)
    assert worker["env"] == {"DATABASE_POOL_SIZE": "5",
                             "DATABASE_URL": "postgresql://postgres:5432/app",
                             "REDIS_PASSWORD": "********"}
    assert "connecting to postgresql://postgres:5432/app" in worker["log_tail"]
    assert worker["signals"]["jobs_succeeded"] == 1
    assert DB_PASSWORD not in run.stdout and REDIS_PASSWORD not in run.stdout
    assert any(path.endswith("/logs") for path in seen)


def test_a_silent_daemon_is_given_up_within_timeout(run_module):
    with silent_server() as server:
        run = within(2 + MARGIN, run_module, MODULE, {
            "project": "shop", "service": "worker", "docker_host": f"tcp://127.0.0.1:{server.port}", "timeout": 2})
        assert server.connections >= 1  # it did ask
    assert run.rc != 0
    assert run.result["msg"] == ("describe service 'worker' of compose project 'shop': the Docker daemon at "
                                 f"tcp://127.0.0.1:{server.port} did not answer within timeout (2 s)")
    assert task_seconds(run, MODULE) < 2 + MARGIN


def test_a_trickling_daemon_is_given_up_within_timeout_not_per_read(run_module):
    """Each byte comes before a per-read timeout would fire: only a deadline on the whole run stops it."""
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
              + json.dumps({"ApiVersion": "1.43", "Version": "24.0.0", "Padding": "x" * 200}).encode()[:200])
    with trickle_server(answer, interval=0.5) as server:
        run = within(3 + MARGIN, run_module, MODULE, {
            "project": "shop", "service": "worker", "docker_host": f"tcp://127.0.0.1:{server.port}", "timeout": 3})
    assert run.rc != 0
    assert run.result["msg"].endswith("did not answer within timeout (3 s)"), run.result["msg"]
    assert task_seconds(run, MODULE) < 3 + MARGIN


def test_the_environment_docker_host_is_bounded_too(run_module):
    with silent_server() as server:
        run = within(2 + MARGIN, run_module, MODULE, {"project": "shop", "service": "worker", "timeout": 2},
                     env={"DOCKER_HOST": f"tcp://127.0.0.1:{server.port}"})
    assert run.rc != 0 and run.result["msg"].endswith("did not answer within timeout (2 s)"), run.result["msg"]
    assert task_seconds(run, MODULE) < 2 + MARGIN


@pytest.mark.parametrize("args, message", [
    ({"timeout": 0}, "timeout must be above 0, got 0"),
    ({"timeout": -1}, "timeout must be above 0, got -1"),
    ({"timeout": "inf"}, "timeout must be a finite number"),
    ({"timeout": 601}, "timeout must be at most 600"),
    ({"log_lines": -1}, "log_lines must be at least 0, got -1"),
    ({"log_lines": 100001}, "log_lines must be at most 100000"),
    ({"log_since": -5}, "log_since must be at least 0, got -5"),
    ({"crash_loop_restarts": -1}, "crash_loop_restarts must be at least 0, got -1"),
])
def test_out_of_range_input_is_refused_before_asking_the_daemon(run_module, args, message):
    with silent_server() as server:
        run = within(0, run_module, MODULE, {"project": "shop", "service": "worker",
                                             "docker_host": f"tcp://127.0.0.1:{server.port}", **args})
        assert run.rc != 0, run.stdout
        assert run.result["msg"].startswith("describe service 'worker' of compose project 'shop': ")
        assert message in run.result["msg"] and "Traceback" not in run.result["msg"]
        assert server.connections == 0
