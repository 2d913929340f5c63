"""Server-wide figures (`_shared`) from a real master/replica pair, read by the on-scrape collector."""

from __future__ import annotations

import time

import redis

from collectors.redis.server import ServerCollector
from exporters.redis import build
from obsbundle.services import RedisServer, wait_for
from tests.support.redis import loaded, new_metricset, redis_config


def collect(url: str):
    collectors, _ = build(loaded(redis_config(url)))
    collector = next(c for c in collectors if isinstance(c, ServerCollector))
    out = new_metricset()
    collector.collect(out, time.monotonic() + 5)
    collector.close()
    return out


def test_master_and_replica_figures():
    master = RedisServer(["--maxmemory", "64mb", "--latency-monitor-threshold", "1"])
    replica = RedisServer(["--replicaof", "127.0.0.1", str(master.port)])
    m, r = redis.Redis.from_url(master.url), redis.Redis.from_url(replica.url)
    try:
        wait_for(lambda: r.info("replication").get("master_link_status") == "up", 30, what="replica link up")
        m.set("tenant:acme:k", "v")
        m.get("tenant:acme:k")
        m.get("tenant:acme:missing")
        m.execute_command("DEBUG", "SLEEP", "0.01")  # a latency event over the 1 ms threshold
        wait_for(lambda: r.dbsize() == 1, 30, what="replica caught up")

        out = collect(master.url)
        shared = {"tenant_id": "_shared"}
        info = m.info()
        assert out.value("redis_role_info", **shared, role="master") == 1
        assert out.value("redis_connected_replicas", **shared) == 1
        assert out.value("redis_memory_max_bytes", **shared) == 64 * 1024 * 1024
        ratio = out.value("redis_memory_saturation_ratio", **shared)
        assert 0 < ratio < 1
        assert out.value("redis_keyspace_hits_total", **shared) == info["keyspace_hits"] == 1
        assert out.value("redis_keyspace_misses_total", **shared) == info["keyspace_misses"] == 1
        assert out.value("redis_db_keys", **shared, db="0") == 1
        assert out.value("redis_max_clients", **shared) == info["maxclients"]
        assert out.value("redis_latency_latest_seconds", **shared, event="command") >= 0.01
        assert out.value("redis_replication_lag_bytes", **shared) >= 0
        assert out.value("redis_rdb_last_save_success", **shared) == 1
        assert out.value("redis_aof_enabled", **shared) == 0

        before = r.info("replication")["slave_repl_offset"]
        out = collect(replica.url)
        after = r.info("replication")["slave_repl_offset"]  # the master's pings move it on
        assert out.value("redis_role_info", **shared, role="slave") == 1
        assert out.value("redis_replication_link_up", **shared) == 1
        assert out.value("redis_replication_lag_seconds", **shared) >= 0
        assert before <= out.value("redis_replication_offset_bytes", **shared) <= after
        assert out.value("redis_memory_saturation_ratio", **shared) is None  # no maxmemory on the replica
    finally:
        m.close()
        r.close()
        replica.close()
        master.close()
