"""Build Prometheus metric families for catalogued metrics only, with exact label sets."""

from __future__ import annotations

import builtins
import functools
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.utils import floatToGoString

from obsbundle.catalog import Catalog, Metric


class UncataloguedMetric(KeyError):
    """A collector tried to emit a metric the catalog does not declare."""


@dataclass(frozen=True, eq=False)
class Rendered:
    """A finished MetricSet and each of its families' sample lines, rendered once.

    A background pass is rendered when it completes (`MetricSet.rendered()`), then attached to
    every scrape's set (`MetricSet.attach`), so a scrape copies bytes instead of re-rendering
    tens of thousands of series. `snapshot` keeps the samples for families()/value() readers.
    """

    snapshot: MetricSet
    lines: Mapping[str, bytes]  # family -> its sample lines, without HELP/TYPE


class MetricSet:
    """Samples for one scrape, grouped by family; label sets are checked against the catalog.

    `const_labels` (typically `server`) are added to every sample whose metric declares them.
    Adding the same series twice sums the values, which is how per-table rows fold into a
    per-tenant series. Attached `Rendered` passes count as merged in, and must not repeat a
    series of the set itself (their lines are served beside it, not summed into it).
    """

    def __init__(self, catalog: Catalog, const_labels: Mapping[str, str] | None = None) -> None:
        self.catalog = catalog
        self.const_labels = dict(const_labels or {})
        self._values: dict[str, dict[tuple[str, ...], float]] = {}
        self._histograms: dict[str, dict[tuple[str, ...], tuple[list[tuple[str, float]], float]]] = {}
        self._text: dict[str, str] = {}  # a family's lines written by set_columns, valid until it changes
        # set_columns' series, stored as (key tuples, indexes present, values) until read one by one
        self._columns: dict[str, tuple[list[tuple[str, ...]], Sequence[int], list[float]]] = {}
        self.attached: list[Rendered] = []

    def _metric(self, name: str) -> Metric:
        try:
            return self.catalog[name]
        except KeyError:
            raise UncataloguedMetric(name) from None

    def _key(self, metric: Metric, labels: Mapping[str, object]) -> tuple[str, ...]:
        merged: dict[str, object] = {k: v for k, v in self.const_labels.items() if k in metric.labels}
        merged.update({k: v for k, v in labels.items()})
        if set(merged) != set(metric.labels):
            raise ValueError(f"{metric.name}: labels {sorted(merged)} != declared {sorted(metric.labels)}")
        return tuple("" if merged[k] is None else str(merged[k]) for k in metric.labels)

    def add(self, name: str, value: float | int | None, labels: Mapping[str, object] | None = None) -> None:
        """Add a gauge/counter/info sample; None or NaN values are skipped (no data, not zero)."""
        if value is None:
            return
        value = float(value)
        if math.isnan(value):
            return
        metric = self._metric(name)
        if metric.type == "histogram":
            raise ValueError(f"{name} is a histogram; use add_histogram")
        series = self._series(name)
        key = self._key(metric, labels or {})
        series[key] = series.get(key, 0.0) + value
        self._text.pop(name, None)

    def set(self, name: str, value: float | int | None, labels: Mapping[str, object] | None = None) -> None:
        """Like add, but replaces rather than sums an existing series."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        metric = self._metric(name)
        self._series(name)[self._key(metric, labels or {})] = float(value)
        self._text.pop(name, None)

    def _series(self, name: str) -> dict[tuple[str, ...], float]:
        """A family's series dict, set_columns' pending series written into it first."""
        series = self._values.setdefault(name, {})
        column = self._columns.pop(name, None)
        if column is not None:
            key_tuples, present, values = column
            series.update(zip(map(key_tuples.__getitem__, present), values, strict=True))
        return series

    def set_columns(self, label: str, keys: Sequence[str], columns: Mapping[str, Sequence[float | None]],
                    labels: Mapping[str, object] | None = None) -> None:
        """Set families whose series differ in one label only: `columns[name][i]` is the value of
        family `name` for `label=keys[i]` (None: no series), e.g. one query row per tenant.

        The per-tenant fast path: keys are sorted and escaped once for every family, each family's
        lines are written at once from a fixed prefix, and the label set is checked per family, not
        per series. The text is what render_text would write for the same series; a later change
        to a family drops its text (and a family that already has series takes the generic path).
        """
        keys = tuple(keys)
        if len(set(keys)) != len(keys):
            raise ValueError(f"{label}: keys must be distinct")
        for name, column in columns.items():
            metric = self._metric(name)
            if metric.type == "histogram":
                raise ValueError(f"{name} is a histogram; use add_histogram")
            fixed: dict[str, object] = {k: v for k, v in self.const_labels.items() if k in metric.labels}
            fixed.update(labels or {})
            fixed[label] = ""
            series = self._series(name)
            if series:  # merging into existing series: the generic path keeps sum/sort semantics
                for key, value in zip(keys, column, strict=True):
                    self.set(name, value, {**fixed, label: key})
                continue
            template = self._key(metric, fixed)  # validates the label set
            order, key_tuples, segments = _column_layout(label, metric.labels, template, keys)
            present = order if None not in column else [i for i in order if column[i] is not None]
            values: list[float] = list(map(float, map(column.__getitem__, present)))  # type: ignore[arg-type]
            if math.isnan(sum(values)):  # NaN is no data, as in add(); rare, so checked in one sum
                present = [i for i, v in zip(present, values, strict=True) if not math.isnan(v)]
                values = [v for v in values if not math.isnan(v)]
            if values:
                self._columns[name] = (key_tuples, present, values)  # into _values only when read
            if present is not order:
                kept = set(present)
                segs = [seg for i, seg in zip(order, segments, strict=True) if i in kept]
            else:
                segs = segments
            fast = not values or (min(values) > -math.inf and max(values) < 1e6)  # else Go's exponents
            texts = map(repr, values) if fast else map(_go_float, values)
            # all in C from here: segment + value text per line, joined by newline + name
            self._text[name] = name + f"\n{name}".join(map(operator.add, segs, texts)) + "\n" if segs else ""

    def add_histogram(
        self,
        name: str,
        buckets: Sequence[tuple[float, float]],
        sum_value: float,
        labels: Mapping[str, object] | None = None,
    ) -> None:
        """Buckets as cumulative (upper bound, count) pairs, ending with +Inf."""
        metric = self._metric(name)
        formatted = [("+Inf" if math.isinf(le) else repr(float(le)), float(c)) for le, c in buckets]
        self._histograms.setdefault(name, {})[self._key(metric, labels or {})] = (formatted, sum_value)

    def declare_empty(self, names: Iterable[str]) -> None:
        """Expose families with no samples so HELP/TYPE are present even with nothing to report."""
        for name in names:
            metric = self._metric(name)
            target = self._histograms if metric.type == "histogram" else self._values
            target.setdefault(name, {})

    def names(self) -> builtins.set[str]:  # `set` here is the method above
        names = set(self._values) | set(self._histograms)
        for rendered in self.attached:
            names |= rendered.snapshot.names()
        return names

    def value(self, name: str, **labels: str) -> float | None:
        """Read back one series, attached passes included (tests and derived ratios)."""
        metric = self._metric(name)
        key = self._key(metric, labels)
        found = [series[key] for s in (self, *(r.snapshot for r in self.attached))
                 if key in (series := s._series(name))]
        return sum(found) if found else None

    def attach(self, rendered: Rendered) -> None:
        """Serve a pre-rendered pass with this set (see Rendered)."""
        self.attached.append(rendered)

    def rendered(self) -> Rendered:
        """This set's sample lines per family, for a set that will not change any more."""
        lines: dict[str, bytes] = {}
        for name in self._values:
            lines[name] = (self._text[name] if name in self._text else self._lines(name)).encode()
        for name in self._histograms:
            text = self._histogram_text(name)
            lines[name] = text.split("\n", 2)[2].encode()  # drop the HELP and TYPE lines
        return Rendered(self, lines)

    def _flattened(self) -> MetricSet:
        """A copy with the attached passes merged in (the slow path for families())."""
        flat = MetricSet(self.catalog, self.const_labels)
        pending = [self]
        while pending:
            source = pending.pop()
            flat.merge(source)
            pending.extend(r.snapshot for r in source.attached)
        flat.attached = []
        return flat

    def families(self) -> list[Family]:
        if self.attached:
            return self._flattened().families()
        for name in list(self._columns):
            self._series(name)
        out: list[Family] = []
        for name in sorted(self._values):
            metric = self.catalog[name]
            labels = list(metric.labels)
            if metric.type == "counter":
                family: CounterMetricFamily | GaugeMetricFamily = CounterMetricFamily(
                    name.removesuffix("_total"), metric.help, labels=labels)
            else:
                family = GaugeMetricFamily(name, metric.help, labels=labels)
            for key, value in sorted(self._values[name].items()):
                family.add_metric(list(key), value)
            out.append(family)
        for name in sorted(self._histograms):
            metric = self.catalog[name]
            histogram = HistogramMetricFamily(name, metric.help, labels=list(metric.labels))
            for key, (buckets, sum_value) in sorted(self._histograms[name].items()):
                histogram.add_metric(list(key), buckets, sum_value)
            out.append(histogram)
        return out

    def render_text(self) -> bytes:
        """Prometheus text format 0.0.4, byte for byte what generate_latest() makes of families().

        Written directly from the stored series, without a Sample object or per-label name
        validation for every series: about five times faster at 10,000+ series, which is most
        of an exporter's CPU per scrape for a thousand tenants. Attached passes add their lines
        under the same HELP/TYPE (collectors/runtime/exposition.py caches them between passes).
        """
        return self.render_families(self.names())

    def render_families(self, names: Iterable[str]) -> bytes:
        """The text of these families: HELP/TYPE, own lines, then each attached pass's lines.
        Counters and gauges first, then histograms, each in name order (generate_latest's order).
        Joined as bytes: the attached lines are bytes already, and a scrape's megabytes of text
        are never held as str and bytes at once."""
        out: list[bytes] = []
        wanted = set(names)
        histograms = {n for n in wanted if self.catalog[n].type == "histogram"}
        for name in [*sorted(wanted - histograms), *sorted(histograms)]:
            out.append(self.header(name).encode())
            if name in self._text:
                out.append(self._text[name].encode())
            elif name in self._values:
                out.append(self._lines(name).encode())
            elif name in self._histograms:
                out.append(self._histogram_text(name).split("\n", 2)[2].encode())
            out.extend(r.lines[name] for r in self.attached if name in r.lines)
        return b"".join(out)

    def header(self, name: str) -> str:
        metric = self.catalog[name]
        kind = metric.type if metric.type in ("counter", "histogram") else "gauge"
        return f"# HELP {name} {_escape_help(metric.help)}\n# TYPE {name} {kind}\n"

    def own_names(self, with_samples: bool = False) -> builtins.set[str]:
        """Families of this set itself, not of an attached pass (only those with samples, or all)."""
        return ({n for n, s in self._values.items() if s or n in self._columns or not with_samples}
                | {n for n, s in self._histograms.items() if s or not with_samples})

    def _lines(self, name: str) -> str:
        metric = self.catalog[name]
        labels_of = _label_renderer(metric.labels)
        out: list[str] = []
        for key, value in sorted(self._series(name).items()):
            labels = labels_of(key)
            out.append(f"{name}{{{labels}}} {_go_float(value)}\n" if labels else f"{name} {_go_float(value)}\n")
        return "".join(out)

    def _histogram_text(self, name: str) -> str:
        """One histogram family through the reference encoder (rare and small)."""
        from prometheus_client.exposition import generate_latest

        one = MetricSet(self.catalog)
        one._histograms = {name: self._histograms[name]}
        families = one.families()

        class _Families:
            def collect(self) -> list[Family]:
                return families

        return generate_latest(_Families()).decode()

    def merge(self, other: MetricSet) -> None:
        for name in other._values:
            target = self._series(name)
            if not target and name in other._text:  # nothing to sum with: keep the rendered lines
                target.update(other._values[name])
                if name in other._columns:
                    self._columns[name] = other._columns[name]
                self._text[name] = other._text[name]
                continue
            self._text.pop(name, None)
            for key, value in other._series(name).items():
                target[key] = target.get(key, 0.0) + value
        for name, histograms in other._histograms.items():
            self._histograms.setdefault(name, {}).update(histograms)
        self.attached.extend(other.attached)


