# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one PostgreSQL client every module uses: options, connection, round trips, errors.

Option names follow community.postgresql (login_host, login_user, login_password, ...),
so the same inventory variables drive its modules and ours.

Time is bounded by the module, not by libpq: libpq's ``connect_timeout`` restarts for every
host and address, is at least 2 s, and means "wait forever" at 0 or below; a server that
logged us in and then stops answering is waited for without end. So every wait on the
server's socket goes through ``_wait`` (psycopg2's wait callback, which makes libpq
non-blocking underneath), and gives up at the module's deadline (``Budget``).
"""

from __future__ import annotations

import re
import select
import time
from collections.abc import Mapping
from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError, out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import forms, is_secret_name, url_secrets

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:  # reported by require_psycopg2(), not at import time
    psycopg2 = None

# What a failed connection attempt means, from libpq's message (it sets no SQLSTATE on connect).
_AUTH_MARKERS = ("password authentication failed", "no pg_hba.conf entry", "authentication failed",
                 "password is required", "no password supplied", "role \"", "is not permitted to log in",
                 "pg_hba.conf rejects")
_SATURATED_MARKERS = ("too many clients", "remaining connection slots are reserved")
_MISSING_DB_MARKER = "database \""
# A setting the server refuses at login: a wrong option, not a finding about the server.
_BAD_SETTING = re.compile(r'(?:invalid value for parameter|outside the valid range for parameter|'
                          r'unrecognized configuration parameter) "([^"]+)"', re.IGNORECASE)
# libpq's and psycopg2's own refusals of a connection parameter, before anything is sent: messages
# containing one of these, or starting with "invalid " (invalid port number, invalid sslmode value, ...).
_BAD_PARAMETER = ("invalid dsn", "connection option", "connection info string", "invalid uri")

CONNECT_TIMEOUT_MAX = 300
STATEMENT_TIMEOUT_MAX = 3600
# The server's own statement_timeout answers first; the client's deadline is for a server that cannot.
GRACE_SECONDS = 1.0
# psycopg2.connect() arguments that are not libpq parameters: a dict from the inventory must not set them.
_NOT_LIBPQ = ("connection_factory", "cursor_factory", "async", "async_")


def postgres_argument_spec() -> dict[str, Any]:
    """Connection options, as documented in the aiagents.runbooks.postgres fragment."""
    return {
        "login_host": {"type": "str", "default": ""},
        "login_port": {"type": "int", "default": 5432},
        "login_unix_socket": {"type": "str", "default": ""},
        "login_user": {"type": "str", "default": "postgres"},
        "login_password": {"type": "str", "default": "", "no_log": True},
        "login_db": {"type": "str", "default": "postgres", "aliases": ["db"]},
        "ssl_mode": {"type": "str", "default": "prefer",
                     "choices": ["allow", "disable", "prefer", "require", "verify-ca", "verify-full"]},
        "ca_cert": {"type": "str", "aliases": ["ssl_rootcert"]},
        "ssl_cert": {"type": "path"},
        "ssl_key": {"type": "path"},
        "connect_timeout": {"type": "int", "default": 5},
        "connect_params": {"type": "dict", "default": {}},
    }


def seconds_error(name: str, value: Any, maximum: float) -> str | None:
    """A timeout must be a finite number of seconds above 0 and at most ``maximum``."""
    return out_of_range(name, value, above=0, maximum=maximum)


def option_error(params: dict[str, Any]) -> str | None:
    """The connection options' first problem (port, timeout, connect_params), or None; before any connection."""
    problem = (out_of_range("login_port", params.get("login_port"), minimum=1, maximum=65535)
               or seconds_error("connect_timeout", params.get("connect_timeout"), CONNECT_TIMEOUT_MAX))
    if problem:
        return problem
    extra = params.get("connect_params") or {}
    for name, value in extra.items():
        if name in _NOT_LIBPQ:
            return f"connect_params.{name} is not a libpq connection parameter"
        if value is not None and not isinstance(value, (str, int, float)):
            return f"connect_params.{name} must be a string or a number, got {type(value).__name__}"
    if extra.get("connect_timeout") is not None:
        problem = seconds_error("connect_params.connect_timeout", extra["connect_timeout"], CONNECT_TIMEOUT_MAX)
    if not problem and extra.get("port") not in (None, "") and "," not in str(extra["port"]):
        problem = out_of_range("connect_params.port", extra["port"], minimum=1, maximum=65535)
    return problem


_CONNINFO_PAIR = re.compile(r"([A-Za-z_]+)\s*=\s*('(?:\\.|[^'\\])*'?|\S+)")


def conninfo_secrets(text: Any) -> set[str]:
    """Credentials in a libpq connection string: a URI's userinfo and password, or key=value pairs."""
    if not isinstance(text, str) or not text.strip():
        return set()
    if "://" in text:
        return url_secrets(text)
    found: set[str] = set()
    for name, value in _CONNINFO_PAIR.findall(text):
        if is_secret_name(name):
            if value.startswith("'"):
                value = re.sub(r"\\(.)", r"\1", value[1:-1] if value.endswith("'") and len(value) > 1 else value[1:])
            found |= forms(value) | forms(value.strip("'"))
    return found


