# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Redis client every module uses: options, connection, time limits, errors.

The URL is parsed here, never by redis-py: a parser that cuts a password at an
unencoded ``/`` or ``#`` connects to the wrong server and quotes the pieces in
its error. Time is bounded by ``connect_timeout`` as a deadline: the whole
connection (TCP, TLS handshake, AUTH, PING) must be done within it, and so
must each later command's reply - however slowly a server trickles bytes.
redis-py would otherwise retry a failed connect ten times.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range

try:
    import redis
    from redis import exceptions as redis_exceptions
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # reported by require_redis(), not at import time
    redis = None

CONNECTION_KEYS = ("host", "port", "db", "username", "password", "tls")
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 300.0
SCHEMES = {"redis": False, "rediss": True}
_HOST = re.compile(r"^[A-Za-z0-9._~%-]+$")
_NUMBER = re.compile(r"^[0-9]{1,18}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,15}$")
URL_SHAPE = "redis://[[user]:password@]host[:port][/db] or rediss://..."


def redis_argument_spec() -> dict[str, Any]:
    """Connection options, as documented in the aiagents.runbooks.redis fragment."""
    return {
        "url": {"type": "str", "no_log": True},
        "host": {"type": "str"},
        "port": {"type": "int"},
        "db": {"type": "int"},
        "username": {"type": "str"},
        "password": {"type": "str", "no_log": True},
        "tls": {"type": "bool", "default": False},
        "tls_ca_cert": {"type": "path"},
        "connect_timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
    }


def redis_mutually_exclusive() -> list[list[str]]:
    return [["url", key] for key in CONNECTION_KEYS if key != "tls"]


def require_redis(module) -> None:
    if redis is None:
        module.fail_json(msg="import redis: the redis Python client is not installed; run scripts/bootstrap.sh "
                             "or pip install 'redis[hiredis]'")


@dataclass(frozen=True)
class Settings:
    """Where and how to connect, checked; the password is never part of its text."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    tls: bool
    ca_cert: str | None
    timeout: float

    def __repr__(self) -> str:
        return f"Settings({self.describe()})"

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis at {host}:{self.port}/{self.db}"


def _bad_url(cause: str) -> RunbookError:
    return RunbookError("connect to", "redis", f"url must be {URL_SHAPE}: {cause}")


def parse_url(url: str) -> dict[str, Any]:
    """host, port, db, username, password and tls from a Redis URL, or RunbookError naming `url`.

    Everything up to the last "@" is the userinfo, so a password with an
    unencoded "/", "#" or "@" stays whole. Messages quote no part of it.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        shown = f" (got {scheme!r})" if sep and _SCHEME.match(scheme) else ""
        raise _bad_url(f"the scheme is not redis:// or rediss://{shown}")
    userinfo, at, location = rest.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user) or None, (unquote(secret) or None) if colon else None
        if not colon:  # redis://secret@host: a lone userinfo is the password, as redis-cli reads it
            username, password = None, unquote(user) or None
    location, hash_sign, _fragment = location.partition("#")
    if hash_sign:
        raise _bad_url("a '#' follows the host; percent-encode it (%23) if it belongs to the password")
    location, _question, query = location.partition("?")
    authority, _slash, path = location.partition("/")
    host, port = _host_port(authority)
    db = None
    if path:
        if not _NUMBER.match(path):
            raise _bad_url(f"the database after the host must be a number, got {path!r}")
        db = int(path)
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "db":
            raise _bad_url(f"query parameter {name!r} is not supported; use the module's options")
        if not _NUMBER.match(value):
            raise _bad_url(f"the db query parameter must be a number, got {value!r}")
        db = int(value)
    return {"host": host, "port": port, "db": db, "username": username, "password": password,
            "tls": SCHEMES[scheme.lower()]}


