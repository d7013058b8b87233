"""Fault-injection operations that need the platform's client libraries;
run inside the platform image by sandbox/bin/sandbox:

    python -m aiagents_sandbox.ops flood --count N --skew S --age-minutes M
    python -m aiagents_sandbox.ops unflood | poison --count N | unpoison
    python -m aiagents_sandbox.ops clean      unflood, unpoison and unrename-metrics at once
    python -m aiagents_sandbox.ops hog-memory --node worker@ID
    python -m aiagents_sandbox.ops freeze --node worker@ID
    python -m aiagents_sandbox.ops hold exhaust|long-query [SECONDS]|lock
    python -m aiagents_sandbox.ops init-metrics TENANT...   these tenants' counters at 0

Injected jobs are recognisable by their ticket ids (FLOOD-*, POISON-*) so
heal removes exactly those.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import psycopg2
import redis

from . import metrics
from .celery_app import app, settings
from .config import env_int
from .jobqueue import enqueue, remove_where, utc_iso

TENANTS = ("acme-corp", "globex")
POISON_TICKET = "POISON-0001"


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


def flood(count: int, skew: float, age_minutes: float) -> None:
    """N jobs, `skew` of them for acme-corp, created_at spread over the last
    `age_minutes` (oldest first, as a real backlog would be)."""
    client, rng = broker(), random.Random(7)
    now = datetime.now(timezone.utc)
    for i in range(count):
        tenant = TENANTS[0] if rng.random() < skew else TENANTS[1]
        created = now - timedelta(minutes=age_minutes * (count - i) / count)
        # Celery format: spread over the priority levels so the siblings show.
        enqueue(client, f"FLOOD-{i:05d}", tenant, utc_iso(created),
                priority=(0, 3, 6, 9)[i % 4] if settings.queue_format == "celery" else None)
    print(f"queued {count} jobs ({settings.queue_format} format)")


def sdp_control(method: str, path: str, body: dict | None = None) -> None:
    port = env_int("SDP_CONTROL_PORT", 18081)
    request = urllib.request.Request(f"http://{settings.bind}:{port}{path}", method=method,
                                     data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def poison(count: int) -> None:
    sdp_control("POST", "/poison", {"ticket_id": POISON_TICKET})
    for _ in range(count):
        enqueue(broker(), POISON_TICKET, TENANTS[0])
    print(f"queued {count} poison jobs for {POISON_TICKET}")


def hog_memory(node: str) -> None:
    replies = app.control.broadcast("sandbox_hog_memory", arguments={"mb": 4096}, destination=[node],
                                    reply=True, timeout=3)
    if not replies:
        sys.exit(f"FAILED: {node} did not answer")
    print(replies)


def freeze(node: str) -> None:
    replies = app.control.broadcast("sandbox_freeze", destination=[node], reply=True, timeout=3)
    if not replies:
        sys.exit(f"FAILED: {node} did not answer")
    print(replies)


def init_metrics(tenants: list[str]) -> None:
    """Each given tenant's outcome counters start at 0 (never lowering a count)."""
    metrics.initialise(broker(), tenants)
    print(f"counters at 0 for {len(tenants)} tenants")


def connect(application_name: str, admin: bool = False) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(settings.dsn(admin) + f" application_name={application_name}")
    conn.autocommit = True
    return conn


def hold(kind: str, args: list[str]) -> None:
    """Hold a database fault until this process is killed (`sandbox heal`)."""
    held: list[psycopg2.extensions.connection] = []
    if kind == "exhaust":
        # Take every slot an ordinary role can get; the app's own
        # connections then fail with "too many clients" / reserved slots.
        while True:
            try:
                held.append(connect("aiagents-fault-exhaust"))
            except psycopg2.OperationalError as exc:
                print(f"holding {len(held)} connections; next failed: {str(exc).strip()}", flush=True)
                break
    elif kind == "long-query":
        seconds = int(args[0]) if args else 3600
        conn = connect("aiagents-fault-long-query")
        held.append(conn)
        # The sleep over the count's one row: in a join the planner may scan the table first, and with no row
        # visible to the app role (RLS, no tenant set) never call pg_sleep at all.
        threading.Thread(target=lambda: conn.cursor().execute(
            "SELECT pg_sleep(%s) FROM (SELECT count(*) FROM ticket_history) AS visible", (seconds,)),
            daemon=True).start()
    elif kind == "lock":
        # Held by the admin role, as a migration or maintenance job would.
        blocker = connect("aiagents-fault-lock-blocker", admin=True)
        blocker.autocommit = False
        blocker.cursor().execute("LOCK TABLE enhancement_history IN ACCESS EXCLUSIVE MODE")
        waiter = connect("aiagents-fault-lock-waiter")
        held += [blocker, waiter]
        threading.Thread(target=lambda: waiter.cursor().execute(
            "SELECT count(*) FROM enhancement_history"), daemon=True).start()
    else:
        sys.exit(f"FAILED: unknown hold kind {kind}")
    time.sleep(1)
    print("READY", flush=True)
    while True:
        time.sleep(3600)


def unflood() -> None:
    print(f"removed {remove_where(broker(), lambda job: str(job.get('ticket_id', '')).startswith('FLOOD-'))}")


def unpoison() -> None:
    print(f"removed {remove_where(broker(), lambda job: job.get('ticket_id') == POISON_TICKET)}")
    sdp_control("DELETE", "/poison")


def unrename_metrics() -> None:
    print(f"restored {broker().delete(metrics.RENAMES)}")


