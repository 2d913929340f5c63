"""Business metrics (collectors.app.business): the HyperLogLog active-user count against exact
counts, its sliding window, and every business family served on a real socket with exact values."""

from __future__ import annotations

import json
import random

import httpx

from collectors.app import instrument
from collectors.app.business import ActiveUsers, BusinessMetrics
from obsbundle.catalog import static_catalog
from obsbundle.services import UvicornThread, free_port, parse_metrics

PRECISION = 12
RSE = 1.04 / (2**PRECISION) ** 0.5  # 1.6%


def near(estimate: int, exact: int) -> bool:
    """Within three relative standard errors, or one user for small counts."""
    return abs(estimate - exact) <= max(1, 3 * RSE * exact)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_active_users_estimate_is_within_three_standard_errors_of_the_exact_count():
    clock = Clock()
    users = ActiveUsers(window=3600, slices=4, precision=PRECISION, clock=clock)
    rng = random.Random(13)
    exact: dict[str, set[str]] = {}
    for tenant, distinct in (("small", 40), ("mid", 3_000), ("large", 60_000)):
        ids = [f"{tenant}-user-{rng.getrandbits(64):x}" for _ in range(distinct)]
        for _ in range(3):  # every user seen three times, over three slices
            for user in ids:
                users.add(tenant, user)
            clock.now += 900
        clock.now -= 2700
        exact[tenant] = set(ids)
    clock.now = 2700  # all three slices are inside the window
    estimates = users.estimates()
    assert set(estimates) == set(exact)
    assert near(estimates["small"], len(exact["small"]))
    for tenant in ("mid", "large"):
        error = abs(estimates[tenant] - len(exact[tenant])) / len(exact[tenant])
        assert error <= 3 * RSE, (tenant, estimates[tenant], len(exact[tenant]), error)
    # Bounded memory: never more than `slices` sketches of 2**precision registers per tenant.
    assert all(len(ring) <= 4 for ring in users._tenants.values())


def test_active_users_window_slides_by_whole_slices_and_forgets_idle_tenants():
    clock = Clock()
    users = ActiveUsers(window=3600, slices=4, precision=PRECISION, clock=clock)
    for n in range(50):
        users.add("acme", f"early-{n}")
    clock.now = 1800
    for n in range(20):
        users.add("acme", f"late-{n}")
    users.add("quiet", "only-user")
    estimates = users.estimates()
    assert set(estimates) == {"acme", "quiet"} and near(estimates["acme"], 70) and estimates["quiet"] == 1
    clock.now = 3600  # the slice of the 50 early users [0, 900) has left the window
    estimates = users.estimates()
    assert set(estimates) == {"acme", "quiet"} and near(estimates["acme"], 20) and estimates["quiet"] == 1
    clock.now = 1800 + 3600  # and now everything
    assert users.estimates() == {}


def test_business_metrics_are_served_by_tenant_with_exact_values():
    agents = {"acme": 3, "globex": 1}
    otel = instrument(service_name="business")
    business = BusinessMetrics(otel, agents=lambda: agents, active_users_window="1h")

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = json.loads((await receive())["body"] or b"{}")
        business.task_started()
        business.user_seen(body["user"])
        with business.vector_search("docs") as search:
            search.results = body["hits"]
        business.task_finished(body["outcome"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    port = otel.start_http_server(f"127.0.0.1:{free_port()}")
    server = UvicornThread(otel.asgi(app))
    plan = [
        ("acme", "u1", 3, "success"), ("acme", "u2", 0, "failure"), ("acme", "u1", 7, "success"),
        ("globex", "g1", 12, "timeout"), ("globex", "g1", 2, "exploded"),
    ]
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for tenant, user, hits, outcome in plan:
                response = client.post("/v1/run", headers={"X-Tenant-ID": tenant},
                                       json={"user": user, "hits": hits, "outcome": outcome})
                assert response.status_code == 200
        samples = parse_metrics(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    finally:
        server.close()
        otel.shutdown()

    def value(name: str, **labels: str) -> float:
        found = [v for k, v in samples[name].items() if dict(k) == labels]
        assert len(found) == 1, (name, labels, samples.get(name))
        return found[0]

    assert value("agents_active", tenant_id="acme") == 3
    assert value("agents_active", tenant_id="globex") == 1
    assert value("agent_tasks_started_total", tenant_id="acme") == 3
    assert value("agent_tasks_started_total", tenant_id="globex") == 2
    assert value("agent_tasks_finished_total", tenant_id="acme", outcome="success") == 2
    assert value("agent_tasks_finished_total", tenant_id="acme", outcome="failure") == 1
    assert value("agent_tasks_finished_total", tenant_id="globex", outcome="timeout") == 1
    assert value("agent_tasks_finished_total", tenant_id="globex", outcome="_other") == 1
    assert value("active_users", tenant_id="acme", window="1h") == 2
    assert value("active_users", tenant_id="globex", window="1h") == 1
    assert value("vector_search_duration_seconds_count", tenant_id="acme", index="docs") == 3
    assert value("vector_search_results_sum", tenant_id="acme", index="docs") == 10
    assert value("vector_search_results_bucket", tenant_id="acme", index="docs", le="0") == 1
    assert value("vector_search_results_sum", tenant_id="globex", index="docs") == 14
    catalog = static_catalog()
    business_families = {catalog.series(name).name for name in samples if catalog.series(name).source == "business"}
    assert business_families == {m.name for m in catalog.by_source("business")}
    for name, series in samples.items():
        metric = catalog.series(name)
        for key in series:
            assert {k for k, _ in key} - {"le"} == set(metric.labels), (name, key)
