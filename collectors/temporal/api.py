"""The Temporal frontend calls the exporter makes, each paced, time-limited and counted.

Every call goes through `Api.call`: a concurrency semaphore, the global token bucket and (for
visibility calls) the namespace's bucket, a per-call timeout and no SDK retries, so a refresh's
load on the server is exactly what `temporal_api_calls_total` says it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client
from temporalio.service import RPCError, TLSConfig

from collectors.runtime import CollectorError, error_code, register_error_code
from collectors.temporal.ratelimit import BucketsByKey, TokenBucket

T = TypeVar("T")

# Methods Temporal meters against the namespace visibility rate limit.
VISIBILITY = frozenset({"CountWorkflowExecutions", "ListWorkflowExecutions"})


def _rpc_status(exc: BaseException) -> str:
    """The gRPC status name (`unavailable`, `resource_exhausted`...): short and secret-free."""
    assert isinstance(exc, RPCError)
    return exc.status.name.lower()


register_error_code(RPCError, _rpc_status)


class Api:
    """Paced access to one Temporal frontend's WorkflowService."""

    def __init__(
        self,
        address: str,
        *,
        api_key: str | None,
        tls: bool,
        visibility_rps: float,
        api_rps: float,
        concurrency: int,
        call_timeout: float,
    ) -> None:
        self.address = address
        self._api_key = api_key
        self._tls = tls
        self.call_timeout = call_timeout
        self._visibility = BucketsByKey(visibility_rps, burst=1.0)
        self._global = TokenBucket(api_rps, burst=max(1.0, api_rps / 10))
        self._concurrency = concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._client: Client | None = None
        self.calls: dict[str, int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.waited = 0.0
        self.calls_by_namespace: dict[tuple[str, str], int] = {}  # (namespace, method); benchmarks
        self.trace: list[tuple[float, str, str]] | None = None  # (monotonic, namespace, method) if a list

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    async def connect(self) -> Client:
        if self._client is None:
            tls: bool | TLSConfig = TLSConfig() if self._tls else False
            try:
                self._client = await asyncio.wait_for(
                    Client.connect(self.address, api_key=self._api_key, tls=tls, lazy=False,
                                   connect_timeout=timedelta(seconds=self.call_timeout)),
                    timeout=self.call_timeout + 1,
                )
            except (TimeoutError, RuntimeError, OSError) as exc:
                self._count("Connect", exc)
                raise CollectorError("connection_failed") from None
        return self._client

    def reset(self) -> None:
        """Forget the connection (after the frontend failed), so the next refresh reconnects."""
        self._client = None

    def _count(self, method: str, exc: BaseException | None) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if exc is not None:
            key = (method, error_code(exc))
            self.errors[key] = self.errors.get(key, 0) + 1

    async def call(self, method: str, namespace: str, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run `fn(workflow_service)` for `method` in `namespace` under the caps."""
        client = await self.connect()
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        async with self._semaphore:
            # Pace inside the concurrency slot, so the caps bound when calls actually start
            # (tokens taken outside could bunch up behind a slow call and then burst).
            if method in VISIBILITY:
                self.waited += await self._visibility.get(namespace).acquire()
            self.waited += await self._global.acquire()
            key = (namespace, method)
            self.calls_by_namespace[key] = self.calls_by_namespace.get(key, 0) + 1
            if self.trace is not None:
                self.trace.append((time.monotonic(), namespace, method))
            try:
                result = await fn(client.workflow_service)
            except BaseException as exc:
                self._count(method, exc)
                raise
            self._count(method, None)
            return result

    @property
    def timeout(self) -> timedelta:
        return timedelta(seconds=self.call_timeout)

    async def timed(self, method: str, namespace: str, fn: Callable[[Any], Awaitable[T]]) -> tuple[T, float]:
        """`call`, also returning the call's own round-trip time (not its rate-limit wait)."""
        started = 0.0

        async def run(service: Any) -> T:
            nonlocal started
            started = time.monotonic()
            return await fn(service)

        result = await self.call(method, namespace, run)
        return result, time.monotonic() - started
