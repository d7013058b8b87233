"""webhook_send: what it puts on the wire, how it reports answers, and that the secret stays secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import forms
from tests.harness.servers import free_port
from tests.harness.slow import silent_server, trickle_server

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
    port = free_port()
    run = run_module(MODULE, {"url": f"http://127.0.0.1:{port}/webhook/servicedesk",
                              "body": {"ticket": {"id": "T-1"}}, "secret": SECRET, "timeout": 5})
    assert run.rc != 0
    assert run.result["msg"] == (f"deliver webhook to http://127.0.0.1:{port}/webhook/servicedesk: "
                                 f"connection to 127.0.0.1:{port} refused")
    assert "Traceback" not in run.stdout and SECRET not in run.stdout


# --- Issue 14: bounded time, no secret anywhere, no crash on any input -------------------------------------------

def send(run_module, url, args=None, check=False, verbosity=0):
    started = time.monotonic()
    run = run_module(MODULE, {"url": url, "body": {"ticket": {"id": "T-1"}}, "secret": SECRET, **(args or {})},
                     check=check, verbosity=verbosity)
    return time.monotonic() - started, run


@pytest.mark.parametrize("server", [trickle_server, silent_server])
def test_a_trickling_or_silent_platform_costs_the_timeout_and_no_more(run_module, server):
    baseline = send(run_module, f"http://127.0.0.1:{free_port()}/webhook", {"timeout": 2})[0]
    with server() as slow:
        wall, run = send(run_module, f"http://127.0.0.1:{slow.port}/webhook", {"timeout": 2})
        assert slow.connections == 1
    baseline = max(baseline, send(run_module, f"http://127.0.0.1:{free_port()}/webhook", {"timeout": 2})[0])
    assert run.rc != 0
    assert run.result["msg"] == f"deliver webhook to http://127.0.0.1:{slow.port}/webhook: no complete answer within 2 s"
    assert run.result["elapsed_s"] <= 2.6, run.result
    assert wall - baseline <= 2.0 + 1.5, (wall, baseline)


@pytest.mark.parametrize(("args", "message"), [
    ({"timeout": 0}, "send webhook: timeout must be above 0, got 0.0"),
    ({"timeout": "inf"}, "send webhook: timeout must be a finite number, got inf"),
    ({"timeout": 301}, "send webhook: timeout must be at most 300, got 301.0"),
    ({"expected_status": [202, 99]}, "send webhook: expected_status must be at least 100, got 99"),
    ({"signature_header": "X-Sig\r\nX-Injected: 1"},
     "send webhook: signature_header 'X-Sig\\r\\nX-Injected: 1' is not an HTTP header name"),
    ({"url": "http://127.0.0.1:65536/webhook"}, "send webhook: url port must be from 1 to 65535, got '65536'"),
    ({"url": "http://[fe80::1/webhook"}, "send webhook: url is malformed, got '<malformed url>'"),
    # Without "//", what precedes "@" may be a user:password (ops:s3cret@host): it is masked.
    ({"url": "mailto:ops@example.com"}, "send webhook: url must be http(s)://host[:port]/path, got '********@example.com'"),
    ({"secret": "ab"}, "send webhook: secret must be at least 4 characters long"),
])
def test_bad_options_are_refused_naming_the_option(run_module, args, message):
    for check in (False, True):  # refused before anything is sent, in check mode too
        run = send(run_module, "http://127.0.0.1:9/webhook", args, check=check)[1]
        assert run.rc != 0 and run.result["msg"] == message
        assert "Traceback" not in run.stdout


URL_TOKEN = "URLTOKEN-6b1e9d3f2a"


@pytest.mark.parametrize("receiver", [202, 401], indirect=True)
def test_no_form_of_the_secret_or_a_url_token_in_any_output(receiver, run_module):
    port = receiver.server_address[1]
    target = f"http://127.0.0.1:{port}/webhook/servicedesk?tenant_id=new-msp&token={URL_TOKEN}"
    runs = [send(run_module, target, verbosity=3)[1], send(run_module, target, verbosity=3, check=True)[1],
            send(run_module, f"http://127.0.0.1:{free_port()}/webhook?token={URL_TOKEN}", verbosity=3)[1]]
    assert [run.rc == 0 for run in runs] == [receiver.status == 202, True, False]
    assert receiver.received and f"token={URL_TOKEN}" not in json.dumps(runs[0].result)
    signature = receiver.received[0][0]["X-SDP-Signature"]
    every_form = {form for secret in (SECRET, URL_TOKEN) for form in forms(secret)} | {signature}
    for run in runs:
        text = run.stdout + json.dumps(run.results)
        assert [form for form in every_form if form in text] == []
    assert f"127.0.0.1:{port}/webhook/servicedesk?tenant_id=***&token=***" in runs[1].result["msg"]
