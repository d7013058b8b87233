"""webhook_send: what it puts on the wire, how it reports answers, and that the secret stays secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

MODULE = "aiagents.runbooks.webhook_send"
SECRET = "whsec-5f0c2b7e9a1d4c3b8e6f0a2d4c6b8e0f"


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int):
        self.status = status
        self.received: list = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.headers, body))  # case-insensitive, as HTTP is
        answer = json.dumps({"status": "queued"} if self.server.status == 202 else {"error": "invalid signature"})
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(request):
    server = Receiver(getattr(request, "param", 202))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/webhook/servicedesk?tenant_id=new-msp"


def test_signs_exactly_the_bytes_it_sends(receiver, run_module):
    run = run_module(MODULE, {"url": url(receiver), "body": {"ticket": {"id": "T-1"}}, "secret": SECRET},
                     verbosity=3)
    result = run.result
    assert run.rc == 0 and result["changed"] is True and result["status"] == 202
    assert result["json"] == {"status": "queued"}
    headers, body = receiver.received[0]
    assert json.loads(body) == {"ticket": {"id": "T-1"}}
    assert headers["X-SDP-Signature"] == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert SECRET not in run.stdout and headers["X-SDP-Signature"] not in run.stdout


@pytest.mark.parametrize("receiver", [401], indirect=True)
def test_a_refused_webhook_fails_with_the_platforms_reason(receiver, run_module):
    run = run_module(MODULE, {"url": url(receiver), "body": {"ticket": {"id": "T-1"}}, "secret": SECRET})
    assert run.rc != 0
    assert run.result["status"] == 401 and "answered 401: invalid signature" in run.result["msg"]
    assert SECRET not in run.stdout


def test_nothing_is_sent_in_check_mode(receiver, run_module):
    run = run_module(MODULE, {"url": url(receiver), "body": {"ticket": {"id": "T-1"}}, "secret": SECRET}, check=True)
    assert run.rc == 0 and run.result["changed"] is True and receiver.received == []


def test_an_unreachable_platform_is_a_clear_failure(run_module):
    from tests.harness.servers import free_port
    run = run_module(MODULE, {"url": f"http://127.0.0.1:{free_port()}/webhook/servicedesk",
                              "body": {"ticket": {"id": "T-1"}}, "secret": SECRET, "timeout": 5})
    assert run.rc != 0 and "could not be delivered" in run.result["msg"]
    assert "Traceback" not in run.stdout and SECRET not in run.stdout
