# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The broker's own health: is Redis able to take a job at all?

A queue can look healthy (short, workers answering) while Redis refuses every
write: memory at `maxmemory` with eviction off, a failed save with
`stop-writes-on-bgsave-error`, a read-only replica, every client slot taken.
Producers then fail to enqueue and nothing new arrives. One round trip reads
it all: `INFO` (memory, persistence, clients, stats, replication,
errorstats) and, in the same pipeline, the settings INFO does not show.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import out_of_range
from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding

# Thresholds; each overridable through the modules' broker_thresholds option.
THRESHOLDS = {
    "memory_ratio": 0.9,  # used / maxmemory from which writes are about to be refused (or keys evicted)
    "clients_ratio": 0.9,  # connected / maxclients from which new connections are about to be refused
    "clients_min_free": 5,  # or fewer free client slots than this
}
# The settings INFO does not show; read with CONFIG GET in the same round trip. A server that refuses
# CONFIG (a managed Redis, a renamed command) leaves them unknown: the judgement says what it assumed.
SETTINGS = ("stop-writes-on-bgsave-error", "save", "maxclients")
NO_FLUSH = "Never flush or delete keys to make room: the queue is the platform's work."


def read_health(client) -> dict[str, Any]:
    """The broker's health from one pipelined round trip: INFO, then CONFIG GET of SETTINGS."""
    pipe = client.pipeline(transaction=False)
    pipe.info()
    for name in SETTINGS:
        pipe.config_get(name)
    answers = pipe.execute(raise_on_error=False)
    if isinstance(answers[0], Exception):
        raise answers[0]
    settings: dict[str, Any] = {}
    for name, answer in zip(SETTINGS, answers[1:]):
        if isinstance(answer, dict) and name in answer:
            settings[name] = answer[name]
    return describe(answers[0], settings)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _errors(info: dict[str, Any], kind: str) -> int:
    """Commands refused with error `kind` (OOM, MISCONF, READONLY) since Redis started (INFO errorstats)."""
    stat = info.get(f"errorstat_{kind}")
    return _int(stat.get("count")) if isinstance(stat, dict) else 0


