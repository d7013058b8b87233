"""Misbehaving servers on loopback, to prove that a timeout bounds a whole operation.

- ``silent_server``: accepts connections and never says a word (a hung peer,
  or a TLS port that never answers the handshake).
- ``trickle_server``: answers every connection with a payload, one byte every
  ``interval`` seconds, so each read succeeds just before a per-read timeout
  would fire; only a deadline on the whole operation stops it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

HTTP_OK_JSON = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n"
                + b'{"status": "success", "data": {"resultType": "vector", "result": []}}'[:64])


class _Server:
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


@contextmanager
def silent_server() -> Iterator[_Server]:
    """A TCP server on 127.0.0.1 that accepts and then never sends anything."""

    def hold(client: socket.socket, stop: threading.Event) -> None:
        client.settimeout(0.2)
        while not stop.is_set():
            try:
                if client.recv(4096) == b"":
                    return
            except socket.timeout:
                continue

    server = _Server(hold)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def trickle_server(payload: bytes = HTTP_OK_JSON, interval: float = 0.5,
                   read_request: bool = True) -> Iterator[_Server]:
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
        for index in range(len(payload)):
            if stop.is_set():
                return
            client.sendall(payload[index:index + 1])
            time.sleep(interval)
        stop.wait()

    server = _Server(trickle)
    try:
        yield server
    finally:
        server.close()
