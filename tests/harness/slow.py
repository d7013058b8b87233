"""Misbehaving servers on loopback, to prove that a timeout bounds a whole operation.

- ``silent_server``: accepts connections and never says a word (a hung peer,
  or a TLS port that never answers the handshake).
- ``hung_postgres``: lets anyone log in to "PostgreSQL", then never answers
  a query, or answers it one byte at a time.
- ``trickle_server``: answers every connection with a payload, one byte every
  ``interval`` seconds, so each read succeeds just before a per-read timeout
  would fire; only a deadline on the whole operation stops it.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MARGIN = 4.0  # a module's own start (Python, AnsiballZ, imports) on a loaded machine
HANG = 30.0  # Ansible's start and report besides: only so that a hang fails the test instead of blocking it

HTTP_OK_JSON = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n"
                + b'{"status": "success", "data": {"resultType": "vector", "result": []}}'[:64])


class TcpServer:
    """Runs ``handler(client, stop)`` in a thread for each connection; counts connections."""

    def __init__(self, handler) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._handler = handler
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _address = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            self._handler(client, self._stop)
        except OSError:
            pass  # the client gave up: that is the point

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for client in self._clients:
            try:
                client.close()
            except OSError:
                pass
        self.sock.close()


def _drip(client: socket.socket, stop: threading.Event, payload: bytes, interval: float) -> None:
    """Send ``payload`` one byte per ``interval`` seconds, then hold the connection open until stopped."""
    for index in range(len(payload)):
        if stop.is_set():
            return
        client.sendall(payload[index:index + 1])
        time.sleep(interval)
    stop.wait()


@contextmanager
def silent_server() -> Iterator[TcpServer]:
    """A TCP server on 127.0.0.1 that accepts and then never sends anything."""

    def hold(client: socket.socket, stop: threading.Event) -> None:
        client.settimeout(0.2)
        while not stop.is_set():
            try:
                if client.recv(4096) == b"":
                    return
            except socket.timeout:
                continue

    server = TcpServer(hold)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def trickle_server(payload: bytes = HTTP_OK_JSON, interval: float = 0.5,
                   read_request: bool = True) -> Iterator[TcpServer]:
    """A TCP server that sends ``payload`` one byte per ``interval`` seconds to each client.

    With ``read_request`` it first reads what the client sends (up to a blank
    line for HTTP), as a real server would, so the client is waiting for the answer.
    """

    def trickle(client: socket.socket, stop: threading.Event) -> None:
        if read_request:
            client.settimeout(5)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = client.recv(4096)
                if not chunk:
                    return
                received += chunk
        _drip(client, stop, payload, interval)

    server = TcpServer(trickle)
    try:
        yield server
    finally:
        server.close()


def within(limit: float, run_module, *args, **kwargs):
    """Run a module, failing if it has not finished after ``limit`` + HANG seconds."""
    box = {}
    thread = threading.Thread(target=lambda: box.update(run=run_module(*args, **kwargs)), daemon=True)
    thread.start()
    thread.join(limit + HANG)
    assert not thread.is_alive(), f"the module still runs after {limit + HANG} s"
    return box["run"]


def task_seconds(run, module: str) -> float:
    """How long the module's task took, as profile_tasks reports it (Ansible's own start left out)."""
    match = re.search(rf"^{re.escape(module)} -+ ([0-9.]+)s\s*$", run.stdout, re.MULTILINE)
    assert match, run.stdout
    return float(match.group(1))


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


STARTUP_REPLY = (_message(b"R", struct.pack("!I", 0))  # AuthenticationOk
                 + b"".join(_message(b"S", name + b"\0" + value + b"\0") for name, value in (
                     (b"server_version", b"16.0"), (b"server_encoding", b"UTF8"), (b"client_encoding", b"UTF8"),
                     (b"DateStyle", b"ISO, MDY"), (b"integer_datetimes", b"on"),
                     (b"standard_conforming_strings", b"on"), (b"TimeZone", b"UTC")))
                 + _message(b"K", struct.pack("!II", 4242, 1)) + _message(b"Z", b"I"))  # ReadyForQuery
# A one-column row of 10 kB: sent one byte at a time, it never ends within a test.
TRICKLED_ANSWER = (_message(b"T", struct.pack("!H", 1) + b"x\0" + struct.pack("!IHIhih", 0, 0, 25, -1, -1, 0))
                   + _message(b"D", struct.pack("!Hi", 1, 10000) + b"x" * 10000))


@contextmanager
def hung_postgres(after_login: str = "silent", interval: float = 0.3):
    """A PostgreSQL that lets anyone log in, then never answers a query (``silent``) or answers one byte at a
    time (``trickle``), so that each read succeeds before a per-read timeout would fire."""

    def serve(client, stop):
        client.settimeout(0.2)

        def read(size: int) -> bytes:
            data = b""
            while len(data) < size:
                if stop.is_set():
                    raise OSError("stopped")
                try:
                    chunk = client.recv(size - len(data))
                except TimeoutError:
                    continue
                if not chunk:
                    raise OSError("client gone")
                data += chunk
            return data

        while True:  # refuse TLS and GSSAPI encryption; then the startup packet
            length, code = struct.unpack("!II", read(8))
            read(length - 8)
            if code not in (80877103, 80877104):
                break
            client.sendall(b"N")
        client.sendall(STARTUP_REPLY)
        read(5)  # the query's header: the client now waits for the answer
        _drip(client, stop, TRICKLED_ANSWER if after_login == "trickle" else b"", interval)

    server = TcpServer(serve)
    try:
        yield server
    finally:
        server.close()


def timed(run_module, module: str, args: dict):
    """(wall seconds, run) of one run_module call."""
    started = time.monotonic()
    run = run_module(module, args)
    return time.monotonic() - started, run
