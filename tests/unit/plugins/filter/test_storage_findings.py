"""The data volumes judged from df and the services' logs: near full, and PostgreSQL refusing writes for lack
of space, on either platform's read (Docker's service description, Kubernetes' log lines)."""
from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import storage_findings, storage_volumes
from ansible_collections.aiagents.runbooks.plugins.module_utils._storage import parse_df
from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import analyse_logs

MIB = 1024 * 1024
VOLUMES = [{"service": "postgres", "kind": "database", "path": "/var/lib/postgresql/data"},
           {"service": "redis", "kind": "broker", "path": "/data"}]
ENOSPC = ('2026-12-01 02:46:06.024 UTC [217] aiagents@ai_agents ERROR:  could not extend file "base/16384/16460": '
          "No space left on device")


def df(size_mib, used_mib, reserved_mib=0, mount="/var/lib/postgresql/data"):
    available = size_mib - used_mib - reserved_mib
    return {"rc": 0, "stdout": "Filesystem 1-blocks Used Available Capacity Mounted on\n"
                               f"/dev/vdb {size_mib * MIB} {used_mib * MIB} {available * MIB} 50% {mount}\n"}


def docker_logs(*lines):
    return {"containers": [{"name": "aiagents-postgres-1", "signals": analyse_logs(list(lines))}]}


def judge(df_results, log_results, **thresholds):
    return {item["id"]: item for item in storage_findings(storage_volumes(VOLUMES, df_results, log_results),
                                                          **thresholds)}


def test_df_is_read_as_its_capacity_counts_it_reserved_blocks_apart():
    usage = parse_df(df(1000, 850, reserved_mib=50)["stdout"])
    assert usage["size"] == 1000 * MIB and usage["available"] == 100 * MIB
    assert usage["ratio"] == round(850 / 950, 4) and usage["mounted_on"] == "/var/lib/postgresql/data"
    with pytest.raises(ValueError, match="no filesystem line"):
        parse_df("Filesystem 1-blocks Used Available Capacity Mounted on\n")
    with pytest.raises(ValueError, match="not numbers"):
        parse_df("Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/x 1K 2K 3K 5% /data\n")


def test_roomy_volumes_have_no_finding():
    assert judge([df(1024, 100), df(256, 10, mount="/data")], [docker_logs(), {"log_lines": []}]) == {}


@pytest.mark.parametrize(("used", "severity"), [(880, "high"), (980, "critical")])
def test_a_database_volume_near_full_is_high_then_critical(used, severity):
    found = judge([df(1024, used), df(256, 10)], [docker_logs(), docker_logs()])
    assert set(found) == {"db_storage_near_full"}
    near = found["db_storage_near_full"]
    assert near["severity"] == severity and near["evidence"]["available"] == (1024 - used) * MIB
    assert "Never delete files" in near["resolution"]


def test_postgresql_saying_no_space_while_the_volume_is_full_is_refusing_writes():
    found = judge([df(1024, 1000), df(256, 10)], [docker_logs("LOG: checkpoint starting", ENOSPC), docker_logs()])
    assert set(found) == {"db_storage_full"}
    full = found["db_storage_full"]
    assert full["severity"] == "critical" and "refuses writes" in full["summary"] and ENOSPC in full["summary"]
    assert full["evidence"]["no_space_log_lines"] == 1
    # The same from Kubernetes' log lines (kubernetes.core.k8s_log's log_lines).
    assert set(judge([df(1024, 1000), df(256, 10)], [{"log_lines": [ENOSPC]}, {"log_lines": []}])) == {
        "db_storage_full"}


def test_less_than_a_wal_segment_free_is_full_without_a_log_line():
    found = judge([{"rc": 0, "stdout": "Filesystem 1-blocks Used Available Capacity Mounted on\n"
                                       f"tmpfs {100 * MIB} {90 * MIB} {10 * MIB} 90% /var/lib/postgresql/data\n"},
                   df(256, 10)], [{"log_lines": []}, {"log_lines": []}], high=0.95, critical=0.99)
    assert set(found) == {"db_storage_full"}


def test_a_past_refusal_on_a_volume_with_room_again_is_not_reported():
    assert judge([df(1024, 200), df(256, 10)], [docker_logs(ENOSPC), docker_logs()]) == {}


def test_a_broker_volume_near_full_and_a_save_that_failed_for_lack_of_space():
    near = judge([df(1024, 100), df(256, 225, mount="/data")], [docker_logs(), docker_logs()])
    assert near["redis_storage_near_full"]["severity"] == "high"
    assert "the next save" in near["redis_storage_near_full"]["summary"]
    failed = judge([df(1024, 100), df(256, 225, mount="/data")],
                   [docker_logs(), {"log_lines": ["# Write error saving DB on disk: No space left on device"]}])
    assert failed["redis_storage_near_full"]["severity"] == "critical"
    assert "a save failed for lack of space" in failed["redis_storage_near_full"]["summary"]


def test_a_volume_that_could_not_be_read_is_no_finding_but_says_why():
    records = storage_volumes(VOLUMES, [{"rc": 1, "stdout": "", "stderr": "df: /data: No such file or directory"},
                                        {"skipped": True}], [])
    assert [record["error"] for record in records] == ["df: /data: No such file or directory",
                                                       "not read: the service has no running container"]
    assert storage_findings(records) == []


@pytest.mark.parametrize(("high", "critical"), [(0.9, 0.8), (0, 0.5), (0.9, 1.5), ("x", 0.9), (float("nan"), 1)])
def test_thresholds_out_of_order_or_range_are_refused(high, critical):
    with pytest.raises(ValueError, match="storage thresholds"):
        storage_findings([], high, critical)
