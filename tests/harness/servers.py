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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
            # CONFIG SET dir from loopback: a test makes the background save fail (a directory it cannot write)
            "--enable-protected-configs", "local",
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

    def __init__(self, workdir: Path, settings: dict[str, str] | None = None, checksums: bool = False) -> None:
        self.workdir = workdir
        self.settings = dict(settings or {})  # extra server settings (-c name=value)
        self.checksums = checksums  # initdb --data-checksums: reads verify each page
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
                *(["--data-checksums"] if self.checksums else []),
            ],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir, **self._as_user,
        )
        pwfile.unlink()

    def _command(self) -> list[str]:
        return [
            _postgres_bin("postgres"), "-D", str(self.datadir), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.workdir}",
            "-c", "fsync=off", "-c", "max_connections=40",
            "-c", "logging_collector=off", "-c", "log_destination=stderr",
            *(arg for name, value in self.settings.items() for arg in ("-c", f"{name}={value}")),
        ]

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=self.workdir, **self._as_user)

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


class PidNamespacePostgresServer(PostgresServer):
    """A PostgreSQL server alone in a PID namespace of its own, logging every connection to `log`.

    In its namespace nothing forks but the postmaster, and Linux hands out pids
    in order, so the backend of the next connection gets the pid after the last
    one's: a test can know which backend a connection will have before it is
    made - the module's own, say. Autovacuum and parallel workers are off, so
    no background process takes a pid in between. Needs root (namespaces), and
    the server runs as the `postgres` user as PostgresServer's does.
    """

    def __init__(self, workdir: Path) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("PidNamespacePostgresServer needs root to create a PID namespace")
        super().__init__(workdir, {"autovacuum": "off", "max_parallel_workers_per_gather": "0",
                                   "log_connections": "on", "log_disconnections": "on",
                                   "log_line_prefix": "[%p] app=%a "})
        self.log = workdir / "postgres.log"

    def _spawn(self) -> subprocess.Popen:
        with open(self.log, "ab") as log:
            return subprocess.Popen(
                ["unshare", "--pid", "--fork", "setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups",
                 "--", *self._command()],
                stdout=subprocess.DEVNULL, stderr=log, cwd=self.workdir,
            )

    def _postmaster(self) -> int | None:
        """The postmaster's pid as seen from here (it is pid 1 in its namespace), a child of unshare."""
        if not self.running:
            return None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def stop(self, timeout: float = 15.0) -> None:
        postmaster = self._postmaster()
        if postmaster is not None:
            os.kill(postmaster, signal.SIGINT)  # fast shutdown; unshare exits with it
        if self.running:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        postmaster = self._postmaster()
        if postmaster is not None:
            os.kill(postmaster, signal.SIGKILL)  # the namespace's init: the kernel kills the rest with it
        super().kill()

    def next_backend_pid(self) -> int:
        """The pid the backend of the next connection will have (if nothing else connects meanwhile)."""
        conn = self.connect()
        try:
            return conn.get_backend_pid() + 1
        finally:
            conn.close()

    def log_of(self, pid: int) -> list[str]:
        """What the server logged for one backend (pids as the server sees them)."""
        return [line for line in self.log.read_text().splitlines() if line.startswith(f"[{pid}] ")]


def make_workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"aiagents-{prefix}-"))


@contextmanager
def throwaway(make: Callable[[Path], _Server], prefix: str, end: str = "kill") -> Iterator[_Server]:
    """A server of its own in a fresh directory: started, then ended (`kill`, like
    a crash, or `stop`, gracefully) and its directory removed, whatever happened."""
    workdir = make_workdir(prefix)
    server = make(workdir)
    try:
        server.start()
        yield server
    finally:
        getattr(server, end)()
        shutil.rmtree(workdir, ignore_errors=True)
