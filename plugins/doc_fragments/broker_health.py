# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The broker health options of every module that reads the queue's Redis."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  broker_health:
    description:
      - Also read the broker's own health in one round trip (C(INFO), and C(CONFIG GET) of
        C(stop-writes-on-bgsave-error), C(save) and C(maxclients), which C(INFO) does not show) and judge
        whether Redis can take a job at all.
      - Findings C(redis_read_only_replica) (critical), C(redis_memory_full) (high from
        O(broker_thresholds.memory_ratio) of C(maxmemory) with eviction off, critical at it - writes refused),
        C(redis_evicting) (an evicting C(maxmemory-policy) near its limit, high once keys were evicted),
        C(redis_persistence_failing) (a failed save - critical when Redis refuses writes for it, high
        otherwise) and C(redis_clients_near_limit) (high, critical with no free slot).
      - A server that refuses C(CONFIG) (a managed Redis, a renamed command) is judged on C(INFO) alone, and the
        finding says what was assumed.
    type: bool
    default: true
  broker_thresholds:
    description: Thresholds of the broker's health; any left out keep their default.
    type: dict
    default: {}
    suboptions:
      memory_ratio:
        description: Share of C(maxmemory) in use from which memory is judged near full, above 0 and at most 1.
        type: float
        default: 0.9
      clients_ratio:
        description: Share of C(maxclients) connected from which client slots are judged near exhausted.
        type: float
        default: 0.9
      clients_min_free:
        description: Fewer free client slots than this are judged near exhausted too.
        type: int
        default: 5
"""
