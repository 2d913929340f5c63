"""Turn grafanalib 0.7.1 output into Grafana's current dashboard model (schemaVersion 42).

grafanalib still emits schemaVersion 12: legacy keys (`rows`, `hideControls`, `sharedCrosshair`,
`style`, `__inputs`, per-panel `span`/`height`/`error`), `null` everywhere, datasources as plain
strings and the old template-variable fields. Grafana migrates such JSON when it loads it, but the
current JSON Schema rejects it and every save would produce a diff. This module rewrites the model
once, so the committed files are what Grafana itself would save.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib._gen import DashboardEncoder

SCHEMA_VERSION = 42  # the shared dashboard JSON Schema's default schemaVersion
DATASOURCE_VAR = "${datasource}"
PROMETHEUS = {"type": "prometheus", "uid": DATASOURCE_VAR}

DASHBOARD_LEGACY = frozenset({"__inputs", "rows", "hideControls", "sharedCrosshair", "style", "id", "gnetId"})
PANEL_LEGACY = frozenset({"editable", "error", "height", "minSpan", "span", "maxDataPoints", "color",
                          "columns", "fontSize", "mappings", "hideTimeOverride", "transparent"})
ROW_KEYS = frozenset({"type", "id", "title", "gridPos", "collapsed", "panels"})
TARGET_KEYS = frozenset({"expr", "refId", "legendFormat", "instant", "format", "exemplar"})
VARIABLE_KEYS = frozenset({"type", "name", "label", "hide", "skipUrlSync", "description", "query", "datasource",
                           "current", "multi", "includeAll", "allValue", "options", "refresh", "regex", "sort",
                           "definition"})
TIMEPICKER_KEYS = frozenset({"hidden", "refresh_intervals"})
BUILTIN_ANNOTATION = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def to_plain(obj: Any) -> Any:
    """grafanalib objects -> plain JSON values (through its own encoder)."""
    return json.loads(json.dumps(obj, cls=DashboardEncoder))


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None and v != "null"}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value if v is not None]
    return value


def datasource_ref(value: Any) -> dict[str, str]:
    """A string datasource (grafanalib) -> {type, uid}; every query goes through $datasource."""
    if isinstance(value, dict):
        return {"type": value.get("type", "prometheus"), "uid": value.get("uid", DATASOURCE_VAR)}
    if value in (None, "", "$datasource", DATASOURCE_VAR):
        return dict(PROMETHEUS)
    return {"type": "prometheus", "uid": str(value)}


def _target(raw: dict[str, Any], index: int) -> dict[str, Any]:
    target = {k: v for k, v in raw.items() if k in TARGET_KEYS}
    target["refId"] = raw.get("refId") or chr(ord("A") + index)
    target["datasource"] = datasource_ref(raw.get("datasource"))
    target["editorMode"] = "code"
    instant = bool(raw.get("instant"))
    target["instant"] = instant
    target["range"] = not instant
    if target.get("format") == "time_series" or not target.get("format"):
        target["format"] = "table" if instant else "time_series"
    if not target.get("legendFormat"):
        target["legendFormat"] = "__auto"
    return target


def _field_defaults(defaults: dict[str, Any], panel_type: str) -> dict[str, Any]:
    out = dict(defaults)
    thresholds = out.get("thresholds")
    steps = thresholds.get("steps") if isinstance(thresholds, dict) else None
    if not isinstance(steps, list) or not steps:
        steps = [{"color": "green", "value": 0}]
    out["thresholds"] = {"mode": "absolute", "steps": [{"color": s["color"], "value": s["value"]} for s in steps]}
    if panel_type in ("stat", "table") or "color" not in out:
        out["color"] = {"mode": "thresholds" if panel_type == "stat" else "palette-classic"}
    out.setdefault("mappings", [])
    custom = out.get("custom")
    if isinstance(custom, dict):
        custom = dict(custom)
        if panel_type == "table" and "displayMode" in custom:  # pre-9 cell display -> cellOptions
            custom["cellOptions"] = {"type": custom.pop("displayMode")}
        if panel_type == "timeseries":
            custom.setdefault("axisBorderShow", False)
            custom["stacking"] = custom.get("stacking") or {"group": "A", "mode": "none"}
            custom["scaleDistribution"] = {"type": custom.get("scaleDistribution", {}).get("type", "linear")}
        out["custom"] = custom
    return out


def _panel(raw: dict[str, Any]) -> dict[str, Any]:
    if raw.get("type") == "row":
        row = {k: v for k, v in raw.items() if k in ROW_KEYS}
        row["collapsed"] = bool(raw.get("collapsed"))
        row["panels"] = [_panel(p) for p in raw.get("panels", [])]
        return row
    panel = {k: v for k, v in raw.items() if k not in PANEL_LEGACY and v not in (None, "")}
    for key in ("interval", "timeFrom", "timeShift", "repeat", "repeatDirection", "maxPerRow"):
        if not panel.get(key):
            panel.pop(key, None)
    panel["datasource"] = datasource_ref(raw.get("datasource"))
    panel["targets"] = [_target(t, i) for i, t in enumerate(raw.get("targets", []))]
    field_config = dict(panel.get("fieldConfig") or {})
    field_config["defaults"] = _field_defaults(field_config.get("defaults") or {}, panel["type"])
    field_config["overrides"] = field_config.get("overrides") or []
    panel["fieldConfig"] = field_config
    options = dict(panel.get("options") or {})
    if isinstance(options.get("legend"), dict):
        options["legend"] = {**options["legend"], "showLegend": True}
    if isinstance(options.get("reduceOptions"), dict):
        options["reduceOptions"] = {**options["reduceOptions"], "fields": options["reduceOptions"].get("fields") or ""}
    panel["options"] = options
    return panel


def _variable(raw: dict[str, Any]) -> dict[str, Any]:
    var = {k: v for k, v in raw.items() if k in VARIABLE_KEYS}
    var["regex"] = raw.get("regex") or ""
    var["skipUrlSync"] = False
    var["options"] = []
    if var["type"] == "datasource":
        var.pop("datasource", None)
        var.pop("allValue", None)
        var["refresh"] = 1
    else:
        var["datasource"] = datasource_ref(raw.get("datasource"))
        var["definition"] = raw.get("query", "")
        var["refresh"] = 2  # on time-range change: tenants come and go
    current = raw.get("current") or {}
    text, value = current.get("text"), current.get("value")
    if var.get("multi"):
        var["current"] = {"text": ["All"], "value": ["$__all"]} if var.get("includeAll") else {"text": [], "value": []}
    else:
        var["current"] = {"text": str(text or value or ""), "value": str(value or "")}
    if not var.get("allValue"):
        var.pop("allValue", None)
    return var


def normalize(raw_dashboard: Any) -> dict[str, Any]:
    """grafanalib Dashboard (or its JSON) -> a dashboard valid against the current schema."""
    raw = drop_nulls(to_plain(raw_dashboard) if not isinstance(raw_dashboard, dict) else raw_dashboard)
    dash = {k: v for k, v in raw.items() if k not in DASHBOARD_LEGACY}
    dash["schemaVersion"] = SCHEMA_VERSION
    dash["version"] = 1
    dash["panels"] = [_panel(p) for p in raw.get("panels", [])]
    dash["templating"] = {"list": [_variable(v) for v in raw.get("templating", {}).get("list", [])]}
    annotations = [a for a in raw.get("annotations", {}).get("list", []) if not a.get("builtIn")]
    dash["annotations"] = {"list": [dict(BUILTIN_ANNOTATION), *annotations]}
    dash["timepicker"] = {k: v for k, v in raw.get("timepicker", {}).items() if k in TIMEPICKER_KEYS}
    dash["links"] = [dict(link) for link in raw.get("links", [])]
    for link in dash["links"]:
        if link.get("type") == "dashboards":
            link.pop("url", None)
    return drop_nulls(dash)


def dumps(dashboard: dict[str, Any]) -> str:
    """Deterministic text: sorted keys, fixed indent, trailing newline (byte-identical reruns)."""
    return json.dumps(dashboard, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