def connection_secrets(params: Any) -> set[str]:
    """Credentials only a PostgreSQL module can find: inside connection strings (a dsn, a dbname that is one)."""
    if not isinstance(params, Mapping):
        return set()
    found: set[str] = set()
    for name in ("login_host", "login_db", "db", "login_unix_socket", "login_user"):
        found |= conninfo_secrets(params.get(name))
    extra = params.get("connect_params")
    if isinstance(extra, Mapping):
        for value in extra.values():
            found |= conninfo_secrets(value)
    return found


def require_psycopg2(module) -> None:
    if psycopg2 is None:
        module.fail_json(msg="import psycopg2: the psycopg2 PostgreSQL client is not installed; run "
                             "scripts/bootstrap.sh or pip install psycopg2-binary")


def describe(params: dict[str, Any], user: str | None = None) -> str:
    """Where we connect and as whom, without any credential (connect_params and a dsn in them included)."""
    extra = _extra(params)
    host = extra.get("host") or params.get("login_host") or params.get("login_unix_socket") or "local socket"
    dbname = extra.get("dbname") or params.get("login_db") or "postgres"
    if "=" in str(dbname) or "://" in str(dbname):
        dbname = "(connection string)"
    return (f"postgresql://{user or extra.get('user') or params.get('login_user') or 'postgres'}@{host}:"
            f"{extra.get('port') or params.get('login_port') or 5432}/{dbname}")


def _extra(params: dict[str, Any]) -> dict[str, Any]:
    """connect_params, a dsn in them spread into its parameters (which then win over the options)."""
    extra = dict(params.get("connect_params") or {})
    dsn = extra.pop("dsn", None)
    if dsn:
        try:
            parsed = psycopg2.extensions.parse_dsn(str(dsn)) if psycopg2 is not None else {}
        except psycopg2.Error:
            parsed = {"dsn": dsn}  # left to psycopg2, whose refusal is then reported as an invalid parameter
        extra = {**parsed, **extra}
    return extra


def connect_seconds(params: dict[str, Any]) -> float:
    """The connect_timeout in force: connect_params win over the option, as for every libpq parameter."""
    extra = params.get("connect_params") or {}
    return float(extra.get("connect_timeout") or params.get("connect_timeout") or 5)


def conn_kwargs(params: dict[str, Any], user: str | None = None, password: str | None = None) -> dict[str, Any]:
    """libpq keyword arguments from the module options (empty ones left to libpq's defaults)."""
    mapping = {
        "host": params.get("login_host") or params.get("login_unix_socket"),
        "port": params.get("login_port"),
        "user": user or params.get("login_user"),
        "password": password if user else params.get("login_password"),
        "dbname": params.get("login_db") or "postgres",
        "sslmode": params.get("ssl_mode"),
        "sslrootcert": params.get("ca_cert"),
        "sslcert": params.get("ssl_cert"),
        "sslkey": params.get("ssl_key"),
        "connect_timeout": params.get("connect_timeout") or 5,
        "application_name": "aiagents.runbooks",
    }
    kwargs = {key: value for key, value in mapping.items() if value not in (None, "")}
    kwargs.update(_extra(params))
    if user:  # a login of its own (the application role's) is not overridden by connect_params
        kwargs.update({"user": user, "password": password})
    kwargs["connect_timeout"] = max(2, int(connect_seconds(params) + 0.999))  # libpq's, in case it ever waits
    return kwargs


class ConnectFailure(RunbookError):
    """A connection that could not be made, classified for findings: unreachable, auth, database, saturated."""

    def __init__(self, kind: str, target: str, cause: str) -> None:
        self.kind = kind
        super().__init__("connect to", target, cause)


class QueryTimeout(RunbookError):
    """Connected, but the server did not answer within the module's time (a hung or trickling server)."""

    kind = "unreachable"


class Budget:
    """The module's time, from its start: every connection within connect_timeout, all of it within
    connect_timeout + the statements' time + GRACE_SECONDS.

    ``query_limit`` names what the statements' time is made of, for the message when it runs out.
    """

    def __init__(self, params: dict[str, Any], query_seconds: float, query_limit: str = "statement_timeout") -> None:
        started = time.monotonic()
        self.connect_timeout = connect_seconds(params)
        self.query_seconds = query_seconds
        self.query_limit = query_limit
        self.connect_by = started + self.connect_timeout
        self.end_by = self.connect_by + query_seconds + GRACE_SECONDS


class _Expired(Exception):
    """The deadline passed while waiting on the server's socket."""


_deadline: list[float | None] = [None]  # the one the wait callback enforces now (modules are single-threaded)


