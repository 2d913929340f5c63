"""One refresh pass against the Temporal frontend: namespaces, workflow counts, task queues.

Tenancy decides what a "unit" of counting is:

- namespace: one CountWorkflowExecutions per tenant namespace;
- task_queue: one per known task queue, filtered `TaskQueue = '<queue>'`;
- search_attribute: one per known attribute value, filtered `<Attr> = '<value>'`, plus one for
  workflows without it (`_unassigned`).

Each count asks for running and closed-in-window workflows at once, grouped by ExecutionStatus
(the only GROUP BY Temporal's visibility store accepts), so a tenant costs one visibility call.
Task queues and attribute values are found from open workflows (and, outside namespace mode,
workflows closed since the previous refresh) with a bounded ListWorkflowExecutions, and are
remembered for the closed window so a quiet tenant's queues stay described.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    DescribeTaskQueueRequest,
    GetSystemInfoRequest,
    ListNamespacesRequest,
    ListNamespacesResponse,
    ListWorkflowExecutionsRequest,
    ListWorkflowExecutionsResponse,
)

from collectors.metricset import MetricSet
from collectors.runtime import CollectorError, error_code
from collectors.temporal.api import Api
from collectors.temporal.tenants import MODES, SYSTEM_NAMESPACES, TemporalTenants
from obsbundle.catalog.temporal import ALWAYS_STATUSES
from obsbundle.settings import TemporalSource, TemporalTenancy
from obsbundle.tenancy import SHARED, UNASSIGNED, TenantResolver, normalize

log = logging.getLogger("obsbundle.exporter.temporal")

# ExecutionStatus group values -> `status` label (None: running).
STATUS_LABELS: dict[str, str | None] = {
    "Running": None,
    "Completed": "completed",
    "Failed": "failed",
    "TimedOut": "timed_out",
    "Terminated": "terminated",
    "Canceled": "canceled",
    "ContinuedAsNew": "continued_as_new",
}
QUEUE_TYPES = (
    (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "workflow"),
    (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, "activity"),
)
MIN_RETENTION = 600.0  # remember discovered queues/values at least this long (seconds)
DISCOVERY_SLACK = 60.0  # re-read closes this far before the previous refresh (visibility lag)


@dataclass(frozen=True)
class Settings:
    """The refresh-relevant part of one `sources.temporal[]` entry, durations in seconds."""

    server: str
    mode: str
    namespaces: tuple[str, ...]
    task_queues: tuple[str, ...]
    closed_window: float
    search_attribute: str | None
    page_size: int
    max_pages: int
    max_task_queues: int

    @classmethod
    def from_source(cls, source: TemporalSource, tenancy: TemporalTenancy) -> Settings:
        return cls(
            server=source.name,
            mode=source.tenancy,
            namespaces=source.namespaces,
            task_queues=source.task_queues,
            closed_window=source.closed_window,
            search_attribute=tenancy.search_attribute,
            page_size=source.discovery_page_size,
            max_pages=source.discovery_max_pages,
            max_task_queues=source.max_task_queues,
        )


def _quoted(value: str) -> str | None:
    """A visibility-query string literal, or None for values we will not risk quoting."""
    if "'" in value or "\\" in value or "\n" in value:
        return None
    return f"'{value}'"


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _decode(payload: Any) -> Any:
    try:
        return json.loads(payload.data)
    except (ValueError, TypeError):
        return None


class Refresher:
    """Produces one MetricSet per refresh; keeps what it discovered between refreshes."""

    def __init__(self, settings: Settings, resolver: TenantResolver, api: Api) -> None:
        if settings.mode not in MODES:
            raise ValueError(f"unknown tenancy mode {settings.mode}")
        self.settings = settings
        self.resolver = resolver
        self.tenants = TemporalTenants(resolver, settings.mode)
        self.api = api
        self.namespaces: tuple[str, ...] = ()  # every namespace seen last refresh (relabel mode)
        self.task_queues: set[str] = set()  # every task queue known (relabel mode)
        self._queues: dict[str, dict[str, float]] = {}  # namespace -> queue -> last seen
        self._values: dict[str, dict[str, float]] = {}  # namespace -> attribute value -> last seen
        self._last_wall: float | None = None
        self.failures = 0
        self.successes = 0
        self._last_code = "error"

    # -- tenancy -----------------------------------------------------------------------------

    def namespace_tenant(self, namespace: str) -> str:
        return self.tenants.namespace_tenant(namespace)

    def queue_tenant(self, namespace: str, queue: str) -> str:
        return self.tenants.queue_tenant(namespace, queue)

    def watched(self, names: Iterable[str]) -> list[str]:
        """Namespaces to query: discovered tenant namespaces (namespace mode) or every namespace
        but temporal-system (other modes, when none are configured), plus the configured ones."""
        if self.settings.mode == "namespace":
            found = [n for n in names if self.resolver.match("namespace", n) is not None]
        elif self.settings.namespaces:
            found = []
        else:
            found = [n for n in names if n not in SYSTEM_NAMESPACES]
        return sorted({*found, *self.settings.namespaces})

    # -- the pass ----------------------------------------------------------------------------

    async def run(self, out: MetricSet) -> None:
        started, wall = time.monotonic(), time.time()
        calls_before = self.api.total_calls
        self.failures = self.successes = 0
        try:
            _, latency = await self.api.timed(
                "GetSystemInfo", "",
                lambda s: s.get_system_info(GetSystemInfoRequest(), timeout=self.api.timeout),
            )
            names = await self._list_namespaces()
        except CollectorError:
            self.api.reset()
            raise
        except Exception as exc:
            self.api.reset()
            raise CollectorError(error_code(exc)) from None
        self.namespaces = tuple(names)
        window_start = wall - self.settings.closed_window
        since = window_start if self._last_wall is None else max(window_start, self._last_wall - DISCOVERY_SLACK)
        watched = self.watched(names)
        await asyncio.gather(*(self._namespace(ns, out, window_start, since) for ns in watched))
        if self.failures and not self.successes:
            self.api.reset()
            raise CollectorError(self._last_code)
        self._last_wall = wall
        self.task_queues = {q for queues in self._queues.values() for q in queues}
        shared = {"tenant_id": SHARED}
        out.set("temporal_frontend_latency_seconds", latency, shared)
        out.set("temporal_namespaces", len(names), shared)
        out.set("temporal_closed_window_seconds", self.settings.closed_window, shared)
        out.set("temporal_refresh_api_calls", self.api.total_calls - calls_before, shared)
        out.set("temporal_refresh_duration_seconds", time.monotonic() - started, shared)

    async def _list_namespaces(self) -> list[str]:
        names: list[str] = []
        token = b""
        while True:
            response = await self._namespaces_page(ListNamespacesRequest(page_size=100, next_page_token=token))
            names += [n.namespace_info.name for n in response.namespaces]
            token = response.next_page_token
            if not token:
                return names

    async def _namespaces_page(self, request: ListNamespacesRequest) -> ListNamespacesResponse:
        response: ListNamespacesResponse = await self.api.call(
            "ListNamespaces", "", lambda s: s.list_namespaces(request, timeout=self.api.timeout)
        )
        return response

    async def _guard(self, coro: Any) -> Any:
        """Run one namespace-level call; a failure costs that series, not the whole refresh."""
        try:
            result = await coro
        except Exception as exc:
            self.failures += 1
            self._last_code = error_code(exc)
            log.debug("temporal call failed: %s", self._last_code)
            return None
        self.successes += 1
        return result

    async def _namespace(self, ns: str, out: MetricSet, window_start: float, since: float) -> None:
        now = time.monotonic()
        mode = self.settings.mode
        if mode == "namespace":
            running = await self._guard(self._count(ns, self.namespace_tenant(ns), None, window_start, out))
            if running:
                found = await self._guard(self._discover(ns, "ExecutionStatus = 'Running'"))
                if found:
                    self._remember(self._queues, ns, found[0], now)
        else:
            query = f"ExecutionStatus = 'Running' OR CloseTime >= '{_rfc3339(since)}'"
            found = await self._guard(self._discover(ns, query))
            if found:
                self._remember(self._queues, ns, found[0], now)
                self._remember(self._values, ns, found[1], now)
            await asyncio.gather(*(
                self._guard(self._count(ns, tenant, filter_, window_start, out))
                for tenant, filter_ in self._units(ns)
            ))
        queues = self._current(self._queues, ns, now)
        queues = list(dict.fromkeys([*self.settings.task_queues, *queues]))[: self.settings.max_task_queues]
        await asyncio.gather(*(
            self._guard(self._describe(ns, q, self.queue_tenant(ns, q), out)) for q in queues
        ))

    def _units(self, ns: str) -> list[tuple[str, str]]:
        now = time.monotonic()
        units: list[tuple[str, str]] = []
        if self.settings.mode == "task_queue":
            queues = dict.fromkeys([*self.settings.task_queues, *self._current(self._queues, ns, now)])
            for queue in queues:
                literal = _quoted(queue)
                if literal:
                    units.append((self.resolver.resolve("task_queue", queue), f"TaskQueue = {literal}"))
        else:
            attr = self.settings.search_attribute or ""
            for value in self._current(self._values, ns, now):
                literal = _quoted(value)
                if literal:
                    units.append((self.resolver.admit(normalize(value)), f"{attr} = {literal}"))
            units.append((UNASSIGNED, f"{attr} IS NULL"))
        return units

    def _remember(self, store: dict[str, dict[str, float]], ns: str, names: Iterable[str], now: float) -> None:
        seen = store.setdefault(ns, {})
        for name in names:
            seen[name] = now

    def _current(self, store: dict[str, dict[str, float]], ns: str, now: float) -> list[str]:
        """Names seen within the retention, most recently seen first; forgets older ones."""
        retention = max(MIN_RETENTION, self.settings.closed_window)
        seen = store.get(ns, {})
        for name in [n for n, at in seen.items() if now - at > retention]:
            del seen[name]
        return sorted(seen, key=lambda n: (-seen[n], n))

    # -- calls -------------------------------------------------------------------------------

    async def _count(
        self, ns: str, tenant: str, filter_: str | None, window_start: float, out: MetricSet
    ) -> int:
        """Running and closed-in-window counts for one unit; returns the running count."""
        status = f"ExecutionStatus = 'Running' OR CloseTime >= '{_rfc3339(window_start)}'"
        query = f"({filter_}) AND ({status})" if filter_ else status
        request = CountWorkflowExecutionsRequest(namespace=ns, query=f"{query} GROUP BY ExecutionStatus")
        response = await self.api.call(
            "CountWorkflowExecutions", ns,
            lambda s: s.count_workflow_executions(request, timeout=self.api.timeout),
        )
        labels = {"tenant_id": tenant}
        out.add("temporal_tenant_workflows_running", 0, labels)
        for closed in ALWAYS_STATUSES:
            out.add("temporal_tenant_workflows_closed", 0, {**labels, "status": closed})
        running = 0
        for group in response.groups:
            value = _decode(group.group_values[0]) if group.group_values else None
            if value not in STATUS_LABELS:
                continue
            label = STATUS_LABELS[value]
            if label is None:
                running += group.count
                out.add("temporal_tenant_workflows_running", group.count, labels)
            else:
                out.add("temporal_tenant_workflows_closed", group.count, {**labels, "status": label})
        return running

    async def _discover(self, ns: str, query: str) -> tuple[set[str], set[str]]:
        """Task queues and search-attribute values of the workflows `query` selects (bounded)."""
        queues: set[str] = set()
        values: set[str] = set()
        attr = self.settings.search_attribute
        token = b""
        for _ in range(self.settings.max_pages):
            response = await self._executions_page(ListWorkflowExecutionsRequest(
                namespace=ns, page_size=self.settings.page_size, query=query, next_page_token=token
            ))
            for execution in response.executions:
                if execution.task_queue:
                    queues.add(execution.task_queue)
                if attr and attr in execution.search_attributes.indexed_fields:
                    value = _decode(execution.search_attributes.indexed_fields[attr])
                    if isinstance(value, str) and value:
                        values.add(value)
            token = response.next_page_token
            if not token:
                break
        return queues, values

    async def _executions_page(self, request: ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse:
        response: ListWorkflowExecutionsResponse = await self.api.call(
            "ListWorkflowExecutions", request.namespace,
            lambda s: s.list_workflow_executions(request, timeout=self.api.timeout),
        )
        return response

    async def _describe(self, ns: str, queue: str, tenant: str, out: MetricSet) -> None:
        async def one(kind: int, label: str) -> None:
            request = DescribeTaskQueueRequest(
                namespace=ns,
                task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=kind,  # type: ignore[arg-type]
                report_stats=True,
            )
            response = await self.api.call(
                "DescribeTaskQueue", ns, lambda s: s.describe_task_queue(request, timeout=self.api.timeout)
            )
            labels = {"tenant_id": tenant, "task_queue": queue, "task_queue_type": label}
            stats = response.stats
            idle = not (response.pollers or stats.approximate_backlog_count or stats.tasks_add_rate
                        or stats.tasks_dispatch_rate)
            if idle and label == "activity":
                return  # a queue used for workflow tasks only: no activity series (halves the series)
            age = stats.approximate_backlog_age.ToTimedelta().total_seconds()
            previous = out.value("temporal_tenant_task_queue_backlog_age_seconds", **labels)
            out.set("temporal_tenant_task_queue_backlog_age_seconds", max(age, previous or 0.0), labels)
            out.add("temporal_tenant_task_queue_backlog", stats.approximate_backlog_count, labels)
            out.add("temporal_tenant_task_queue_pollers", len(response.pollers), labels)
            out.add("temporal_tenant_task_queue_add_rate_per_second", stats.tasks_add_rate, labels)
            out.add("temporal_tenant_task_queue_dispatch_rate_per_second", stats.tasks_dispatch_rate, labels)

        await asyncio.gather(*(one(kind, label) for kind, label in QUEUE_TYPES))
