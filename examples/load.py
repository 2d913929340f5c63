"""Steady demo traffic for examples/agent_api.py: three tenants with distinct latency and error mixes.

    python -m examples.load --url http://127.0.0.1:8000 --duration 60s

acme is fast and healthy, beta is slower with ~5% errors, gamma is slow (p95 above the 2 s
threshold) with ~15% errors, so the generated dashboards and alerts have something to show.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Mapping

import httpx

from obsbundle.config import parse_duration

# tenant -> (typical latency s, slow-tail latency s, tail share, error share, inference share)
Profile = tuple[float, float, float, float, float]
PROFILES: dict[str, Profile] = {
    "acme": (0.02, 0.2, 0.05, 0.0, 0.3),
    "beta": (0.1, 0.8, 0.10, 0.05, 0.3),
    "gamma": (0.4, 2.6, 0.20, 0.15, 0.5),
}


TASK_SHARE = 0.1
USERS_PER_TENANT = 25


def request_path(tenant: str, rng: random.Random, profiles: Mapping[str, Profile] = PROFILES) -> str:
    typical, tail, tail_share, error_share, infer_share = profiles[tenant]
    sleep = tail if rng.random() < tail_share else typical * rng.uniform(0.5, 1.5)
    status = 500 if rng.random() < error_share else 200
    draw = rng.random()
    if draw < TASK_SHARE:  # an agent task: the business metrics (tasks, users, vector search)
        outcome = "failure" if status >= 500 else "success"
        user = f"user-{rng.randrange(USERS_PER_TENANT)}"
        results = rng.randint(0, 20)
        return f"/v1/tenants/{tenant}/tasks?sleep={sleep:.3f}&outcome={outcome}&user={user}&results={results}"
    if draw < TASK_SHARE + infer_share * (1 - TASK_SHARE):
        cache = "hit" if rng.random() < 0.7 else "miss"
        tokens = rng.randint(10, 500)
        return f"/v1/tenants/{tenant}/infer?sleep={sleep:.3f}&status={status}&tokens={tokens}&cache={cache}"
    return f"/v1/echo?sleep={sleep:.3f}&status={status}"


async def _worker(
    client: httpx.AsyncClient, tenant: str, until: float, rng: random.Random, counts: dict[str, int],
    profiles: Mapping[str, Profile],
) -> None:
    while time.monotonic() < until:
        try:
            path = request_path(tenant, rng, profiles)
            method = "POST" if "/tasks?" in path else "GET"
            await client.request(method, path, headers={"X-Tenant-ID": tenant})
            counts[tenant] = counts.get(tenant, 0) + 1
        except httpx.HTTPError:
            await asyncio.sleep(0.5)


async def run(url: str, duration: float, concurrency: int = 2, seed: int = 7,
              profiles: Mapping[str, Profile] = PROFILES) -> dict[str, int]:
    """Drive traffic for `duration` seconds, one mix per tenant of `profiles`; returns requests
    completed per tenant."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    until = time.monotonic() + duration
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        workers = [
            _worker(client, tenant, until, random.Random(rng.random()), counts, profiles)
            for tenant in profiles
            for _ in range(concurrency)
        ]
        await asyncio.gather(*workers)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--concurrency", type=int, default=2, help="concurrent clients per tenant")
    args = parser.parse_args()
    print(asyncio.run(run(args.url, parse_duration(args.duration), args.concurrency)))


if __name__ == "__main__":
    main()
