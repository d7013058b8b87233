"""The storage and transaction-id faults, checked the same way on either sandbox (Docker's, Kubernetes')
through the harness's Sandbox: the data volumes really fill, PostgreSQL really refuses a write, and heal
gives everything back."""
from __future__ import annotations

import os
from pathlib import Path

import psycopg2.errors
import pytest

GIB = 1024 ** 3
BIG_WRITE = "CREATE TABLE disk_check AS SELECT repeat('x', 1000) AS filler FROM generate_series(1, 10000)"


def used(volume: Path) -> float:
    stats = os.statvfs(volume)
    return 1 - stats.f_bavail / stats.f_blocks


def check_disk_faults(sandbox, volumes: Path) -> None:
    postgres, broker = volumes / "postgres", volumes / "redis"
    assert os.statvfs(postgres).f_blocks * os.statvfs(postgres).f_frsize == GIB
    assert used(postgres) < 0.5 and used(broker) < 0.5
    sandbox.cli("fault", "db-disk-near-full", "0.9")
    assert 0.89 <= used(postgres) <= 0.91
    sandbox.sql(f"{BIG_WRITE}; DROP TABLE disk_check")  # room left: writes still go in
    said = sandbox.cli("fault", "db-disk-full").stdout
    assert os.statvfs(postgres).f_bavail == 0 and "No space left on device" in said
    with pytest.raises(psycopg2.errors.DiskFull):
        sandbox.sql(BIG_WRITE)
    assert sandbox.sql("SELECT count(*) FROM tenants")[0][0] >= 2  # reads are still served
    sandbox.cli("heal", "db-disk-full")
    assert used(postgres) < 0.5
    sandbox.sql(f"{BIG_WRITE}; DROP TABLE disk_check")
    sandbox.cli("fault", "redis-disk-near-full", "0.95")
    assert 0.94 <= used(broker) <= 0.96
    assert sandbox.redis().config_get("dir") == {"dir": "/data"}  # the volume is where Redis saves
    sandbox.cli("heal")
    assert used(broker) < 0.5
    refused = sandbox.cli("fault", "db-disk-near-full", "1.5", check=False)  # no share of the volume
    assert refused.returncode != 0 and "between 0 and 1" in refused.stderr and used(postgres) < 0.5


def oldest_unfrozen(sandbox) -> int:
    return sandbox.sql("SELECT max(age(datfrozenxid)) FROM pg_database")[0][0]


def check_xid_fault(sandbox) -> None:
    assert oldest_unfrozen(sandbox) < 200_000_000
    sandbox.cli("fault", "db-xid-wraparound")
    assert oldest_unfrozen(sandbox) > 1_200_000_000
    assert sandbox.sql("SHOW autovacuum") == [("off",)]
    sandbox.sql("CREATE TABLE xid_check (id int); INSERT INTO xid_check VALUES (1); DROP TABLE xid_check")
    sandbox.cli("heal", "db-xid-wraparound")
    assert oldest_unfrozen(sandbox) < 1_000_000
    assert sandbox.sql("SELECT current_setting('autovacuum'), current_setting('autovacuum_freeze_max_age')") == [
        ("on", "200000000")]