# The broker's own failures. Each is a setting changed at runtime (CONFIG SET, REPLICAOF), as an operator
# or a bad deploy would; heal puts the sandbox's own settings back (redis-server's command line).
BROKER_DEFAULTS = {"maxmemory": "0", "maxmemory-policy": "noeviction", "maxclients": "10000", "save": "",
                   "dir": "/data"}
# A port nothing listens on: the replica keeps its data (no sync ever happens) and refuses writes.
NO_PRIMARY_PORT = 1


def broker_fault(kind: str) -> None:
    client = broker()
    if kind == "memory-full":
        # Under what Redis uses (clear of its ups and downs), eviction off: every write that needs memory is
        # refused (OOM).
        used = int(client.info("memory")["used_memory"])
        limit = max(used * 8 // 10, 1 << 20)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", str(limit))
        print(f"maxmemory {limit} bytes (Redis uses {used}), eviction off")
    elif kind == "clients-near-limit":
        # A few slots left: the runbooks can still connect, a new worker or API process may not.
        connected = int(client.info("clients")["connected_clients"])
        client.config_set("maxclients", str(connected + 4))
        print(f"maxclients {connected + 4} ({connected} connected)")
    elif kind == "save-failing":
        # Save points set, and a directory Redis cannot write (sysfs is read-only in a container): the
        # background save fails, and stop-writes-on-bgsave-error (on by default) refuses writes (MISCONF).
        client.config_set("save", "3600 1 300 100 60 10000")
        client.config_set("dir", "/sys")
        # Redis may start a save of its own as soon as the save points are set: SCHEDULE waits for it then.
        client.bgsave(schedule=True)
        deadline = time.monotonic() + 30
        while client.info("persistence")["rdb_last_bgsave_status"] != "err" and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"last background save: {client.info('persistence')['rdb_last_bgsave_status']}")
    elif kind == "read-only-replica":
        client.execute_command("REPLICAOF", "127.0.0.1", str(NO_PRIMARY_PORT))
        print(f"a replica of 127.0.0.1:{NO_PRIMARY_PORT} (unreachable): read-only, its data kept")
    else:
        sys.exit(f"unknown broker fault {kind!r}")


def broker_heal() -> None:
    client = broker()
    try:
        client.execute_command("REPLICAOF", "NO", "ONE")
    except redis.ConnectionError:  # stopped (redis-down): started again with the sandbox's own settings
        print("redis is not running: nothing to restore")
        return
    for name, value in BROKER_DEFAULTS.items():
        client.config_set(name, value)
    if client.info("persistence")["rdb_last_bgsave_status"] != "ok":
        # A good save clears the failed status (save points are off again: no more saves after it); one
        # still running is waited for (SCHEDULE).
        client.bgsave(schedule=True)
        deadline = time.monotonic() + 30
        while client.info("persistence")["rdb_last_bgsave_status"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.2)
    print("broker settings restored")


UNDO = {"unflood": unflood, "unpoison": unpoison, "unrename-metrics": unrename_metrics}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="aiagents_sandbox.ops")
    sub = parser.add_subparsers(dest="op", required=True)
    p = sub.add_parser("flood")
    p.add_argument("--count", type=int, default=150)
    p.add_argument("--skew", type=float, default=0.8)
    p.add_argument("--age-minutes", type=float, default=45)
    sub.add_parser("unflood")
    p = sub.add_parser("poison")
    p.add_argument("--count", type=int, default=2)
    sub.add_parser("unpoison")
    p = sub.add_parser("hog-memory")
    p.add_argument("--node", required=True)
    p = sub.add_parser("freeze")
    p.add_argument("--node", required=True)
    p = sub.add_parser("hold")
    p.add_argument("kind")
    p.add_argument("args", nargs="*")
    p = sub.add_parser("init-metrics")
    p.add_argument("tenants", nargs="*")
    p = sub.add_parser("rename-metric")
    p.add_argument("old")
    p.add_argument("new")
    sub.add_parser("unrename-metrics")
    p = sub.add_parser("broker-fault")
    p.add_argument("kind", choices=["memory-full", "clients-near-limit", "save-failing", "read-only-replica"])
    sub.add_parser("broker-heal")
    # broker-heal, unflood, unpoison and unrename-metrics in one process: what a full heal runs
    sub.add_parser("clean")
    opts = parser.parse_args(argv)
    if opts.op == "flood":
        flood(opts.count, opts.skew, opts.age_minutes)
    elif opts.op == "poison":
        poison(opts.count)
    elif opts.op == "rename-metric":
        broker().hset(metrics.RENAMES, opts.old, opts.new)
        print(f"{opts.old} exported as {opts.new}")
    elif opts.op in ("unflood", "unpoison", "unrename-metrics", "clean"):
        if opts.op == "clean":
            broker_heal()  # first: the others write to Redis
        for op in (("unflood", "unpoison", "unrename-metrics") if opts.op == "clean" else (opts.op,)):
            UNDO[op]()
    elif opts.op == "broker-fault":
        broker_fault(opts.kind)
    elif opts.op == "broker-heal":
        broker_heal()
    elif opts.op == "init-metrics":
        init_metrics(opts.tenants)
    elif opts.op == "hog-memory":
        hog_memory(opts.node)
    elif opts.op == "freeze":
        freeze(opts.node)
    elif opts.op == "hold":
        try:
            hold(opts.kind, opts.args)
        except psycopg2.Error as exc:
            sys.exit(f"FAILED: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
