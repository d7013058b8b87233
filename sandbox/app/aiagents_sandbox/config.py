"""Settings from the environment (sandbox/sandbox.env) and k8s-style secrets.

Secrets live as one directory per Kubernetes secret, one file per key
(`<SECRETS_DIR>/tenant-acme-corp-sdp/webhook_secret`), exactly the layout a
Kubernetes secret volume has, so the same code reads both.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SECRETS_DIR = Path(os.environ.get("SECRETS_DIR", "/run/secrets/aiagents"))
HISTOGRAM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    """An integer setting; a malformed value is a configuration error that must
    stop the process loudly (the crash-loop fault relies on this)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"invalid {name}={raw!r}: expected an integer") from None


def read_secret(secret: str, key: str) -> str | None:
    """Value of key `key` in secret `secret`, re-read on every call so that a
    secret written by the onboarding playbook takes effect without a restart."""
    if "/" in secret or secret.startswith(".") or "/" in key:
        return None
    try:
        return (SECRETS_DIR / secret / key).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def all_secret_values(key: str, prefix: str = "") -> set[str]:
    """Every value of `key` across secrets whose name starts with `prefix`."""
    values: set[str] = set()
    if SECRETS_DIR.is_dir():
        for path in SECRETS_DIR.glob(f"{prefix}*/{key}"):
            value = path.read_text().strip()
            if value:
                values.add(value)
    return values


@dataclass(frozen=True)
class Settings:
    bind: str = field(default_factory=lambda: env("SANDBOX_BIND", "127.0.0.1"))
    # Where the other services are: loopback in the Compose sandbox, service
    # names on Kubernetes (sandbox/k8s).
    redis_host: str = field(default_factory=lambda: env("REDIS_HOST", "127.0.0.1"))
    postgres_host: str = field(default_factory=lambda: env("POSTGRES_HOST", "127.0.0.1"))
    jaeger_host: str = field(default_factory=lambda: env("JAEGER_HOST", "127.0.0.1"))
    openai_host: str = field(default_factory=lambda: env("OPENAI_HOST", "127.0.0.1"))
    redis_port: int = field(default_factory=lambda: env_int("REDIS_PORT", 6380))
    postgres_port: int = field(default_factory=lambda: env_int("POSTGRES_PORT", 5433))
    postgres_db: str = field(default_factory=lambda: env("POSTGRES_DB", "ai_agents"))
    app_user: str = field(default_factory=lambda: env("POSTGRES_APP_USER", "aiagents_app"))
    admin_user: str = field(default_factory=lambda: env("POSTGRES_ADMIN_USER", "aiagents"))
    api_port: int = field(default_factory=lambda: env_int("API_PORT", 8000))
    sdp_port: int = field(default_factory=lambda: env_int("SDP_PORT", 8081))
    openai_port: int = field(default_factory=lambda: env_int("OPENAI_PORT", 8082))
    jaeger_port: int = field(default_factory=lambda: env_int("JAEGER_PORT", 16686))
    queue_name: str = field(default_factory=lambda: env("QUEUE_NAME", "enhancement_queue"))
    queue_format: str = field(default_factory=lambda: env("QUEUE_FORMAT", "plain"))
    concurrency: int = field(default_factory=lambda: env_int("CELERY_CONCURRENCY", 4))
    httpx_timeout: float = field(default_factory=lambda: float(env_int("HTTPX_TIMEOUT", 30)))
    pool_size: int = field(default_factory=lambda: env_int("DATABASE_POOL_SIZE", 5))
    max_overflow: int = field(default_factory=lambda: env_int("DATABASE_MAX_OVERFLOW", 10))
    pool_timeout: float = field(default_factory=lambda: float(env_int("DATABASE_POOL_TIMEOUT", 30)))
    max_retries: int = field(default_factory=lambda: env_int("CELERY_TASK_MAX_RETRIES", 3))
    backoff: float = field(default_factory=lambda: float(env_int("CELERY_TASK_BACKOFF", 2)))
    slow_trace_seconds: float = field(default_factory=lambda: float(env_int("SLOW_TRACE_SECONDS", 10)))

    def __post_init__(self) -> None:
        if self.queue_format not in ("plain", "celery"):
            raise ValueError(f"invalid QUEUE_FORMAT={self.queue_format!r}: expected plain or celery")
        if self.pool_size < 1 or self.max_overflow < 0:
            raise ValueError("DATABASE_POOL_SIZE must be >= 1 and DATABASE_MAX_OVERFLOW >= 0")

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/0"

    def dsn(self, admin: bool = False) -> str:
        user = self.admin_user if admin else self.app_user
        password = read_secret("postgres", "admin_password" if admin else "app_password") or ""
        return (f"host={self.postgres_host} port={self.postgres_port} dbname={self.postgres_db} "
                f"user={user} password={password} connect_timeout=5 "
                f"application_name=aiagents-{os.environ.get('SANDBOX_ROLE', 'app')}")
