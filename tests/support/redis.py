"""Redis-area test data: the seeded keyspace with its per-tenant ground truth, and config helpers.
The `seeded_redis` fixture (tests/fixtures/redis.py) applies `seed`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import redis

from collectors.metricset import MetricSet
from obsbundle import config
from obsbundle.catalog import static_catalog

# The minimal ACL the docs recommend for the exporter's own user.
EXPORTER_ACL = [
    "on", "~*", "resetchannels", "-@all", "+info", "+ping", "+hello", "+client|list", "+client|setname",
    "+latency|latest", "+slowlog|len", "+slowlog|get", "+scan", "+type", "+pttl",
    "+memory|usage", "+evalsha", "+script|load",
]


@dataclass
class Truth:
    """What was seeded: tenant -> figure."""

    keys: dict[str, int] = field(default_factory=dict)
    no_ttl: dict[str, int] = field(default_factory=dict)
    types: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, tenant: str, kind: str, ttl: bool, n: int = 1) -> None:
        self.keys[tenant] = self.keys.get(tenant, 0) + n
        if not ttl:
            self.no_ttl[tenant] = self.no_ttl.get(tenant, 0) + n
        by_type = self.types.setdefault(tenant, {})
        by_type[kind] = by_type.get(kind, 0) + n


def seed(r: redis.Redis) -> Truth:
    """Three tenants with mixed types and TTLs, a tenant for memory sampling, and unassigned keys."""
    rng = random.Random(42)
    truth = Truth()
    p = r.pipeline(transaction=False)
    for i in range(120):
        p.set(f"tenant:acme:user:{i}", "x" * rng.randint(1, 300))
    truth.add("acme", "string", ttl=False, n=120)
    for i in range(30):
        p.set(f"tenant:acme:session:{i}", "s", ex=3600)
    truth.add("acme", "string", ttl=True, n=30)
    for i in range(10):
        p.hset(f"tenant:acme:profile:{i}", mapping={f"f{j}": j for j in range(1 + i)})
    truth.add("acme", "hash", ttl=False, n=10)
    for i in range(5):
        p.rpush(f"tenant:acme:queue:{i}", *range(3 + i))
    truth.add("acme", "list", ttl=False, n=5)

    for i in range(40):
        p.sadd(f"tenant:globex:tags:{i}", *[f"t{j}" for j in range(1 + i % 7)])
    truth.add("globex", "set", ttl=False, n=40)
    for i in range(20):
        p.zadd(f"tenant:globex:rank:{i}", {f"m{j}": j for j in range(2 + i % 5)})
        if i < 10:
            p.expire(f"tenant:globex:rank:{i}", 3600)
    truth.add("globex", "zset", ttl=True, n=10)
    truth.add("globex", "zset", ttl=False, n=10)
    for i in range(5):
        p.xadd(f"tenant:globex:events:{i}", {"n": i})
    truth.add("globex", "stream", ttl=False, n=5)

    for i in range(60):
        p.set(f"tenant:initech:cache:{i}", "y" * (10 * i), px=3_600_000)
    truth.add("initech", "string", ttl=True, n=60)

    # 2,000 keys of widely varying size: the sampled memory estimate is checked against these.
    for i in range(1500):
        p.set(f"tenant:umbrella:blob:{i}", "z" * int(rng.lognormvariate(5, 1.2)))
    truth.add("umbrella", "string", ttl=False, n=1500)
    for i in range(500):
        p.hset(f"tenant:umbrella:h:{i}", mapping={f"f{j}": "v" * rng.randint(1, 40) for j in range(rng.randint(1, 60))})
    truth.add("umbrella", "hash", ttl=False, n=500)

    for name in ("session:abc", "config", "tenant::empty", "tenants:list"):
        p.set(name, "1")
    truth.add("_unassigned", "string", ttl=False, n=4)
    p.execute()
    return truth


def memory_usage(r: redis.Redis, pattern: str) -> list[int]:
    """Exact MEMORY USAGE of every key matching `pattern` (ground truth for the estimate)."""
    keys = list(r.scan_iter(match=pattern, count=1000))
    p = r.pipeline(transaction=False)
    for key in keys:
        p.memory_usage(key)
    return [int(v) for v in p.execute()]


def redis_config(url: str, name: str = "cache", scan: dict[str, Any] | None = None,
                 tenancy: dict[str, Any] | None = None, **source: Any) -> dict[str, Any]:
    """A config document with one Redis source (before defaults are merged)."""
    doc: dict[str, Any] = {
        "sources": {"redis": [{"name": name, "url": url, "scan": {"interval": "1s", **(scan or {})}, **source}]},
    }
    if tenancy:
        doc["tenancy"] = tenancy
    return doc


def loaded(doc: dict[str, Any]) -> dict[str, Any]:
    import yaml

    return config.parse(yaml.safe_dump(doc))


def new_metricset(server: str = "cache") -> MetricSet:
    return MetricSet(static_catalog(), {"server": server})


def emitted_tenants(out: MetricSet, name: str) -> set[str]:
    """The tenant_id of every series of `name` that `out` exposes."""
    return {s.labels["tenant_id"] for family in out.families() if family.name == name for s in family.samples}


def command_calls(r: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats), e.g. {"evalsha": 3}."""
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in r.info("commandstats").items()}
