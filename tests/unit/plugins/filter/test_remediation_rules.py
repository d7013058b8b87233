"""Resolve's changes are relative to what runs and bounded: the rules, without a platform."""
from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import (
    broker_limits,
    memory_bytes,
    memory_target,
    pool_plan,
    redis_login,
    scale_target,
)

MIB, GIB = 1024 ** 2, 1024 ** 3


@pytest.mark.parametrize("text, expected", [
    ("512m", 512 * MIB), ("1g", GIB), ("1Gi", GIB), ("512Mi", 512 * MIB), ("4G", 4 * 10 ** 9),
    ("805306368", 805306368), (805306368, 805306368), ("1.5Gi", int(1.5 * GIB)), ("100k", 100 * 1024),
])
def test_memory_sizes_read_in_either_platforms_notation(text, expected):
    assert memory_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "1x", "", True, "-1g"])
def test_a_memory_size_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError, match="not a size"):
        memory_bytes(text)


@pytest.mark.parametrize("current, configured, ceiling, target, change", [
    (2, 4, 8, 4, True),     # fewer than configured: raised to it
    (6, 4, 8, 6, False),    # more than configured run now: never lowered
    (10, 4, 8, 10, False),  # above the ceiling already: never lowered either
    (3, 12, 8, 8, True),    # configured above the ceiling: capped
    (8, 12, 8, 8, False),   # at the ceiling: not scaled, escalated
    (0, 2, 8, 2, True),     # none: the configured count
])
def test_scaling_never_lowers_and_is_capped(current, configured, ceiling, target, change):
    plan = scale_target(current, configured, ceiling)
    assert (plan["target"], plan["change"]) == (target, change)
    assert plan["target"] >= current


def test_scaling_at_the_ceiling_says_so():
    assert "ceiling of 8" in scale_target(8, 12, 8)["reason"]


@pytest.mark.parametrize("current, factor, cap, limit, change", [
    (512 * MIB, 1.5, "4Gi", 768 * MIB, True),       # x1.5 of what runs
    (3 * GIB, 1.5, "4Gi", 4 * GIB, True),           # capped
    (4 * GIB, 1.5, "4Gi", 4 * GIB, False),          # at the cap: escalated, unchanged
    (5 * GIB, 1.5, "4Gi", 5 * GIB, False),          # above the cap: never lowered
    ("512m", 2, "1g", GIB, True),
])
def test_memory_is_raised_from_the_current_limit_and_capped(current, factor, cap, limit, change):
    plan = memory_target(current, factor, cap)
    assert (plan["limit_bytes"], plan["change"]) == (limit, change)
    assert plan["limit_bytes"] >= memory_bytes(current)


def test_no_memory_limit_to_start_from_is_escalated():
    plan = memory_target(None)
    assert plan["change"] is False and "no memory limit" in plan["reason"]


def test_a_factor_that_would_not_raise_is_refused():
    with pytest.raises(ValueError, match="above 1"):
        memory_target(512 * MIB, 0.5)


RAISED = {"DATABASE_POOL_SIZE": 20, "DATABASE_MAX_OVERFLOW": 30}
NORMAL = {"DATABASE_POOL_SIZE": 5, "DATABASE_MAX_OVERFLOW": 10}


def workers(count, pool="1", overflow="0", concurrency="4", running=True):
    return [{"name": f"w{n}", "running": running, "env": {"DATABASE_POOL_SIZE": pool, "DATABASE_MAX_OVERFLOW": overflow,
                                                          "CELERY_CONCURRENCY": concurrency}} for n in range(count)]


def test_the_issue_arithmetic_refuses_20_30_on_100_connections():
    # 2 workers x 4 processes + 1 api = 9 pools x 50 + 10 = 460 > 100; 9 x 15 + 10 = 145 > 100 too.
    plan = pool_plan(workers(2), 100, [RAISED, NORMAL])
    assert [item["needed"] for item in plan["plans"]] == [460, 145]
    assert plan["target"] is None
    assert "460 of max_connections 100" in plan["explanation"] and "escalate" in plan["explanation"]


def test_the_first_setting_that_fits_is_chosen():
    plan = pool_plan(workers(2), 200, [RAISED, NORMAL])
    assert plan["processes"] == 9
    assert (plan["target"]["DATABASE_POOL_SIZE"], plan["target"]["DATABASE_MAX_OVERFLOW"]) == (5, 10)
    plan = pool_plan(workers(1, concurrency="2"), 500, [RAISED, NORMAL])
    assert plan["target"]["DATABASE_POOL_SIZE"] == 20  # 3 x 50 + 10 = 160


