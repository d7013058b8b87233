# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one PostgreSQL client every module uses: options, connection, round trips, errors.

Option names follow community.postgresql (login_host, login_user, login_password, ...),
so the same inventory variables drive its modules and ours.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError

try:
    import psycopg2
except ImportError:  # reported by require_psycopg2(), not at import time
    psycopg2 = None

# What a failed connection attempt means, from libpq's message (it sets no SQLSTATE on connect).
_AUTH_MARKERS = ("password authentication failed", "no pg_hba.conf entry", "authentication failed",
                 "password is required", "no password supplied", "role \"", "is not permitted to log in",
                 "pg_hba.conf rejects")
_SATURATED_MARKERS = ("too many clients", "remaining connection slots are reserved")
_MISSING_DB_MARKER = "database \""


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


def require_psycopg2(module) -> None:
    if psycopg2 is None:
        module.fail_json(msg="import psycopg2: the psycopg2 PostgreSQL client is not installed; run "
                             "scripts/bootstrap.sh or pip install psycopg2-binary")


def describe(params: dict[str, Any], user: str | None = None) -> str:
    """Where we connect and as whom, without any credential."""
    host = params.get("login_host") or params.get("login_unix_socket") or "local socket"
    return (f"postgresql://{user or params.get('login_user') or 'postgres'}@{host}:"
            f"{params.get('login_port') or 5432}/{params.get('login_db') or 'postgres'}")


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
    kwargs.update(params.get("connect_params") or {})
    return kwargs


class ConnectFailure(RunbookError):
    """A connection that could not be made, classified for findings: unreachable, auth, database, saturated."""

    def __init__(self, kind: str, target: str, cause: str) -> None:
        self.kind = kind
        super().__init__("connect to", target, cause)


class Client:
    """A psycopg2 connection in autocommit mode that counts its round trips.

    Autocommit, so every transaction is spelled out in the SQL the module sends and the count of
    execute() calls is the count of round trips to the server.
    """

    def __init__(self, conn, target: str) -> None:
        self.conn = conn
        self.target = target
        self.round_trips = 0
        self.statements: list[str] = []

    def execute(self, query, params=None, label: str = "", fetch: str = "all"):
        """Run one batch (one round trip); return its last result's rows, or None."""
        self.round_trips += 1
        self.statements.append(label or "query")
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            if fetch == "none" or cur.description is None:
                return None
            return cur.fetchone() if fetch == "one" else cur.fetchall()

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
            options: str | None = None) -> Client:
    """A connected Client, or ConnectFailure saying why not (with a kind for findings)."""
    kwargs = conn_kwargs(params, user, password)
    if options:
        kwargs["options"] = f"{kwargs.get('options', '')} {options}".strip()
    target = describe(params, user)
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        raise classify_connect_error(exc, target) from None
    except psycopg2.Error as exc:
        raise ConnectFailure("unreachable", target, first_line(exc)) from None
    conn.autocommit = True
    return Client(conn, target)


def classify_connect_error(exc: Exception, target: str) -> ConnectFailure:
    text = first_line(exc)
    lowered = str(exc).lower()
    if any(marker in lowered for marker in _SATURATED_MARKERS):
        return ConnectFailure("saturated", target, f"no connection slot left ({text})")
    if _MISSING_DB_MARKER in lowered and "does not exist" in lowered:
        return ConnectFailure("database", target, f"the database does not exist ({text})")
    if any(marker in lowered for marker in _AUTH_MARKERS):
        return ConnectFailure("auth", target, f"authentication failed ({text})")
    if "timeout" in lowered:
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
