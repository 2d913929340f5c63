"""Redis: memory, keys per tenant, clients, throughput, persistence and the keyspace scanner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.dashboards.builder import Board, Q, Thresholds, stat, thresholds, timeseries
from generators.queries import RI, SHARED, TENANT, rate

UP = Thresholds((("red", 0), ("green", 1)))


def _hit_ratio(labels: str = "") -> str:
    hits = rate("redis_keyspace_hits_total", SHARED, labels)
    misses = rate("redis_keyspace_misses_total", SHARED, labels)
    return f"{hits} / ({hits} + {misses})"


def board(config: Mapping[str, Any]) -> Board:
    memory_th = thresholds(config, "redis_memory_saturation_ratio")
    evictions_th = thresholds(config, "redis_evictions_per_second")
    status = [
        stat("Up", "1 when the exporter read INFO from every Redis server in its last scrape (lowest redis_up).",
             Q(f"min(redis_up{{{SHARED}}})"), unit="bool_yes_no", th=UP, graph=False),
        stat("Memory used of max", "used_memory / maxmemory, worst server (no value without a maxmemory). "
             "Thresholds: `thresholds.redis_memory_saturation_ratio`.",
             Q(f"max(redis_memory_saturation_ratio{{{SHARED}}})"), unit="percentunit", th=memory_th),
        stat("Commands/s", "Commands processed per second, all servers.",
             Q(rate("redis_commands_processed_total", SHARED)), unit="ops"),
        stat("Hit ratio", "Successful key lookups / all lookups, all servers.", Q(_hit_ratio()),
             unit="percentunit"),
        stat("Evictions", "Keys evicted per second because of maxmemory. Thresholds: "
             "`thresholds.redis_evictions_per_second`.",
             Q(rate("redis_evicted_keys_total", SHARED)), unit="ops", th=evictions_th),
        stat("Clients", "Client connections open, all servers.",
             Q(f"sum(redis_connected_clients{{{SHARED}}})"), unit="short"),
    ]
    memory = [
        timeseries("Memory used, RSS and limit", "used_memory, resident set size and maxmemory (0 = no "
                   "limit) per server.",
                   Q(f"sum by (server) (redis_memory_used_bytes{{{SHARED}}})", "{{server}} used"),
                   Q(f"sum by (server) (redis_memory_rss_bytes{{{SHARED}}})", "{{server}} rss"),
                   Q(f"sum by (server) (redis_memory_max_bytes{{{SHARED}}})", "{{server}} max"), unit="bytes", w=8),
        timeseries("Memory saturation", "used_memory / maxmemory per server. Dashed lines: "
                   "`thresholds.redis_memory_saturation_ratio`.",
                   Q(f"max by (server) (redis_memory_saturation_ratio{{{SHARED}}})", "{{server}}"),
                   unit="percentunit", th=memory_th, min=0, max=1, w=8),
        timeseries("Memory by tenant (estimate)", "Bytes used by each tenant's keys, from a deterministic "
                   "MEMORY USAGE sample scaled by the tenant's key count.",
                   Q(f"sum by (tenant_id) (redis_tenant_memory_bytes{{{TENANT}}})", "{{tenant_id}}"),
                   unit="bytes", w=8),
        timeseries("Fragmentation", "RSS / used memory; well above 1 means memory is fragmented.",
                   Q(f"max by (server) (redis_memory_fragmentation_ratio{{{SHARED}}})", "{{server}}"),
                   unit="short", w=12),
        timeseries("Evicted and expired keys", "Keys evicted (maxmemory) and expired per second. Dashed line: "
                   "`thresholds.redis_evictions_per_second`.",
                   Q(rate("redis_evicted_keys_total", SHARED, "server"), "{{server}} evicted"),
                   Q(rate("redis_expired_keys_total", SHARED, "server"), "{{server}} expired"),
                   unit="ops", th=evictions_th, w=12),
    ]
    keys = [
        timeseries("Keys by tenant", "Keys matching the tenant's key rule, from the last complete keyspace pass.",
                   Q(f"sum by (tenant_id) (redis_tenant_keys{{{TENANT}}})", "{{tenant_id}}"), unit="short", w=8),
        timeseries("Keys without TTL by tenant", "Keys that never expire; steady growth is a leak.",
                   Q(f"sum by (tenant_id) (redis_tenant_keys_without_ttl{{{TENANT}}})", "{{tenant_id}}"),
                   unit="short", w=8),
        timeseries("Keys by tenant and type", "Keys per Redis data type per tenant.",
                   Q(f"sum by (tenant_id, type) (redis_tenant_keys_by_type{{{TENANT}}})", "{{tenant_id}} {{type}}"),
                   unit="short", w=8),
    ]
    clients = [
        timeseries("Clients by tenant", "Connections attributed to the tenant by CLIENT LIST name or ACL user.",
                   Q(f"sum by (tenant_id) (redis_tenant_connected_clients{{{TENANT}}})", "{{tenant_id}}"),
                   unit="short", w=8),
        timeseries("Connected and blocked clients", "All client connections and those blocked on BLPOP/XREAD/"
                   "WAIT, per server.",
                   Q(f"sum by (server) (redis_connected_clients{{{SHARED}}})", "{{server}} connected"),
                   Q(f"sum by (server) (redis_blocked_clients{{{SHARED}}})", "{{server}} blocked"), unit="short", w=8),
        timeseries("Commands", "Commands processed per second per server.",
                   Q(rate("redis_commands_processed_total", SHARED, "server"), "{{server}}"), unit="ops", w=8),
        timeseries("Keyspace hit ratio", "Successful key lookups / all lookups per server.",
                   Q(_hit_ratio("server"), "{{server}}"), unit="percentunit", min=0, max=1, w=8),
        timeseries("Rejected connections", "Connections refused because maxclients was reached, per second.",
                   Q(rate("redis_rejected_connections_total", SHARED, "server"), "{{server}}"), unit="ops", w=8),
        timeseries("Slow log", "Entries in the slow log and slow commands per second (growth of the newest "
                   "slow log id).",
                   Q(f"sum by (server) (redis_slowlog_length{{{SHARED}}})", "{{server}} entries"),
                   Q(f"sum by (server) (deriv(redis_slowlog_last_id{{{SHARED}}}[{RI}]))", "{{server}} new/s"),
                   unit="short", w=8),
    ]
    operations = [
        timeseries("Replication lag", "On a replica: seconds since the last interaction with the master; on a "
                   "master: the largest replica lag. Dashed lines: `thresholds.replication_lag_seconds`.",
                   Q(f"max by (server) (redis_replication_lag_seconds{{{SHARED}}})", "{{server}}"),
                   unit="s", th=thresholds(config, "replication_lag_seconds"), w=8),
        timeseries("Time since last RDB save", "Seconds since the last successful RDB snapshot, and writes "
                   "since then.",
                   Q(f"max by (server) (time() - redis_rdb_last_save_timestamp_seconds{{{SHARED}}})", "{{server}}"),
                   unit="s", w=8),
        timeseries("Keyspace pass", "Age and duration of the exporter's last complete background SCAN pass: "
                   "per-tenant key figures are this old.",
                   Q(f"max by (server) (redis_keyspace_pass_age_seconds{{{SHARED}}})", "{{server}} age"),
                   Q(f"max by (server) (redis_keyspace_pass_duration_seconds{{{SHARED}}})", "{{server}} duration"),
                   unit="s", w=8),
    ]
    return Board(
        slug="redis",
        title="Redis",
        description="Redis servers (obsbundle exporter redis): memory and its saturation, keys and memory per "
                    "tenant (`tenant:<id>:` keys), clients, throughput, replication and persistence.",
        tenant_metric="redis_tenant_keys",
        sections=[("Status", status), ("Memory", memory), ("Keys by tenant", keys), ("Clients and commands", clients),
                  ("Replication, persistence and scanner", operations)],
        related=("infrastructure", "tenants", "tenant", "postgresql", "application"),
        tags=("redis",),
    )
