"""One probe as a collector: checked on its own interval in a refresh thread, so a slow endpoint
never delays another probe or a scrape; /metrics serves the last completed check."""

from __future__ import annotations

from collectors.metricset import MetricSet
from collectors.probes.check import Prober, ProbeSpec, emit
from collectors.runtime import BackgroundRefresh
from obsbundle.catalog import Catalog


class ProbeCollector(BackgroundRefresh):
    """One probe: checks on its interval, serves the last result; closes its HTTP client."""

    def __init__(self, spec: ProbeSpec, catalog: Catalog) -> None:
        self.spec = spec
        self.prober = Prober(spec)
        super().__init__(name="probe", server=spec.name, refresh=self._refresh, catalog=catalog,
                         interval=spec.interval)

    def _refresh(self, out: MetricSet) -> None:
        emit(self.spec, self.prober.check(), out)

    def close(self, join_timeout: float = 0.0) -> None:
        super().close(join_timeout)
        self.prober.close()
