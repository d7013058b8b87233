# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP client of every HTTP module: checked input, a deadline on the whole request.

A per-read socket timeout does not bound a request: a server that trickles one
byte every half second keeps every read alive for as long as it likes. Here
``timeout`` bounds everything - DNS, connect, TLS, sending, the status line,
the headers and the body: each phase gets only the time left, and a watchdog
shuts the socket down at the deadline, which ends any read in progress.

Input is checked by ``prepare`` before any network I/O, so a bad URL, method or
header is one message naming the option, never a traceback from http.client
and never half of the requests sent. Messages never carry a URL's userinfo or
query values, nor text the server sent.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import redact_url

MAX_TIMEOUT = 300.0  # seconds: the documented maximum of every HTTP module's timeout
JSON_LIMIT = 32 * 1024 * 1024  # an API answer larger than this is not one we can use
PHASES = ("dns", "connect", "tls", "first_byte", "total")
_CHUNK = 64 * 1024

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token: method and header names
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # in a header value; a tab is allowed
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f]")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]+")


class HttpInputError(ValueError):
    """An option the request cannot be made with; the message starts with the option's name."""

    def __init__(self, option: str, cause: str) -> None:
        self.option = option
        super().__init__(f"{option} {cause}")


class HttpError(Exception):
    """The request failed on the way: ``kind`` is dns, refused, timeout, tls, connection, protocol or too_large."""

    def __init__(self, kind: str, detail: str, timings: dict[str, float | None] | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.timings = timings or dict.fromkeys(PHASES)
        super().__init__(detail)


@dataclass
class Prepared:
    """A checked request, ready to send."""

    method: str
    https: bool
    host: str
    port: int
    target: str
    headers: dict[str, str]
    body: bytes | None
    shown: str  # the URL as messages may show it
    context: ssl.SSLContext | None = None


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool
    timings: dict[str, float | None] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


def check_timeout(name: str, value: Any, maximum: float = MAX_TIMEOUT) -> str | None:
    """The message refusing a timeout that is not a finite number of seconds above 0 and at most ``maximum``."""
    return out_of_range(name, value, above=0, maximum=maximum)


def header_value_problem(value: Any) -> str | None:
    """Why this cannot be sent as a header value (the value itself is never in the answer), or None."""
    if isinstance(value, (dict, list, tuple, set)) or value is None:
        return "must be text"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if _CONTROL.search(text):
        return "contains a control character"
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return "is not Latin-1 text"
    return None


def header_name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not _TOKEN.match(name):
        return "is not an HTTP header name"
    return None


def join_url(base: str, path: str, params: dict[str, Any] | None = None) -> str:
    """``base`` (which may carry a path and a query of its own) + an API path + query parameters."""
    try:
        parts = urlsplit(base)
    except ValueError:
        return base  # prepare() says what is wrong with it
    query = "&".join(part for part in (parts.query, urlencode(params or {})) if part)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, query, ""))