def test_stopped_workers_hold_no_pool_and_the_reserve_counts():
    assert pool_plan(workers(2, running=False), 200, [NORMAL])["processes"] == 1
    assert pool_plan(workers(2), 200, [NORMAL], reserve=65)["target"]["needed"] == 200  # 9 x 15 + 65: just fits
    assert pool_plan(workers(2), 200, [NORMAL], reserve=66)["target"] is None


def test_a_setting_no_larger_than_the_current_one_is_not_a_raise():
    assert pool_plan(workers(2, pool="10", overflow="20"), 1000, [NORMAL])["target"] is None


def test_an_unknown_max_connections_changes_nothing():
    plan = pool_plan(workers(2), None, [NORMAL])
    assert plan["target"] is None and "unknown" in plan["explanation"]


def test_the_concurrency_default_applies_when_the_workers_do_not_say():
    plan = pool_plan([{"name": "w", "running": True, "env": {}}], 1000, [NORMAL], concurrency=8)
    assert plan["processes"] == 9


def test_after_a_database_restart_only_workers_still_failing_on_it_are_named():
    from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import failing_on

    def worker(name, unreachable=(), running=True, jobs=0):
        return {"name": name, "running": running, "signals": {"unreachable": list(unreachable), "jobs_succeeded": jobs}}

    containers = [worker("w1", ["postgres"]), worker("w2"),  # w2: idle, nothing logged since - left alone
                  worker("w3", ["redis"]), worker("w4", ["postgres"], running=False), worker("w5", jobs=3)]
    assert failing_on(containers, "postgres") == ["w1"]
    assert failing_on(containers, "redis") == ["w3"]
    assert failing_on([], "postgres") == []


def test_a_bad_cap_or_factor_is_refused_naming_the_option():
    options = ["worker_failures_memory_factor", "worker_failures_memory_cap"]
    with pytest.raises(ValueError, match=r"^worker_failures_memory_cap: memory size 'lots' is not a size"):
        memory_target(512 * MIB, 1.5, "lots", options=options)
    with pytest.raises(ValueError, match=r"^worker_failures_memory_factor 0.5 must be above 1"):
        memory_target(512 * MIB, 0.5, "4Gi", options=options)


def _broker(used=0, maxmemory=0, connected=10, maxclients=10000):
    return {"memory": {"used": used, "max": maxmemory}, "clients": {"connected": connected, "max": maxclients}}


def test_broker_limits_are_raised_from_the_current_ones_and_capped():
    plan = broker_limits(_broker(used=95 * MIB, maxmemory=100 * MIB, connected=30, maxclients=34),
                         ["redis_memory_full", "redis_clients_near_limit"])
    assert [(item["name"], item["value"], item["finding"]) for item in plan["raise"]] == [
        ("maxmemory", str(150 * MIB), "redis_memory_full"), ("maxclients", "51", "redis_clients_near_limit")]
    assert plan["refused"] == []
    capped = broker_limits(_broker(maxmemory=3 * GIB), ["redis_memory_full"], memory_cap="4Gi")
    assert capped["raise"][0]["value"] == str(4 * GIB) and "capped at 4096 MiB" in capped["raise"][0]["reason"]


def test_broker_limits_at_the_cap_are_refused_and_nothing_is_ever_lowered():
    plan = broker_limits(_broker(maxmemory=8 * GIB, maxclients=10000),
                         ["redis_memory_full", "redis_clients_near_limit"], memory_cap="4Gi", clients_cap=10000)
    assert plan["raise"] == []
    assert [item["finding"] for item in plan["refused"]] == ["redis_memory_full", "redis_clients_near_limit"]
    assert "at the cap 4096 MiB" in plan["refused"][0]["reason"]
    # a limit only for the finding reported, and none without a limit to start from (maxmemory 0: no limit)
    assert [item["name"] for item in broker_limits(_broker(maxmemory=100 * MIB, maxclients=100),
                                                   ["redis_clients_near_limit"])["raise"]] == ["maxclients"]
    assert broker_limits(_broker(maxmemory=0), ["redis_memory_full"]) == {"raise": [], "refused": []}


def test_broker_limit_factors_must_raise():
    with pytest.raises(ValueError, match="high_queue_depth_broker_memory_factor 1 must be above 1"):
        broker_limits(_broker(maxmemory=MIB), ["redis_memory_full"], memory_factor=1)


def test_redis_login_from_a_url_names_no_secret_in_its_errors():
    assert redis_login("rediss://runbooks:s3cret@redis.example:6390/2") == {
        "login_host": "redis.example", "login_port": 6390, "login_user": "runbooks", "login_password": "s3cret",
        "tls": True}
    assert redis_login("redis://127.0.0.1/0")["login_port"] == 6379
    with pytest.raises(ValueError) as refused:
        redis_login("http://user:s3cret@host/0")
    assert "s3cret" not in str(refused.value)