def _wait(conn) -> None:
    """psycopg2's wait callback: like psycopg2.extras.wait_select, but never past the deadline."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        deadline = _deadline[0]
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise _Expired()
        fileno = conn.fileno()
        if state == psycopg2.extensions.POLL_READ:
            select.select([fileno], [], [], remaining)
        elif state == psycopg2.extensions.POLL_WRITE:
            select.select([], [fileno], [], remaining)
        else:
            raise psycopg2.OperationalError(f"unexpected state {state} while waiting for the server")


class Client:
    """A psycopg2 connection in autocommit mode that counts its round trips.

    Autocommit, so every transaction is spelled out in the SQL the module sends and the count of
    execute() calls is the count of round trips to the server.
    """

    def __init__(self, conn, target: str, budget: Budget | None = None) -> None:
        self.conn = conn
        self.target = target
        self.budget = budget
        self.round_trips = 0
        self.statements: list[str] = []

    def execute(self, query, params=None, label: str = "", fetch: str = "all"):
        """Run one batch (one round trip); return its last result's rows, or None."""
        self.round_trips += 1
        self.statements.append(label or "query")
        _deadline[0] = self.budget.end_by if self.budget else None
        try:
            with self.conn.cursor() as cur:
                cur.execute(query, params)
                if fetch == "none" or cur.description is None:
                    return None
                return cur.fetchone() if fetch == "one" else cur.fetchall()
        except _Expired:
            limit = f"{self.budget.query_limit} ({self.budget.query_seconds:g} s)"
            raise QueryTimeout("query", self.target, f"no answer to the {label or 'query'} statement within "
                               f"{limit}") from None
        finally:
            _deadline[0] = None

    @property
    def server_version(self) -> int:
        return self.conn.server_version

    @property
    def notices(self) -> list[str]:
        return list(self.conn.notices)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # closing a broken connection must not hide the real error
            pass


def connect(params: dict[str, Any], user: str | None = None, password: str | None = None,
            options: str | None = None, budget: Budget | None = None) -> Client:
    """A connected Client, or ConnectFailure saying why not (with a kind for findings).

    Connecting - every host of a host list, TLS and authentication - ends by ``budget.connect_by``
    (name resolution is the system resolver's, before the first byte is sent).
    """
    budget = budget or Budget(params, STATEMENT_TIMEOUT_MAX)
    kwargs = conn_kwargs(params, user, password)
    if options:  # ours last: on the server's command line the later setting wins
        kwargs["options"] = f"{kwargs.get('options', '')} {options}".strip()
    target = describe(params, user)
    psycopg2.extensions.set_wait_callback(_wait)
    _deadline[0] = budget.connect_by
    try:
        conn = psycopg2.connect(**kwargs)
    except _Expired:
        raise ConnectFailure("unreachable", target, f"timed out: no answer within connect_timeout "
                                                    f"({budget.connect_timeout:g} s)") from None
    except psycopg2.Error as exc:
        raise classify_connect_error(exc, target) from None
    finally:
        _deadline[0] = None
    conn.autocommit = True
    return Client(conn, target, budget)


def classify_connect_error(exc: Exception, target: str) -> RunbookError:
    """Why a connection failed: a ConnectFailure about the server (a finding), or a RunbookError about an option."""
    text = first_line(exc)
    lowered = str(exc).lower()
    setting = _BAD_SETTING.search(str(exc))
    if setting:
        return RunbookError("connect to", target, f"invalid {setting.group(1)} ({text})")
    if lowered.startswith("invalid ") or any(marker in lowered for marker in _BAD_PARAMETER):
        return RunbookError("connect to", target, f"invalid connection parameter ({text})")
    if any(marker in lowered for marker in _SATURATED_MARKERS):
        return ConnectFailure("saturated", target, f"no connection slot left ({text})")
    if _MISSING_DB_MARKER in lowered and "does not exist" in lowered:
        return ConnectFailure("database", target, f"the database does not exist ({text})")
    if any(marker in lowered for marker in _AUTH_MARKERS):
        return ConnectFailure("auth", target, f"authentication failed ({text})")
    if "timeout expired" in lowered:
        return ConnectFailure("unreachable", target, f"timed out ({text})")
    return ConnectFailure("unreachable", target, f"unreachable ({text})")


def translate(exc: Exception, operation: str, target: str) -> RunbookError:
    """Turn a psycopg2 exception into one line an operator understands."""
    if isinstance(exc, RunbookError):
        return exc
    if psycopg2 is not None and isinstance(exc, psycopg2.Error):
        code = getattr(exc, "pgcode", None)
        if code == "57014":
            return RunbookError(operation, target, "cancelled by statement_timeout")
        if code == "42501":
            return RunbookError(operation, target, f"permission denied ({first_line(exc)})")
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not code:
            return RunbookError(operation, target, f"connection lost ({first_line(exc)})")
        return RunbookError(operation, target, first_line(exc))
    return RunbookError(operation, target, f"{type(exc).__name__}: {first_line(exc)}")


def first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


def iso(value) -> str | None:
    """A timestamp as the exact ISO string PostgreSQL can read back (microseconds kept)."""
    return value.isoformat() if value is not None else None
