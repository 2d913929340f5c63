"""Redis metrics (`obsbundle exporter redis`).

Every family carries `server` (the configured source name) and `tenant_id`: a tenant for the
keyspace/client accounting, `_shared` for server-wide figures from INFO/CONFIG/LATENCY/SLOWLOG.
Keyspace figures come from the last complete background SCAN pass, not from the scrape itself.
"""

from obsbundle.catalog import declare

SOURCE = "redis"
L = ("server", "tenant_id")


# Plain numeric copies of an INFO field: `info="<field>"` is all the server collector needs.
INFO = "redis_info"


def _g(name: str, help: str, *extra: str, unit: str = "", info: str = "", threshold: str = "") -> None:
    declare(name, "gauge", help, (*L, *extra), source=SOURCE, unit=unit,
            query=INFO if info else "", column=info, threshold=threshold)


def _c(name: str, help: str, *extra: str, unit: str = "", info: str = "") -> None:
    declare(name, "counter", help, (*L, *extra), source=SOURCE, unit=unit, query=INFO if info else "", column=info)


# -- availability and identity (_shared) -----------------------------------------------------------
_g("redis_up", "1 if the last scrape reached Redis and read INFO inside the deadline, else 0.")
declare(
    "redis_version_info", "info", "Redis server version (value 1).",
    (*L, "version"), source=SOURCE,
)
declare(
    "redis_role_info", "info", "Replication role of the server: master or slave (value 1).",
    (*L, "role"), source=SOURCE,
)
_g("redis_uptime_seconds", "Seconds since the Redis server started.", unit="seconds", info="uptime_in_seconds")

# -- per-tenant keyspace (last complete SCAN pass) -------------------------------------------------
_g("redis_tenant_keys", "Keys whose name matches the tenant's key rule, from the last complete pass.")
_g("redis_tenant_keys_without_ttl", "Keys of the tenant with no expiry (TTL -1), from the last complete pass.")
_g("redis_tenant_keys_by_type", "Keys of the tenant by Redis data type, from the last complete pass.", "type")
_g(
    "redis_tenant_memory_bytes",
    "Estimated bytes used by the tenant's keys: MEMORY USAGE summed over a deterministic key sample, "
    "scaled by the tenant's key count (exact for tenants under the sampling floor).",
    unit="bytes",
)
_g(
    "redis_tenant_connected_clients",
    "Client connections attributed to the tenant by CLIENT LIST name or ACL user (absent when none).",
)

# -- keyspace pass (the background scanner itself, _shared) ----------------------------------------
_g("redis_keyspace_pass_age_seconds", "Seconds since the last complete keyspace pass finished.", unit="seconds")
_g("redis_keyspace_pass_duration_seconds", "Wall time of the last complete keyspace pass.", unit="seconds")
_g("redis_keyspace_pass_keys_scanned", "Keys visited by the last complete keyspace pass.")
_g(
    "redis_keyspace_pass_memory_sampled_keys",
    "Keys whose MEMORY USAGE the last complete pass measured for the per-tenant memory estimates.",
)
_g(
    "redis_keyspace_pass_longest_call_seconds",
    "Longest single Redis round trip (SCAN or pipeline) made by the last complete pass.",
    unit="seconds",
)
_g(
    "redis_keyspace_pass_paused_seconds",
    "Time the last complete pass spent backing off because Redis was busy.",
    unit="seconds",
)
_g(
    "redis_keyspace_pass_cpu_seconds",
    "CPU time the exporter's scanner thread used for the last complete pass.",
    unit="seconds",
)
_c("redis_keyspace_passes_total", "Keyspace passes completed since the exporter started.")
_c(
    "redis_keyspace_pass_errors_total",
    "Keyspace passes abandoned because Redis failed or timed out; the previous pass keeps being served.",
)

# -- memory (_shared) ------------------------------------------------------------------------------
_g("redis_memory_used_bytes", "Bytes allocated by Redis (INFO used_memory).", unit="bytes", info="used_memory")
_g("redis_memory_rss_bytes",
   "Resident set size of the Redis process (INFO used_memory_rss).", unit="bytes", info="used_memory_rss")