@functools.lru_cache(maxsize=8)
def _column_layout(
    label: str, labels: tuple[str, ...], template: tuple[str, ...], keys: tuple[str, ...]
) -> tuple[list[int], list[tuple[str, ...]], list[str]]:
    """For set_columns: the keys' sort order, each key's series key, and each line's labels part
    (`{a="x",tenant_id="<key>",z="y"} `, in key order). Memoised: a collector's tenants are the same
    from one scrape to the next, so the sort and the escaping run once, not on every scrape."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    at = labels.index(label)
    rendered = dict(zip(labels, template, strict=True))
    names = sorted(labels)
    lead = "".join(f'{n}="{_escape_value(rendered[n])}",' for n in names[:names.index(label)])
    tail = "".join(f',{n}="{_escape_value(rendered[n])}"' for n in names[names.index(label) + 1:])
    key_tuples = [(*template[:at], key, *template[at + 1:]) for key in keys]
    after = f'{{{lead}{label}="'
    segments = [f'{after}{_escape_value(keys[i]) if _needs_escape(keys[i]) else keys[i]}"{tail}}} ' for i in order]
    return order, key_tuples, segments


@functools.lru_cache(maxsize=512)
def _label_renderer(labels: tuple[str, ...]) -> Callable[[tuple[str, ...]], str]:
    """Per label set, a memoised key -> `a="x",b="y"` renderer (names sorted, as the reference
    encoder writes them). Series keys repeat from scrape to scrape, so most renders are a lookup."""
    order = sorted(range(len(labels)), key=lambda i: labels[i])
    names = [labels[i] for i in order]

    @functools.lru_cache(maxsize=65536)
    def render(key: tuple[str, ...]) -> str:
        return ",".join(f'{n}="{_escape_value(key[i])}"' for n, i in zip(names, order, strict=True))

    return render


def _go_float(value: float) -> str:
    """floatToGoString, skipping its work for the common case: finite and below 1e6, where Go and
    Python print the same digits (Go switches to an exponent from 1e6 up)."""
    if -math.inf < value < 1e6:
        return repr(value)
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    return text


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _needs_escape(text: str) -> bool:
    return "\\" in text or "\n" in text or '"' in text


def _escape_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
