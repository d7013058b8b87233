"""Benchmark: redis_queue_info against the runbook's shell pipeline, on 1M jobs.

Fills a real, throwaway redis-server with 1,000,000 jobs (once as plain JSON,
once as Celery envelopes; tenants skewed), then measures in the same run:

  pipeline   redis-cli LRANGE enhancement_queue 0 -1 | grep -o '"tenant_id":"[^"]*"' | sort | uniq -c
  module     ansible localhost -m aiagents.runbooks.redis_queue_info (the real Ansible call)

and prints wall time, peak memory and the slowest Redis command (SLOWLOG)
of each side by side, against the issue's targets: among them the Celery
scan beside the plain-JSON pipeline (goal <= 1.0x) and the time each of the
module's LRANGEs took inside Redis (goal <= 5 ms; SLOWLOG logs every command,
so the median, p99 and slowest are exact, and a busy machine shows in the
slowest). Usage:

    .venv/bin/python benchmarks/redis_queue.py [--jobs 1000000]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness.servers import RedisServer, make_workdir  # noqa: E402  (repo path set above)

QUEUE = "enhancement_queue"
TENANTS = ["acme-corp"] * 6 + ["globex"] * 2 + ["initech", "umbrella", "hooli", "stark-ind"]
LRANGE_GOAL_MS = 5.0
PIPELINE = ("redis-cli -p {port} LRANGE enhancement_queue 0 -1 "
            "| grep -o '\"tenant_id\": *\"[^\"]*\"' | sort | uniq -c")


def plain_jobs(count: int, now: float):
    pad = "x" * 96  # brings each job to about 200 bytes, like the platform's payloads
    rng = random.Random(7)
    for n in range(count):
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600 + n * 3600 / count))
        yield json.dumps({"ticket_id": f"TICKET-{n:07d}", "tenant_id": rng.choice(TENANTS),
                          "created_at": created, "note": pad}).encode()


def celery_jobs(count: int, now: float, template: dict):
    rng = random.Random(7)
    for n in range(count):
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600 + n * 3600 / count))
        kwargs = {"tenant_id": rng.choice(TENANTS), "ticket_id": f"TICKET-{n:07d}", "created_at": created}
        body = json.dumps([[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
        task_id = f"{n:08x}-0000-4000-8000-{n:012x}"
        envelope = {**template, "body": base64.b64encode(body.encode()).decode(),
                    "headers": {**template["headers"], "id": task_id, "root_id": task_id,
                                "kwargsrepr": repr(kwargs)},
                    "properties": {**template["properties"], "correlation_id": task_id, "delivery_tag": task_id}}
        yield json.dumps(envelope).encode()


def real_celery_template(server: RedisServer) -> dict:
    """One envelope made by Celery itself, so the benchmark's shape is the real one."""
    from tests.harness.queue_data import send_celery

    send_celery(server.url, [("TICKET-template", "acme-corp", "2026-01-01T00:00:00Z")])
    template = json.loads(server.client().rpop(QUEUE))
    server.client().delete(QUEUE)
    return template


def fill(server: RedisServer, items, layout: str) -> float:
    client = server.client()
    client.delete(QUEUE)
    push = client.rpush if layout == "plain" else client.lpush
    started = time.monotonic()
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == 10000:
            push(QUEUE, *batch)
            batch.clear()
    if batch:
        push(QUEUE, *batch)
    return time.monotonic() - started


def measure(command: list[str] | str, shell: bool = False, env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB, largest process of the tree) and stdout of a command.

    GNU time reports the peak of the command's own process tree, so each
    command is measured on its own (our RUSAGE_CHILDREN is a high-water mark).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        argv = ["/usr/bin/time", "-f", "%M", "-o", rss.name]
        argv += ["sh", "-c", command] if shell else list(command)
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
        wall = time.monotonic() - started
        peak_kib = float(rss.read().strip().splitlines()[-1])
    return wall, peak_kib / 1024, done.stdout


def slowest_command(server: RedisServer) -> tuple[float, str]:
    entries = server.client().slowlog_get(100000)
    if not entries:
        return 0.0, "-"
    worst = max(entries, key=lambda entry: entry["duration"])
    command = worst["command"].decode(errors="replace") if isinstance(worst["command"], bytes) else worst["command"]
    return worst["duration"] / 1000.0, command[:40]


def lrange_latencies(server: RedisServer) -> list[float]:
    """Every LRANGE's time inside Redis since the last reset, in ms, fastest first (SLOWLOG logs them all)."""
    entries = server.client().slowlog_get(100000)
    return sorted(entry["duration"] / 1000.0 for entry in entries
                  if (entry["command"].decode(errors="replace") if isinstance(entry["command"], bytes)
                      else entry["command"]).upper().startswith("LRANGE "))


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))] if values else 0.0


def reset_slowlog(server: RedisServer, max_len: int = 100000) -> None:
    """Log every command from now on (up to max_len of them), and nothing from before."""
    client = server.client()
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", max_len)
    client.slowlog_reset()


