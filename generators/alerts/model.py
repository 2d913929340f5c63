"""The alert rule model: one `AlertRule` is one Prometheus alerting rule plus what its generated
promtool test needs (a synthetic-series fixture), so a rule can't exist without being tested."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

SEVERITIES = ("info", "warning", "critical")
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class Series:
    """One promtool input series: labels (with __name__) and an expanding-notation value string."""

    labels: tuple[tuple[str, str], ...]
    values: str

    def selector(self) -> str:
        d = dict(self.labels)
        name = d.pop("__name__")
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(d.items()))
        return f"{name}{{{inner}}}"


@dataclass(frozen=True)
class Fixture:
    """Synthetic input that drives a rule's signal to one level, and the value the rule then yields."""

    series: tuple[Series, ...]
    value: float
    notes: Mapping[str, str] = field(default_factory=dict)  # expected text of query-templated annotations


# level, identifying labels, minutes of data -> fixture
FixtureFn = Callable[[float, Mapping[str, str], int], Fixture]


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule: `value op threshold [and extra]`, aggregated to exactly `sample_labels`' keys."""

    name: str
    component: str
    severity: str
    value: str
    op: str
    threshold: float
    for_seconds: float
    summary: str
    description: str
    title: str
    runbook: str
    dashboard: str
    fixture: FixtureFn
    sample_labels: Mapping[str, str]
    extra: str = ""  # appended condition, may use {t} for the threshold
    labels: Mapping[str, str] = field(default_factory=dict)
    fire_level: Callable[[float, float], float] | None = None  # (threshold, for_seconds) -> level
    quiet_level: Callable[[float, float], float] | None = None
    guard: str = ""  # minimum-traffic condition (`and on (...) <rate> >= <min>`), appended last
    low_traffic: FixtureFn | None = None  # the firing level at traffic under the guard: must stay silent
    notes: Mapping[str, str] = field(default_factory=dict)  # extra annotations (may use `query`)
    scope: str = ""  # tenant | shared | platform (derived when empty)
    resolves: bool = True  # the generated tests check it resolves once the signal clears
    always: bool = False  # fires by design (Watchdog): no silent case

    @property
    def by(self) -> tuple[str, ...]:
        return tuple(self.sample_labels)

    @property
    def tenant_scoped(self) -> bool:
        """Per tenant (not a server-wide `_shared` figure): its dashboard link filters to the tenant."""
        return self.sample_labels.get("tenant_id", "_shared") != "_shared"

    @property
    def scope_label(self) -> str:
        """`tenant` alerts are symptoms of one tenant; `shared` ones a server's; `platform` many tenants'."""
        return self.scope or ("tenant" if self.tenant_scoped else "shared")

    @property
    def expr(self) -> str:
        expr = f"{self.value} {self.op} {num(self.threshold)}"
        if self.extra:
            expr += " " + self.extra.replace("{t}", num(self.threshold))
        if self.guard:
            expr = f"({expr}) {self.guard}"
        return expr

    def fires(self, value: float) -> bool:
        return not math.isnan(value) and OPS[self.op](value, self.threshold)

    def levels(self) -> tuple[float, float]:
        """(a level just past the threshold, a level just short of it)."""
        t = self.threshold
        delta = abs(t) * 0.1 or 0.5
        up = self.op.startswith(">")
        fire = t + delta if self.op in (">",) else t - delta if self.op == "<" else t
        quiet = t - delta if up else t + delta
        if self.fire_level:
            fire = self.fire_level(t, self.for_seconds)
        if self.quiet_level:
            quiet = self.quiet_level(t, self.for_seconds)
        return fire, quiet


def num(value: float) -> str:
    """A threshold as PromQL/YAML prints it: 0.05, 2, 1e-09."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".10g")


_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(seconds: float) -> str:
    """Seconds as a Prometheus duration string: 300 -> 5m, 5400 -> 1h30m, 0.25 -> 250ms."""
    if seconds <= 0:
        return "0s"
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    rest, parts = ms // 1000, []
    for unit, size in _DURATION_UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def human(value: float, unit: str) -> str:
    """A threshold as on-call reads it in an annotation."""
    if unit == "ratio":
        return f"{value * 100:g}%"
    if unit == "seconds":
        return duration(value) if value >= 1 else f"{value:g}s"
    suffix = {"days": " days", "hours": " hours", "per_second": "/s", "per_minute": "/min"}.get(unit, "")
    return f"{value:g}{suffix}"


def anchor(title: str) -> str:
    """GitHub's heading anchor for a runbook title."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


_TEMPLATE = re.compile(r"\{\{\s*(?:\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)|printf \"%\.3g\" \$value)\s*\}\}")


def render_template(text: str, labels: Mapping[str, str], value: float) -> str:
    """Expand the two Go-template forms annotations may use, exactly as Prometheus does."""

    def sub(match: re.Match[str]) -> str:
        if match.group(1):
            return labels.get(match.group(1), "")
        return go_g3(value)

    return _TEMPLATE.sub(sub, text)


def unsupported_templates(text: str) -> list[str]:
    """Template actions `render_template` can't expand (so generated tests couldn't predict them)."""
    return [m for m in re.findall(r"\{\{.*?\}\}", _TEMPLATE.sub("", text))]


def go_g3(value: float) -> str:
    """Go's fmt `%.3g` (Python's agrees except for the exponent's minimum width, which both pad to 2)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(value, ".3g")