def describe(info: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """INFO (as redis-py parses it) and the settings read beside it, as the figures the findings judge."""
    used, maxmemory = _int(info.get("used_memory")), _int(info.get("maxmemory"))
    maxclients = _int(info.get("maxclients"), _int(settings.get("maxclients")))
    connected = _int(info.get("connected_clients"))
    stop_writes = settings.get("stop-writes-on-bgsave-error")
    save = settings.get("save")
    replica = info.get("role") == "slave"
    health = {
        "version": str(info.get("redis_version") or "unknown"),
        "role": "replica" if replica else "primary",
        "read_only": replica and _int(info.get("slave_read_only"), 1) == 1,
        "primary": f"{info.get('master_host')}:{info.get('master_port')}" if replica else None,
        "primary_link": info.get("master_link_status") if replica else None,
        "memory": {"used": used, "max": maxmemory, "policy": str(info.get("maxmemory_policy") or "noeviction"),
                   "ratio": round(used / maxmemory, 3) if maxmemory else None},
        "evicted_keys": _int(info.get("evicted_keys")),
        "clients": {"connected": connected, "max": maxclients or None, "blocked": _int(info.get("blocked_clients")),
                    "ratio": round(connected / maxclients, 3) if maxclients else None,
                    "rejected_connections": _int(info.get("rejected_connections"))},
        "persistence": {
            "rdb_last_bgsave_status": str(info.get("rdb_last_bgsave_status") or "ok"),
            "rdb_last_save_time": _int(info.get("rdb_last_save_time")) or None,
            "aof_enabled": bool(_int(info.get("aof_enabled"))),
            "aof_last_write_status": str(info.get("aof_last_write_status") or "ok"),
            # None: CONFIG was refused; Redis's defaults are stop-writes yes and save points set
            "stop_writes_on_bgsave_error": None if stop_writes is None else str(stop_writes) == "yes",
            "save": None if save is None else str(save),
        },
        "refused": {"oom": _errors(info, "OOM"), "misconf": _errors(info, "MISCONF"),
                    "readonly": _errors(info, "READONLY")},
    }
    health["writes_refused"] = writes_refused(health)
    return health


def writes_refused(health: dict[str, Any]) -> str | None:
    """Why Redis refuses writes now (READONLY, OOM, MISCONF), or None when it takes them."""
    memory, persistence = health["memory"], health["persistence"]
    if health["read_only"]:
        return "READONLY"
    if memory["policy"] == "noeviction" and memory["ratio"] is not None and memory["ratio"] >= 1:
        return "OOM"
    if (persistence["aof_enabled"] and persistence["aof_last_write_status"] != "ok") or (
            persistence["rdb_last_bgsave_status"] != "ok" and save_refuses_writes(persistence)):
        return "MISCONF"
    return None


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


def _threshold(thresholds: dict[str, Any] | None, name: str) -> float:
    value = (thresholds or {}).get(name)
    return THRESHOLDS[name] if value is None else value


def save_refuses_writes(persistence: dict[str, Any]) -> bool | None:
    """Whether the last failed save makes Redis refuse writes: stop-writes-on-bgsave-error with save points
    set (Redis refuses only then); None when CONFIG was refused and it cannot be told."""
    if persistence["stop_writes_on_bgsave_error"] is None or persistence["save"] is None:
        return None
    return persistence["stop_writes_on_bgsave_error"] and bool(persistence["save"].strip())


def findings(health: dict[str, Any], thresholds: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """What the broker's health means for the platform, each with a resolution that loses nothing."""
    found = []
    refused = health["refused"]
    if health["read_only"]:
        found.append(finding(
            "redis_read_only_replica", "critical",
            f"Redis is a read-only replica of {health['primary']} (link {health['primary_link']}): every write is "
            "refused, no job can be queued",
            {"primary": health["primary"], "link": health["primary_link"], "refused_writes": refused["readonly"]},
            "Point the platform at the primary, or promote this server (REPLICAOF NO ONE) once on-call confirms "
            "the primary is gone; the runbooks do not change replication. " + NO_FLUSH))
    memory = health["memory"]
    memory_ratio = _threshold(thresholds, "memory_ratio")
    if memory["ratio"] is not None and memory["ratio"] >= memory_ratio:
        evidence = {**memory, "refused_writes": refused["oom"], "threshold": memory_ratio}
        usage = f"{_mib(memory['used'])} of maxmemory {_mib(memory['max'])} ({memory['ratio']:.0%})"
        if memory["policy"] == "noeviction":
            full = memory["ratio"] >= 1
            found.append(finding(
                "redis_memory_full", "critical" if full else "high",
                f"Redis uses {usage} with eviction off: "
                + ("it refuses every write (OOM), no job can be queued" if full
                   else "writes will be refused (OOM) when it is reached"),
                evidence,
                "Raise maxmemory relative to the current limit (resolve does when high_queue_depth_redis_raise_limits "
                "is on, capped), then persist it in Redis's configuration and drain the queue. " + NO_FLUSH))
        else:
            found.append(finding(
                "redis_evicting", "high" if health["evicted_keys"] else "medium",
                f"Redis uses {usage} under maxmemory-policy {memory['policy']}: "
                + (f"it has evicted {health['evicted_keys']} keys, queued jobs may have been dropped"
                   if health["evicted_keys"] else "it will evict keys, queued jobs among them"),
                {**evidence, "evicted_keys": health["evicted_keys"]},
                "A broker must not evict: set maxmemory-policy noeviction and give Redis the memory it needs; "
                "compare SDP's recent tickets with the platform's to find dropped jobs."))
    elif memory["policy"] != "noeviction" and health["evicted_keys"]:
        found.append(finding(
            "redis_evicting", "high",
            f"Redis has evicted {health['evicted_keys']} keys since it started (maxmemory-policy "
            f"{memory['policy']}): queued jobs may have been dropped", {**memory, "evicted_keys": health["evicted_keys"]},
            "A broker must not evict: set maxmemory-policy noeviction and give Redis the memory it needs; "
            "compare SDP's recent tickets with the platform's to find dropped jobs."))
    persistence = health["persistence"]
    failed = [what for what, status in (("the last background save (RDB)", persistence["rdb_last_bgsave_status"]),
                                        ("the last append-only-file write",
                                         persistence["aof_last_write_status"] if persistence["aof_enabled"] else "ok"))
              if status != "ok"]
    if failed:
        aof_failed = persistence["aof_enabled"] and persistence["aof_last_write_status"] != "ok"
        refuses = True if aof_failed else save_refuses_writes(persistence)
        state = {True: "Redis refuses every write (MISCONF), no job can be queued",
                 None: "Redis refuses writes if stop-writes-on-bgsave-error is on (its default; CONFIG was refused)",
                 False: "a restart would lose what changed since the last good save"}[refuses]
        found.append(finding(
            "redis_persistence_failing", "critical" if refuses is not False else "high",
            f"{' and '.join(failed).capitalize()} failed: {state}",
            {**persistence, "refused_writes": refused["misconf"]},
            "Find why the save failed in Redis's log (disk full, permissions, a read-only directory) and fix that; "
            "Redis retries on its own, BGSAVE confirms. Turning stop-writes-on-bgsave-error off takes jobs again "
            "but risks losing them on a restart: the team's call, not the runbook's. " + NO_FLUSH))
    clients = health["clients"]
    if clients["max"]:
        free = clients["max"] - clients["connected"]
        ratio = _threshold(thresholds, "clients_ratio")
        if clients["ratio"] >= ratio or free < _threshold(thresholds, "clients_min_free"):
            found.append(finding(
                "redis_clients_near_limit", "critical" if free <= 0 else "high",
                f"{clients['connected']} of Redis's {clients['max']} client connections are in use ({free} free, "
                f"{clients['blocked']} blocked, {clients['rejected_connections']} refused since it started): "
                "workers and the API cannot connect once they are gone",
                {**clients, "free": free, "threshold": ratio},
                "Find the client holding connections (CLIENT LIST, by name and address) and fix it; raise maxclients "
                "relative to the current limit (resolve does when high_queue_depth_redis_raise_limits is on, "
                "capped), then persist it in Redis's configuration."))
    return found


def argument_spec() -> dict[str, Any]:
    """The options of every module that reads the broker's health (the aiagents.runbooks.broker_health fragment)."""
    return {
        "broker_health": {"type": "bool", "default": True},
        "broker_thresholds": {"type": "dict", "default": {}, "options": {
            "memory_ratio": {"type": "float", "default": THRESHOLDS["memory_ratio"]},
            "clients_ratio": {"type": "float", "default": THRESHOLDS["clients_ratio"]},
            "clients_min_free": {"type": "int", "default": THRESHOLDS["clients_min_free"]}}},
    }


def refusal(params: dict[str, Any]) -> str | None:
    """The message refusing a threshold out of its range (naming it), or None."""
    for name, value in (params.get("broker_thresholds") or {}).items():
        limits = {"above": 0, "maximum": 1} if name.endswith("_ratio") else {"minimum": 0}
        refused = out_of_range(f"broker_thresholds.{name}", value, **limits)
        if refused:
            return refused
    return None


def check(client, params: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(health, findings) when the module was asked to read the broker's health, else (None, [])."""
    if not params.get("broker_health", True):
        return None, []
    health = read_health(client)
    return health, findings(health, params.get("broker_thresholds"))
