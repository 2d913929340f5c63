"""A Temporal interceptor that runs every workflow and activity as its tenant.

The tenant (from the namespace, task queue or search attribute, by the exporter's tenancy rules)
is put in OpenTelemetry baggage for the task's duration, so spans started under it get `tenant_id`
(collectors.app's TenantSpanProcessor), and `TenantLogFilter` puts it on log records. A workflow
passes its tenant to the activities it schedules in a header, so an activity is attributed like
its workflow even in search-attribute mode, where the activity's own info has no attribute.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import temporalio.client
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from collectors.app.tenant import current_tenant, with_tenant
from collectors.temporal.tenants import TemporalTenants
from obsbundle.tenancy import LABEL, UNASSIGNED, normalize

HEADER = "obsbundle-tenant-id"


class WorkflowSpanTenants(SpanProcessor):
    """Tags the tracing interceptor's workflow spans (RunWorkflow, StartActivity...) with the tenant.

    Those spans are recorded outside the workflow's context, from the header's trace context only,
    so baggage cannot reach them; they carry `temporalRunID`, which maps to the run's tenant here.
    Bounded: the oldest runs are forgotten past `max_runs`.
    """

    def __init__(self, max_runs: int = 10_000) -> None:
        self.max_runs = max_runs
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, run_id: str, tenant: str) -> None:
        with self._lock:
            self._runs[run_id] = tenant
            self._runs.move_to_end(run_id)
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        run_id = (span.attributes or {}).get("temporalRunID")
        if isinstance(run_id, str):
            with self._lock:
                tenant = self._runs.get(run_id)
            if tenant is not None:
                span.set_attribute(LABEL, tenant)

    def on_end(self, span: ReadableSpan) -> None:
        pass


class TenantLogFilter(logging.Filter):
    """Adds `record.tenant_id` (the running task's tenant, `_unassigned` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant_id = current_tenant()
        return True


def _attribute(name: str | None) -> object:
    if not name:
        return None
    values = workflow.info().search_attributes.get(name) or []  # untyped view: a list of values
    return values[0] if values else None


class TenantInterceptor(temporalio.client.Interceptor, Interceptor):
    """Attributes each workflow and activity to a tenant; pass it to the Client (its workers get it)
    or to the Worker."""

    def __init__(
        self, tenants: TemporalTenants, search_attribute: str | None = None, *,
        workflows: bool = True, activities: bool = True, spans: WorkflowSpanTenants | None = None,
    ) -> None:
        self.tenants = tenants
        self.spans = spans
        self.search_attribute = search_attribute
        self.workflows = workflows
        self.activities = activities

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next, self) if self.activities else next

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        if not self.workflows:
            return None
        root = self

        class Inbound(_WorkflowInbound):
            interceptor = root

        return Inbound

    def activity_tenant(self, headers: dict[str, Any]) -> str:
        header = headers.get(HEADER)
        if header is not None:
            try:
                value = activity.payload_converter().from_payload(header, str)
            except Exception:
                value = None
            if isinstance(value, str) and value.strip():
                return self.tenants.resolver.admit(value if value.startswith("_") else normalize(value))
        info = activity.info()
        return self.tenants.queue_tenant(info.workflow_namespace or "", info.task_queue)


class _ActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, root: TenantInterceptor) -> None:
        super().__init__(next)
        self.root = root

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        tenant = self.root.activity_tenant(dict(input.headers or {}))
        token = context.attach(with_tenant(tenant))
        # Inside TracingInterceptor the current span is the RunActivity span; its tenant is ours.
        trace.get_current_span().set_attribute(LABEL, tenant)
        try:
            return await super().execute_activity(input)
        finally:
            context.detach(token)


class _WorkflowOutbound(WorkflowOutboundInterceptor):
    tenant = UNASSIGNED  # set by the inbound side once the workflow's info is readable

    def _with_header(self, input: StartActivityInput | StartLocalActivityInput) -> None:
        payload = workflow.payload_converter().to_payload(self.tenant)
        input.headers = {**(input.headers or {}), HEADER: payload}

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        self._with_header(input)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        self._with_header(input)
        return super().start_local_activity(input)


class _WorkflowInbound(WorkflowInboundInterceptor):
    interceptor: TenantInterceptor

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        self.outbound = _WorkflowOutbound(outbound)
        super().init(self.outbound)

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        root = self.interceptor
        tenant = root.tenants.workflow_tenant(info.namespace, info.task_queue, _attribute(root.search_attribute))
        self.outbound.tenant = tenant
        if root.spans is not None:
            root.spans.remember(info.run_id, tenant)
        token = context.attach(with_tenant(tenant))
        try:
            return await super().execute_workflow(input)
        finally:
            context.detach(token)
