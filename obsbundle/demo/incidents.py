"""The incidents the demo seeds, what each injects and what should reach the on-call.

Everything else stays healthy, so each notification that arrives is explained by one line here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# tenant traffic: (typical latency s, slow-tail latency s, tail share, error share, inference share)
Profile = tuple[float, float, float, float, float]
HEALTHY: Profile = (0.02, 0.2, 0.05, 0.0, 0.3)
SLOW: Profile = (0.3, 2.6, 0.25, 0.0, 0.5)  # p95 in the 2.5-3 s bucket: above the 2 s warning
FAILING: Profile = (0.05, 0.4, 0.05, 0.12, 0.3)  # 12% 5xx: above the 5% warning
IDLE_SESSIONS = 6  # idle-in-transaction sessions: past thresholds.pg_idle_in_transaction_sessions (5)
POSTGRES_DOWN_AFTER = 30.0  # seconds after the stack is up


@dataclass(frozen=True)
class Incident:
    name: str
    tenant: str | None  # None: a shared cause
    injects: str
    expect: str


INCIDENTS = {i.name: i for i in [
    Incident("slow-tenant", "gamma", "gamma answers slowly: a quarter of its requests take 2.6 s",
             "TenantLatencyP95High (warning): Slack #alerts and an email naming gamma"),
    Incident("failing-tenant", "beta", "beta fails 12% of its requests with a 5xx",
             "TenantErrorRatioHigh (warning): Slack #alerts and an email naming beta"),
    Incident("pg-idle-transactions", "acme",
             f"acme leaves {IDLE_SESSIONS} PostgreSQL sessions idle in an open transaction",
             "PostgresIdleInTransaction (warning): Slack #alerts and an email naming acme"),
    Incident("temporal-backlog", "beta", "beta's task queue has waiting workflows and no worker polls it",
             "TemporalQueueWithoutWorkers (critical): a PagerDuty page and Slack #alerts-critical naming beta"),
    Incident("postgres-down", None, f"PostgreSQL stops {POSTGRES_DOWN_AFTER:.0f} s after the stack is up",
             "one PostgresDown page for the shared cause; each tenant's PostgreSQL alerts are inhibited"),
]}
DEFAULT = ("slow-tenant", "failing-tenant", "pg-idle-transactions", "temporal-backlog")


def traffic_profiles(tenants: list[str], active: list[str]) -> dict[str, Profile]:
    profiles = dict.fromkeys(tenants, HEALTHY)
    if "slow-tenant" in active:
        profiles[INCIDENTS["slow-tenant"].tenant or ""] = SLOW
    if "failing-tenant" in active:
        profiles[INCIDENTS["failing-tenant"].tenant or ""] = FAILING
    return profiles


def tenants_with_workers(tenants: list[str], active: list[str]) -> list[str]:
    idle = INCIDENTS["temporal-backlog"].tenant if "temporal-backlog" in active else None
    return [t for t in tenants if t != idle]


def hold_idle_transactions(dsn: str, tenant: str, count: int = IDLE_SESSIONS) -> list[Any]:
    """Sessions that the exporter attributes to `tenant` (application_name) left idle in a transaction."""
    import psycopg

    sessions = []
    for _ in range(count):
        conn = psycopg.connect(dsn, application_name=f"tenant={tenant}")
        conn.execute("SELECT 1")  # psycopg opens the transaction and leaves it open
        sessions.append(conn)
    return sessions


def later(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer
