"""Container entry point of a worker: validate the settings (a bad one is a
crash with a traceback, as in production), run `celery worker`, and say how it
ended — an OOM kill leaves exit code 137 and a log line behind even after the
restart policy has started the container again."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from .config import Settings


def container_id() -> str:
    """With host networking every replica has the host's hostname; the
    container id (from the mount table) tells the Celery nodes apart."""
    match = re.search(r"/containers/([0-9a-f]{64})/", Path("/proc/self/mountinfo").read_text())
    return match.group(1)[:12] if match else "local"


def oom_kills() -> int:
    for path, pattern in (("/sys/fs/cgroup/memory/memory.oom_control", r"oom_kill (\d+)"),
                          ("/sys/fs/cgroup/memory.events", r"oom_kill (\d+)")):
        try:
            match = re.search(pattern, Path(path).read_text())
        except OSError:
            continue
        if match:
            return int(match.group(1))
    return 0


def main() -> int:
    settings = Settings()  # raises on a malformed setting: the crash-loop fault
    from .celery_app import CELERY_QUEUE

    # Kubernetes passes the pod name (unique per replica).
    node = f"worker@{os.environ.get('WORKER_NODE_ID') or container_id()}"
    cmd = ["celery", "-A", "aiagents_sandbox.worker", "worker", "--pool", "threads",
           f"--concurrency={settings.concurrency}", "-Q", CELERY_QUEUE, "-n", node,
           "--loglevel", "INFO", "--without-mingle", "--without-gossip"]
    print(f"starting {node}: queue format {settings.queue_format}, concurrency {settings.concurrency}, "
          f"HTTPX_TIMEOUT={settings.httpx_timeout:g} DATABASE_POOL_SIZE={settings.pool_size} "
          f"DATABASE_MAX_OVERFLOW={settings.max_overflow}", flush=True)
    before = oom_kills()
    child = subprocess.Popen(cmd, env={**os.environ, "WORKER_NODE_NAME": node})
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    code = child.wait()
    if code < 0:
        name = signal.Signals(-code).name
        if -code == signal.SIGKILL and oom_kills() > before:
            print(f"worker {node} was OOMKilled (SIGKILL by the kernel OOM killer, memory limit reached); "
                  "exit code 137", flush=True)
        else:
            print(f"worker {node} killed by {name}; exit code {128 - code}", flush=True)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main())