def _host_port(authority: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        host, bracket, after = authority[1:].partition("]")
        if not bracket or not host:
            raise _bad_url("an IPv6 address must be written [address]")
        if after and not after.startswith(":"):
            raise _bad_url("only ':port' may follow the host")
        colon, port_text = after[:1], after[1:]
    else:
        host, colon, port_text = authority.partition(":")
        if not host:
            raise _bad_url("no host")
        if not _HOST.match(host):
            raise _bad_url(f"{host!r} is not a host name or address")
    if not colon:
        return unquote(host), None
    if not _NUMBER.match(port_text):
        raise _bad_url(f"the port must be a number, got {port_text!r}")
    if not 1 <= int(port_text) <= 65535:
        raise _bad_url(f"port {int(port_text)} is out of range (1-65535)")
    return unquote(host), int(port_text)


def settings(params: dict[str, Any]) -> Settings:
    """The connection options checked and completed, or RunbookError naming the option at fault."""
    timeout = params.get("connect_timeout")
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    refused = out_of_range("connect_timeout", timeout, above=0, maximum=MAX_TIMEOUT)
    if refused:
        raise RunbookError("connect to", "redis", refused)
    if params.get("url"):
        given = parse_url(params["url"])
    else:
        given = {key: params.get(key) for key in CONNECTION_KEYS}
        if given["host"] is not None and not _is_host(given["host"]):
            raise RunbookError("connect to", "redis", "host must be a host name or address (a URL goes in url)")
        for name, low, high in (("port", 1, 65535), ("db", 0, None)):
            refused = out_of_range(name, given[name], minimum=low, maximum=high)
            if refused:
                raise RunbookError("connect to", "redis", refused)
    found = Settings(host=(given["host"] or "127.0.0.1").strip("[]"), port=given["port"] or 6379,
                     db=given["db"] or 0, username=given["username"] or None, password=given["password"] or None,
                     tls=bool(given["tls"]), ca_cert=params.get("tls_ca_cert") or None, timeout=float(timeout))
    if found.ca_cert:
        _check_ca_cert(found)
    return found


def _is_host(host: str) -> bool:
    if _HOST.match(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))  # an IPv6 address, bracketed or not
    except ValueError:
        return False
    return True


def _check_ca_cert(found: Settings) -> None:
    def refuse(cause: str) -> RunbookError:
        return RunbookError("connect to", found.describe(), f"tls_ca_cert {found.ca_cert}: {cause}")

    if not found.tls:
        raise refuse("given, but the connection does not use TLS (set tls: true or use a rediss:// url)")
    if not os.path.exists(found.ca_cert):
        raise refuse("no such file")
    if not os.path.isfile(found.ca_cert) or not os.access(found.ca_cert, os.R_OK):
        raise refuse("not a readable file")
    try:
        ssl.create_default_context().load_verify_locations(cafile=found.ca_cert)
    except (ssl.SSLError, OSError, ValueError):
        raise refuse("not a PEM bundle of CA certificates") from None


def describe(params: dict[str, Any]) -> str:
    """Where we connect, without any credential (just "redis" when the options are wrong)."""
    try:
        return settings(params).describe()
    except RunbookError:
        return "redis"


# ------------------------------------------------------------ time limits --

