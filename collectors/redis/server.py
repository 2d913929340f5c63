"""Server-wide Redis figures read on every scrape: INFO, LATENCY LATEST, SLOWLOG, CLIENT LIST.

All of it is one pipelined round trip of O(1)-ish commands (CLIENT LIST is O(clients)), so it is
cheap enough for the scrape path. The socket timeout is bounded by the scrape deadline, so a
stopped or frozen Redis fails this collector (`redis_up 0`) instead of hanging /metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from collectors.metricset import MetricSet
from collectors.redis.connection import RedisTarget
from collectors.runtime import Collector, CollectorError, error_code
from obsbundle.catalog.redis import INFO
from obsbundle.tenancy import SHARED, TenantResolver

log = logging.getLogger("obsbundle.redis")

# Families that only have samples in some states (no maxmemory, master vs replica, no latency
# events yet); declared empty so HELP/TYPE are always present for dashboards and tests.
CONDITIONAL = (
    "redis_memory_saturation_ratio", "redis_client_saturation_ratio", "redis_max_clients",
    "redis_replication_lag_bytes", "redis_replication_lag_seconds", "redis_replication_link_up",
    "redis_latency_latest_seconds", "redis_latency_max_seconds", "redis_db_keys",
    "redis_tenant_connected_clients", "redis_slowlog_last_id",
)

def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def add_info(out: MetricSet, info: Mapping[str, Any]) -> None:
    """Translate a parsed INFO reply into `_shared` samples."""
    shared = {"tenant_id": SHARED}
    out.add("redis_version_info", 1, {**shared, "version": str(info.get("redis_version", "unknown"))})
    role = str(info.get("role", "unknown"))
    out.add("redis_role_info", 1, {**shared, "role": role})
    # Plain numeric copies: the catalog names each metric's INFO field (`info=` in catalog/redis.py).
    for metric in out.catalog.by_query(INFO):
        out.add(metric.name, _num(info.get(metric.column)), shared)

    used, maxmemory = _num(info.get("used_memory")), _num(info.get("maxmemory"))
    if used is not None and maxmemory:
        out.add("redis_memory_saturation_ratio", used / maxmemory, shared)
    clients, maxclients = _num(info.get("connected_clients")), _num(info.get("maxclients"))
    if clients is not None and maxclients:
        out.add("redis_client_saturation_ratio", clients / maxclients, shared)

    if "rdb_last_bgsave_status" in info:
        out.add("redis_rdb_last_save_success", info["rdb_last_bgsave_status"] == "ok", shared)
    if "aof_last_write_status" in info:
        out.add("redis_aof_last_write_success", info["aof_last_write_status"] == "ok", shared)

    if role == "master":
        offset = _num(info.get("master_repl_offset")) or 0.0
        replicas = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit() and isinstance(v, dict)]
        if replicas:
            out.add("redis_replication_lag_bytes",
                    max(max(0.0, offset - (_num(r.get("offset")) or 0.0)) for r in replicas), shared)
            lags = [_num(r.get("lag")) for r in replicas]
            out.add("redis_replication_lag_seconds", max((x for x in lags if x is not None), default=None), shared)
    else:
        out.set("redis_replication_offset_bytes", _num(info.get("slave_repl_offset")), shared)
        out.add("redis_replication_link_up", info.get("master_link_status") == "up", shared)
        io_ago = _num(info.get("master_last_io_seconds_ago"))
        out.add("redis_replication_lag_seconds", io_ago if io_ago is not None and io_ago >= 0 else None, shared)
        out.add("redis_replication_lag_bytes", 0, shared)

    for key, value in info.items():
        if key.startswith("db") and key[2:].isdigit() and isinstance(value, dict):
            out.add("redis_db_keys", _num(value.get("keys")), {**shared, "db": key[2:]})


def add_latency(out: MetricSet, rows: Iterable[Any]) -> None:
    """LATENCY LATEST rows: [event, unix time, latest ms, max ms]."""
    for row in rows or ():
        if len(row) >= 4:
            event = row[0].decode() if isinstance(row[0], bytes) else str(row[0])
            labels = {"tenant_id": SHARED, "event": event}
            out.add("redis_latency_latest_seconds", float(row[2]) / 1000.0, labels)
            out.add("redis_latency_max_seconds", float(row[3]) / 1000.0, labels)


def count_clients(clients: Iterable[Mapping[str, Any]], resolver: TenantResolver) -> dict[str, int]:
    """Connections per tenant: the client_name rule first, then the ACL user rule."""
    counts: dict[str, int] = {}
    for client in clients:
        tenant = resolver.resolve_first([("client_name", client.get("name")), ("user", client.get("user"))])
        counts[tenant] = counts.get(tenant, 0) + 1
    return counts


class ServerCollector(Collector):
    """On-scrape collector for one Redis source; its success drives `redis_up`."""

    name = "server"
    up_metric = "redis_up"

    def __init__(self, target: RedisTarget, resolver: TenantResolver) -> None:
        self.server = target.name
        self.target = target
        self.resolver = resolver
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self._last_code = "none"

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = self.target.client(decode_responses=True)
        return self._client

    def collect(self, out: MetricSet, deadline: float) -> None:
        with self._lock:
            try:
                self._collect(out, deadline)
            except Exception as exc:
                self._note_failure(exc)
                raise
            if self._last_code != "none":
                log.info("%s: reachable again", self.target.describe())
                self._last_code = "none"

    def _collect(self, out: MetricSet, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            raise CollectorError("timeout")
        client = self._redis()
        pipe = client.pipeline(transaction=False)
        pipe.info()
        pipe.latency_latest()
        pipe.slowlog_len()
        pipe.slowlog_get(1)
        pipe.client_list()
        try:
            info, latency, slowlog_len, slowlog_last, clients = pipe.execute(raise_on_error=False)
        except redis.RedisError:
            client.connection_pool.disconnect()  # next scrape starts from a fresh socket, with fresh timeouts
            raise
        if isinstance(info, Exception):
            raise info
        out.declare_empty(CONDITIONAL)
        add_info(out, info)
        shared = {"tenant_id": SHARED}
        if not isinstance(latency, Exception):
            add_latency(out, latency)
        if not isinstance(slowlog_len, Exception):
            out.add("redis_slowlog_length", slowlog_len, shared)
        if not isinstance(slowlog_last, Exception) and slowlog_last:
            out.add("redis_slowlog_last_id", slowlog_last[0].get("id"), shared)
        if not isinstance(clients, Exception):
            for tenant, count in count_clients(clients, self.resolver).items():
                out.add("redis_tenant_connected_clients", count, {"tenant_id": tenant})

    def _note_failure(self, exc: BaseException) -> None:
        code = error_code(exc)
        if code == self._last_code:
            return
        self._last_code = code
        if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError) or code == "auth_failed":
            log.error("%s: authentication failed; check username and password_file / password_env",
                      self.target.describe())
        elif isinstance(exc, redis.exceptions.NoPermissionError):
            log.error("%s: ACL denies a command the exporter needs (see docs/redis.md)", self.target.describe())
        else:
            log.warning("%s: unreachable (code=%s, %s)", self.target.describe(), code, type(exc).__name__)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
