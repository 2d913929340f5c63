"""Keyspace accounting and client attribution against a real, seeded redis-server (in process)."""

from __future__ import annotations

import math
import statistics
import threading
import time

import redis

from collectors.redis.keyspace import KeyspaceScanner
from collectors.redis.server import ServerCollector
from exporters.redis import build
from tests.support.redis import (
    command_calls,
    emitted_tenants,
    loaded,
    memory_usage,
    new_metricset,
    redis_config,
)


def scanner_for(url: str, **kwargs) -> KeyspaceScanner:
    collectors, _ = build(loaded(redis_config(url, **kwargs)))
    return next(c for c in collectors if isinstance(c, KeyspaceScanner))


def served(scanner: KeyspaceScanner):
    """Publish a fresh pass and read it back the way /metrics would."""
    scanner.refresh_once()
    out = new_metricset()
    scanner.collect(out, time.monotonic() + 5)
    return out


def test_exact_counts_ttl_and_types_per_tenant(seeded_redis):
    server, truth = seeded_redis
    out = served(scanner_for(server.url))
    for tenant in ("acme", "globex", "initech", "umbrella", "_unassigned"):
        assert out.value("redis_tenant_keys", tenant_id=tenant) == truth.keys[tenant], tenant
        assert out.value("redis_tenant_keys_without_ttl", tenant_id=tenant) == truth.no_ttl.get(tenant, 0), tenant
        for kind, count in truth.types[tenant].items():
            assert out.value("redis_tenant_keys_by_type", tenant_id=tenant, type=kind) == count, (tenant, kind)
    assert emitted_tenants(out, "redis_tenant_keys") == set(truth.keys)
    assert out.value("redis_keyspace_pass_keys_scanned", tenant_id="_shared") == sum(truth.keys.values())
    assert out.value("redis_keyspace_passes_total", tenant_id="_shared") == 1


def test_next_pass_shows_added_and_deleted_keys(seeded_redis):
    server, truth = seeded_redis
    scanner = scanner_for(server.url)
    r = redis.Redis.from_url(server.url)
    try:
        r.set("tenant:hooli:new:1", "a")
        r.set("tenant:hooli:new:2", "b", ex=600)
        r.delete(*[f"tenant:globex:tags:{i}" for i in range(5)])
        r.expire("tenant:acme:user:0", 600)
        out = served(scanner)
        assert out.value("redis_tenant_keys", tenant_id="hooli") == 2
        assert out.value("redis_tenant_keys_without_ttl", tenant_id="hooli") == 1
        assert out.value("redis_tenant_keys", tenant_id="globex") == truth.keys["globex"] - 5
        assert out.value("redis_tenant_keys_by_type", tenant_id="globex", type="set") == 35
        assert out.value("redis_tenant_keys_without_ttl", tenant_id="acme") == truth.no_ttl["acme"] - 1
        assert out.value("redis_keyspace_passes_total", tenant_id="_shared") == 1
    finally:
        r.delete("tenant:hooli:new:1", "tenant:hooli:new:2")
        r.persist("tenant:acme:user:0")
        p = r.pipeline(transaction=False)
        for i in range(5):
            p.sadd(f"tenant:globex:tags:{i}", *[f"t{j}" for j in range(1 + i % 7)])
        p.execute()
        r.close()


def test_memory_exact_for_small_tenants_and_within_bound_when_sampled(seeded_redis):
    server, truth = seeded_redis
    scanner = scanner_for(server.url, scan={"memory_min_samples": 200, "memory_sample_ratio": 0.05})
    out = served(scanner)
    r = redis.Redis.from_url(server.url)
    # Tenants with no more keys than memory_min_samples are measured key by key: exact.
    for tenant in ("acme", "globex", "initech"):
        exact = sum(memory_usage(r, f"tenant:{tenant}:*"))
        assert out.value("redis_tenant_memory_bytes", tenant_id=tenant) == exact, tenant
        assert scanner.last_pass.tallies[tenant].mem_n == truth.keys[tenant]
    # umbrella (2,000 keys, sizes spread over two orders of magnitude) is sampled: 200 + 1 in 20.
    sizes = memory_usage(r, "tenant:umbrella:*")
    r.close()
    keys, exact = len(sizes), sum(sizes)
    sampled = scanner.last_pass.tallies["umbrella"].mem_n
    assert sampled == 200 + (keys - 200) // 20
    cv = statistics.pstdev(sizes) / statistics.fmean(sizes)
    bound = 4 * cv / math.sqrt(sampled) * math.sqrt(1 - sampled / keys)  # docs/redis.md: 3 sigma, test 4
    estimate = out.value("redis_tenant_memory_bytes", tenant_id="umbrella")
    assert abs(estimate - exact) <= bound * exact, (estimate, exact, bound)
    assert estimate != exact  # it really was sampled


