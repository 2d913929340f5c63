"""Small grafanalib-based builders: panels with unit + description + $datasource always set,
thresholds read from the config, a flowing grid layout, and the shared variables and links.

Every dashboard module describes *what* to show (`Board` of sections of panels); this module owns
*how* it becomes Grafana JSON, so every dashboard gets the same variables, links and conventions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import attr
from grafanalib import core as g

from generators.dashboards.normalize import DATASOURCE_VAR, PROMETHEUS, normalize
from obsbundle.errors import ConfigError

GRID_WIDTH = 24
ZERO_LEVEL = 1e-9  # where a threshold of 0 ("any") is drawn
TAG = "obsbundle"
ALL_TENANTS = ".*"  # "All" as one regex, not the alternation of 5,000 tenant ids
TOP_TENANTS = 10  # default `dashboards.top_tenants`: per-tenant time series show the top N
TENANT_LEGEND = "{{tenant_id}}"
ALERT_LIST_TITLE = "Firing alerts"


@dataclass(frozen=True)
class Q:
    """One PromQL target: expression, legend, instant (tables/stats of "now") or range."""

    expr: str
    legend: str = "__auto"
    instant: bool = False
    exemplar: bool = False  # show trace_id exemplars (linked to the trace data source, generators/datasources.py)


Panel = Any  # a grafanalib panel object


@dataclass
class Board:
    """One dashboard: title, what it is for, where its tenant list comes from, and its sections."""

    slug: str
    title: str
    description: str
    tenant_metric: str  # label_values(<this>, tenant_id) fills the tenant variable
    sections: list[tuple[str, list[Panel]]]
    related: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Thresholds:
    """Threshold steps for a panel, derived from one `thresholds.<key>` entry of the config."""

    steps: tuple[tuple[str, float], ...] = (("green", 0),)

    def grafana(self) -> list[dict[str, Any]]:
        return [{"color": color, "value": value} for color, value in self.steps]


def thresholds(config: Mapping[str, Any], key: str, *, below: bool = False) -> Thresholds:
    """Steps from `config.thresholds[key]`, the same numbers the alert rules use.

    `below=True` is for figures where low is bad (free disk, days to certificate expiry). The
    base step is 0 rather than Grafana's `null` (-Infinity): every figure drawn here is
    non-negative, and the committed JSON carries no nulls.
    """
    entry = config.get("thresholds", {}).get(key)
    if entry is None:
        raise ConfigError(f"thresholds.{key}: required by the dashboards (and the alerts)")
    colors = {"info": "blue", "warning": "orange", "critical": "red"}
    ordered = sorted(((entry[lvl], colors[lvl]) for lvl in colors if lvl in entry), key=lambda vc: vc[0])
    if below:
        # below the lowest level: that level's colour; each higher level lifts to the next milder one
        milder = [color for _, color in ordered[1:]] + ["green"]
        base = ordered[0][1] if ordered else "green"
        return Thresholds(((base, 0), *((color, value) for (value, _), color in zip(ordered, milder, strict=True))))
    # Grafana colours at value >= step, alerts fire at value > threshold: a 0 level (any deadlock)
    # is drawn just above the green base, so a true 0 stays green.
    return Thresholds((("green", 0), *((color, value if value > 0 else ZERO_LEVEL) for value, color in ordered)))


@attr.s
class _Target(g.Target):
    """grafanalib's Target plus Grafana's `exemplar` query option."""

    exemplar: bool = attr.ib(default=False)

    def to_json_data(self) -> dict[str, Any]:
        data = super().to_json_data()
        if self.exemplar:
            data["exemplar"] = True
        return data


def _targets(queries: Sequence[Q]) -> list[g.Target]:
    return [
        _Target(expr=q.expr, legendFormat=q.legend, refId=chr(ord("A") + i), instant=q.instant,
                datasource=DATASOURCE_VAR, exemplar=q.exemplar)
        for i, q in enumerate(queries)
    ]


def timeseries(
    title: str, description: str, *queries: Q, unit: str, th: Thresholds | None = None,
    w: int = 12, h: int = 8, min: float | None = None, max: float | None = None, stack: bool = False,
) -> g.TimeSeries:
    """A time series; with thresholds the configured levels are drawn as dashed lines."""
    return g.TimeSeries(
        title=title, description=description, dataSource=DATASOURCE_VAR, targets=_targets(queries),
        unit=unit, gridPos=g.GridPos(h=h, w=w, x=0, y=0),
        thresholds=(th or Thresholds()).grafana(),
        thresholdsStyleMode="dashed" if th else "off",
        legendDisplayMode="table", legendPlacement="bottom", legendCalcs=["mean", "max", "lastNotNull"],
        tooltipMode="multi", tooltipSort="desc", fillOpacity=10 if stack else 0,
        stacking={"group": "A", "mode": "normal" if stack else "none"},
        valueMin=min, valueMax=max,
    )


def stat(
    title: str, description: str, *queries: Q, unit: str, th: Thresholds | None = None,
    w: int = 4, h: int = 4, calc: str = "lastNotNull", graph: bool = True,
) -> g.Stat:
    """A single figure coloured by the configured thresholds: an instant query, one evaluation per
    refresh instead of a range query at every step (`graph` is kept for call sites; an instant
    query has no sparkline)."""
    del graph
    return g.Stat(
        title=title, description=description, dataSource=DATASOURCE_VAR,
        targets=_targets([Q(q.expr, q.legend, instant=True) for q in queries]),
        format=unit, gridPos=g.GridPos(h=h, w=w, x=0, y=0), reduceCalc=calc,
        graphMode="none", colorMode="value", textMode="auto", noValue="no data",
        thresholds=(th or Thresholds()).grafana(),
    )


def table(
    title: str, description: str, *queries: Q, unit: str, w: int = 12, h: int = 8,
    th: Thresholds | None = None,
) -> g.Table:
    """Instant values per series (e.g. one row per tenant), merged into one table."""
    panel = g.Table(
        title=title, description=description, dataSource=DATASOURCE_VAR,
        targets=_targets([Q(q.expr, q.legend, instant=True) for q in queries]),
        unit=unit, gridPos=g.GridPos(h=h, w=w, x=0, y=0),
        thresholds=(th or Thresholds()).grafana(),
    )
    # one row per series (e.g. per tenant), one column per query named after its legend
    renames = {f"Value #{chr(ord('A') + i)}": q.legend for i, q in enumerate(queries)}
    panel.transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": renames}},
    ]
    return panel


def layout(sections: Sequence[tuple[str, Sequence[Panel]]]) -> list[Panel]:
    """Rows of panels flowing left to right, wrapping at 24 columns; ids numbered in order."""
    placed: list[Panel] = []
    y = 0
    next_id = 1
    for title, panels in sections:
        if title:
            placed.append(g.RowPanel(title=title, id=next_id, gridPos=g.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)))
            next_id += 1
            y += 1
        x, line_h = 0, 0
        for panel in panels:
            w, h = panel.gridPos.w, panel.gridPos.h
            if x + w > GRID_WIDTH:
                x, y, line_h = 0, y + line_h, 0
            placed.append(attr.evolve(panel, id=next_id, gridPos=g.GridPos(h=h, w=w, x=x, y=y)))
            next_id += 1
            x += w
            line_h = max(line_h, h)
        y += line_h
    return placed


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def dashboard_uid(config: Mapping[str, Any], slug: str) -> str:
    """Stable uid from the configured prefix and the dashboard's slug (Grafana wants 8-40 chars)."""
    prefix = config.get("dashboards", {}).get("uid_prefix", "obs")
    uid = f"{prefix}-{slug}"
    if len(uid) < 8:
        uid += "-dash"
    if len(uid) > 40:
        uid = f"{uid[:31]}-{hashlib.sha256(uid.encode()).hexdigest()[:8]}"
    return uid