def run_module(server: RedisServer) -> tuple[float, float, dict]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    args = json.dumps({"url": server.url})
    wall, peak, out = measure(["ansible", "localhost", "-m", "aiagents.runbooks.redis_queue_info", "-a", args], env=env)
    # ansible.cfg's profile_tasks prints a timing line before the JSON document.
    document, _end = json.JSONDecoder().raw_decode(out[out.find("{"):])
    result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return wall, peak, result


def row(label: str, wall: float, peak: float, slow: tuple[float, str], extra: str = "") -> str:
    return f"  {label:<34} {wall:8.2f} s {peak:9.1f} MiB   {slow[0]:7.2f} ms ({slow[1]}) {extra}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    args = parser.parse_args()
    if not shutil.which("redis-cli"):
        sys.exit("redis-cli not found: run scripts/bootstrap.sh")

    workdir = make_workdir("bench")
    server = RedisServer(workdir)
    server.start()
    try:
        now = time.time()
        template = real_celery_template(server)
        print(f"redis_queue_info vs the runbook's shell pipeline, {args.jobs:,} jobs, tenants skewed (acme-corp 50%)")
        print(f"  {'':<34} {'wall':>10} {'peak RSS':>13}   slowest Redis command")
        results = {}
        for layout in ("plain", "celery"):
            items = plain_jobs(args.jobs, now) if layout == "plain" else celery_jobs(args.jobs, now, template)
            filled = fill(server, items, layout)
            size = server.client().memory_usage(QUEUE) or 0
            print(f"{layout}: filled in {filled:.1f} s, list holds {size / 2**20:.0f} MiB")
            reset_slowlog(server)
            pipe_wall, pipe_peak, _out = measure(PIPELINE.format(port=server.port), shell=True)
            pipe_slow = slowest_command(server)
            reset_slowlog(server)
            mod_wall, mod_peak, result = run_module(server)
            mod_slow = slowest_command(server)
            lranges = lrange_latencies(server)
            assert result["depth"] == args.jobs and result["scanned"] == args.jobs, result.get("msg")
            assert sum(row["jobs"] for row in result["tenants"]) == args.jobs, result["tenants"]
            results[layout] = (pipe_wall, mod_wall, result, lranges)
            print(row("shell pipeline", pipe_wall, pipe_peak, pipe_slow,
                      "(Celery bodies are base64: it counts nothing)" if layout == "celery" else ""))
            print(row("redis_queue_info via ansible", mod_wall, mod_peak, mod_slow))
            processes = result.get("scan_processes", 1)
            print(row(f"  module's own scan ({processes} process{'es' if processes > 1 else ''})",
                      result["scan_seconds"], result["peak_rss_mb"], mod_slow))
        plain_pipe, plain_mod, plain, _plain_lranges = results["plain"]
        _celery_pipe, celery_mod, celery, celery_lranges = results["celery"]
        print(f"LRANGE inside Redis during the module's scan (SLOWLOG, every command), goal <= {LRANGE_GOAL_MS:.0f} ms:")
        for layout in ("plain", "celery"):
            lranges = results[layout][3]
            over = sum(1 for took in lranges if took > LRANGE_GOAL_MS)
            print(f"  {layout:<7} {len(lranges):6d} LRANGEs   median {percentile(lranges, 0.5):5.2f} ms   "
                  f"p99 {percentile(lranges, 0.99):5.2f} ms   slowest {percentile(lranges, 1.0):6.2f} ms   "
                  f"over the goal: {over}")
        print(f"celery: {args.jobs:,} envelopes against the plain-JSON shell pipeline ({plain_pipe:.2f} s), goal <= 1.0x:")
        print(f"  module's own scan {celery['scan_seconds']:6.2f} s = {celery['scan_seconds'] / plain_pipe:4.2f}x   "
              f"whole ansible call {celery_mod:6.2f} s = {celery_mod / plain_pipe:4.2f}x")
        print("targets:")
        checks = [
            ("plain: module scan <= 0.3x pipeline", plain["scan_seconds"] / plain_pipe, 0.3),
            ("plain: whole ansible call <= 0.5x pipeline", plain_mod / plain_pipe, 0.5),
            ("plain: module peak memory <= 64 MiB", plain["peak_rss_mb"] / 64, 1.0),
            ("celery: whole call <= 1.0x plain pipeline", celery_mod / plain_pipe, 1.0),
            ("celery: module scan <= 1.0x plain pipeline", celery["scan_seconds"] / plain_pipe, 1.0),
            ("celery: module peak memory <= 64 MiB", celery["peak_rss_mb"] / 64, 1.0),
            (f"celery: slowest LRANGE <= {LRANGE_GOAL_MS:.0f} ms", percentile(celery_lranges, 1.0) / LRANGE_GOAL_MS, 1.0),
        ]
        for label, ratio, limit in checks:
            unit = " of goal" if "LRANGE" in label else " of budget" if "memory" in label else "x"
            print(f"  {label:<46} {ratio:6.2f}{unit}  {'met' if ratio <= limit else 'MISSED'}")
        return 0
    finally:
        server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
