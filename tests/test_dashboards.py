"""Generated dashboards: schema-valid, lint-clean, tenant-aware, deterministic, drift-checked."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafanalib import core as g

import generators.dashboards as dashboards
from generators import datasources, drift
from generators.alerts.recording import recording_groups
from generators.dashboards import checks as dlint
from generators.dashboards.normalize import SCHEMA_VERSION, normalize, to_plain
from generators.dashboards.roundtrip import roundtrip_errors
from obsbundle import config as obsconfig
from obsbundle.catalog import catalog_for
from obsbundle.services import run_cli

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = dlint.schema_path()
needs_schema = pytest.mark.skipif(
    SCHEMA is None,
    reason="Grafana's dashboard JSON Schema (../shared/grafana/dashboard.jsonschema.json) is not on this machine",
)
SLUGS = ["application", "cost", "infrastructure", "postgresql", "redis", "slo-budget", "temporal", "tenant", "tenants"]


@pytest.fixture(scope="module")
def cfg() -> dict[str, Any]:
    return obsconfig.load(ROOT / "obsbundle.yaml")


@pytest.fixture(scope="module")
def files(cfg: dict[str, Any]) -> dict[str, str]:
    return {**dashboards.render(cfg), **datasources.render(cfg)}  # both write under dashboards/


@pytest.fixture(scope="module")
def models(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {p.split("/")[-1][:-5]: json.loads(t) for p, t in files.items() if p.count("/") == 1}


def panel(model: dict[str, Any], title: str) -> dict[str, Any]:
    matches = [p for p in dlint.panels(model) if p.get("title") == title]
    assert len(matches) == 1, f"{title!r}: {len(matches)} panels"
    return matches[0]


def steps(p: dict[str, Any]) -> list[tuple[str, float]]:
    return [(s["color"], s["value"]) for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_renders_every_dashboard_with_provider_and_configmaps(files: dict[str, str]) -> None:
    expected = {f"dashboards/{s}.json" for s in SLUGS}
    expected |= {f"dashboards/kubernetes/{s}.configmap.yaml" for s in SLUGS}
    expected |= {"dashboards/provisioning/obsbundle.yaml", "dashboards/provisioning/datasources.yaml"}
    assert set(files) == expected


@needs_schema
def test_every_dashboard_validates_against_grafana_schema(models: dict[str, dict[str, Any]]) -> None:
    assert SCHEMA is not None
    for slug, model in models.items():
        assert dlint.schema_errors(model, SCHEMA) == [], slug
        assert model["schemaVersion"] == json.loads(SCHEMA.read_text())["definitions"]["Dashboard"][
            "properties"]["schemaVersion"]["default"] == SCHEMA_VERSION


def test_every_dashboard_round_trips_through_the_typed_sdk_model(models: dict[str, dict[str, Any]]) -> None:
    """Runs in every clone: grafana-foundation-sdk is a dependency, no local schema file needed."""
    assert {slug: roundtrip_errors(model) for slug, model in models.items()} == {slug: [] for slug in SLUGS}


def test_round_trip_rejects_unknown_keys_and_wrong_shapes(models: dict[str, dict[str, Any]]) -> None:
    model = copy.deepcopy(models["redis"])
    model["rows"] = []  # pre-schema-42 key
    model["panels"][1]["gridPos"] = "0,0,12,8"  # wrong shape
    model["panels"][1]["targets"][0]["exrp"] = model["panels"][1]["targets"][0].pop("expr")  # typo
    model["templating"]["list"][1]["multy"] = True
    assert roundtrip_errors(model) == [
        "round trip: /panels/1/gridPos is \"0,0,12,8\", the typed model reads it as {\"h\": 9, \"w\": 12, "
        "\"x\": 0, \"y\": 0}",
        "round trip: /panels/1/targets/0/exrp is not in Grafana's typed dashboard model",
        "round trip: /templating/list/1/multy is not in Grafana's typed dashboard model",
        "round trip: /rows is not in Grafana's typed dashboard model",
    ]
    unreadable = {**models["redis"], "panels": "none"}
    assert roundtrip_errors(unreadable)[0].startswith("grafana-foundation-sdk cannot read the dashboard: TypeError")


def test_lint_passes_for_every_rendered_file(cfg: dict[str, Any], files: dict[str, str]) -> None:
    assert dashboards.lint(cfg, files) == []


def test_no_nulls_no_legacy_keys_and_datasource_objects(models: dict[str, dict[str, Any]]) -> None:
    for slug, model in models.items():
        text = json.dumps(model)
        assert "null" not in text, slug
        for key in ("rows", "hideControls", "sharedCrosshair", "style", "__inputs", "gnetId"):
            assert key not in model, (slug, key)
        for p in dlint.panels(model):
            if p["type"] == "row":
                continue
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for target in p.get("targets", []):  # the alert list has none
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                assert not {"intervalFactor", "step", "metric", "query", "target"} & set(target)


def test_every_dashboard_has_variables_units_descriptions_and_links(cfg: dict[str, Any],
                                                                   models: dict[str, dict[str, Any]]) -> None:
    uids = {m["uid"] for m in models.values()}
    assert len(uids) == len(SLUGS)
    for slug, model in models.items():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        tenant = variables["tenant_id"]
        assert (tenant["type"], tenant["multi"], tenant["includeAll"]) == ("query", True, True)
        assert tenant["query"].startswith("label_values(") and tenant["query"].endswith(", tenant_id)")
        assert tenant["datasource"]["uid"] == "${datasource}"
        assert tenant["allValue"] == ".*", slug
        runbook = cfg["alerting"]["runbook_base_url"]
        for p in dlint.panels(model):
            if p["type"] != "row":
                assert [(link["title"], link["url"]) for link in p["links"]] == [("Runbook", runbook)], p["title"]
                assert p["description"].strip(), (slug, p["title"])
            if p["type"] not in ("row", "alertlist"):
                assert p["fieldConfig"]["defaults"]["unit"], (slug, p["title"])
        assert [p["title"] for p in dlint.panels(model) if p["type"] == "alertlist"] == ["Firing alerts"], slug
        assert [a["expr"] for a in model["annotations"]["list"] if "expr" in a] == [
            'ALERTS{alertstate="firing", tenant_id=~"$tenant_id|"}'], slug
        related = [link["url"][3:] for link in model["links"] if link["type"] == "link"]
        assert related and set(related) <= uids - {model["uid"]}, slug


def test_uids_are_stable_and_derived_from_names(cfg: dict[str, Any], models: dict[str, dict[str, Any]]) -> None:
    assert {s: m["uid"] for s, m in models.items()} == {s: f"obs-{s}" for s in SLUGS}
    other = copy.deepcopy(cfg)
    other["dashboards"]["uid_prefix"] = "acme"
    assert dashboards.dashboards(other)["redis"]["uid"] == "acme-redis"


def test_thresholds_follow_the_configured_alert_thresholds(cfg: dict[str, Any], models: dict[str, Any]) -> None:
    app = models["application"]
    assert steps(panel(app, "Error ratio")) == [("green", 0), ("orange", 0.05)]  # warning only: the burn rate pages
    assert steps(panel(app, "Latency p50 / p95 / p99")) == [("green", 0), ("orange", 2), ("red", 5)]
    infra = models["infrastructure"]
    assert steps(panel(infra, "Disk free")) == [("red", 0), ("orange", 0.1), ("green", 0.2)]  # low is bad
    assert steps(panel(infra, "CPU used")) == [("green", 0), ("orange", 0.7)]
    assert steps(panel(models["postgresql"], "Connection saturation")) == [("green", 0), ("orange", 0.8),
                                                                           ("red", 0.95)]
    changed = copy.deepcopy(cfg)
    changed["thresholds"]["error_ratio"] = {"warning": 0.01, "critical": 0.02, "for": "5m"}
    changed["thresholds"]["disk_free_ratio"] = {"warning": 0.3, "critical": 0.15, "for": "5m"}
    again = dashboards.dashboards(changed)
    assert steps(panel(again["application"], "Error ratio")) == [("green", 0), ("orange", 0.01), ("red", 0.02)]
    assert steps(panel(again["tenant"], "Error ratio")) == [("green", 0), ("orange", 0.01), ("red", 0.02)]
    assert steps(panel(again["infrastructure"], "Disk free")) == [("red", 0), ("orange", 0.15), ("green", 0.3)]


def test_every_configured_threshold_is_drawn(cfg: dict[str, Any]) -> None:
    """Give each threshold level a unique sentinel value; every one must show up in some panel."""
    changed = copy.deepcopy(cfg)
    sentinels = {}
    for i, (key, entry) in enumerate(sorted(changed["thresholds"].items())):
        for j, level in enumerate(lvl for lvl in ("info", "warning", "critical") if lvl in entry):
            entry[level] = sentinels[(key, level)] = 1000 + 10 * i + j
    drawn = {step["value"] for model in dashboards.dashboards(changed).values() for p in dlint.panels(model)
             if p["type"] not in ("row", "alertlist") for step in p["fieldConfig"]["defaults"]["thresholds"]["steps"]}
    # alert-only thresholds added with the paging model (issue 11); their panels are the dashboards' to add
    alert_only = {"tenants_erroring", "tenants_erroring_traffic_share", "tenants_burning_budget",
                  "unattributed_error_ratio", "pgbouncer_down", "pg_long_transaction_seconds",
                  "pg_idle_in_transaction_sessions", "pg_rollback_ratio", "redis_rejected_connections_per_minute",
                  "redis_persistence_failure", "redis_replication_link_down", "redis_keyspace_stale_seconds",
                  "collector_data_stale_seconds", "inference_latency_p95_seconds", "cache_hit_ratio",
                  "disk_inodes_free_ratio", "network_errors_per_second", "clock_skew_seconds",
                  "container_restarts_per_hour", "container_oom_killed", "container_crashloop",
                  "container_cpu_throttled_ratio", "target_down_share", "exporter_absent"}
    assert {k: v for k, v in sentinels.items() if v not in drawn and k[0] not in alert_only} == {}


def test_slo_panels_follow_the_slo_config(cfg: dict[str, Any]) -> None:
    changed = copy.deepcopy(cfg)
    changed["slo"] = {"window": "7d", "availability": {"objective": 0.999},
                      "latency": {"objective": 0.9, "threshold_seconds": 0.5}}
    slo = dashboards.dashboards(changed)["slo-budget"]
    availability = panel(slo, "Availability (7d)")
    assert steps(availability) == [("red", 0), ("green", 0.999)]
    assert availability["targets"][0]["expr"] == (
        '1 - sum(tenant:http_request_errors:ratio_rate7d{tenant_id=~"$tenant_id"} * '
        '(tenant:http_requests:rate7d{tenant_id=~"$tenant_id"} > 0)) / '
        'sum(tenant:http_requests:rate7d{tenant_id=~"$tenant_id"})')
    budget = panel(slo, "Availability budget left")["targets"][0]["expr"]
    assert budget.endswith("/ 0.001")
    latency = panel(slo, "Requests under 0.5s (7d)")["targets"][0]["expr"]
    assert "tenant:http_request_slow:ratio_rate7d" in latency
    # the panels read the SLO window's recording rules, which exist for the configured window
    recorded = {r["record"]: r["expr"] for g in recording_groups(changed) for r in g["rules"]}
    assert 'le=~"0\\\\.5"' in recorded["tenant:http_request_slow:ratio_rate7d"]
    assert "[7d]" in recorded["tenant:http_request_errors:ratio_rate7d"]
    assert "tenant_probe:probe_success:avg_over_time7d" in recorded


def broken_variants(model: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """Three deliberately broken copies of a dashboard, each with the problem lint must report."""
    overlap = copy.deepcopy(model)
    first, second = [p for p in overlap["panels"] if p["type"] != "row"][:2]
    second["gridPos"] = {**first["gridPos"]}
    unknown = copy.deepcopy(model)
    victim = [p for p in unknown["panels"] if p["type"] != "row"][2]
    victim["targets"][0]["expr"] = 'sum(rate(http_server_request_total{tenant_id=~"$tenant_id"}[5m]))'
    no_unit = copy.deepcopy(model)
    bare = [p for p in no_unit["panels"] if p["type"] != "row"][3]
    del bare["fieldConfig"]["defaults"]["unit"]
    typo = copy.deepcopy(model)
    misspelt = [p for p in typo["panels"] if p["type"] != "row"][4]
    misspelt["fieldConfig"]["defaults"]["unti"] = misspelt["fieldConfig"]["defaults"]["unit"]
    index = typo["panels"].index(misspelt)
    return {
        "typed model": (typo, f"round trip: /panels/{index}/fieldConfig/defaults/unti is not in Grafana's typed "
                              "dashboard model"),
        "overlap": (overlap, f"panel {second['id']} {second['title']!r}: gridPos overlaps "
                             f"panel {first['id']} {first['title']!r}"),
        "unknown metric": (unknown, f"panel {victim['id']} {victim['title']!r}: target A: unknown metric "
                                    "http_server_request_total (not in the catalog)"),
        "missing unit": (no_unit, f"panel {bare['id']} {bare['title']!r}: no unit (fieldConfig.defaults.unit)"),
    }


@pytest.mark.parametrize("kind", ["overlap", "unknown metric", "missing unit", "typed model"])
def test_broken_dashboard_is_caught_naming_the_panel(cfg: dict[str, Any], files: dict[str, str], kind: str) -> None:
    model = json.loads(files["dashboards/application.json"])
    broken, expected = broken_variants(model)[kind]
    tampered = {**files, "dashboards/application.json": json.dumps(broken)}
    problems = dashboards.lint(cfg, tampered)
    assert f"dashboards/application.json: {expected}" in problems
    # the ConfigMap no longer carries the same JSON either; nothing else is reported
    assert [p for p in problems if "application" not in p] == []


def test_on_call_rules_cannot_regress(cfg: dict[str, Any], models: dict[str, dict[str, Any]]) -> None:
    catalog = dashboards.dashboard_catalog(cfg)
    model = copy.deepcopy(models["application"])
    by_title = {p["title"]: p for p in dlint.panels(model)}
    by_title["Requests"]["targets"][0]["instant"] = False
    tenant_series = by_title["Error ratio by tenant"]["targets"][0]
    tenant_series["expr"] = tenant_series["expr"].removeprefix("topk(10, ").removesuffix(")")
    by_title["Requests by route"]["targets"][0]["expr"] = (
        'sum by (route, method) (rate(http_server_requests_total{tenant_id=~"$tenant_id"}[30d]))')
    by_title["Errors by route"]["links"] = []
    del model["templating"]["list"][1]["allValue"]
    model["annotations"]["list"] = model["annotations"]["list"][:1]
    model["panels"] = [p for p in model["panels"] if p["type"] != "alertlist"]
    name = {t: f"panel {p['id']} {t!r}" for t, p in by_title.items()}
    problems = dlint.lint_dashboard(model, catalog)
    assert [p for p in problems if not p.startswith("round trip")] == [
        '`tenant_id` variable needs includeAll and allValue ".*" (else "All" is a regex of every tenant)',
        "no annotation of firing alerts (ALERTS)",
        "no alert-list panel",
        f"{name['Requests']}: target A: a stat panel's query must be instant",
        f"{name['Error ratio by tenant']}: target A: per-tenant series must be bounded by topk(N, ...) or "
        "bottomk(N, ...)",
        f"{name['Errors by route']}: no Runbook link",
        f"{name['Requests by route']}: target A: range of a day or more ([30d]); read the SLO window's "
        "recording rule",
    ]
    assert dlint.lint_dashboard(models["application"], catalog) == []


def test_per_tenant_series_show_the_worst_tenants(cfg: dict[str, Any]) -> None:
    changed = copy.deepcopy(cfg)
    changed["dashboards"]["top_tenants"] = 3
    boards = dashboards.dashboards(changed)
    assert panel(boards["application"], "Error ratio by tenant")["targets"][0]["expr"].startswith("topk(3, ")
    # low is bad by the panel's own thresholds: the lowest availability is shown
    assert panel(boards["slo-budget"], "Availability by tenant")["targets"][0]["expr"] == (
        'bottomk(3, 1 - tenant:http_request_errors:ratio_rate30d{tenant_id=~"$tenant_id"})')
    assert panel(boards["tenants"], "Usage by tenant")["type"] == "table"  # tables are not per-step series


def test_lint_rules_on_queries(cfg: dict[str, Any]) -> None:
    catalog = catalog_for(cfg)
    check = dlint.promql.check
    v = dlint.SAMPLE_VARIABLES
    assert check('sum(rate(pg_up{tenant_id="_shared"}[5m]))', catalog, v) == [
        "rate() on pg_up, a gauge: only counters and histogram series"]
    assert check("sum(rate(http_server_requests_total[5m]))", catalog, v) == [
        "http_server_requests_total has tenant_id but the query neither filters nor groups by it"]
    assert check("sum by (tenant_id) (rate(http_server_requests_total[5m]))", catalog, v) == []
    assert check('histogram_quantile(0.9, sum by (le) (rate(http_server_request_duration_seconds_sum'
                 '{tenant_id=~"$tenant_id"}[5m])))', catalog, v) == [
        "histogram_quantile() on http_server_request_duration_seconds_sum: only on a histogram's _bucket series"]
    assert check('sum(rate(http_server_request_duration_seconds_count{tenant_id=~"$tenant_id"}[5m]))',
                 catalog, v) == []
    assert check('up{job=~"$job"}', catalog, v) == ['query uses undefined variable $job: up{job=~"$job"}']
    assert check("rate(up[5m]", catalog, v)[0].startswith("query does not parse")


def test_lint_flags_structure_problems(cfg: dict[str, Any], files: dict[str, str]) -> None:
    model = json.loads(files["dashboards/redis.json"])
    model["panels"][1]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
    model["panels"][2]["id"] = model["panels"][1]["id"]
    model["templating"]["list"][1]["query"] = "label_values(redis_connected_clientz, tenant_id)"
    model["style"] = "dark"
    model["panels"][3]["description"] = None
    problems = dlint.lint_dashboard(model, catalog_for(cfg), schema=SCHEMA)
    first = f"panel {model['panels'][1]['id']} {model['panels'][1]['title']!r}"
    assert f"{first}: target A: datasource is not $datasource" in problems
    assert f"panel {model['panels'][2]['id']} {model['panels'][2]['title']!r}: id {model['panels'][1]['id']} " \
           f"already used by {first}" in problems
    assert "`tenant_id` variable reads redis_connected_clientz, which is not a catalogued per-tenant metric" \
        in problems
    assert "legacy key 'style'" in problems
    assert "null value at /panels/3/description" in problems
    single = json.loads(files["dashboards/tenant.json"])
    single["templating"]["list"][1]["multi"] = False
    assert dlint.lint_dashboard(single, catalog_for(cfg)) == ["no multi-select `tenant_id` query variable"]


def test_raw_grafanalib_output_fails_the_schema_and_the_normaliser_fixes_it() -> None:
    if SCHEMA is None:
        pytest.skip("Grafana's dashboard JSON Schema is not on this machine")
    raw = g.Dashboard(
        title="two panels", uid="raw-test-1",
        panels=[g.TimeSeries(title="a", dataSource="${datasource}", targets=[g.Target(expr="up")],
                             gridPos=g.GridPos(h=8, w=12, x=0, y=0)),
                g.Stat(title="b", dataSource="${datasource}", targets=[g.Target(expr="up")],
                       gridPos=g.GridPos(h=8, w=12, x=12, y=0))],
    ).auto_panel_ids()
    raw_errors = "\n".join(dlint.schema_errors(to_plain(raw), SCHEMA))
    for legacy in ("__inputs", "hideControls", "rows", "sharedCrosshair", "style", "time_options"):
        assert f"'{legacy}'" in raw_errors
    assert "None is not of type" in raw_errors
    assert "panels/0" in raw_errors and "panels/1" in raw_errors
    assert dlint.schema_errors(normalize(raw), SCHEMA) == []


def test_configmaps_and_provider(files: dict[str, str], models: dict[str, dict[str, Any]]) -> None:
    for slug in SLUGS:
        doc = yaml.safe_load(files[f"dashboards/kubernetes/{slug}.configmap.yaml"])
        assert doc["kind"] == "ConfigMap" and doc["apiVersion"] == "v1"
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert doc["metadata"]["annotations"]["grafana_folder"] == "obsbundle"
        assert doc["data"] == {f"{slug}.json": files[f"dashboards/{slug}.json"]}
        assert json.loads(doc["data"][f"{slug}.json"]) == models[slug]
    provider = yaml.safe_load(files["dashboards/provisioning/obsbundle.yaml"])
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert (entry["type"], entry["folder"], entry["allowUiUpdates"]) == ("file", "obsbundle", False)
    assert entry["options"]["path"] == "/var/lib/grafana/dashboards/obsbundle"


def test_folder_and_provider_path_follow_the_config(cfg: dict[str, Any]) -> None:
    changed = copy.deepcopy(cfg)
    changed["dashboards"].update(folder="Platform", provisioning_path="/srv/dash", refresh="1m")
    files = dashboards.render(changed)
    provider = yaml.safe_load(files["dashboards/provisioning/obsbundle.yaml"])["providers"][0]
    assert (provider["folder"], provider["options"]["path"]) == ("Platform", "/srv/dash")
    cm = yaml.safe_load(files["dashboards/kubernetes/redis.configmap.yaml"])
    assert cm["metadata"]["annotations"]["grafana_folder"] == "Platform"
    assert json.loads(files["dashboards/redis.json"])["refresh"] == "1m"


def test_rendering_is_byte_identical_across_processes(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "obsbundle.cli", "generate", "--config", str(ROOT / "obsbundle.yaml"),
                        "--output-dir", str(out)], check=True, capture_output=True, env=env, cwd=ROOT)
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in (out / "dashboards").rglob("*")
                        if p.is_file()})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 2 * len(SLUGS) + 2  # + the dashboard provider and datasources.yaml


def test_committed_dashboards_are_current(files: dict[str, str]) -> None:
    assert [p for p in drift(files, ROOT) if p.startswith("dashboards/")] == []


def test_check_fails_after_a_manual_edit(cfg: dict[str, Any], files: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "project"
    config = str(ROOT / "obsbundle.yaml")
    assert run_cli("generate", "--config", config, "--output-dir", str(out)).returncode == 0
    assert [p for p in drift(files, out) if p.startswith("dashboards/")] == []
    target = out / "dashboards" / "redis.json"
    model = json.loads(target.read_text())
    model["panels"][1]["title"] = "edited in the Grafana UI"
    target.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
    (out / "dashboards" / "stray.json").write_text("{}\n")
    (out / "dashboards" / "kubernetes" / "tenant.configmap.yaml").unlink()
    edited = run_cli("check", "--config", config, "--output-dir", str(out), timeout=180)
    assert edited.returncode == 1
    reported = sorted(line for line in edited.stderr.splitlines() if line.startswith("dashboards/"))
    assert reported == [
        "dashboards/kubernetes/tenant.configmap.yaml: missing (not generated)",
        "dashboards/redis.json: differs from its generator (edited by hand or stale)",
        "dashboards/stray.json: not produced by any generator",
    ]
