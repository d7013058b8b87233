"""The broker's health judged from INFO as redis-py parses it: what refuses writes, and what only may."""
from __future__ import annotations

from ansible_collections.aiagents.runbooks.plugins.module_utils._broker import describe, findings

HEALTHY = {"redis_version": "7.0.15", "role": "master", "used_memory": 2_000_000, "maxmemory": 0,
           "maxmemory_policy": "noeviction", "connected_clients": 10, "maxclients": 10000, "blocked_clients": 2,
           "evicted_keys": 0, "rejected_connections": 0, "rdb_last_bgsave_status": "ok", "aof_enabled": 0,
           "aof_last_write_status": "ok"}
SETTINGS = {"stop-writes-on-bgsave-error": "yes", "save": "3600 1", "maxclients": "10000"}


def judged(info=None, settings=None, **thresholds):
    health = describe({**HEALTHY, **(info or {})}, SETTINGS if settings is None else settings)
    return health, {item["id"]: item for item in findings(health, thresholds)}


def test_a_healthy_broker_takes_writes_and_has_no_finding():
    health, found = judged()
    assert found == {} and health["writes_refused"] is None and health["clients"]["blocked"] == 2


def test_each_refusal_of_writes_names_its_error():
    assert judged({"role": "slave", "master_host": "10.0.0.5", "master_port": 6379, "slave_read_only": 1,
                   "master_link_status": "down"})[0]["writes_refused"] == "READONLY"
    assert judged({"maxmemory": 1_900_000})[0]["writes_refused"] == "OOM"
    assert judged({"rdb_last_bgsave_status": "err"})[0]["writes_refused"] == "MISCONF"
    assert judged({"aof_enabled": 1, "aof_last_write_status": "err"}, {**SETTINGS, "save": ""})[0][
        "writes_refused"] == "MISCONF"
    # a writable replica takes writes
    assert judged({"role": "slave", "slave_read_only": 0})[1] == {}


def test_a_failed_save_refuses_writes_only_with_stop_writes_and_save_points():
    assert judged({"rdb_last_bgsave_status": "err"})[1]["redis_persistence_failing"]["severity"] == "critical"
    for settings in ({**SETTINGS, "save": ""}, {**SETTINGS, "stop-writes-on-bgsave-error": "no"}):
        failing = judged({"rdb_last_bgsave_status": "err"}, settings)[1]["redis_persistence_failing"]
        assert failing["severity"] == "high" and "a restart would lose" in failing["summary"]
    # CONFIG refused: Redis's defaults may apply - critical, and the summary says it was assumed
    unknown = judged({"rdb_last_bgsave_status": "err"}, {})[1]["redis_persistence_failing"]
    assert unknown["severity"] == "critical" and "CONFIG was refused" in unknown["summary"]


def test_memory_near_and_at_its_limit():
    assert judged({"maxmemory": 2_100_000})[1]["redis_memory_full"]["severity"] == "high"
    assert judged({"maxmemory": 2_100_000}, memory_ratio=0.99)[1] == {}
    evicting = judged({"maxmemory": 2_100_000, "maxmemory_policy": "allkeys-lru"})[1]["redis_evicting"]
    assert evicting["severity"] == "medium"  # about to evict; none evicted yet
    evicted = judged({"maxmemory_policy": "volatile-lru", "evicted_keys": 12})[1]["redis_evicting"]
    assert evicted["severity"] == "high" and evicted["evidence"]["evicted_keys"] == 12


def test_client_slots_by_share_or_by_what_is_left():
    assert judged({"connected_clients": 9000})[1]["redis_clients_near_limit"]["severity"] == "high"
    assert judged({"connected_clients": 30, "maxclients": 34})[1]["redis_clients_near_limit"]["evidence"]["free"] == 4
    assert judged({"connected_clients": 34, "maxclients": 34})[1]["redis_clients_near_limit"]["severity"] == "critical"
    # maxclients from CONFIG when INFO lacks it (before Redis 7)
    info = {key: value for key, value in HEALTHY.items() if key != "maxclients"}
    health = describe({**info, "connected_clients": 30}, {**SETTINGS, "maxclients": "32"})
    assert health["clients"]["max"] == 32 and findings(health)[0]["id"] == "redis_clients_near_limit"


def test_commands_refused_since_start_are_evidence():
    _health, found = judged({"maxmemory": 1_900_000, "errorstat_OOM": {"count": 7}})
    assert found["redis_memory_full"]["evidence"]["refused_writes"] == 7
