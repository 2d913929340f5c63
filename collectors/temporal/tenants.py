"""Which tenant a Temporal namespace, task queue or workflow belongs to, under one tenancy mode.

One place for the rules, shared by the exporter (collectors.temporal.refresh) and the worker-side
helper (collectors.worker), so a workflow's tenant is the same on the server's figures and on the
worker's spans, logs and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from obsbundle.tenancy import SHARED, UNASSIGNED, TenantResolver, normalize

MODES = ("namespace", "task_queue", "search_attribute")
SYSTEM_NAMESPACES = frozenset({"temporal-system"})


@dataclass
class TemporalTenants:
    """The tenancy `mode` (`sources.temporal[].tenancy`) applied through one resolver."""

    resolver: TenantResolver
    mode: str = "namespace"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown tenancy mode {self.mode}")

    def namespace_tenant(self, namespace: str) -> str:
        if namespace in SYSTEM_NAMESPACES:
            return SHARED
        return self.resolver.resolve("namespace", namespace)

    def queue_tenant(self, namespace: str, queue: str) -> str:
        """The tenant of a task queue: its namespace's, its name's, or `_shared` in attribute mode."""
        if self.mode == "namespace":
            return self.namespace_tenant(namespace)
        if self.mode == "task_queue":
            return self.resolver.resolve("task_queue", queue)
        tenant = self.resolver.match("task_queue", queue)  # shared queues in attribute mode
        return SHARED if tenant is None else self.resolver.admit(tenant)

    def workflow_tenant(self, namespace: str, queue: str, attribute: object = None) -> str:
        """The tenant of one workflow: in attribute mode its search attribute value, else its queue's."""
        if self.mode != "search_attribute":
            return self.queue_tenant(namespace, queue)
        if isinstance(attribute, str) and attribute.strip():
            return self.resolver.admit(normalize(attribute))
        return UNASSIGNED