def variables(config: Mapping[str, Any], tenant_metric: str) -> g.Templating:
    ds_uid = config.get("dashboards", {}).get("datasource_uid", "prometheus")
    return g.Templating(list=[
        g.Template(name="datasource", label="Data source", type="datasource", query="prometheus",
                   default=ds_uid, includeAll=False, multi=False),
        g.Template(name="tenant_id", label="Tenant", type="query", dataSource=DATASOURCE_VAR,
                   query=f"label_values({tenant_metric}, tenant_id)", multi=True, includeAll=True,
                   allValue=ALL_TENANTS, sort=1),
    ])


def links(config: Mapping[str, Any], board: Board, titles: Mapping[str, str]) -> list[g.DashboardLink]:
    """Explicit links to the related dashboards (keeping time range and tenant selection) plus
    a dropdown of every obsbundle dashboard."""
    out = [
        g.DashboardLink(title=titles[slug], type="link", uri=f"/d/{dashboard_uid(config, slug)}",
                        icon="dashboard", tooltip=f"Open {titles[slug]}", includeVars=True,
                        keepTime=True, tags=[], asDropdown=False, targetBlank=False)
        for slug in board.related
    ]
    out.append(g.DashboardLink(title="obsbundle", type="dashboards", tags=[TAG], asDropdown=True,
                               icon="external link", tooltip="", includeVars=True, keepTime=True,
                               targetBlank=False, uri=""))
    return out


