"""What every stand-in shares: a JSON HTTP API whose faults are switched at
run time through a control server on a separate port.

Faults (POST /faults on the control port, DELETE /faults to heal):
  latency_ms  added before every answer
  status      answer every request with this status (401/403/429/5xx)
  code        which of the provider's errors of that status (e.g. OpenAI's
              429 `insufficient_quota` rather than `rate_limit_exceeded`)
  retry_after false: a 429 that would carry Retry-After leaves it out
  hang        accept, read the request, never answer (until healed)
  refuse      close the listening socket: clients get "connection refused"

API keys, as the provider's console manages them (control port):
  POST /keys {"api_key"}       issue a key (valid until revoked)
  POST /revoke {"secret"}      revoke the key the platform's secret holds now
  DELETE /revoke               lift every revocation
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from ..config import env, env_int, read_secret

log = logging.getLogger("standin")


@dataclass
class Faults:
    latency_ms: int = 0
    status: int = 0
    code: str = ""
    retry_after: bool = True
    hang: bool = False
    refuse: bool = False


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        self.method = handler.command
        self.path = parts.path.rstrip("/") or "/"
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        self.body = handler.rfile.read(length) if length else b""

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, str]:
        """The fields of an application/x-www-form-urlencoded body (the last of repeated ones)."""
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value[7:].strip() if value.startswith("Bearer ") else None


Response = tuple[int, Any, dict[str, str]]
Route = Callable[[Request], Response]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class StandIn:
    """Subclasses implement `handle` (the API) and `error_body` (the provider's
    error shape) and may add control routes."""

    name = "standin"

    def __init__(self, port_var: str, control_port_var: str) -> None:
        self.bind = env("SANDBOX_BIND", "127.0.0.1")
        self.port = env_int(port_var, 0)
        self.control_port = env_int(control_port_var, 0)
        self.faults = Faults()
        self.lock = threading.Lock()
        self.api: Server | None = None
        self.issued: set[str] = set()
        self.revoked: set[str] = set()

    # -- to override
    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def error_body(self, status: int, code: str = "") -> Any:
        return {"error": f"HTTP {status}"}

    def error_headers(self, status: int, code: str = "") -> dict[str, str]:
        return {"Retry-After": "20"} if status == 429 else {}

    def control(self, request: Request) -> Response | None:
        return None

    def key_valid(self, key: str | None, known: set[str]) -> bool:
        """A bearer key is valid when the platform's secrets hold it (`known`) or it
        was issued, and it has not been revoked."""
        with self.lock:
            return bool(key) and (key in known or key in self.issued) and key not in self.revoked

    def _keys_route(self, request: Request) -> Response | None:
        if request.path == "/keys" and request.method == "POST":
            key = str(request.json().get("api_key") or "")
            if len(key) < 16:
                return 400, {"error": "api_key of 16+ characters required"}, {}
            with self.lock:
                self.issued.add(key)
                self.revoked.discard(key)
            return 200, {"issued": len(self.issued)}, {}
        if request.path == "/revoke" and request.method == "POST":
            key = read_secret(str(request.json().get("secret") or ""), "api_key")
            if not key:
                return 404, {"error": "no such secret or it holds no api_key"}, {}
            with self.lock:
                self.revoked.add(key)
            return 200, {"revoked": len(self.revoked)}, {}
        if request.path == "/revoke" and request.method == "DELETE":
            with self.lock:
                self.revoked.clear()
            return 200, {"revoked": 0}, {}
        return None

    # -- machinery
    def _handler(self, route: Callable[[Request], Response], faulty: bool) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                try:
                    request = Request(self)
                except ValueError:
                    self.send_error(400)
                    return
                if faulty:
                    faults = standin.faults
                    if faults.hang:
                        # Held until healed, then answered normally.
                        while standin.faults.hang:
                            time.sleep(0.2)
                    if faults.latency_ms:
                        time.sleep(faults.latency_ms / 1000)
                    if faults.status:
                        self._reply(faults.status, standin.error_body(faults.status, faults.code),
                                    standin.error_headers(faults.status, faults.code))
                        return
                try:
                    status, body, headers = route(request)
                except Exception:  # a stand-in bug must show as a 500, not a dropped connection
                    log.exception("%s %s failed", request.method, request.path)
                    status, body, headers = 500, standin.error_body(500), {}
                self._reply(status, body, headers)

            def _reply(self, status: int, body: Any, headers: dict[str, str]) -> None:
                size = getattr(body, "size", None)  # a streamed body (see sdp._Stream)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                self.send_header("Content-Length", str(size if size is not None else len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if size is None:
                    self.wfile.write(payload)
                    return
                chunk = b"\0" * (1 << 20)
                alive = getattr(body, "alive", None)
                try:
                    for _ in range(size // len(chunk)):
                        if alive is not None and not alive():
                            # Withdrawn mid-stream (sdp: poison healed): cut the
                            # body short so the client fails instead of reading on.
                            self.close_connection = True
                            return
                        self.wfile.write(chunk)
                except OSError:
                    self.close_connection = True  # the client died reading it, which is the point

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("%s " + fmt, standin.name, *args)

        return Handler

    def _control_route(self, request: Request) -> Response:
        if request.path == "/healthz":
            return 200, {"status": "ok", "api_listening": self.api is not None}, {}
        if request.path == "/faults":
            if request.method == "POST":
                self.set_faults(Faults(**{**asdict(Faults()), **request.json()}))
            elif request.method == "DELETE":
                self.set_faults(Faults())
            return 200, asdict(self.faults), {}
        answer = self._keys_route(request) or self.control(request)
        return answer if answer is not None else (404, {"error": "not found"}, {})

    def set_faults(self, faults: Faults) -> None:
        with self.lock:
            self.faults = faults
            if faults.refuse and self.api is not None:
                self.api.shutdown()
                self.api.server_close()
                self.api = None
            elif not faults.refuse and self.api is None:
                self._start_api()
        log.info("%s faults now %s", self.name, asdict(faults))

    def _start_api(self) -> None:
        self.api = Server((self.bind, self.port), self._handler(self.handle, faulty=True))
        threading.Thread(target=self.api.serve_forever, daemon=True).start()

    def serve(self) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        self._start_api()
        control = Server((self.bind, self.control_port), self._handler(self._control_route, faulty=False))
        log.info("%s listening on %s:%d (control %d)", self.name, self.bind, self.port, self.control_port)
        control.serve_forever()


def json_error(status: int, message: str) -> Response:
    return status, {"error": message}, {}
