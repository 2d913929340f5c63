"""Scale-out with real engines on loopback: two Redis servers, each with its own obsbundle
exporter, scraped by two Prometheus agent-mode shards running the generated shard configs
(hashmod on the address), both remote-writing into VictoriaMetrics; vmalert evaluates every
generated rule file against it and notifies Alertmanager (the generated alertmanager.yml), whose
Slack and PagerDuty receivers are obsbundle's loopback NotificationSink."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis as redis_py
import yaml

import generators
import generators.dashboards as dashboards
from generators import promql_lint as promql
from generators.dashboards import checks
from generators.deploy import prometheus
from obsbundle import config as obsconfig
from obsbundle.services import AlertmanagerServer, ExporterProcess, NotificationSink, RedisServer, wait_for
from obsbundle.services.victoriametrics import PrometheusAgent, VictoriaMetricsServer, VmalertServer
from tests.test_alerts_e2e import ROUTING_KEY
from tests.test_dashboards_live import NOT_PRODUCED_HERE, VARIABLES, expand, run_query

pytestmark = pytest.mark.slow

SHARDS = 2
# server -> tenant -> keys seeded; acme lives on both servers, so both shards carry its series
SEEDED = {"cache-a": {"acme": 3, "globex": 2}, "cache-b": {"acme": 4, "initech": 5}}
TRUTH = {"acme": 7, "globex": 2, "initech": 5}
SOURCES_HERE = {"redis", "exporter", "prometheus"}  # what this stack produces
TIMEOUT = 90


def _redis_source(name: str, url: str) -> dict[str, Any]:
    return {"name": name, "url": url, "scan": {"interval": "1s"}}


def _exporter(name: str, url: str) -> ExporterProcess:
    return ExporterProcess("redis", {"sources": {"redis": [_redis_source(name, url)]},
                                     "exporter": {"scrape_timeout": "5s"}})


def _every_second(rule_file: str) -> str:
    """The rule file with its groups' own `interval` dropped, so vmalert's -evaluationInterval (1s)
    runs every group during the test (a 5m group would start at a random point of its interval).
    The expressions are untouched."""
    document = yaml.safe_load(rule_file)
    for group in document["groups"]:
        group.pop("interval", None)
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("scaleout")
    recorder = NotificationSink()
    (tmp / "slack_url").write_text(f"{recorder.url}/slack\n")
    (tmp / "pd_key").write_text(ROUTING_KEY + "\n")
    with contextlib.ExitStack() as stack:
        stack.callback(recorder.close)
        servers = {}
        for name, tenants in SEEDED.items():
            # maxmemory: the saturation panels have data; slowlog threshold 0: every command is logged
            server = stack.enter_context(RedisServer(["--maxmemory", "64mb", "--slowlog-log-slower-than", "0"]))
            with redis_py.Redis.from_url(server.url) as client:
                client.mset({f"tenant:{t}:session:{i}": "x" for t, n in tenants.items() for i in range(n)})
            for tenant in tenants:  # one named connection per tenant and server, held open
                held = stack.enter_context(redis_py.Redis.from_url(server.url, client_name=f"tenant:{tenant}"))
                held.ping()
            servers[name] = server
        exporters = {"cache-a": stack.enter_context(_exporter("cache-a", servers["cache-a"].url))}
        # a fresh port until the two exporters fall on different shards: both shards carry a target
        for _ in range(20):
            candidate = _exporter("cache-b", servers["cache-b"].url)
            if prometheus.hashmod(candidate.address, SHARDS) != prometheus.hashmod(exporters["cache-a"].address,
                                                                                   SHARDS):
                exporters["cache-b"] = stack.enter_context(candidate)
                break
            candidate.close()
        assert len(exporters) == 2, "no port split the exporters across the shards in 20 tries"
        vm = stack.enter_context(VictoriaMetricsServer())
        user_config = {
            "sources": {"redis": [_redis_source(n, s.url) for n, s in servers.items()]},
            "deploy": {"cluster": "scaleout", "shards": SHARDS, "scrape_interval": "1s",
                       "remote_write_url": vm.write_url, "query_url": vm.url,
                       "targets": {"redis": [e.address for e in exporters.values()], "app": []}},
            "dashboards": {"grafana_url": "https://grafana.example"},
            "alerting": {
                "for_scale": 0.01, "group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h",
                "runbook_base_url": "https://runbooks.example/docs/runbooks.md",
                "slack": {"api_url_file": str(tmp / "slack_url")},
                "pagerduty": {"routing_key_file": str(tmp / "pd_key"), "url": f"{recorder.url}/pagerduty"},
            },
        }
        cfg = obsconfig.parse(yaml.safe_dump(user_config))
        files = generators.render_all(cfg)
        for path, text in files.items():
            if path.startswith("alerts/"):
                (tmp / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp / path).write_text(_every_second(text) if path.startswith("alerts/rules/") else text)
        am = stack.enter_context(AlertmanagerServer(tmp / "alerts/alertmanager.yml"))
        # the generated shard files, as `obsbundle generate` writes them for this config
        agents = [stack.enter_context(PrometheusAgent(yaml.safe_load(files[prometheus.shard_file(i)])))
                  for i in range(SHARDS)]
        rule_files = sorted((tmp / "alerts/rules").glob("*.rules.yaml"))
        vmalert = stack.enter_context(VmalertServer(rule_files, vm.url, am.url))
        yield {"servers": servers, "exporters": exporters, "vm": vm, "agents": agents, "vmalert": vmalert,
               "am": am, "recorder": recorder, "cfg": cfg, "files": files, "rule_files": rule_files}


def _by(vm: VictoriaMetricsServer, expr: str, label: str) -> dict[str, float]:
    return {k: round(v, 6) for k, v in vm.query_by(expr, label).items()}


def test_every_target_is_scraped_by_exactly_one_shard(stack: dict[str, Any]) -> None:
    vm, exporters, agents = stack["vm"], stack["exporters"], stack["agents"]
    expected = {str(prometheus.hashmod(e.address, SHARDS)): 1.0 for e in exporters.values()}
    assert set(expected) == {"0", "1"}
    vm.wait_query('sum(up{job="redis"}) == 2', timeout=TIMEOUT)
    assert _by(vm, "sum(up)", "") == {"": 2.0}  # Σup == number of targets: nothing scraped twice
    assert _by(vm, "sum by (shard) (up)", "shard") == expected
    assert {r["metric"]["cluster"] for r in vm.query("up")} == {"scaleout"}
    for shard, agent in enumerate(agents):
        kept = [t["labels"]["instance"] for t in agent.active_targets()]
        assert kept == [a for a in (e.address for e in exporters.values()) if prometheus.hashmod(a, SHARDS) == shard]


def test_per_tenant_sums_from_the_store_equal_ground_truth(stack: dict[str, Any]) -> None:
    vm = stack["vm"]
    expr = 'sum by (tenant_id) (redis_tenant_keys{tenant_id!~"_.*"})'

    def settled() -> dict[str, float] | None:
        found = _by(vm, expr, "tenant_id")
        return found if found == TRUTH else None

    with contextlib.suppress(TimeoutError):
        wait_for(settled, TIMEOUT, 1, what="per-tenant key sums")
    assert _by(vm, expr, "tenant_id") == TRUTH
    clients = 'sum by (tenant_id) (redis_tenant_connected_clients{tenant_id!~"_.*"})'
    assert _by(vm, clients, "tenant_id") == {t: float(sum(t in s for s in SEEDED.values())) for t in TRUTH}
    # acme's series come from both shards (different `shard` labels) yet its sum is one figure
    acme = vm.query('redis_tenant_keys{tenant_id="acme"}')
    assert sorted((r["metric"]["shard"], r["metric"]["server"], float(r["value"][1])) for r in acme) == sorted(
        (str(prometheus.hashmod(stack["exporters"][s].address, SHARDS)), s, float(SEEDED[s]["acme"]))
        for s in SEEDED)
    assert [r["metric"] for r in vm.query(expr.replace("!~", "=~").replace('"_.*"', '"acme"'))] == [
        {"tenant_id": "acme"}]


def _rule_count(files: dict[str, str]) -> int:
    return sum(len(g["rules"]) for p, t in files.items() if p.startswith("alerts/rules/")
               for g in yaml.safe_load(t)["groups"])


def test_generated_rules_evaluate_in_vmalert_with_zero_errors(stack: dict[str, Any]) -> None:
    vmalert = stack["vmalert"]
    def evaluated() -> list[dict[str, Any]] | None:  # vmalert reports year 1 until a rule's first run
        rules = vmalert.rules()
        return rules if rules and not [r for r in rules if r["lastEvaluation"].startswith("0001")] else None

    rules = wait_for(evaluated, TIMEOUT, 1, what="every vmalert rule evaluated")
    time.sleep(3)  # and a few more rounds
    rules = vmalert.rules()
    assert len(rules) == _rule_count(stack["files"])
    assert [(r["name"], r["lastError"]) for r in rules if r["lastError"] or r["health"] != "ok"] == []
    metrics = httpx.get(f"{vmalert.url}/metrics", timeout=10).text
    errors = [line for line in metrics.splitlines()
              if line.startswith(("vmalert_alerting_rules_error{", "vmalert_recording_rules_error{"))]
    assert len(errors) == len(rules)
    assert [line for line in errors if not line.endswith(" 0")] == []
    print(f"\nvmalert: {len(rules)} generated rules evaluated, 0 errors", file=sys.stderr)


def test_dashboard_queries_return_data_from_victoriametrics(stack: dict[str, Any]) -> None:
    """The panel queries of the live dashboard test, run against VictoriaMetrics (MetricsQL): every
    query runs; every panel whose sources this stack produces returns data."""
    vm, cfg = stack["vm"], stack["cfg"]
    catalog = dashboards.dashboard_catalog(cfg)  # with the recording rules the SLO panels read
    vm.wait_query('count(redis_tenant_keys{tenant_id!~"_.*"}) == 4', timeout=TIMEOUT)
    time.sleep(5)  # a few scrapes: rates over the window have two points and more
    errors, empty, checked, held = [], [], 0, 0
    for slug, model in dashboards.dashboards(cfg).items():
        for panel in checks.panels(model):
            if panel["type"] in ("row", "alertlist"):  # the alert list reads Grafana's alert API, no query
                continue
            needs = {m for t in panel["targets"] for m in promql.metric_names(t["expr"], VARIABLES)}
            families = {catalog.series(m) for m in needs}
            present = {f.source for f in families} <= SOURCES_HERE and not {f.name for f in families} & set(
                NOT_PRODUCED_HERE)
            held += present
            for target in panel["targets"]:
                error, series = run_query(vm, expand(target["expr"]), target["instant"])
                checked += 1
                if error:
                    errors.append(f"{slug}: {panel['title']} [{target['refId']}]: {error}")
                elif series == 0 and present:
                    empty.append(f"{slug}: {panel['title']} [{target['refId']}]: {target['expr']}")
    assert errors == []
    assert empty == [], "\n".join(empty)
    assert held >= 10 and checked > held
    print(f"\nvictoriametrics: {checked} panel queries ran without error; {held} panels held to returning data",
          file=sys.stderr)


def _pd(recorder: NotificationSink, alertname: str) -> list[dict[str, Any]]:
    return [e for e in recorder.bodies("/pagerduty")
            if e["event_action"] == "trigger" and e["payload"]["custom_details"]["alertname"] == alertname]


def test_injected_failure_fires_through_vmalert_to_alertmanager_and_the_recorder(stack: dict[str, Any]) -> None:
    servers, recorder, am = stack["servers"], stack["recorder"], stack["am"]
    stack["vm"].wait_query('min(redis_up{tenant_id="_shared"}) == 1', timeout=TIMEOUT)
    assert _pd(recorder, "RedisDown") == []
    servers["cache-b"].stop()
    page = wait_for(lambda: _pd(recorder, "RedisDown"), TIMEOUT, 0.5, what="RedisDown page via vmalert")
    details = page[0]["payload"]["custom_details"]
    assert page[0]["routing_key"] == ROUTING_KEY
    assert page[0]["payload"]["summary"] == "RedisDown [tenant _shared]: Redis cache-b is down (all tenants)"
    assert details["tenant_id"] == "_shared" and details["severity"] == "critical"
    firing = httpx.get(f"{am.url}/api/v2/alerts", params={"filter": 'alertname="RedisDown"'}, timeout=5).json()
    assert [(a["labels"]["server"], a["labels"]["tenant_id"]) for a in firing] == [("cache-b", "_shared")]
    time.sleep(3)  # more group_waits: cache-a, still up, never pages
    assert len(_pd(recorder, "RedisDown")) == 1
