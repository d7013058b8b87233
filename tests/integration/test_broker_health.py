"""The broker's own health against a real Redis: each way it refuses writes or connections is a finding,
read by both modules that touch Redis (issue 20), through Ansible."""

from __future__ import annotations

import time

import pytest

QUEUE_INFO = "aiagents.runbooks.redis_queue_info"
WORKERS_INFO = "aiagents.runbooks.celery_workers_info"


def queue_info(run_module, server, **args):
    run = run_module(QUEUE_INFO, {"url": server.url, **args})
    assert run.rc == 0, run.stdout
    return run.result


def broker_findings(result) -> dict[str, dict]:
    return {item["id"]: item for item in result["findings"] if item["id"].startswith("redis_")}


def test_a_healthy_broker_has_no_finding_and_its_figures_are_read(redis_server, run_module):
    client = redis_server.client()
    blocked = redis_server.client()
    waiter = __import__("threading").Thread(target=blocked.brpop, args=("nothing", 3), daemon=True)
    waiter.start()
    time.sleep(0.3)
    result = queue_info(run_module, redis_server)
    assert broker_findings(result) == {}
    broker = result["broker"]
    assert broker["role"] == "primary" and broker["read_only"] is False and broker["writes_refused"] is None
    assert broker["memory"]["used"] > 0 and broker["memory"]["max"] == 0 and broker["memory"]["ratio"] is None
    assert broker["clients"]["max"] == int(client.config_get("maxclients")["maxclients"])
    assert broker["clients"]["blocked"] == 1
    assert broker["persistence"] == {**broker["persistence"], "rdb_last_bgsave_status": "ok",
                                     "stop_writes_on_bgsave_error": True, "save": ""}
    # broker_health off: not read at all
    assert "broker" not in queue_info(run_module, redis_server, broker_health=False)


def test_memory_at_maxmemory_with_eviction_off_refuses_writes(redis_server, run_module):
    client = redis_server.client()
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(used * 9 // 10))
    with pytest.raises(Exception, match="maxmemory"):  # OOM, as redis-py words it
        client.rpush("enhancement_queue", "x" * 1000)
    result = queue_info(run_module, redis_server)
    full = broker_findings(result)["redis_memory_full"]
    assert full["severity"] == "critical" and "refuses every write (OOM)" in full["summary"]
    assert full["evidence"]["refused_writes"] >= 1 and full["evidence"]["policy"] == "noeviction"
    assert result["broker"]["writes_refused"] == "OOM"
    # Near it, not at it: high, writes still taken.
    client.config_set("maxmemory", str(int(client.info("memory")["used_memory"] * 1.05)))
    near = broker_findings(queue_info(run_module, redis_server))["redis_memory_full"]
    assert near["severity"] == "high" and "will be refused" in near["summary"]
    # Under the ratio (tunable): nothing.
    assert "redis_memory_full" not in broker_findings(
        queue_info(run_module, redis_server, broker_thresholds={"memory_ratio": 1.0}))


def test_an_evicting_policy_that_evicted_says_jobs_may_be_lost(redis_server, run_module):
    client = redis_server.client()
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) + 200_000))
    for n in range(400):
        client.set(f"filler:{n}", "x" * 2000)
    assert int(client.info("stats")["evicted_keys"]) > 0
    evicting = broker_findings(queue_info(run_module, redis_server))["redis_evicting"]
    assert evicting["severity"] == "high" and "queued jobs may have been dropped" in evicting["summary"]
    assert evicting["evidence"]["evicted_keys"] > 0


def test_a_failed_save_with_save_points_refuses_writes(redis_server, run_module):
    client = redis_server.client()
    client.config_set("save", "3600 1")
    client.config_set("dir", "/sys")  # nobody, root included, creates a file there
    client.bgsave(schedule=True)  # Redis may have started one of its own for the save point
    deadline = time.monotonic() + 20
    while client.info("persistence")["rdb_last_bgsave_status"] != "err" and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(Exception, match="MISCONF"):
        client.rpush("enhancement_queue", "x")
    # PING is refused too (MISCONF): the module still connects and reads
    result = queue_info(run_module, redis_server)
    failing = broker_findings(result)["redis_persistence_failing"]
    assert failing["severity"] == "critical" and "refuses every write (MISCONF)" in failing["summary"]
    assert result["broker"]["writes_refused"] == "MISCONF"
    # Without save points Redis takes writes despite the failed save: high, not critical.
    client.config_set("save", "")
    failing = broker_findings(queue_info(run_module, redis_server))["redis_persistence_failing"]
    assert failing["severity"] == "high" and "a restart would lose" in failing["summary"]


def test_a_read_only_replica_is_critical_and_keeps_its_data(redis_server, run_module):
    client = redis_server.client()
    client.rpush("enhancement_queue", '{"ticket_id": "T-1", "tenant_id": "acme-corp"}')
    client.execute_command("REPLICAOF", "127.0.0.1", "1")
    try:
        result = queue_info(run_module, redis_server)
        replica = broker_findings(result)["redis_read_only_replica"]
        assert replica["severity"] == "critical" and replica["evidence"]["primary"] == "127.0.0.1:1"
        assert result["depth"] == 1  # reads still work
    finally:
        client.execute_command("REPLICAOF", "NO", "ONE")


def test_few_free_client_slots(redis_server, run_module):
    client = redis_server.client()
    others = [redis_server.client() for _other in range(5)]
    for other in others:
        other.ping()
    client.config_set("maxclients", str(int(client.info("clients")["connected_clients"]) + 3))
    near = broker_findings(queue_info(run_module, redis_server))["redis_clients_near_limit"]
    assert near["severity"] == "high" and near["evidence"]["free"] <= 3


def test_a_server_refusing_config_is_judged_on_info_alone(redis_server, run_module):
    client = redis_server.client()
    client.execute_command("ACL", "SETUSER", "monitor", "on", ">monitor-pw", "~*", "&*", "+@all", "-config")
    url = f"redis://monitor:monitor-pw@127.0.0.1:{redis_server.port}/0"
    run = run_module(QUEUE_INFO, {"url": url})
    assert run.rc == 0, run.stdout
    persistence = run.result["broker"]["persistence"]
    assert persistence["stop_writes_on_bgsave_error"] is None and persistence["save"] is None
    assert run.result["broker"]["clients"]["max"] > 0  # from INFO
    assert "monitor-pw" not in run.stdout


def test_celery_workers_info_keeps_the_broker_findings_when_the_inspection_fails(redis_server, run_module):
    client = redis_server.client()
    client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) * 9 // 10))
    run = run_module(WORKERS_INFO, {"url": redis_server.url, "timeout": 0.3, "confirm_timeout": 0})
    assert run.rc != 0 and "maxmemory" in run.stdout, run.stdout
    assert [item["id"] for item in run.result["findings"]] == ["redis_memory_full"]
    assert run.result["broker"]["writes_refused"] == "OOM"


@pytest.mark.parametrize("thresholds, named", [
    ({"memory_ratio": 0}, "memory_ratio"), ({"clients_ratio": 1.5}, "clients_ratio"),
    ({"clients_min_free": -1}, "clients_min_free"), ({"memory_ratio": float("nan")}, "memory_ratio")])
def test_thresholds_out_of_range_are_refused_by_name(redis_server, run_module, thresholds, named):
    run = run_module(QUEUE_INFO, {"url": redis_server.url, "broker_thresholds": thresholds})
    assert run.rc != 0 and f"broker_thresholds.{named} must be" in run.stdout
