"""Throwaway real Redis and PostgreSQL servers for tests.

Each server runs the real Debian binaries on a free loopback port with its own
data directory, and can be stopped, killed or restarted mid-test so fault
handling is tested against the real failure, not a mock.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found: run scripts/bootstrap.sh")
    return found


class _Server:
    """A child process we own: start, stop (graceful), kill (SIGKILL), restart."""

    proc: subprocess.Popen | None = None
    port: int

    def _spawn(self) -> subprocess.Popen:
        raise NotImplementedError

    def start(self) -> None:
        if self.running:
            return
        self.proc = self._spawn()
        wait_for_port(self.port, proc=self.proc)
        self._ready()

    def _ready(self) -> None:
        """Wait until the server answers its protocol, not just the port."""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running else None

    def stop(self, timeout: float = 15.0) -> None:
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Die like a crash: no shutdown, connections reset."""
        if self.running:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisServer(_Server):
    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.password = password

    def _spawn(self) -> subprocess.Popen:
        args = [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.workdir), "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--logfile", str(self.workdir / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self, **kwargs):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **kwargs)

    def _ready(self) -> None:
        self.client().ping()


class PostgresServer(_Server):
    """A PostgreSQL cluster initialised for the test run.

    As root, initdb refuses to run, so the cluster belongs to the `postgres`
    system user (created by Debian's postgresql package).
    """

    superuser = "postgres"
    password = "harness-superuser-pw"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.port = free_port()
        # Popen(user=...) rather than runuser: the child we hold must be the
        # postmaster itself, so kill() really crashes the server.
        self._as_user: dict = {}
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("no 'postgres' system user: run scripts/bootstrap.sh") from None
            self._as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
            shutil.chown(workdir, "postgres", "postgres")
        self._initdb()

    def _initdb(self) -> None:
        pwfile = self.workdir / "pw"
        pwfile.write_text(self.password)
        if self._as_user:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            [
                _postgres_bin("initdb"), "-D", str(self.datadir), "-U", self.superuser,
                "--pwfile", str(pwfile), "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
            ],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir, **self._as_user,
        )
        pwfile.unlink()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(
            [
                _postgres_bin("postgres"), "-D", str(self.datadir), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.workdir}",
                "-c", "fsync=off", "-c", "max_connections=40",
                "-c", "logging_collector=off", "-c", "log_destination=stderr",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir, **self._as_user,
        )

    def dsn(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> dict:
        return {
            "host": "127.0.0.1", "port": self.port, "dbname": dbname,
            "user": user or self.superuser, "password": password if user else self.password,
        }

    def connect(self, dbname: str = "postgres", user: str | None = None, password: str | None = None, **kwargs):
        import psycopg2

        return psycopg2.connect(connect_timeout=5, **self.dsn(dbname, user, password), **kwargs)

    def _ready(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                self.connect().close()
                return
            except Exception:  # starting up: "the database system is starting up"
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self, name: str) -> str:
        conn = self.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')  # name comes from the test harness, never from input
        conn.close()
        return name


def make_workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"aiagents-{prefix}-"))
