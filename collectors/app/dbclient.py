"""PostgreSQL (psycopg 3) and Redis client operations by tenant: a span and a duration per
statement or command, so the database time of each tenant is known even when all tenants share
one database role (pg_stat_statements then sees one user).

opentelemetry-instrumentation-psycopg pins an older opentelemetry-instrumentation than the
project's, so psycopg is instrumented here with a cursor class: each `execute`/`executemany` gets a
client span named after the SQL verb (no statement text, which may hold tenant data) and is timed.
Redis uses opentelemetry-instrumentation-redis for spans, with a wrapper inside its own around
`execute_command` that times every command (failed ones too) and counts cache hits and misses for
GETs on the `app.redis_caches` key prefixes. Pipelines are traced by the instrumentation but not
timed per command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from opentelemetry.trace import SpanKind, Tracer, TracerProvider
from psycopg import sql
from wrapt import wrap_function_wrapper

from collectors.app.tenant import current_tenant
from obsbundle.catalog.clients import OTHER_OPERATION, REDIS_OPERATIONS, SQL_OPERATIONS

if TYPE_CHECKING:
    from collectors.app.clients import ClientMetrics
    from collectors.app.metrics import AppMetrics

_SQL = frozenset(SQL_OPERATIONS)
_REDIS = frozenset(REDIS_OPERATIONS)
C = TypeVar("C", psycopg.Connection[Any], psycopg.AsyncConnection[Any])


def sql_operation(query: object, conn: Any = None) -> str:
    """The statement's verb (SELECT, INSERT, ...) if it is a known one, else `_other`."""
    if isinstance(query, sql.Composable):
        try:
            query = query.as_string(conn)
        except Exception:
            return OTHER_OPERATION
    if isinstance(query, bytes):
        query = query[:32].decode("ascii", "replace")
    if not isinstance(query, str):
        return OTHER_OPERATION
    head = query.lstrip(" \t\r\n(")[:16].split(None, 1)
    verb = head[0].upper().rstrip(";") if head else ""
    return verb if verb in _SQL else OTHER_OPERATION


def redis_operation(command: object) -> str:
    name = command.decode("ascii", "replace") if isinstance(command, bytes) else str(command)
    verb = name.upper()
    return verb if verb in _REDIS else OTHER_OPERATION


def _cursor_classes(metrics: ClientMetrics, tracer: Tracer) -> tuple[type[Any], type[Any]]:
    @contextmanager
    def traced(query: Any, connection: Any) -> Iterator[None]:
        """A client span and a duration by tenant around one statement (sync or async)."""
        operation = sql_operation(query, connection)
        started = time.perf_counter()
        try:
            with tracer.start_as_current_span(operation, kind=SpanKind.CLIENT, attributes={
                    "db.system.name": "postgresql", "db.operation.name": operation}):
                yield
        finally:
            metrics.db_operation(current_tenant(), "postgresql", operation, time.perf_counter() - started)

    class TracedCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            with traced(query, self.connection):
                return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            with traced(query, self.connection):
                super().executemany(query, params_seq, **kwargs)

    class AsyncTracedCursor(psycopg.AsyncCursor[Any]):
        async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            with traced(query, self.connection):
                return await super().execute(query, params, **kwargs)

        async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            with traced(query, self.connection):
                await super().executemany(query, params_seq, **kwargs)

    return TracedCursor, AsyncTracedCursor


class DBClients:
    """Instruments psycopg connections and redis clients for one instrumented service."""

    def __init__(
        self, metrics: ClientMetrics, app_metrics: AppMetrics, tracer_provider: TracerProvider,
        redis_caches: Mapping[str, str],
    ) -> None:
        self.metrics = metrics
        self.app_metrics = app_metrics
        self.tracer_provider = tracer_provider
        self.tracer = tracer_provider.get_tracer("obsbundle.collectors.app.dbclient")
        self._sync_cursor, self._async_cursor = _cursor_classes(metrics, self.tracer)
        # longest prefix first, so `prompts:v2:` wins over `prompts:`
        self.caches = sorted(((p, n) for n, p in redis_caches.items()), key=lambda item: -len(item[0]))

    def instrument_psycopg(self, conn: C) -> C:
        """Spans and durations for every statement run on `conn` (also a pool's `configure=`)."""
        if isinstance(conn, psycopg.AsyncConnection):
            conn.cursor_factory = self._async_cursor
        else:
            conn.cursor_factory = self._sync_cursor
        return conn

    def _cache(self, key: object) -> str | None:
        text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        for prefix, name in self.caches:
            if text.startswith(prefix):
                return name
        return None

    def _record(self, args: tuple[Any, ...], duration: float, reply: Any, failed: bool) -> None:
        operation = redis_operation(args[0]) if args else OTHER_OPERATION
        tenant = current_tenant()
        self.metrics.db_operation(tenant, "redis", operation, duration)
        if operation == "GET" and not failed and self.caches and len(args) > 1:
            cache = self._cache(args[1])
            if cache is not None:
                self.app_metrics.cache(tenant, cache, reply is not None)

    def _sync(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            reply = wrapped(*args, **kwargs)
        except Exception:
            self._record(args, time.perf_counter() - started, None, True)
            raise
        self._record(args, time.perf_counter() - started, reply, False)
        return reply

    async def _async(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            reply = await wrapped(*args, **kwargs)
        except Exception:
            self._record(args, time.perf_counter() - started, None, True)
            raise
        self._record(args, time.perf_counter() - started, reply, False)
        return reply

    def instrument_redis(self, client: Any) -> Any:
        """Spans, durations by tenant and configured cache hits for a redis (or redis.asyncio) client."""
        import redis.asyncio
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        if getattr(client, "_obsbundle_redis", False):
            return client
        wrapper = self._async if isinstance(client, redis.asyncio.Redis) else self._sync
        wrap_function_wrapper(client, "execute_command", wrapper)  # before: ours runs inside its span
        client._obsbundle_redis = True
        RedisInstrumentor.instrument_client(client, tracer_provider=self.tracer_provider)
        return client


def for_instrumentation(inst: Any) -> DBClients:
    """The service's DBClients, made on first use."""
    from collectors.app.clients import for_instrumentation as client_metrics

    found: DBClients | None = inst.__dict__.get("_db_clients")
    if found is None:
        found = inst.__dict__["_db_clients"] = DBClients(
            client_metrics(inst), inst.metrics, inst.tracer_provider, inst.config.get("redis_caches") or {})
    return found