def prepare(url: Any, method: Any = "GET", headers: dict[str, Any] | None = None, body: Any = None,
            validate_certs: bool = True, ca_path: str | None = None) -> Prepared:
    """Check everything a request needs before any network I/O; raise HttpInputError naming the option."""
    if not isinstance(url, str):
        raise HttpInputError("url", "must be text")
    shown = redact_url(url)
    if _UNSAFE_IN_URL.search(url):
        raise HttpInputError("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise HttpInputError("url", f"is malformed, got {shown!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise HttpInputError("url", f"must be http(s)://host[:port]/path, got {shown!r}")
    port_text = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise HttpInputError("url", f"port must be from 1 to 65535, got {port_text!r}")
        port = int(port_text)
    else:
        port = 443 if parts.scheme == "https" else 80
    try:
        host.encode("ascii") if host.isascii() else host.encode("idna")
    except UnicodeError:
        raise HttpInputError("url", f"has a host name that cannot be looked up, got {shown!r}") from None
    if not isinstance(method, str) or not _TOKEN.match(method):
        raise HttpInputError("method", f"must be an HTTP method name such as GET or POST, got {method!r}")
    checked = {"User-Agent": "aiagents.runbooks", "Accept": "application/json"}
    given = dict(headers or {})
    if "@" in parts.netloc and not any(str(name).lower() == "authorization" for name in given):
        userinfo = parts.netloc.rpartition("@")[0]
        user, _sep, password = userinfo.partition(":")
        pair = f"{unquote(user)}:{unquote(password)}".encode("utf-8", "replace")
        checked["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    for name, value in given.items():
        problem = header_name_problem(name)
        if problem:
            raise HttpInputError("headers", f"name {name!r} {problem}")
        problem = header_value_problem(value)
        if problem:
            raise HttpInputError("headers", f"value of {name!r} {problem}")
        for default in [key for key in checked if key.lower() == name.lower()]:
            del checked[default]  # a header given replaces ours, whatever its case
        checked[name] = str(value).lower() if isinstance(value, bool) else str(value)
    if body is not None and not isinstance(body, (str, bytes)):
        raise HttpInputError("body", "must be text")
    try:
        data = body.encode("utf-8") if isinstance(body, str) else body
    except UnicodeEncodeError:
        raise HttpInputError("body", "is not valid Unicode text") from None
    # A path or query beyond ASCII is sent percent-encoded, as a browser sends it.
    target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        target = _NOT_ASCII.sub(lambda match: quote(match.group()), target)
    except UnicodeEncodeError:
        raise HttpInputError("url", f"is not valid Unicode text, got {shown!r}") from None
    context = _tls_context(validate_certs, ca_path) if parts.scheme == "https" else None
    return Prepared(method=method, https=parts.scheme == "https", host=host, port=port, target=target,
                    headers=checked, body=data, shown=shown, context=context)


def _tls_context(validate_certs: bool, ca_path: str | None) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_path or None)
    except ssl.SSLError:  # before OSError, of which it is one
        raise HttpInputError("ca_path", f"{ca_path!r} holds no PEM certificate") from None
    except OSError as exc:
        raise HttpInputError("ca_path", f"{ca_path!r} cannot be read: {exc.strerror or exc}") from None
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Watchdog:
    """Shuts the request's socket down at the deadline: a read in progress then ends at once."""

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._done = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.expired.is_set():
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired.set()
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            try:
                # The plain socket's shutdown, also under TLS: it acts on the file descriptor at once.
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def _resolve(host: str, port: int, left) -> list[tuple]:
    """getaddrinfo within the time left: it cannot be interrupted, so a slow resolver is left behind."""
    try:
        ipaddress.ip_address(host)
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except ValueError:
        pass
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    resolver = threading.Thread(target=lookup, daemon=True)
    resolver.start()
    resolver.join(left())
    if resolver.is_alive():
        raise socket.timeout("dns")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["infos"]


def send(prepared: Prepared, timeout: float, deadline: float | None = None,
         read_limit: int = JSON_LIMIT) -> Response:
    """Send the request; every phase within ``timeout`` seconds (and before ``deadline``, a monotonic time).

    Any HTTP status is a Response; a failure on the way is an HttpError whose
    detail names the host, never the URL's credentials or the server's text.
    """
    problem = check_timeout("timeout", timeout, maximum=float("inf"))
    if problem:
        raise HttpInputError("timeout", problem.split(" ", 1)[1])
    started = time.monotonic()
    end = started + float(timeout) if deadline is None else min(deadline, started + float(timeout))
    timings: dict[str, float | None] = dict.fromkeys(PHASES)
    where = f"{prepared.host}:{prepared.port}"

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")
        return remaining

    def mark(phase: str) -> None:
        timings[phase] = round(time.monotonic() - started, 4)

    def failed(kind: str, detail: str) -> HttpError:
        timings["total"] = round(time.monotonic() - started, 4)
        return HttpError(kind, detail, timings)

    watchdog = _Watchdog(end - started)
    sock = None
    try:
        try:
            infos = _resolve(prepared.host, prepared.port, left)
        except socket.gaierror as exc:
            raise failed("dns", f"DNS lookup of {prepared.host} failed: {exc.strerror}") from None
        except UnicodeError:
            raise failed("dns", f"DNS lookup of {prepared.host} failed: not a valid host name") from None
        mark("dns")
        sock = _connect(infos, left, watchdog)
        mark("connect")
        if prepared.context is not None:  # https
            sock.settimeout(left())
            sock = prepared.context.wrap_socket(sock, server_hostname=prepared.host, do_handshake_on_connect=False)
            watchdog.watch(sock)
            sock.do_handshake()
            mark("tls")
        connection = (http.client.HTTPSConnection if prepared.https else http.client.HTTPConnection)(
            prepared.host, prepared.port)
        connection.sock = sock
        sock.settimeout(left())
        connection.request(prepared.method, prepared.target, body=prepared.body, headers=prepared.headers)
        response = connection.getresponse()
        mark("first_byte")
        body = _read(response, sock, read_limit, left)
        if watchdog.expired.is_set():
            left()  # an answer cut short by the watchdog did not end in time
        mark("total")
        return Response(status=response.status, reason=response.reason, headers=response.getheaders(),
                        body=body[:read_limit], truncated=len(body) > read_limit, timings=timings)
    except HttpError:
        raise
    except Exception as exc:  # pylint: disable=broad-except  # every failure becomes one sentence
        if watchdog.expired.is_set() or isinstance(exc, (socket.timeout, TimeoutError)) or time.monotonic() >= end:
            raise failed("timeout", f"no complete answer within {float(timeout):g} s") from None
        if isinstance(exc, ConnectionRefusedError):
            raise failed("refused", f"connection to {where} refused") from None
        if isinstance(exc, ssl.SSLCertVerificationError):
            raise failed("tls", f"TLS certificate of {prepared.host} is not trusted: {exc.verify_message}") from None
        if isinstance(exc, ssl.SSLError):
            raise failed("tls", f"TLS handshake with {prepared.host} failed: {exc.reason or type(exc).__name__}") \
                from None
        if isinstance(exc, http.client.HTTPException):
            raise failed("protocol", f"{where} did not answer in HTTP ({type(exc).__name__})") from None
        if isinstance(exc, OSError):
            raise failed("connection", f"connection to {where} failed: {exc.strerror or type(exc).__name__}") \
                from None
        raise failed("connection", f"request to {where} failed ({type(exc).__name__})") from None
    finally:
        watchdog.stop()
        if sock is not None:
            sock.close()


def _read(response: http.client.HTTPResponse, sock: socket.socket, read_limit: int, left) -> bytes:
    """The body, up to one byte more than ``read_limit`` (to tell it was cut), each read within the time left."""
    chunks: list[bytes] = []
    size = 0
    while size <= read_limit and not response.isclosed():  # http.client closes the socket after the last byte
        sock.settimeout(left())
        chunk = response.read(min(_CHUNK, read_limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _connect(infos: list[tuple], left, watchdog: _Watchdog) -> socket.socket:
    """Connect to the first address that accepts, within the time left."""
    error: OSError | None = None
    for family, kind, proto, _canonical, address in infos:
        sock = socket.socket(family, kind, proto)
        watchdog.watch(sock)
        try:
            sock.settimeout(left())
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            if isinstance(exc, (socket.timeout, TimeoutError)):
                raise
            error = exc
    raise error if error is not None else OSError("no address to connect to")


def request(url: Any, method: Any = "GET", headers: dict[str, Any] | None = None, body: Any = None,
            timeout: float = 10, validate_certs: bool = True, ca_path: str | None = None,
            deadline: float | None = None, read_limit: int = JSON_LIMIT) -> Response:
    """prepare() and send() in one call."""
    return send(prepare(url, method, headers, body, validate_certs, ca_path), timeout, deadline, read_limit)


def get_json(prepared: Prepared, timeout: float, deadline: float | None = None) -> tuple[int, Any]:
    """(status, the answer's JSON document or None when it is not JSON) - any status is an answer."""
    response = send(prepared, timeout, deadline, JSON_LIMIT)
    if response.truncated:
        raise HttpError("too_large", f"the answer is larger than {JSON_LIMIT // (1024 * 1024)} MiB", response.timings)
    try:
        return response.status, json.loads(response.body)
    except (ValueError, RecursionError):
        return response.status, None
