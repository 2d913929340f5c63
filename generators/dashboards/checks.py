"""Lint rules for generated dashboards, run by `obsbundle check` on the in-memory rendering.

Each problem is one line naming the file and, where it applies, the panel (`id` and title), so
a reviewer can find it without opening Grafana. Rules:

- structure: schemaVersion, uid length, no nulls, no legacy (pre-schema-42) keys, valid JSON Schema
  (when the shared schema file is present), a typed round trip
  through grafana-foundation-sdk (always), a `datasource` and a multi-select `tenant_id` variable,
  links only to dashboards that exist;
- panels: unique ids and titles, gridPos inside the 24-column grid and not overlapping, a unit and a
  description on every panel, `$datasource` on the panel and every target;
- on-call: `tenant_id` has includeAll with allValue ".*", an ALERTS annotation and an alert-list
  panel, a Runbook link on every panel, stat panels instant, per-tenant time series under topk(),
  no range of a day or more (the SLO window comes from recording rules);
- queries: parse, only catalogued metrics, scoped to tenant_id where the metric has it, rate()
  only on counters, histogram_quantile() only on `_bucket` (see `promql.check`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from generators import promql_lint as promql
from generators.dashboards.normalize import DASHBOARD_LEGACY, SCHEMA_VERSION
from generators.dashboards.roundtrip import roundtrip_errors
from obsbundle.catalog import Catalog

SCHEMA_ENV = "OBSBUNDLE_GRAFANA_SCHEMA"
SCHEMA_RELATIVE = Path("..") / "shared" / "grafana" / "dashboard.jsonschema.json"
PANEL_LEGACY = frozenset({"span", "minSpan", "height", "error", "editable"})
TARGET_LEGACY = frozenset({"intervalFactor", "step", "metric", "target", "query"})
DATASOURCE_UIDS = frozenset({"$datasource", "${datasource}"})
# Representative values for the dashboard's own variables when parsing queries.
SAMPLE_VARIABLES = {"tenant_id": "acme|globex", "datasource": "prometheus"}
# Ranges of a day or more are the SLO window's job: read a recording rule instead of recomputing
# `rate(...[30d])` at every step of every refresh.
LONG_RANGE = re.compile(r"\[\s*\d+[dwy]\s*\]")
TENANT_LEGEND = "{{tenant_id}}"


def schema_path() -> Path | None:
    """The shared Grafana dashboard schema: $OBSBUNDLE_GRAFANA_SCHEMA, else ../shared/grafana/
    beside the project root (or the current directory). None where it is absent."""
    if os.environ.get(SCHEMA_ENV):
        path = Path(os.environ[SCHEMA_ENV])
        return path if path.exists() else None
    project_root = Path(__file__).resolve().parents[2]
    for base in (project_root, Path.cwd()):
        path = (base / SCHEMA_RELATIVE).resolve()
        if path.exists():
            return path
    return None


@cache
def _validator(path: str) -> Any:
    import jsonschema

    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def schema_errors(dashboard: Mapping[str, Any], path: Path | None = None) -> list[str]:
    """JSON Schema violations, each as `<json path>: <message>`; [] when the schema is absent."""
    path = path or schema_path()
    if path is None:
        return []
    errors = sorted(_validator(str(path)).iter_errors(dashboard), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for error in errors:
        where = list(error.absolute_path)
        prefix = ""
        if len(where) >= 2 and where[0] == "panels" and isinstance(where[1], int):
            prefix = f"{_name(dashboard['panels'][where[1]])}: "
        out.append(f"{prefix}schema: {'/'.join(map(str, where)) or '(root)'}: {error.message[:200]}")
    return out


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _nulls(value: Any, path: str = "") -> Iterator[str]:
    if value is None:
        yield path or "(root)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nulls(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nulls(item, f"{path}/{i}")


def _name(panel: Mapping[str, Any]) -> str:
    return f"panel {panel.get('id', '?')} {panel.get('title', '')!r}"


def _overlaps(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def lint_dashboard(dashboard: Mapping[str, Any], catalog: Catalog, known_uids: frozenset[str] = frozenset(),
                   schema: Path | None = None) -> list[str]:
    """Every problem of one dashboard model, without the file prefix."""
    problems: list[str] = []
    if dashboard.get("schemaVersion") != SCHEMA_VERSION:
        problems.append(f"schemaVersion is {dashboard.get('schemaVersion')}, want {SCHEMA_VERSION}")
    uid = dashboard.get("uid", "")
    if not 8 <= len(uid) <= 40:
        problems.append(f"uid {uid!r} must be 8-40 characters")
    problems += [f"null value at {p}" for p in _nulls(dashboard)]
    problems += [f"legacy key {k!r}" for k in sorted(DASHBOARD_LEGACY & set(dashboard)) if k not in ("id",)]
    problems += _variable_problems(dashboard, catalog)
    annotations = dashboard.get("annotations", {}).get("list", [])
    if not any("ALERTS{" in a.get("expr", "") for a in annotations):
        problems.append("no annotation of firing alerts (ALERTS)")
    if not any(p.get("type") == "alertlist" for p in panels(dashboard)):
        problems.append("no alert-list panel")
    for link in dashboard.get("links", []):
        url = link.get("url", "")
        if link.get("type") == "link" and url.startswith("/d/") and known_uids and url[3:] not in known_uids:
            problems.append(f"link {link.get('title')!r} points to unknown dashboard {url}")
    if not any(link.get("type") in ("link", "dashboards") for link in dashboard.get("links", [])):
        problems.append("no links to related dashboards")

    seen: dict[int, str] = {}
    titles: dict[str, str] = {}
    placed: list[dict[str, Any]] = []
    for panel in panels(dashboard):
        name = _name(panel)
        if panel.get("type") != "row":
            if panel.get("title", "") in titles:
                problems.append(f"{name}: title also used by {titles[panel['title']]}")
            titles.setdefault(panel.get("title", ""), name)
        pid = panel.get("id")
        if not isinstance(pid, int):
            problems.append(f"{name}: no integer id")
        elif pid in seen:
            problems.append(f"{name}: id {pid} already used by {seen[pid]}")
        else:
            seen[pid] = name
        grid = panel.get("gridPos")
        if not isinstance(grid, dict) or not all(isinstance(grid.get(k), int) for k in "xywh"):
            problems.append(f"{name}: no gridPos")
        else:
            if grid["x"] < 0 or grid["y"] < 0 or grid["w"] < 1 or grid["h"] < 1 or grid["x"] + grid["w"] > 24:
                problems.append(f"{name}: gridPos {grid} is outside the 24-column grid")
            for other in placed:
                if _overlaps(grid, other["gridPos"]):
                    problems.append(f"{name}: gridPos overlaps {_name(other)}")
            placed.append(panel)
        if panel.get("type") != "row":
            problems += [f"{name}: {p}" for p in _panel_problems(panel, catalog)]
    problems += roundtrip_errors(dashboard)
    problems += schema_errors(dashboard, schema)
    return problems


def _variable_problems(dashboard: Mapping[str, Any], catalog: Catalog) -> list[str]:
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    problems = []
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append("no `datasource` variable of type datasource")
    tenant = variables.get("tenant_id", {})
    if tenant.get("type") != "query" or not tenant.get("multi"):
        problems.append("no multi-select `tenant_id` query variable")
    elif "tenant_id" not in tenant.get("query", "") or not tenant.get("query", "").startswith("label_values("):
        problems.append("`tenant_id` variable must query label_values(..., tenant_id)")
    elif tenant.get("datasource", {}).get("uid") not in DATASOURCE_UIDS:
        problems.append("`tenant_id` variable does not use $datasource")
    elif not tenant.get("includeAll") or tenant.get("allValue") != ".*":
        problems.append('`tenant_id` variable needs includeAll and allValue ".*" (else "All" is a regex of every '
                        "tenant)")
    else:
        selector = tenant["query"].removeprefix("label_values(").rsplit(",", 1)[0].strip()
        try:
            names = promql.selector_metrics(selector)
        except ValueError as exc:
            return [*problems, f"`tenant_id` variable: {str(exc).splitlines()[0]}"]
        for name in sorted(names):
            metric = catalog.series(name)
            if metric is None or not metric.per_tenant:
                problems.append(f"`tenant_id` variable reads {name}, which is not a catalogued per-tenant metric")
    return problems


def _panel_problems(panel: Mapping[str, Any], catalog: Catalog) -> list[str]:
    problems = []
    for key in sorted(PANEL_LEGACY & set(panel)):
        problems.append(f"legacy key {key!r}")
    if not str(panel.get("description", "")).strip():
        problems.append("no description")
    if not any(link.get("title") == "Runbook" and str(link.get("url", "")).startswith(("https://", "http://"))
               for link in panel.get("links", [])):
        problems.append("no Runbook link")
    if panel.get("type") == "alertlist":
        return problems
    if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
        problems.append("no unit (fieldConfig.defaults.unit)")
    if panel.get("datasource", {}).get("uid") not in DATASOURCE_UIDS:
        problems.append("panel datasource is not $datasource")
    targets = panel.get("targets") or []
    if not targets:
        problems.append("no targets")
    for target in targets:
        ref = target.get("refId", "?")
        ds = target.get("datasource")
        if not isinstance(ds, dict) or ds.get("uid") not in DATASOURCE_UIDS:
            problems.append(f"target {ref}: datasource is not $datasource")
        for key in sorted(TARGET_LEGACY & set(target)):
            problems.append(f"target {ref}: legacy key {key!r}")
        expr = target.get("expr", "")
        if not expr.strip():
            problems.append(f"target {ref}: empty expr")
            continue
        if panel.get("type") == "stat" and not target.get("instant"):
            problems.append(f"target {ref}: a stat panel's query must be instant")
        if long_range := LONG_RANGE.search(expr):
            problems.append(f"target {ref}: range of a day or more ({long_range.group(0)}); "
                            "read the SLO window's recording rule")
        if (panel.get("type") == "timeseries" and TENANT_LEGEND in target.get("legendFormat", "")
                and not expr.startswith(("topk(", "bottomk("))):
            problems.append(f"target {ref}: per-tenant series must be bounded by topk(N, ...) or bottomk(N, ...)")
        problems += [f"target {ref}: {p}" for p in promql.check(expr, catalog, SAMPLE_VARIABLES)]
    return problems


def lint_files(files: Mapping[str, str], catalog: Catalog, prefix: str = "dashboards/") -> list[str]:
    """Lint every rendered dashboard JSON under `prefix`; problems are `<path>: <problem>`."""
    models: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for path, text in sorted(files.items()):
        if not (path.startswith(prefix) and path.endswith(".json")):
            continue
        try:
            models[path] = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}: not valid JSON ({exc})")
    uids = frozenset(m.get("uid", "") for m in models.values())
    owners: dict[str, str] = {}
    for path, model in models.items():
        uid = model.get("uid", "")
        if uid in owners:
            problems.append(f"{path}: uid {uid!r} also used by {owners[uid]}")
        owners[uid] = path
        problems += [f"{path}: {p}" for p in lint_dashboard(model, catalog, uids)]
    return problems