def top_tenants(panel: Panel, n: int) -> Panel:
    """Per-tenant series (legend by tenant) as the worst n tenants per step, not thousands with "All":
    `topk`, or `bottomk` where the panel's own thresholds say low is bad (availability, budget left)."""
    if not isinstance(panel, g.TimeSeries):
        return panel
    low_is_bad = bool(panel.thresholds) and panel.thresholds[0]["color"] != "green"
    func = "bottomk" if low_is_bad else "topk"
    targets = [attr.evolve(t, expr=f"{func}({n}, {t.expr})") if TENANT_LEGEND in t.legendFormat else t
               for t in panel.targets]
    return attr.evolve(panel, targets=targets)


def alert_list() -> g.AlertList:
    """Placeholder object for layout; `_alert_list_model` writes the current (unified alerting) model."""
    return g.AlertList(title=ALERT_LIST_TITLE, gridPos=g.GridPos(h=6, w=GRID_WIDTH, x=0, y=0))


def _alert_list_model(panel: dict[str, Any]) -> dict[str, Any]:
    keep = {k: panel[k] for k in ("id", "gridPos", "title", "type")}
    return {
        **keep,
        "description": "Alerts firing or pending in the data source's Prometheus/Alertmanager (every severity), "
                       "so the page that brought you here and what fires with it are on one screen.",
        "datasource": dict(PROMETHEUS),
        "options": {"viewMode": "list", "groupMode": "default", "groupBy": [], "maxItems": 20, "sortOrder": 1,
                    "dashboardAlerts": False, "alertName": "", "alertInstanceLabelFilter": "",
                    "stateFilter": {"firing": True, "pending": True, "noData": False, "normal": False,
                                    "error": True}},
    }


def alert_annotation() -> dict[str, Any]:
    """Firing alerts as annotations on every time series (`ALERTS`, the alert rules' own series);
    alerts without a tenant_id (component down) show for every tenant selection."""
    return {
        "datasource": dict(PROMETHEUS), "enable": True, "hide": False, "iconColor": "red",
        "name": "Firing alerts", "expr": 'ALERTS{alertstate="firing", tenant_id=~"$tenant_id|"}',
        "step": "60s", "titleFormat": "{{alertname}}", "textFormat": "{{severity}} {{tenant_id}}",
        "tagKeys": "severity,tenant_id", "useValueForTime": False,
    }


def runbook_link(config: Mapping[str, Any]) -> dict[str, Any]:
    base = config.get("alerting", {}).get("runbook_base_url")
    if not base:
        raise ConfigError("alerting.runbook_base_url: required by the dashboards' panel links")
    return {"title": "Runbook", "type": "link", "url": base, "icon": "doc", "tooltip": "Runbooks for the alerts "
            "this board explains", "tags": [], "asDropdown": False, "includeVars": False, "keepTime": False,
            "targetBlank": True}


def build(config: Mapping[str, Any], board: Board, titles: Mapping[str, str]) -> dict[str, Any]:
    """Board -> normalised Grafana dashboard model."""
    n = int(config.get("dashboards", {}).get("top_tenants", TOP_TENANTS))
    sections = [(title, [top_tenants(p, n) for p in panels]) for title, panels in board.sections]
    first_title, first_panels = sections[0]
    sections[0] = (first_title, [*first_panels, alert_list()])
    dash = g.Dashboard(
        title=board.title, uid=dashboard_uid(config, board.slug), description=board.description,
        tags=[TAG, *board.tags], timezone="browser", graphTooltip=1, editable=True,
        refresh=config.get("dashboards", {}).get("refresh", "30s"),
        time=g.Time("now-1h", "now"), panels=layout(sections),
        templating=variables(config, board.tenant_metric), links=links(config, board, titles),
    )
    model = normalize(dash)
    link = runbook_link(config)
    model["panels"] = [_alert_list_model(p) if p["type"] == "alertlist" else p for p in model["panels"]]
    for panel in model["panels"]:
        if panel["type"] != "row":
            panel["links"] = [dict(link)]
    model["annotations"]["list"].append(alert_annotation())
    return model
