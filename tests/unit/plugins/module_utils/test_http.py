"""The one HTTP client: input checked before any I/O, a deadline on the whole request, messages without secrets."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http
from tests.harness.chaos import http_server
from tests.harness.servers import free_port
from tests.harness.slow import silent_server, trickle_server

MARGIN = 0.6  # scheduling slack on a busy 2-core machine


def echo_server():
    """Answers every request with what it received: method, target, headers and the body's bytes as hex."""
    return http_server(lambda request: (200, "application/json", json.dumps({
        "method": request.command, "target": request.path, "headers": dict(request.headers.items()),
        "body": request.body.hex()}).encode()))


@contextmanager
def body_trickle_server(interval: float = 0.2):
    """Sends status line and headers at once, then the body one byte per ``interval``."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        client, _address = listener.accept()
        with client:
            client.settimeout(5)
            received = b""
            while b"\r\n\r\n" not in received:
                received += client.recv(4096)
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _byte in range(1000):
                if stop.is_set():
                    return
                try:
                    client.sendall(b"x")
                except OSError:
                    return
                time.sleep(interval)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def timed_failure(prepared, timeout=2.0, **kwargs):
    started = time.monotonic()
    with pytest.raises(_http.HttpError) as caught:
        _http.send(prepared, timeout, **kwargs)
    return time.monotonic() - started, caught.value


# --- the deadline --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_trickling_server_is_cut_at_the_deadline(scheme):
    """One byte every 0.5 s: each read succeeds, so only a deadline on the whole request ends it (status line,
    or the TLS handshake)."""
    with trickle_server(read_request=scheme == "http") as server:
        prepared = _http.prepare(f"{scheme}://127.0.0.1:{server.port}/x", validate_certs=False)
        elapsed, error = timed_failure(prepared)
    assert error.kind == "timeout" and error.detail == "no complete answer within 2 s"
    assert 2.0 <= elapsed <= 2.0 + MARGIN, elapsed
    assert error.timings["connect"] is not None and 2.0 <= error.timings["total"] <= 2.0 + MARGIN


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_silent_server_is_cut_at_the_deadline(scheme):
    with silent_server() as server:
        elapsed, error = timed_failure(_http.prepare(f"{scheme}://127.0.0.1:{server.port}/x"))
    assert error.kind == "timeout"
    assert 2.0 <= elapsed <= 2.0 + MARGIN, elapsed


def test_a_body_trickling_after_prompt_headers_is_cut_at_the_deadline():
    with body_trickle_server() as port:
        elapsed, error = timed_failure(_http.prepare(f"http://127.0.0.1:{port}/"), timeout=1.5)
    assert error.kind == "timeout" and error.timings["first_byte"] is not None
    assert 1.5 <= elapsed <= 1.5 + MARGIN, elapsed


def test_a_shared_deadline_earlier_than_the_timeout_wins():
    with silent_server() as server:
        prepared = _http.prepare(f"http://127.0.0.1:{server.port}/x")
        elapsed, error = timed_failure(prepared, timeout=30, deadline=time.monotonic() + 1.0)
    assert error.kind == "timeout" and 1.0 <= elapsed <= 1.0 + MARGIN, elapsed


def test_no_thread_is_left_behind():
    before = threading.active_count()
    with silent_server() as server:
        timed_failure(_http.prepare(f"http://127.0.0.1:{server.port}/x"), timeout=0.5)
        with echo_server() as url:
            for _round in range(5):
                _http.request(url + "/", timeout=5)
    time.sleep(0.3)
    assert threading.active_count() <= before + 1  # the servers' own threads end on their own clock


# --- what is sent ----------------------------------------------------------------------------------------------------

def test_userinfo_becomes_basic_auth_and_beyond_ascii_is_sent_encoded():
    with echo_server() as url:
        address = url.replace("http://", "http://ops:p%40ss@") + "/api/v1/caf\u00e9?q=\u00e9t\u00e9"
        response = _http.request(address, method="POST", body="na\u00efve \u2603", timeout=5,
                                 headers={"X-Note": "caf\u00e9", "accept": "text/plain"})
    echoed = json.loads(response.body)
    assert response.status == 200 and echoed["method"] == "POST"
    assert echoed["target"] == "/api/v1/caf%C3%A9?q=%C3%A9t%C3%A9"
    assert echoed["headers"]["Authorization"] == "Basic " + base64.b64encode(b"ops:p@ss").decode()
    assert echoed["headers"]["Host"] == url.split("://")[1]
    assert echoed["headers"]["accept"] == "text/plain" and "Accept" not in echoed["headers"]  # ours replaced
    assert bytes.fromhex(echoed["body"]) == "na\u00efve \u2603".encode()
    assert response.timings["dns"] <= response.timings["connect"] <= response.timings["first_byte"] \
        <= response.timings["total"] and response.timings["tls"] is None


def test_an_answer_beyond_the_limit_is_cut_and_said_so():
    with echo_server() as url:
        response = _http.request(url + "/", timeout=5, read_limit=10)
    assert response.truncated and len(response.body) == 10


def test_join_url_keeps_the_base_path_and_query():
    assert _http.join_url("http://h:9090/prom/?token=t", "/api/v1/query", {"query": "up"}) == \
        "http://h:9090/prom/api/v1/query?token=t&query=up"
    assert _http.join_url("http://h", "/api/traces", {}) == "http://h/api/traces"


# --- input errors: one sentence naming the option, before any I/O ---------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"url": "ftp://h/x?api_key=SECRETKEY1"}, "url must be http(s)://host[:port]/path, got 'ftp://h/x?api_key=***'"),
    ({"url": "http:///x"}, "url must be http(s)://host[:port]/path, got 'http:///x'"),
    ({"url": "http://[::1/x"}, "url is malformed, got '<malformed url>'"),
    ({"url": "http://u:SECRETPW1@h:70000/"}, "url port must be from 1 to 65535, got '70000'"),
    ({"url": "http://h:0/"}, "url port must be from 1 to 65535, got '0'"),
    ({"url": "http://h:8o/"}, "url port must be from 1 to 65535, got '8o'"),
    ({"url": "http://h/a\r\nHost: evil"}, "url must not contain spaces or control characters"),
    ({"url": None}, "url must be text"),
    ({"url": "http://h/", "method": "GET\r\nX: 1"}, "method must be an HTTP method name such as GET or POST, "
                                                    "got 'GET\\r\\nX: 1'"),
    ({"url": "http://h/", "method": ""}, "method must be an HTTP method name such as GET or POST, got ''"),
    ({"url": "http://h/", "headers": {"X-A\nB": "1"}}, "headers name 'X-A\\nB' is not an HTTP header name"),
    ({"url": "http://h/", "headers": {"X-Api-Key": "ab\x01cdef12"}},
     "headers value of 'X-Api-Key' contains a control character"),
    ({"url": "http://h/", "headers": {"X-Api-Key": "line\r\nX-Injected: 1"}},
     "headers value of 'X-Api-Key' contains a control character"),
    ({"url": "http://h/", "headers": {"X-Note": "\u2603"}}, "headers value of 'X-Note' is not Latin-1 text"),
    ({"url": "http://h/", "headers": {"X-Note": {"a": 1}}}, "headers value of 'X-Note' must be text"),
    ({"url": "http://h/", "body": {"a": 1}}, "body must be text"),
    ({"url": "https://h/", "ca_path": "/nonexistent/ca.pem"},
     "ca_path '/nonexistent/ca.pem' cannot be read: No such file or directory"),
])
def test_bad_input_is_refused_naming_the_option(kwargs, message):
    with pytest.raises(_http.HttpInputError) as caught:
        _http.prepare(**kwargs)
    assert str(caught.value) == message
    assert "SECRET" not in str(caught.value)


def test_a_ca_file_that_is_not_pem_is_named(tmp_path):
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(_http.HttpInputError, match=r"^ca_path '.*ca.pem' holds no PEM certificate$"):
        _http.prepare("https://h/", ca_path=str(bogus))


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), "soon"])
def test_a_timeout_that_bounds_nothing_is_refused(timeout):
    prepared = _http.prepare("http://127.0.0.1:9/")
    with pytest.raises(_http.HttpInputError, match="^timeout must be"):
        _http.send(prepared, timeout)


def test_check_timeout_says_the_documented_maximum():
    assert _http.check_timeout("timeout", 301) == "timeout must be at most 300, got 301"
    assert _http.check_timeout("timeout", 300) is None


def test_input_errors_come_before_any_connection():
    with silent_server() as server:
        with pytest.raises(_http.HttpInputError):
            _http.request(f"http://127.0.0.1:{server.port}/", headers={"X-Note": "\u2603"}, timeout=2)
        time.sleep(0.3)
        assert server.connections == 0


ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=[]), max_size=12)  # surrogates and controls too


@settings(max_examples=400, deadline=None)
@given(url=st.from_regex(r"https?://[a-z0-9:@%\[\]./?=&#-]{0,30}", fullmatch=True).flatmap(
       lambda head: ANY_TEXT.map(lambda tail: head + tail)) | ANY_TEXT,
       method=ANY_TEXT, headers=st.dictionaries(ANY_TEXT, ANY_TEXT | st.integers() | st.none(), max_size=3),
       body=st.none() | ANY_TEXT | st.binary(max_size=8))
def test_prepare_never_raises_anything_but_an_input_error(url, method, headers, body):
    try:
        _http.prepare(url, method, headers, body)
    except _http.HttpInputError as exc:
        assert exc.option in ("url", "method", "headers", "body")


# --- failures on the way: what happened, never a secret --------------------------------------------------------------

def test_a_refused_connection_names_the_host_and_port_only():
    port = free_port()
    with pytest.raises(_http.HttpError) as caught:
        _http.request(f"http://ops:SECRETPW2@127.0.0.1:{port}/x?token=SECRETTOKEN2", timeout=2)
    assert caught.value.kind == "refused"
    assert caught.value.detail == f"connection to 127.0.0.1:{port} refused"


def test_an_unknown_host_is_a_dns_failure():
    with pytest.raises(_http.HttpError) as caught:
        _http.request("http://no-such-host.invalid/", timeout=5)
    assert caught.value.kind == "dns" and caught.value.detail.startswith("DNS lookup of no-such-host.invalid failed")


def test_a_server_that_does_not_speak_http_is_a_protocol_failure():
    payload = b"SSH-2.0-OpenSSH_9.2 SECRETECHO\r\n\r\n"
    with trickle_server(payload=payload, interval=0.0) as server:
        with pytest.raises(_http.HttpError) as caught:
            _http.request(f"http://127.0.0.1:{server.port}/", timeout=2)
    assert caught.value.kind == "protocol" and "SECRETECHO" not in caught.value.detail


def test_an_untrusted_certificate_is_said_so(tmp_path):
    """A TLS server with a self-signed certificate: not 'unreachable', but not trusted."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        client, _address = listener.accept()
        try:
            context.wrap_socket(client, server_side=True).close()
        except (ssl.SSLError, OSError):
            client.close()

    threading.Thread(target=serve, daemon=True).start()
    with pytest.raises(_http.HttpError) as caught:
        _http.request(f"https://127.0.0.1:{listener.getsockname()[1]}/", timeout=5)
    listener.close()
    assert caught.value.kind == "tls"
    assert caught.value.detail.startswith("TLS certificate of 127.0.0.1 is not trusted")


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"url": "http://h/\udc80"}, "url"), ({"url": "http://h/", "body": "\udc80"}, "body"),
    ({"url": "http://h/", "headers": {"X-A": "\udc80"}}, "headers"), ({"url": "http://\udc80/"}, "url"),
])
def test_text_that_is_not_valid_unicode_is_an_input_error(kwargs, option):
    """A lone surrogate (JSON can carry one) cannot be encoded: refused, not a UnicodeEncodeError."""
    with pytest.raises(_http.HttpInputError) as caught:
        _http.prepare(**kwargs)
    assert caught.value.option == option
