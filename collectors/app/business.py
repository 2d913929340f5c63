"""Business metrics by tenant: agents active, tasks started/finished, active users, vector search.

    business = BusinessMetrics(otel, agents=lambda: registry.running_by_tenant())
    business.task_started(); ...; business.task_finished("success")
    business.user_seen(user_id)                      # distinct users over `active_users_window`
    with business.vector_search("docs") as search:   # times it; set search.results = len(hits)
        hits = store.query(...)

The tenant defaults to the running request's (OpenTelemetry baggage, see collectors.app.tenant),
like the other helpers. Names are declared in `obsbundle.catalog.business`.

Active users are counted with one HyperLogLog++ sketch (datasketch) per tenant and time slice:
the window is cut into `slices` slices, the estimate merges the slices of the last window, so
memory is bounded (`slices * 2**precision` bytes per tenant, 16 KiB at the defaults) whatever the
number of users, and the relative standard error is 1.04 / sqrt(2**precision) (1.6% at precision
12; below about 2.5 * 2**precision users linear counting keeps it within a user or two). The window
moves by whole slices, so a user counts for between `window - window/slices` and `window`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from datasketch import HyperLogLogPlusPlus
from opentelemetry.metrics import CallbackOptions, Observation

from collectors.app.limits import TenantCap
from collectors.app.tenant import current_tenant
from obsbundle.catalog import app as app_names
from obsbundle.catalog import business as names
from obsbundle.config import parse_duration

if TYPE_CHECKING:
    from collectors.app.setup import Instrumentation

OTHER_OUTCOME = "_other"


def outcome_label(outcome: str) -> str:
    return outcome if outcome in names.OUTCOMES else OTHER_OUTCOME


class ActiveUsers:
    """Approximate distinct users per tenant over a sliding window, in bounded memory."""

    def __init__(
        self, window: float = 3600.0, slices: int = 4, precision: int = 12,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window <= 0 or slices < 1 or not 4 <= precision <= 16:
            raise ValueError("active users: window > 0, slices >= 1 and 4 <= precision <= 16 required")
        self.window = window
        self.slices = slices
        self.precision = precision
        self.slice_seconds = window / slices
        self._clock = clock
        self._lock = threading.Lock()
        self._tenants: dict[str, deque[tuple[int, HyperLogLogPlusPlus]]] = {}

    def _slice(self) -> int:
        return int(self._clock() // self.slice_seconds)

    def _live(self, ring: deque[tuple[int, HyperLogLogPlusPlus]], now: int) -> None:
        while ring and ring[0][0] <= now - self.slices:
            ring.popleft()

    def add(self, tenant: str, user: str) -> None:
        now = self._slice()
        with self._lock:
            ring = self._tenants.setdefault(tenant, deque())
            self._live(ring, now)
            if not ring or ring[-1][0] != now:
                ring.append((now, HyperLogLogPlusPlus(p=self.precision)))
            ring[-1][1].update(user.encode("utf-8", "surrogatepass"))

    def estimates(self) -> dict[str, int]:
        """tenant -> estimated distinct users in the window; tenants idle for a window are dropped."""
        now = self._slice()
        out: dict[str, int] = {}
        with self._lock:
            for tenant in list(self._tenants):
                ring = self._tenants[tenant]
                self._live(ring, now)
                if not ring:
                    del self._tenants[tenant]
                    continue
                merged = HyperLogLogPlusPlus(p=self.precision)
                for _, sketch in ring:
                    merged.merge(sketch)
                out[tenant] = round(merged.count())
        return out


class VectorSearch:
    """Times one search (context manager); set `results` to the number of hits before it ends."""

    def __init__(self, owner: BusinessMetrics, index: str, tenant: str | None) -> None:
        self._owner = owner
        self.index = index
        self.tenant = tenant
        self.results = 0
        self._started = 0.0

    def __enter__(self) -> VectorSearch:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._owner.record_vector_search(self.index, time.perf_counter() - self._started, self.results, self.tenant)


class BusinessMetrics:
    """The business instruments on one instrumented service's meter, with the tenant cap."""

    def __init__(
        self,
        instrumentation: Instrumentation,
        *,
        agents: Callable[[], Mapping[str, int]] | None = None,
        active_users_window: str | float = "1h",
        active_users_slices: int = 4,
        active_users_precision: int = 12,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        meter = instrumentation.meter
        max_tenants = int(instrumentation.config["max_tenants_per_instrument"])
        # The same instrument collectors.app's AppMetrics made (same name, unit and description).
        overflow = meter.create_counter(
            app_names.TENANT_OVERFLOW.name.removesuffix("_total"), unit="1", description=app_names.TENANT_OVERFLOW.help
        )
        self.cap = TenantCap(max_tenants, overflow)
        self._agents = agents
        window = parse_duration(active_users_window)
        self.window_label = active_users_window if isinstance(active_users_window, str) else f"{int(window)}s"
        self.users = ActiveUsers(window, active_users_slices, active_users_precision, clock)
        self._started = meter.create_counter(
            names.TASKS_STARTED.name.removesuffix("_total"), unit="1", description=names.TASKS_STARTED.help
        )
        self._finished = meter.create_counter(
            names.TASKS_FINISHED.name.removesuffix("_total"), unit="1", description=names.TASKS_FINISHED.help
        )
        self._search_duration = meter.create_histogram(
            names.VECTOR_SEARCH_DURATION.name, unit="s", description=names.VECTOR_SEARCH_DURATION.help,
            explicit_bucket_boundaries_advisory=list(names.VECTOR_SEARCH_DURATION.buckets),
        )
        self._search_results = meter.create_histogram(
            names.VECTOR_SEARCH_RESULTS.name, unit="1", description=names.VECTOR_SEARCH_RESULTS.help,
            explicit_bucket_boundaries_advisory=list(names.VECTOR_SEARCH_RESULTS.buckets),
        )
        meter.create_observable_gauge(
            names.AGENTS_ACTIVE.name, callbacks=[self._observe_agents], unit="1", description=names.AGENTS_ACTIVE.help
        )
        meter.create_observable_gauge(
            names.ACTIVE_USERS.name, callbacks=[self._observe_users], unit="1", description=names.ACTIVE_USERS.help
        )

    def _tenant(self, tenant: str | None, *instruments: str) -> str:
        return self.cap.admit(tenant or current_tenant(), *instruments)

    # -- recording ---------------------------------------------------------------------------

    def task_started(self, tenant: str | None = None) -> None:
        self._started.add(1, {"tenant_id": self._tenant(tenant, names.TASKS_STARTED.name)})

    def task_finished(self, outcome: str, tenant: str | None = None) -> None:
        capped = self._tenant(tenant, names.TASKS_FINISHED.name)
        self._finished.add(1, {"tenant_id": capped, "outcome": outcome_label(outcome)})

    def user_seen(self, user_id: str, tenant: str | None = None) -> None:
        """Count `user_id` as active for the tenant; the id itself is never stored or exposed."""
        if user_id:
            self.users.add(self._tenant(tenant, names.ACTIVE_USERS.name), str(user_id))

    def vector_search(self, index: str, tenant: str | None = None) -> VectorSearch:
        return VectorSearch(self, index, tenant)

    def record_vector_search(self, index: str, duration: float, results: int, tenant: str | None = None) -> None:
        capped = self._tenant(tenant, names.VECTOR_SEARCH_DURATION.name, names.VECTOR_SEARCH_RESULTS.name)
        labels = {"tenant_id": capped, "index": index}
        self._search_duration.record(duration, labels)
        self._search_results.record(max(0, int(results)), labels)

    # -- callbacks ---------------------------------------------------------------------------

    def _observe_agents(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._agents is None:
            return []
        totals: dict[str, int] = {}
        for tenant, count in self._agents().items():
            capped = self.cap.admit(tenant)
            totals[capped] = totals.get(capped, 0) + int(count)
        return [Observation(count, {"tenant_id": tenant}) for tenant, count in sorted(totals.items())]

    def _observe_users(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(count, {"tenant_id": tenant, "window": self.window_label})
            for tenant, count in sorted(self.users.estimates().items())
        ]