class _Expired(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in a library swallows it."""


_armed = False


@contextmanager
def deadline(seconds: float, what: str = "an answer"):
    """Give the block `seconds` in all, then raise redis' TimeoutError wherever it is waiting.

    A socket timeout bounds each read; this bounds the sum. It uses SIGALRM,
    so it works in the main thread (where Ansible runs a module, in its own
    process or in-process in the task worker); elsewhere, and inside another
    deadline (which is then the tighter one), the socket timeouts alone apply.
    An alarm already set (Ansible's task ``timeout:``) is kept: if it is due
    first it is left alone, otherwise it is re-armed for its remaining time.
    """
    global _armed  # pylint: disable=global-statement
    if _armed or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    outer, _interval = signal.getitimer(signal.ITIMER_REAL)
    if outer and outer <= seconds:
        yield
        return
    state = {"done": False}

    def expire(_signum, _frame):
        if not state["done"]:
            raise _Expired()

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
        state["done"] = True
    except _Expired:
        raise redis_exceptions.TimeoutError(f"no {what} within {seconds:g} s") from None
    finally:
        state["done"] = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        _armed = False
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001))


class _ReplyDeadline:
    """A connection whose every reply must arrive, whole, within its socket timeout."""

    socket_timeout: float | None

    def read_response(self, *args, **kwargs):
        with deadline(self.socket_timeout or DEFAULT_TIMEOUT, "reply"):
            return super().read_response(*args, **kwargs)  # type: ignore[misc]


_stage: dict[str, str | None] = {"now": None}  # where a connection is, to say where it got stuck


if redis is not None:
    class _Connection(_ReplyDeadline, redis.connection.Connection):
        pass

    class _TLSConnection(_ReplyDeadline, redis.connection.SSLConnection):
        def _wrap_socket_with_ssl(self, sock):
            _stage["now"] = "tls"
            wrapped = super()._wrap_socket_with_ssl(sock)
            _stage["now"] = None
            return wrapped


def client_for(found: Settings):
    """A client that never retries (a retry multiplies every timeout) and bounds every reply."""
    kwargs: dict[str, Any] = {
        "host": found.host, "port": found.port, "db": found.db,
        "username": found.username, "password": found.password,
        "socket_timeout": found.timeout, "socket_connect_timeout": found.timeout,
        "retry": Retry(NoBackoff(), 0),
        "connection_class": _TLSConnection if found.tls else _Connection,
    }
    if found.tls:
        kwargs.update({"ssl_cert_reqs": "required", "ssl_ca_certs": found.ca_cert})
    return redis.Redis(connection_pool=redis.ConnectionPool(**kwargs))


def connect(params: dict[str, Any]):
    """A connected client (PING answered within connect_timeout, all included), or RunbookError saying why not."""
    found = settings(params)
    client = client_for(found)
    _stage["now"] = None
    try:
        with deadline(found.timeout, "connection"):
            try:
                client.ping()
            except redis_exceptions.ResponseError as exc:
                # A server whose last save failed refuses even PING (MISCONF) but serves reads: it is reachable,
                # and the broker's health (module_utils/_broker) says why it refuses writes.
                if not str(exc).startswith("MISCONF"):
                    raise
    except Exception as exc:
        client.connection_pool.disconnect()
        error = translate(exc, "connect to", found.describe())
        if isinstance(exc, redis_exceptions.ResponseError) and "DB index" in str(exc):
            error = RunbookError("connect to", found.describe(), f"the server has no database {found.db} (db)")
        elif not isinstance(exc, (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError,
                                  redis_exceptions.ResponseError)) and "authentication" not in error.cause:
            error = RunbookError("connect to", found.describe(),
                                 f"unexpected answer - is it a Redis server? ({error.cause})")
        if isinstance(exc, redis_exceptions.TimeoutError):
            where = ", stuck in the TLS handshake: does the server speak TLS?" if _stage["now"] == "tls" else ""
            error = RunbookError("connect to", found.describe(),
                                 f"timed out (no connection within connect_timeout={found.timeout:g} s{where})")
        raise error from None
    return client


def translate(exc: BaseException, operation: str, target: str) -> RunbookError:
    """Turn a redis-py exception into one line an operator understands."""
    if isinstance(exc, RunbookError):
        return exc
    if redis is not None:
        if isinstance(exc, redis_exceptions.AuthenticationError) or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            return RunbookError(operation, target, "authentication failed (wrong or missing password)")
        if isinstance(exc, redis_exceptions.TimeoutError):
            return RunbookError(operation, target, f"timed out ({_first_line(exc)})")
        if isinstance(exc, redis_exceptions.ConnectionError):
            tls = _tls_cause(exc)
            if tls is not None:
                return RunbookError(operation, target, tls)
            return RunbookError(operation, target, f"unreachable ({_first_line(exc)})")
        if isinstance(exc, redis_exceptions.ResponseError) and str(exc).startswith("WRONGTYPE"):
            return RunbookError(operation, target, "the key holds another type of value")
    return RunbookError(operation, target, f"{type(exc).__name__}: {_first_line(exc)}")


def _tls_cause(exc: BaseException) -> str | None:
    """What went wrong in TLS, if that is why the connection failed."""
    seen = exc
    for _depth in range(5):
        seen = seen.__cause__ or seen.__context__
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({seen.verify_message or seen.reason}; check tls_ca_cert)"
        if isinstance(seen, ssl.SSLError):
            return f"TLS handshake failed ({seen.reason or _first_line(seen)}; does the server speak TLS?)"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