def test_overflow_past_max_tenants(seeded_redis):
    server, truth = seeded_redis
    out = served(scanner_for(server.url, tenancy={"max_tenants": 2}))
    tenants = emitted_tenants(out, "redis_tenant_keys")
    admitted = tenants - {"_overflow", "_unassigned"}
    assert len(admitted) == 2 and admitted <= set(truth.keys)
    not_admitted = set(truth.keys) - admitted - {"_unassigned"}
    assert out.value("redis_tenant_keys", tenant_id="_overflow") == sum(truth.keys[t] for t in not_admitted)
    assert out.value("redis_tenant_keys", tenant_id="_unassigned") == truth.keys["_unassigned"]


def test_pipeline_fallback_when_scripts_are_denied(seeded_redis, monkeypatch):
    """An ACL user without EVALSHA still gets exact figures, via pipelined TYPE/PTTL."""
    server, truth = seeded_redis
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser("noscript", enabled=True, passwords=["+noscript-pw"], keys=["*"],
                      commands=["-@all", "+info", "+ping", "+hello", "+client|setname",
                                "+scan", "+type", "+pttl", "+memory|usage"])
    monkeypatch.setenv("OBS_TEST_NOSCRIPT_PW", "noscript-pw")
    scanner = scanner_for(server.url, username="noscript", password_env="OBS_TEST_NOSCRIPT_PW")
    before = command_calls(admin)
    out = served(scanner)
    after = command_calls(admin)
    admin.close()
    # the pass looked keys up with pipelined TYPE, never with the (denied) lookup script
    assert after.get("evalsha", 0) - before.get("evalsha", 0) == 0
    assert after.get("type", 0) - before.get("type", 0) >= sum(truth.keys.values())
    for tenant in ("acme", "globex", "initech"):
        assert out.value("redis_tenant_keys", tenant_id=tenant) == truth.keys[tenant]
        assert out.value("redis_tenant_keys_without_ttl", tenant_id=tenant) == truth.no_ttl.get(tenant, 0)
        for kind, count in truth.types[tenant].items():
            assert out.value("redis_tenant_keys_by_type", tenant_id=tenant, type=kind) == count


def test_connected_clients_per_tenant(seeded_redis):
    server, _ = seeded_redis
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser("tenant_initech", enabled=True, passwords=["+initech-pw"], keys=["*"], commands=["+@all"])
    held = []
    try:
        holders = (("tenant:acme:web", 3, None), ("tenant=globex", 2, None), (None, 2, "tenant_initech"))
        for name, count, user in holders:
            for _ in range(count):
                conn = redis.Redis.from_url(server.url, client_name=name, username=user,
                                            password="initech-pw" if user else None)
                conn.ping()
                held.append(conn)
        collectors, _ = build(loaded(redis_config(server.url)))
        collector = next(c for c in collectors if isinstance(c, ServerCollector))
        out = new_metricset()
        collector.collect(out, time.monotonic() + 5)
        assert out.value("redis_tenant_connected_clients", tenant_id="acme") == 3
        assert out.value("redis_tenant_connected_clients", tenant_id="globex") == 2
        assert out.value("redis_tenant_connected_clients", tenant_id="initech") == 2
        assert out.value("redis_connected_clients", tenant_id="_shared") >= 8
        assert out.value("redis_version_info", tenant_id="_shared", version=admin.info()["redis_version"]) == 1
        assert out.value("redis_role_info", tenant_id="_shared", role="master") == 1
        collector.close()
    finally:
        for conn in held:
            conn.close()
        admin.close()


def test_pass_backs_off_while_redis_is_busy_and_never_uses_keys(seeded_redis):
    """Another client keeps Redis busy (DEBUG SLEEP); the scanner's PING probes see it and pause,
    and the pass still completes with exact figures, using only bounded SCAN/EVALSHA calls."""
    server, truth = seeded_redis
    scanner = scanner_for(server.url, scan={"count": 100, "batch": 50, "slice": "1ms", "rest": "1ms",
                                            "busy_latency": "10ms", "busy_pause": "50ms"})
    admin = redis.Redis.from_url(server.url)
    admin.config_resetstat()
    busy = threading.Event()

    def keep_busy() -> None:
        hog = redis.Redis.from_url(server.url)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            hog.execute_command("DEBUG", "SLEEP", "0.03")
            busy.set()
        hog.close()

    hog = threading.Thread(target=keep_busy)
    hog.start()
    busy.wait(5)
    out = served(scanner)
    hog.join()
    assert scanner.last_pass.paused > 0
    assert out.value("redis_keyspace_pass_paused_seconds", tenant_id="_shared") == scanner.last_pass.paused
    for tenant, keys in truth.keys.items():
        assert out.value("redis_tenant_keys", tenant_id=tenant) == keys
    stats = admin.info("commandstats")
    admin.close()
    assert "cmdstat_keys" not in stats
    total = sum(truth.keys.values())
    assert stats["cmdstat_evalsha"]["calls"] >= total / 50  # one short script per batch of <= 50 keys...
    assert stats["cmdstat_type"]["calls"] == total  # ...which looks each key up once