_g("redis_memory_max_bytes", "Configured maxmemory in bytes; 0 means no limit.", unit="bytes", info="maxmemory")
_g(
    "redis_memory_saturation_ratio",
    "used_memory / maxmemory; absent when maxmemory is 0 (no limit).",
    unit="ratio", threshold="redis_memory_saturation_ratio",
)
_g("redis_memory_fragmentation_ratio",
   "INFO mem_fragmentation_ratio (RSS / used memory).", unit="ratio", info="mem_fragmentation_ratio")

# -- clients (_shared) -----------------------------------------------------------------------------
_g("redis_connected_clients",
   "Client connections open to the server (INFO connected_clients).", info="connected_clients")
_g("redis_blocked_clients",
   "Clients blocked on BLPOP/XREAD/WAIT and similar (INFO blocked_clients).", info="blocked_clients")
_c("redis_rejected_connections_total",
   "Connections rejected because maxclients was reached.", info="rejected_connections")
_g("redis_max_clients", "Configured maxclients.", info="maxclients")
_g("redis_client_saturation_ratio", "connected_clients / maxclients.", unit="ratio")

# -- throughput and cache (_shared) ----------------------------------------------------------------
_c("redis_commands_processed_total",
   "Commands processed by the server (INFO total_commands_processed).", info="total_commands_processed")
_g("redis_instantaneous_ops_per_second",
   "Commands per second sampled by Redis (INFO instantaneous_ops_per_sec).", info="instantaneous_ops_per_sec")
_c("redis_keyspace_hits_total", "Successful key lookups (INFO keyspace_hits).", info="keyspace_hits")
_c("redis_keyspace_misses_total", "Failed key lookups (INFO keyspace_misses).", info="keyspace_misses")
_c("redis_evicted_keys_total", "Keys evicted because of maxmemory (INFO evicted_keys).", info="evicted_keys")
_c("redis_expired_keys_total", "Keys removed by expiry (INFO expired_keys).", info="expired_keys")
_g("redis_db_keys", "Keys per logical database (INFO keyspace), a cheap cross-check of the pass.", "db")

# -- replication (_shared) -------------------------------------------------------------------------
_g("redis_connected_replicas", "Replicas connected to this master.", info="connected_slaves")
_g("redis_replication_offset_bytes",
   "Replication offset of this server (INFO master_repl_offset).", unit="bytes", info="master_repl_offset")
_g(
    "redis_replication_lag_bytes",
    "On a master: largest offset distance to a connected replica. On a replica: 0 (see lag_seconds).",
    unit="bytes",
)
_g(
    "redis_replication_lag_seconds",
    "On a replica: seconds since the last interaction with the master (master_last_io_seconds_ago); "
    "on a master: largest replica lag reported in INFO replication.",
    unit="seconds",
)
_g("redis_replication_link_up", "On a replica: 1 if master_link_status is up, else 0. Absent on a master.")

# -- persistence (_shared) -------------------------------------------------------------------------
_g("redis_rdb_last_save_success", "1 if the last RDB save succeeded (rdb_last_bgsave_status ok).")
_g("redis_rdb_last_save_timestamp_seconds",
   "Unix time of the last successful RDB save.", unit="seconds", info="rdb_last_save_time")
_g("redis_rdb_changes_since_last_save", "Writes since the last RDB save.", info="rdb_changes_since_last_save")
_g("redis_rdb_bgsave_in_progress", "1 while an RDB background save runs.", info="rdb_bgsave_in_progress")
_g("redis_aof_enabled", "1 if append-only file persistence is on.", info="aof_enabled")
_g("redis_aof_rewrite_in_progress", "1 while an AOF rewrite runs.", info="aof_rewrite_in_progress")
_g("redis_aof_last_write_success", "1 if the last AOF write succeeded (aof_last_write_status ok).")
_g("redis_loading", "1 while Redis loads its dataset from disk.", info="loading")

# -- latency and slowlog (_shared) -----------------------------------------------------------------
_g(
    "redis_latency_latest_seconds",
    "Latest latency spike per event from LATENCY LATEST (needs latency-monitor-threshold > 0).",
    "event", unit="seconds",
)
_g(
    "redis_latency_max_seconds",
    "All-time maximum latency per event from LATENCY LATEST.",
    "event", unit="seconds",
)
_g("redis_slowlog_length", "Entries currently in the slow log (SLOWLOG LEN).")
_g("redis_slowlog_last_id", "ID of the newest slow log entry; its growth rate counts slow commands.")
