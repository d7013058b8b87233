"""PostgreSQL access as the application role, with the pool the workers'
settings describe: DATABASE_POOL_SIZE connections kept, up to
DATABASE_MAX_OVERFLOW more on demand, DATABASE_POOL_TIMEOUT seconds to wait
for a free one (the same semantics, and error text, as SQLAlchemy's QueuePool)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from .config import Settings


class PoolTimeout(Exception):
    pass


class Pool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.size, self.overflow, self.timeout = settings.pool_size, settings.max_overflow, settings.pool_timeout
        self.slots = threading.BoundedSemaphore(self.size + self.overflow)
        self.idle: list[psycopg2.extensions.connection] = []
        self.lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        if not self.slots.acquire(timeout=self.timeout):
            raise PoolTimeout(f"QueuePool limit of size {self.size} overflow {self.overflow} reached, "
                              f"connection timed out, timeout {self.timeout:.2f}")
        conn = None
        try:
            with self.lock:
                conn = self.idle.pop() if self.idle else None
            if conn is None or conn.closed:
                conn = psycopg2.connect(self.settings.dsn())
            yield conn
            conn.rollback()  # leave nothing open: the next job starts clean
            with self.lock:
                if len(self.idle) < self.size:
                    self.idle.append(conn)
                    conn = None
        finally:
            if conn is not None:
                conn.close()
            self.slots.release()


@contextmanager
def tenant_transaction(conn: psycopg2.extensions.connection, tenant_id: str) -> Iterator[psycopg2.extensions.cursor]:
    """One transaction in the tenant's context: RLS shows only its rows."""
    with conn:  # commits on success, rolls back on error
        with conn.cursor() as cur:
            cur.execute("SELECT set_tenant_context(%s)", (tenant_id,))
            yield cur
