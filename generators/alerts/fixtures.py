"""Synthetic series builders for the generated promtool tests.

Each builder returns a `FixtureFn`: given a signal level, the alert's identifying labels and how
many minutes of data to write, it returns promtool input series (1m apart) that drive the
rule's expression to that level, and the exact value the expression then yields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from generators.alerts.model import Fixture, FixtureFn, Series, num


def series_of(name: str, labels: Mapping[str, str], values: str) -> Series:
    return Series(tuple(sorted({"__name__": name, **labels}.items())), values)


def constant(value: float, minutes: int) -> str:
    return f"{num(value)}+0x{minutes}"


def ramp(per_minute: float, minutes: int, start: float = 0) -> str:
    return f"{num(start)}+{num(per_minute)}x{minutes}"


def gauge(name: str, extra: Mapping[str, str] | None = None,
          transform: Callable[[float], float] = lambda v: v) -> FixtureFn:
    """The level is the gauge's value (optionally transformed, e.g. days -> seconds)."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        return Fixture((series_of(name, {**labels, **(extra or {})}, constant(transform(level), minutes)),), level)

    return build


def gauge_pair(numerator: str, denominator: str, total: float = 1e9,
               used: bool = False, extra: Mapping[str, str] | None = None) -> FixtureFn:
    """The level is numerator/denominator (or 1 - it when `used`, for available-vs-total gauges)."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        part = (1 - level) * total if used else level * total
        lab = {**labels, **(extra or {})}
        return Fixture((series_of(numerator, lab, constant(part, minutes)),
                        series_of(denominator, lab, constant(total, minutes))), level)

    return build


def counter_rate(name: str, scale: float = 1.0, extra: Mapping[str, str] | None = None,
                 transform: Callable[[float], float] = lambda v: v) -> FixtureFn:
    """The level is the counter's per-second rate times `scale` (60 for per-minute thresholds)."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        per_minute = transform(level) / scale * 60
        return Fixture((series_of(name, {**labels, **(extra or {})}, ramp(per_minute, minutes)),), level)

    return build


def status_ratio(name: str, label: str, bad: str, good: str, per_minute: float = 600,
                 extra: Mapping[str, str] | None = None, factor: float = 1.0) -> FixtureFn:
    """Two counters split by `label`: the level/factor is the bad share of their combined rate."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        share = level * factor
        lab = {**labels, **(extra or {})}
        return Fixture((
            series_of(name, {**lab, label: bad}, ramp(per_minute * share, minutes)),
            series_of(name, {**lab, label: good}, ramp(per_minute * (1 - share), minutes)),
        ), level)

    return build


def gauge_status_ratio(name: str, label: str, bad: str, good: str, total: float = 1000) -> FixtureFn:
    """Gauges split by `label` (closed workflows by status): the level is the bad share."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        return Fixture((
            series_of(name, {**labels, label: bad}, constant(level * total, minutes)),
            series_of(name, {**labels, label: good}, constant((1 - level) * total, minutes)),
        ), level)

    return build


def le_values(bound: float) -> tuple[str, str]:
    """Both spellings of a bucket bound (`2` and `2.0`): exporters differ, the matcher takes either."""
    text = num(bound)
    alt = text + ".0" if "." not in text and "e" not in text else text
    return text, alt


def _bucket_series(name: str, labels: Mapping[str, str], buckets: Iterable[float],
                   shares: Mapping[float, float], per_minute: float, minutes: int) -> list[Series]:
    """Cumulative `_bucket` series for observations split over buckets (upper bound -> share)."""
    out = []
    bounds = sorted(buckets)
    for bound in [*bounds, float("inf")]:
        cumulative = sum(share for upper, share in shares.items() if upper <= bound)
        le = "+Inf" if bound == float("inf") else le_values(bound)[1]
        out.append(series_of(f"{name}_bucket", {**labels, "le": le}, ramp(per_minute * cumulative, minutes)))
    out.append(series_of(f"{name}_count", labels, ramp(per_minute, minutes)))
    out.append(series_of(f"{name}_sum", labels, ramp(per_minute, minutes)))
    return out


def _requests(requests: str | None, labels: Mapping[str, str], per_minute: float, minutes: int) -> list[Series]:
    """The request counter beside a latency histogram (the alerts' traffic guard reads it)."""
    if not requests:
        return []
    return [series_of(requests, {**labels, "status_class": "2xx"}, ramp(per_minute, minutes))]


def histogram_quantile(name: str, buckets: Iterable[float], q: float = 0.95, per_minute: float = 600,
                       extra: Mapping[str, str] | None = None, requests: str | None = None) -> FixtureFn:
    """All observations land in the bucket holding the level; the value is Prometheus's interpolation."""
    bounds = sorted(buckets)

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        upper = next((b for b in bounds if b >= level), bounds[-1])
        lower = max((b for b in bounds if b < upper), default=0.0)
        lab = {**labels, **(extra or {})}
        series = _bucket_series(name, lab, bounds, {upper: 1.0}, per_minute, minutes)
        series += _requests(requests, lab, per_minute, minutes)
        return Fixture(tuple(series), lower + (upper - lower) * q)

    return build


