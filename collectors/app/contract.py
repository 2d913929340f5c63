"""What the middlewares and helpers need from an instrumented service, and which one is active.

`setup.Instrumentation` satisfies `Instrumented`; the middlewares and helpers depend only on this
module, so the import graph is one-way: setup -> {asgi, wsgi, helpers} -> contract.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from opentelemetry.trace import Tracer, TracerProvider

from collectors.app.metrics import AppMetrics
from collectors.app.routes import RouteTable
from collectors.app.tenant import TenantSources


class Instrumented(Protocol):
    routes: RouteTable
    tenants: TenantSources
    metrics: AppMetrics
    tracer: Tracer
    tracer_provider: TracerProvider
    service_name: str

    def access_log(self, method: str, route: str, status: int, duration: float) -> None: ...


_lock = threading.Lock()
_active: Any = None


def active() -> Any:
    """The most recent `instrument()` result still running, for the module-level helpers."""
    return _active


def set_active(inst: Any) -> None:
    global _active
    with _lock:
        _active = inst


def clear_active(inst: Any) -> None:
    """Forget `inst` if it is the active one (a later `instrument()` stays active)."""
    global _active
    with _lock:
        if _active is inst:
            _active = None
