# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Redis client every module uses: options, connection, errors."""

from __future__ import annotations

from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError

try:
    import redis
    from redis import exceptions as redis_exceptions
except ImportError:  # reported by require_redis(), not at import time
    redis = None

CONNECTION_KEYS = ("host", "port", "db", "username", "password", "tls")


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
        "connect_timeout": {"type": "float", "default": 5.0},
    }


def redis_mutually_exclusive() -> list[list[str]]:
    return [["url", key] for key in CONNECTION_KEYS if key != "tls"]


def require_redis(module) -> None:
    if redis is None:
        module.fail_json(msg="import redis: the redis Python client is not installed; run scripts/bootstrap.sh "
                             "or pip install 'redis[hiredis]'")


def describe(params: dict[str, Any]) -> str:
    """Where we connect, without any credential."""
    if params.get("url"):
        try:
            pool = redis.connection.parse_url(params["url"])
        except ValueError:
            return "redis"  # connect() explains what is wrong with the URL
        return f"redis at {pool.get('host', '127.0.0.1')}:{pool.get('port', 6379)}/{pool.get('db', 0)}"
    return f"redis at {params.get('host') or '127.0.0.1'}:{params.get('port') or 6379}/{params.get('db') or 0}"


def connect(params: dict[str, Any]):
    """A connected client (PING answered), or RunbookError saying why not."""
    timeout = params.get("connect_timeout") or 5.0
    common = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if params.get("tls_ca_cert"):
        common["ssl_ca_certs"] = params["tls_ca_cert"]
    target = describe(params)
    try:
        if params.get("url"):
            client = redis.Redis.from_url(params["url"], **common)
        else:
            client = redis.Redis(
                host=params.get("host") or "127.0.0.1",
                port=params.get("port") or 6379,
                db=params.get("db") or 0,
                username=params.get("username"),
                password=params.get("password"),
                ssl=bool(params.get("tls")),
                **common,
            )
        client.ping()
    except ValueError as exc:  # malformed URL
        raise RunbookError("connect to", "redis", f"invalid url: {exc}") from None
    except Exception as exc:
        raise translate(exc, "connect to", target) from None
    return client


def translate(exc: Exception, operation: str, target: str) -> RunbookError:
    """Turn a redis-py exception into one line an operator understands."""
    if isinstance(exc, RunbookError):
        return exc
    if redis is not None:
        if isinstance(exc, redis_exceptions.AuthenticationError) or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            return RunbookError(operation, target, "authentication failed (wrong or missing password)")
        if isinstance(exc, redis_exceptions.TimeoutError):
            return RunbookError(operation, target, "timed out")
        if isinstance(exc, redis_exceptions.ConnectionError):
            return RunbookError(operation, target, f"unreachable ({_first_line(exc)})")
        if isinstance(exc, redis_exceptions.ResponseError) and str(exc).startswith("WRONGTYPE"):
            return RunbookError(operation, target, "the key holds another type of value")
    return RunbookError(operation, target, f"{type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