def histogram_slow_share(name: str, buckets: Iterable[float], threshold: float, factor: float = 1.0,
                         per_minute: float = 600, requests: str | None = None) -> FixtureFn:
    """A share level*factor of observations lands above `threshold`, the rest at or under it."""
    bounds = sorted(buckets)

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        share = level * factor
        above = next((b for b in bounds if b > threshold), float("inf"))
        shares = {threshold: 1 - share, above: share}
        series = _bucket_series(name, labels, bounds, shares, per_minute, minutes)
        return Fixture(tuple(series + _requests(requests, labels, per_minute, minutes)), level)

    return build


def linear_fill(name: str, size_name: str, size: float = 1e12, per_minute: float = 1e8,
                extra: Mapping[str, str] | None = None) -> FixtureFn:
    """Free space falling linearly so that at the end of the data `level` hours remain."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        start = level * 60 * per_minute + minutes * per_minute
        lab = {**labels, **(extra or {})}
        return Fixture((series_of(name, lab, f"{num(start)}-{num(per_minute)}x{minutes}"),
                        series_of(size_name, lab, constant(size, minutes))), level)

    return build


def linear_growth(name: str, extra: Mapping[str, str] | None = None) -> FixtureFn:
    """A gauge growing by `level` per minute."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        return Fixture((series_of(name, {**labels, **(extra or {})}, ramp(level, minutes, 10)),), level)

    return build


def cpu_busy(name: str = "node_cpu_seconds_total", cpus: int = 2) -> FixtureFn:
    """`cpus` CPUs each idle (1 - level) of the time, the rest in mode user."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        series = []
        for cpu in range(cpus):
            series.append(series_of(name, {**labels, "cpu": str(cpu), "mode": "idle"},
                                  ramp(60 * (1 - level), minutes)))
            series.append(series_of(name, {**labels, "cpu": str(cpu), "mode": "user"}, ramp(60 * level, minutes)))
        return Fixture(tuple(series), level)

    return build


def combine(*parts: FixtureFn) -> FixtureFn:
    """Several fixtures at the same level; the first one's value counts."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        built = [p(level, labels, minutes) for p in parts]
        return Fixture(tuple(s for f in built for s in f.series), built[0].value)

    return build


def counter_share(part: str, other: str, per_minute: float = 600, extra: Mapping[str, str] | None = None,
                  total_includes_part: bool = False) -> FixtureFn:
    """Two counters: the level is part / (part + other), or part / other when `other` counts both."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        lab = {**labels, **(extra or {})}
        rest = per_minute if total_includes_part else per_minute * (1 - level)
        return Fixture((series_of(part, lab, ramp(per_minute * level, minutes)),
                        series_of(other, lab, ramp(rest, minutes))), level)

    return build


def absent(name: str) -> FixtureFn:
    """Level 1: no `name` series at all (an unrelated one keeps promtool's input non-empty); 0: present."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        if level >= 1:
            return Fixture((series_of("obsbundle_build_info", {"exporter": "other", "version": "1"},
                                      constant(1, minutes)),), 1.0)
        return Fixture((series_of(name, {"tenant_id": "_shared", "server": "main"}, constant(1, minutes)),), 0.0)

    return build


def clock_offset(name: str) -> FixtureFn:
    """A wall-clock gauge running `level` seconds ahead of the evaluation timestamps (1m apart)."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        return Fixture((series_of(name, labels, f"{num(level)}+60x{minutes}"),), level)

    return build


def targets_down(name: str = "up", targets: int = 4) -> FixtureFn:
    """`targets` targets of one job, round(level * targets) of them down."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        down = round(level * targets)
        return Fixture(tuple(
            series_of(name, {**labels, "instance": f"10.0.0.{i + 1}:9187"}, constant(0 if i < down else 1, minutes))
            for i in range(targets)), down / targets)

    return build


def tenants_failing(requests: str, what: str, per_minute: float = 600) -> FixtureFn:
    """`level` tenants each failing (50%, 51%, ... 5xx) beside one healthy tenant carrying most traffic;
    notes hold the `tenants_affected` text Prometheus then renders (count, top five by ratio)."""

    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        count = int(level)
        route = {**labels, "route": "/v1/agents", "method": "POST"}
        series: list[Series] = []
        ratios = {}
        for i in range(count):
            tenant = f"t{i + 1:02d}"
            share = 0.5 + i / 100
            ratios[tenant] = share
            lab = {**route, "tenant_id": tenant}
            series.append(series_of(requests, {**lab, "status_class": "5xx"}, ramp(per_minute * share, minutes)))
            series.append(series_of(requests, {**lab, "status_class": "2xx"},
                                    ramp(per_minute * (1 - share), minutes)))
        healthy = {**route, "tenant_id": "healthy", "status_class": "2xx"}
        series.append(series_of(requests, healthy, ramp(per_minute * 100 * max(count, 1), minutes)))
        top = sorted(sorted(ratios, key=lambda t: -ratios[t])[:5])
        return Fixture(tuple(series), float(count),
                       notes={"tenants_affected": f"{count} tenants {what}; top: {', '.join(top)}"})

    return build
