"""The alert generator: rendering, lint, generated promtool tests, Alertmanager routing (amtool)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import generators.alerts as alerts
from generators.alerts.alertmanager import receiver_name
from generators.alerts.lint import expression_problems, tool_problems
from generators.alerts.rulefiles import annotations
from obsbundle import config as obsconfig
from obsbundle.catalog import catalog_for
from obsbundle.errors import ConfigError
from obsbundle.services import run_cli

ROOT = Path(__file__).resolve().parents[1]
TENANTS_CONFIG = """
alerting:
  tenants:
    acme: {slack_channel: '#acme-oncall', page: true}
    freeco: {page: false}
"""

needs_tools = pytest.mark.skipif(not (shutil.which("promtool") and shutil.which("amtool")),
                                 reason="promtool/amtool not installed (make test installs them)")


@pytest.fixture(scope="module")
def cfg() -> dict:
    return obsconfig.load(ROOT / "obsbundle.yaml")


@pytest.fixture(scope="module")
def files(cfg: dict) -> dict[str, str]:
    return alerts.render(cfg)


def _rules(files: dict[str, str]) -> list[dict]:
    return [r for p, t in files.items() if p.startswith("alerts/rules/")
            for g in yaml.safe_load(t)["groups"] for r in g["rules"]]


def test_render_is_deterministic_and_matches_the_committed_output(cfg: dict, files: dict[str, str]) -> None:
    assert alerts.render(cfg) == files
    for path, text in files.items():
        assert (ROOT / path).read_text(encoding="utf-8") == text, f"{path} is stale: run obsbundle generate"


def test_every_alert_has_severity_tenant_naming_runbook_and_dashboard(cfg: dict, files: dict[str, str]) -> None:
    runbooks = (ROOT / "docs/runbooks.md").read_text(encoding="utf-8")
    headings = {h.lower() for h in re.findall(r"^## (\w+)$", runbooks, re.M)}
    uids = {m for t in files.values() for m in re.findall(r"/d/(obs-[a-z-]+)", t)}
    names = set()
    runbook = {r.name: r.runbook for r in alerts.build_rules(cfg)}
    for rule in (r for r in _rules(files) if "alert" in r):
        names.add(rule["alert"])
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        assert rule["labels"]["scope"] in ("tenant", "shared", "platform")
        notes = rule["annotations"]
        assert notes["runbook_url"] == f"{cfg['alerting']['runbook_base_url']}#{runbook[rule['alert']]}"
        assert runbook[rule["alert"]] in headings, f"no runbook section for {rule['alert']}"
        assert notes["dashboard_url"].startswith(cfg["dashboards"]["grafana_url"] + "/d/obs-")
        assert notes["tenants_affected"]
        assert rule["for"] not in ("0s", "0m")
    for rule in alerts.build_rules(cfg):
        text = rule.summary + rule.description
        if rule.scope_label == "platform":
            continue
        if "tenant_id" in rule.by:
            assert "{{ $labels.tenant_id }}" in text, rule.name
            url = annotations(cfg, rule)["dashboard_url"]
            assert url.endswith("?var-tenant_id={{ $labels.tenant_id }}") == rule.tenant_scoped, rule.name
        else:
            assert "all tenants" in text or "every tenant" in text, rule.name
    assert uids <= {"obs-application", "obs-slo-budget", "obs-postgresql", "obs-redis", "obs-temporal",
                    "obs-infrastructure"}
    # the list, each present
    assert {"TenantErrorRatioHigh", "TenantLatencyP95High", "PostgresConnectionSaturation",
            "PostgresTenantConnectionShare", "PgbouncerClientsWaiting", "HostDiskSpaceLow", "HostDiskWillFill",
            "HostMemoryHigh", "HostCpuHigh", "TargetDown", "PostgresDown", "RedisDown", "TemporalDown",
            "RedisMemoryNearMax", "RedisEvictions", "TemporalBacklogAge", "TemporalBacklogGrowing",
            "TemporalWorkflowFailureRatio", "PostgresReplicationLag", "PostgresDeadlocks", "ProbeFailing",
            "ProbeCertificateExpiry", "TenantAvailabilityBudgetBurn", "TenantLatencyBudgetBurn",
            "ApiErrorsAcrossTenants", "TenantsBurningErrorBudget", "UnattributedRequestsFailing", "PgbouncerDown",
            "PostgresLongRunningTransaction", "PostgresIdleInTransaction", "PostgresRollbackRatioHigh",
            "RedisRejectedConnections", "RedisRdbSaveFailing", "RedisAofWriteFailing", "RedisReplicationLinkDown",
            "TenantInferenceLatencyHigh", "TenantCacheHitRatioCollapsed", "HostInodesLow", "HostNetworkErrors",
            "HostClockSkew", "ContainerRestarting", "ContainerOomKilled", "ContainerCrashLooping",
            "ContainerCpuThrottled", "Watchdog", "AppMetricsAbsent", "PostgresMetricsAbsent",
            "RedisKeyspaceDataStale", "ObsbundleCollectorDataStale"} <= names
    # tenant alerts never fire for a pseudo-tenant
    for rule in alerts.build_rules(cfg):
        if rule.scope_label == "tenant":
            assert 'tenant_id!~"_overflow|_shared|_unassigned"' in rule.expr, rule.name


def test_seed_thresholds_are_the_defaults(files: dict[str, str]) -> None:
    by_key = {(r["alert"], r["labels"]["severity"], None): r
              for r in _rules(files) if "alert" in r}
    assert '"} > 0.05) and on (tenant_id) tenant:http_requests:rate5m >= 0.1' in by_key[
        ("TenantErrorRatioHigh", "warning", None)]["expr"]
    assert ("TenantErrorRatioHigh", "critical", None) not in by_key  # the burn rate is the tenant's page
    assert by_key[("TenantErrorRatioHigh", "warning", None)]["for"] == "5m"
    assert '"} > 2) and on' in by_key[("TenantLatencyP95High", "warning", None)]["expr"]
    assert by_key[("TenantLatencyP95High", "warning", None)]["for"] == "10m"
    assert "< 0.2" in by_key[("HostDiskSpaceLow", "warning", None)]["expr"]
    assert "< 0.1" in by_key[("HostDiskSpaceLow", "critical", None)]["expr"]
    assert by_key[("HostMemoryHigh", "warning", None)]["expr"].endswith("> 0.9")
    assert by_key[("HostCpuHigh", "warning", None)]["expr"].endswith("> 0.7")
    real = '{tenant_id!~"_overflow|_shared|_unassigned"}'
    burn = by_key[("TenantAvailabilityBudgetBurn", "critical", None)]
    assert burn["expr"] == (f"(tenant:http_request_errors:ratio_rate6h{real} / 0.05 > 6 and "
                            f"tenant:http_request_errors:ratio_rate30m{real} / 0.05 > 6 or "
                            f"tenant:http_request_errors:ratio_rate1h{real} / 0.05 > 14.4 and "
                            f"tenant:http_request_errors:ratio_rate5m{real} / 0.05 > 14.4)"
                            " and on (tenant_id) tenant:http_requests:rate5m >= 0.1")
    warning = by_key[("TenantLatencyBudgetBurn", "warning", None)]["expr"]
    for window in ("3d", "6h", "1d", "2h"):
        assert f"tenant:http_request_slow:ratio_rate{window}{real}" in warning


def test_recording_rules_cover_every_slo_window(files: dict[str, str]) -> None:
    records = {r["record"] for r in _rules(files) if "record" in r}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert {f"tenant:http_request_errors:ratio_rate{window}", f"tenant:http_request_slow:ratio_rate{window}",
                f"tenant:http_request_duration_seconds:p95_rate{window}"} <= records


def test_for_scale_shortens_every_for(cfg: dict) -> None:
    fast = obsconfig.parse("alerting: {for_scale: 0.01}")
    rules = {(r["alert"], r["labels"]["severity"], r["labels"].get("long_window")): r["for"]
             for r in _rules(alerts.render(fast)) if "alert" in r}
    assert rules[("TenantErrorRatioHigh", "warning", None)] == "3s"
    assert rules[("TenantLatencyP95High", "critical", None)] == "6s"
    assert rules[("TenantAvailabilityBudgetBurn", "warning", None)] == "9s"  # the tier's shortest `for`


def test_lint_is_clean_including_promtool_and_amtool(cfg: dict, files: dict[str, str]) -> None:
    assert alerts.lint(cfg, files) == []


def test_generated_tests_cover_every_rule_both_ways(cfg: dict, files: dict[str, str]) -> None:
    cases = [(c["alertname"], {a["exp_labels"]["severity"] for a in c["exp_alerts"]})
             for p, t in files.items() if p.startswith("alerts/tests/")
             for test in yaml.safe_load(t)["tests"] for c in test["alert_rule_test"]]
    for rule in alerts.build_rules(cfg):
        assert any(n == rule.name and rule.severity in s for n, s in cases), f"{rule.name} never fires"
        assert rule.always or any(n == rule.name and rule.severity not in s for n, s in cases), \
            f"{rule.name} never silent"


@needs_tools
def test_promtool_tests_fail_when_a_threshold_drifts(files: dict[str, str]) -> None:
    # only the app rules and their tests: promtool on the whole set is the lint test's job
    broken = {p: t for p, t in files.items() if p.startswith("alerts/rules/") or p == "alerts/tests/app.test.yaml"}
    path = "alerts/rules/app.rules.yaml"
    assert '"} > 0.05)' in files[path]
    broken[path] = files[path].replace('"} > 0.05)', '"} > 0.5)')
    problems = tool_problems(broken)
    assert len(problems) == 1 and problems[0].startswith("promtool test rules failed")
    assert "TenantErrorRatioHigh" in problems[0]


def test_lint_refuses_unknown_metrics_bad_labels_and_misused_functions(cfg: dict) -> None:
    catalog = catalog_for(cfg)
    assert expression_problems("rate(http_server_requests_total[5m]) > 1", catalog, set()) == []
    assert expression_problems("rate(http_server_request_duration_seconds_bucket{le=\"2\"}[5m])",
                               catalog, set()) == []
    assert expression_problems("pg_connections_total > 1", catalog, set()) == [
        "pg_connections_total is neither a catalog metric nor a recording rule"]
    assert expression_problems('redis_up{instance="x",shard="1"} == 0', catalog, set()) == [
        "redis_up has no label shard"]
    assert expression_problems("rate(redis_up[5m])", catalog, set()) == [
        "rate() on redis_up, a gauge: only counters and histogram series"]
    assert expression_problems("deriv(redis_evicted_keys_total[5m])", catalog, set()) == [
        "deriv() on redis_evicted_keys_total, a counter: use rate()/increase()"]
    assert expression_problems("tenant:x:ratio > 1", catalog, {"tenant:x:ratio"}) == []


def test_lint_reports_broken_files_by_rule(cfg: dict, files: dict[str, str]) -> None:
    broken = dict(files)
    path = "alerts/rules/redis.rules.yaml"
    broken[path] = (files[path].replace("redis_evicted_keys_total", "redis_evictions_total")
                    .replace("runbooks.md#redismemorynearmax", "runbooks.md#nosuchsection"))
    broken["alerts/alertmanager.yml"] = files["alerts/alertmanager.yml"].replace("api_url_file:", "api_url:", 1)
    problems = alerts.lint(cfg, broken, tools=False)
    assert any(p.startswith(f"{path}: RedisEvictions: redis_evictions_total is neither") for p in problems)
    assert any(p.startswith(f"{path}: RedisMemoryNearMax: runbook_url") for p in problems)
    assert any("inline secret" in p for p in problems)


def test_lint_refuses_an_slo_that_can_never_burn() -> None:
    cfg = obsconfig.parse("slo: {availability: {objective: 0.9}}")
    problems = alerts.lint(cfg, alerts.render(cfg), tools=False)
    assert problems == ["slo.burn_rates: factor 14.4 x availability budget 0.1 >= 1: that alert can never fire"]


def test_secrets_only_by_file_and_every_receiver_sends_resolved() -> None:
    cfg = obsconfig.parse(TENANTS_CONFIG)
    am = yaml.safe_load(alerts.render(cfg)["alerts/alertmanager.yml"])
    deadman = next(r for r in am["receivers"] if r["name"] == "deadmansswitch")
    assert deadman["slack_configs"][0]["api_url_file"] == "/etc/alertmanager/secrets/deadmansswitch_url"
    for receiver in (r for r in am["receivers"] if r is not deadman):
        for slack in receiver.get("slack_configs", []):
            assert slack["api_url_file"] == "/etc/alertmanager/secrets/slack_api_url" and "api_url" not in slack
            assert slack["send_resolved"] is True
        for pd in receiver.get("pagerduty_configs", []):
            assert pd["routing_key_file"] == "/etc/alertmanager/secrets/pagerduty_routing_key"
            assert "routing_key" not in pd and "service_key" not in pd and pd["send_resolved"] is True
    assert am["route"]["group_by"] == ["alertname", "server", "job", "instance"]
    inhibit = [(r["source_matchers"], r["target_matchers"], r["equal"]) for r in am["inhibit_rules"]]
    assert (['severity="critical"'], ['severity=~"warning|info"'],
            ["alertname", "tenant_id", "server", "instance", "mountpoint", "task_queue", "probe", "job"]) in inhibit
    assert (['alertname="RedisDown"'], ['component="redis"', 'alertname!="RedisDown"'], ["server"]) in inhibit
    assert (['alertname="PostgresDown"'], ['alertname=~"Obsbundle.+"', 'exporter="postgres"'],
            ["server"]) in inhibit
    assert (['alertname="ApiErrorsAcrossTenants"'],
            ['alertname=~"TenantErrorRatioHigh|TenantAvailabilityBudgetBurn|TenantsBurningErrorBudget"'], []) in inhibit
    assert (['alertname="TenantAvailabilityBudgetBurn"'], ['alertname="TenantErrorRatioHigh"'],
            ["tenant_id"]) in inhibit
    warning = next(r for r in am["receivers"] if r["name"] == "warning-email-slack")
    assert warning["email_configs"][0]["auth_password_file"] == "/etc/alertmanager/secrets/smtp_password"
    assert "auth_password" not in warning["email_configs"][0]
    tenant_routes = [r for r in am["route"]["routes"] if any("tenant_id=" in m for m in r["matchers"])]
    assert tenant_routes and all(r["continue"] is True for r in tenant_routes)


ROUTES = [
    ({"severity": "critical", "tenant_id": "globex"}, "critical-pagerduty-slack"),
    ({"severity": "warning", "tenant_id": "globex"}, "warning-email-slack"),
    ({"severity": "info", "alertname": "Watchdog"}, "deadmansswitch"),
    ({"severity": "info", "exporter": "redis"}, "info-slack"),
    ({"severity": "critical", "tenant_id": "_shared", "alertname": "RedisDown"}, "critical-pagerduty-slack"),
    ({"severity": "warning", "tenant_id": "acme"}, "tenant-acme-warning,warning-email-slack"),
    ({"severity": "critical", "tenant_id": "acme"}, "tenant-acme-critical,critical-pagerduty-slack"),
    ({"severity": "critical", "tenant_id": "freeco"}, "tenant-freeco-critical,critical-pagerduty-slack"),
]


@needs_tools
@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=[r for _, r in ROUTES])
def test_amtool_routes(tmp_path: Path, labels: dict[str, str], receiver: str) -> None:
    cfg = obsconfig.parse(TENANTS_CONFIG)
    rendered = alerts.render(cfg)
    (tmp_path / "templates").mkdir()
    (tmp_path / "alertmanager.yml").write_text(rendered["alerts/alertmanager.yml"])
    (tmp_path / "templates/obsbundle.tmpl").write_text(rendered["alerts/templates/obsbundle.tmpl"])
    cmd = ["amtool", "config", "routes", "test", f"--config.file={tmp_path / 'alertmanager.yml'}",
           f"--verify.receivers={receiver}", *(f"{k}={v}" for k, v in labels.items())]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == receiver
    # a wrong expectation must fail, so the check above can fail
    wrong = subprocess.run([*cmd[:5], "--verify.receivers=nobody", *cmd[6:]], capture_output=True, text=True,
                           timeout=60)
    assert wrong.returncode != 0


def test_tenant_overrides_pick_channel_and_paging() -> None:
    am = yaml.safe_load(alerts.render(obsconfig.parse(TENANTS_CONFIG))["alerts/alertmanager.yml"])
    receivers = {r["name"]: r for r in am["receivers"]}
    assert receivers["tenant-acme-warning"]["slack_configs"][0]["channel"] == "#acme-oncall"
    assert "pagerduty_configs" in receivers["tenant-acme-warning"]        # premium: warnings page
    assert "pagerduty_configs" not in receivers["tenant-freeco-critical"]  # page: false
    assert receivers["tenant-freeco-critical"]["slack_configs"][0]["channel"] == "#alerts-critical"
    assert "pagerduty_configs" in receivers[receiver_name("critical")]
    assert "pagerduty_configs" not in receivers[receiver_name("warning")]
    assert receivers[receiver_name("info")]["slack_configs"][0]["channel"] == "#alerts-info"
    assert receivers[receiver_name("critical")]["slack_configs"][0]["channel"] == "#alerts-critical"


def test_alerts_table_has_one_row_per_rule(cfg: dict) -> None:
    table = alerts.alerts_table(cfg)
    rules = alerts.build_rules(cfg)
    rows = table.strip().splitlines()[2:]
    assert len(rows) == len(rules)
    assert rows[0].startswith("| [TenantErrorRatioHigh](runbooks.md#tenanterrorratiohigh) |")
    assert rows[0].endswith("| 5m | warning | email + Slack #alerts |")
    assert rows[2].endswith("| 10m | critical | PagerDuty + Slack #alerts-critical |")


@pytest.mark.parametrize(("text", "message"), [
    ("slo: {burn_rates: [{long: 2d, short: 5m, factor: 1, severity: warning, for: 1m}]}",
     "slo.burn_rates[0].long"),
    ("alerting: {pagerduty: {routing_key: abc}}", "alerting.pagerduty.routing_key: unknown key"),
    ("thresholds: {queue_depth: {warning: 10}}", "thresholds.queue_depth.for: required"),
    ("alerting: {group_by: [alertname, tenant_id]}", "alerting.group_by"),
])
def test_bad_alerting_config_is_one_line_exit_2(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        obsconfig.parse(text)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    done = run_cli("generate", "--config", str(path), "--output-dir", str(tmp_path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not (tmp_path / "alerts").exists()


def test_dashboard_links_resolve_to_generated_dashboards(cfg: dict) -> None:
    import generators

    everything = generators.render_all(cfg)
    assert any(p.startswith("dashboards/") for p in everything), "the dashboards generator is part of the build"
    assert alerts.lint(cfg, everything, tools=False) == []
    path = "alerts/rules/redis.rules.yaml"
    broken = {**everything, path: everything[path].replace("/obs-redis", "/obs-rediss")}
    assert f"{path}: RedisDown: dashboard_url names uid obs-rediss, which no generated dashboard has" in alerts.lint(
        cfg, broken, tools=False)


def test_prometheusrule_manifest_holds_the_same_groups(files: dict[str, str]) -> None:
    manifest = yaml.safe_load(files["alerts/kubernetes/prometheusrule.yaml"])
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1" and manifest["kind"] == "PrometheusRule"
    groups = [g for p, t in files.items() if p.startswith("alerts/rules/") for g in yaml.safe_load(t)["groups"]]
    assert sorted(manifest["spec"]["groups"], key=lambda g: g["name"]) == sorted(groups, key=lambda g: g["name"])


def test_lint_refuses_aggregating_by_a_label_the_metric_lacks(cfg: dict) -> None:
    catalog = catalog_for(cfg)
    assert expression_problems("sum by (server, tenant_id) (rate(http_server_requests_total[5m]))", catalog,
                               set()) == ["aggregates by server, which no metric under it has"]
    assert expression_problems("sum by (instance, tenant_id) (rate(http_server_requests_total[5m]))", catalog,
                               set()) == []


def test_queue_without_workers_fires_only_while_no_worker_polls(tmp_path: Path) -> None:
    """Same backlog on two queues: the one with pollers stays silent, the one without pages."""
    rules = ROOT / "alerts" / "rules" / "temporal.rules.yaml"
    rule = next(r for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "TemporalQueueWithoutWorkers")
    values = {"{{ $labels.tenant_id }}": "acme", "{{ $labels.task_queue }}": "orphan",
              "{{ $labels.server }}": "main", '{{ printf "%.3g" $value }}': "7"}
    expected = {}
    for key, text in rule["annotations"].items():
        for template, value in values.items():
            text = text.replace(template, value)
        expected[key] = text
    labels = 'server="main",task_queue_type="workflow",tenant_id="acme"'
    case = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'temporal_tenant_task_queue_backlog{{{labels},task_queue="served"}}', "values": "7+0x10"},
                {"series": f'temporal_tenant_task_queue_pollers{{{labels},task_queue="served"}}', "values": "2+0x10"},
                {"series": f'temporal_tenant_task_queue_backlog{{{labels},task_queue="orphan"}}', "values": "7+0x10"},
                {"series": f'temporal_tenant_task_queue_pollers{{{labels},task_queue="orphan"}}', "values": "0+0x10"},
            ],
            "alert_rule_test": [{
                "eval_time": "10m",
                "alertname": "TemporalQueueWithoutWorkers",
                "exp_alerts": [{
                    "exp_labels": {"server": "main", "tenant_id": "acme", "task_queue": "orphan",
                                   "severity": "critical", "component": "temporal", "scope": "tenant"},
                    "exp_annotations": expected,
                }],
            }],
        }],
    }
    test_file = tmp_path / "queue.test.yaml"
    test_file.write_text(yaml.safe_dump(case))
    result = subprocess.run([shutil.which("promtool") or "promtool", "test", "rules", str(test_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
