"""The sandbox's data volumes: PostgreSQL's and Redis's data live on small
filesystems of their own, so that "the volume is nearly full" is a real state
the runbooks can read (`df`) and PostgreSQL can really refuse writes for lack
of space, as a 1Gi PersistentVolume in production does.

Each volume is a size-limited tmpfs mounted on a directory under the
sandbox's state; both platforms use the same code (Docker bind-mounts the
directory, Kubernetes binds a hostPath PersistentVolume to it). A volume lasts
until the platform's `down` (or the machine's restart): the sandbox keeps no
data beyond that anyway.

Stdlib only: the Docker sandbox's script runs with any python3.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Sizes as tmpfs's `size=` takes them, those of the Kubernetes sandbox's claims (sandbox/k8s); PostgreSQL's data
# is about 50 MiB when initialised. Memory is taken only as they fill.
SIZES = {"postgres": "1g", "redis": "256m"}
# What a disk-filling fault writes; `heal` removes it. Not a file either program reads.
BALLAST = ".sandbox-ballast"


def is_mounted(path: Path) -> bool:
    target = str(path.resolve()) if path.exists() else str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split()[4].replace("\\040", " ") == target for line in handle)


def mount(root: Path, name: str) -> Path:
    """The volume `name` under `root`, mounted (already mounted: left as it is)."""
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    if not is_mounted(path):
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZES[name]},mode=0755",
                                 f"aiagents-{name}", str(path)], capture_output=True, text=True, check=False)
        if result.returncode:
            raise SystemExit(f"sandbox: cannot mount the {name} volume on {path} "
                             f"(it needs root): {result.stderr.strip()}")
    return path


def unmount(root: Path) -> list[str]:
    """Every volume under `root` unmounted; returns those that would not."""
    left = []
    for name in SIZES:
        path = root / name
        if path.exists() and is_mounted(path):
            if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
                left.append(str(path))
    return left


def usage(path: Path) -> tuple[int, int]:
    """(size, available) in bytes, as df counts them."""
    stats = os.statvfs(path)
    return stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize


def fill(path: Path, ratio: float | None = None, leave: int | None = None) -> str:
    """The volume filled with ballast up to `ratio` of its size, or until only `leave` bytes are free."""
    drain(path)
    size, available = usage(path)
    target_free = leave if leave is not None else int(size * (1 - float(ratio)))
    grow = available - max(target_free, 0)
    if grow <= 0:
        return f"{path.name} volume already {1 - available / size:.0%} full"
    with open(path / BALLAST, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, grow)
    size, available = usage(path)
    return f"{path.name} volume {1 - available / size:.0%} full ({available // 1048576} MiB free of {size // 1048576})"


def drain(path: Path) -> bool:
    """The ballast removed; whether there was any."""
    try:
        (path / BALLAST).unlink()
        return True
    except FileNotFoundError:
        return False
