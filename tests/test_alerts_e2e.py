"""End to end with real binaries on loopback, counting what an on-call would receive.

Each scenario gets a fresh Prometheus (the generated rules, for_scale 0.01) and a fresh
Alertmanager (the generated alertmanager.yml, short group waits); Slack, PagerDuty and the dead
man's switch point at a recording HTTP server, email at a real SMTP server (aiosmtpd). Sources:
a real PostgreSQL behind the real obsbundle exporter (stopped for the shared cause), a real
Temporal dev server behind its exporter, and the application's request counters for hundreds of
tenants served by a loopback endpoint in the app's exposition format (a real app can't serve 500
tenants' traffic on this machine). A page is one PagerDuty incident: a distinct dedup_key with a
trigger event (Alertmanager re-sends a group's trigger when its alerts change; PagerDuty folds those).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import generators.alerts as alerts
from obsbundle import config as obsconfig
from obsbundle.services import (
    AlertmanagerServer,
    ExporterProcess,
    ExpositionServer,
    NotificationSink,
    PostgresServer,
    PrometheusServer,
    TemporalServer,
    wait_for,
)

ROUTING_KEY = "e2e-routing-key-0123456789"
RUNBOOKS = "https://runbooks.example/docs/runbooks.md"
GRAFANA = "https://grafana.example"
TIMEOUT = 90
WATCHDOG_EVERY = "2s"


class TenantTraffic:
    """`http_server_requests_total` for many tenants, counters advancing at each tenant's rate."""

    def __init__(self) -> None:
        self.mix: dict[str, tuple[float, float]] = {}  # tenant -> (requests/s, 5xx share)
        self.lock = threading.Lock()
        self.totals: dict[tuple[str, str], float] = {}
        self.last = time.monotonic()
        self.server = ExpositionServer(lambda: self.exposition().encode())

    @property
    def address(self) -> str:
        return self.server.address

    def set(self, mix: dict[str, tuple[float, float]]) -> None:
        with self.lock:
            self._advance()
            self.mix = dict(mix)
            self.totals = {}

    def _advance(self) -> None:
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        for tenant, (rate, errors) in self.mix.items():
            for status, share in (("5xx", errors), ("2xx", 1 - errors)):
                key = (tenant, status)
                self.totals[key] = self.totals.get(key, 0.0) + rate * share * elapsed

    def exposition(self) -> str:
        with self.lock:
            self._advance()
            lines = ["# HELP http_server_requests_total HTTP requests completed.",
                     "# TYPE http_server_requests_total counter"]
            for (tenant, status), value in sorted(self.totals.items()):
                lines.append(f'http_server_requests_total{{tenant_id="{tenant}",route="/v1/agents",method="POST",'
                             f'status_class="{status}"}} {value:.6f}')
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("alerts-e2e")
    sink, traffic = NotificationSink(), TenantTraffic()
    recorder = mailbox = sink
    (tmp / "slack_url").write_text(f"{recorder.url}/slack\n")
    (tmp / "deadman_url").write_text(f"{recorder.url}/deadman\n")
    (tmp / "pd_key").write_text(ROUTING_KEY + "\n")
    (tmp / "smtp_password").write_text("unused\n")
    services: list[Any] = []
    try:
        pg = PostgresServer()
        services.append(pg)
        temporal = TemporalServer()
        services.append(temporal)
        sources = {"postgres": [{"name": "main", "dsn": pg.dsn}],
                   "temporal": [{"name": "main", "address": temporal.address}]}
        user_config = {
            "sources": sources,
            "alerting": {
                "for_scale": 0.01, "group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h",
                "runbook_base_url": RUNBOOKS,
                "slack": {"api_url_file": str(tmp / "slack_url")},
                "email": {"smarthost": sink.smarthost, "to": "oncall@platform.test",
                          "from": "alertmanager@platform.test", "auth_username": None,
                          "auth_password_file": None, "require_tls": False},
                "pagerduty": {"routing_key_file": str(tmp / "pd_key"), "url": f"{recorder.url}/pagerduty"},
                "watchdog": {"url_file": str(tmp / "deadman_url"), "repeat_interval": WATCHDOG_EVERY},
            },
            "dashboards": {"grafana_url": GRAFANA},
        }
        cfg = obsconfig.parse(yaml.safe_dump(user_config))
        for path, text in alerts.render(cfg).items():
            if path.startswith("alerts/"):
                (tmp / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp / path).write_text(text)
        pg_exporter = ExporterProcess("postgres", {"sources": {"postgres": sources["postgres"]}})
        services.append(pg_exporter)
        temporal_exporter = ExporterProcess("temporal", {"sources": {"temporal": sources["temporal"]}})
        services.append(temporal_exporter)
        yield {"tmp": tmp, "recorder": recorder, "mailbox": mailbox, "traffic": traffic, "pg": pg,
               "temporal": temporal, "cfg": cfg, "exporters": {"postgres": pg_exporter.address,
                                                               "temporal": temporal_exporter.address}}
    finally:
        for service in reversed(services):
            service.close()
        traffic.close()
        sink.close()


class Scenario:
    """A fresh Prometheus and Alertmanager over the shared sources; pages counted from its start."""

    def __init__(self, world: dict[str, Any], jobs: tuple[str, ...]) -> None:
        self.world = world
        self.recorder: NotificationSink = world["recorder"]
        self.started = time.monotonic()
        tmp = world["tmp"]
        self.am = AlertmanagerServer(tmp / "alerts/alertmanager.yml")
        targets = {"agent-api": [world["traffic"].address]}
        targets.update({job: [world["exporters"][job]] for job in jobs})
        try:
            self.prom = PrometheusServer(
                targets=targets, rule_files=sorted(str(p) for p in (tmp / "alerts/rules").glob("*.yaml")),
                alertmanager=self.am.address, evaluation_interval="1s")
        except BaseException:
            self.am.close()
            raise

    def pages(self) -> dict[str, dict[str, Any]]:
        """dedup_key -> the first trigger of that PagerDuty incident."""
        out: dict[str, dict[str, Any]] = {}
        for event in self.recorder.bodies("/pagerduty", self.started):
            if event["event_action"] == "trigger":
                out.setdefault(event["dedup_key"], event)
        return out

    def page_for(self, alertname: str) -> list[dict[str, Any]]:
        return [e for e in self.pages().values() if e["payload"]["custom_details"]["alertname"] == alertname]

    def am_alerts(self, alertname: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.am.url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'},
                             timeout=5)
        return response.json()

    def settle(self, *alertnames: str) -> None:
        """Wait until every named alert reached Alertmanager, then until two more Watchdog heartbeats
        arrived: proof that more than a group_interval passed for everything it held."""
        for name in alertnames:
            wait_for(lambda n=name: self.am_alerts(n), TIMEOUT, 0.25, what=f"{name} in Alertmanager")
        mark = time.monotonic()
        wait_for(lambda: len(self.recorder.bodies("/deadman", mark)) >= 2, TIMEOUT, 0.25,
                 what="two Watchdog heartbeats")

    def close(self) -> None:
        self.prom.close()
        self.am.close()


def _wait(predicate: Any, what: str) -> Any:
    return wait_for(predicate, TIMEOUT, 0.25, what=what)


def _everything_mentions(recorder: NotificationSink, since: float, text: str) -> bool:
    return any(text in json.dumps(b) for path in ("/pagerduty", "/slack") for b in recorder.bodies(path, since))


def test_single_failing_tenant_pages_once_trickle_and_unassigned_never(world: dict[str, Any]) -> None:
    mix = {f"steady{i:03d}": (1.0, 0.0) for i in range(100)}  # acme + globex: 11% of all traffic
    mix.update({"acme": (10.0, 0.5), "tiny": (0.05, 1.0), "_unassigned": (5.0, 1.0), "globex": (2.0, 0.07)})
    world["traffic"].set(mix)
    scenario = Scenario(world, ("postgres",))
    try:
        page = _wait(lambda: scenario.page_for("TenantAvailabilityBudgetBurn"), "burn-rate page for acme")[0]
        _wait(lambda: [m for m in world["mailbox"].messages if "globex" in m.get_body(("html",)).get_content()],
              "warning email naming globex")
        scenario.settle("UnattributedRequestsFailing", "TenantErrorRatioHigh")
        pages = scenario.pages()
        assert len(pages) == 1, [e["payload"]["summary"] for e in pages.values()]
        details = page["payload"]["custom_details"]
        assert page["payload"]["severity"] == "critical"
        assert details["tenants_affected"] == "1 tenant(s): acme"
        assert details["dashboard_url"] == f"{GRAFANA}/d/obs-slo-budget?var-tenant_id=acme"
        assert details["runbook_url"] == f"{RUNBOOKS}#tenantavailabilitybudgetburn"
        # the trickle tenant and unattributed traffic fail 100% and never reach a tenant alert
        assert prom_value(scenario.prom, 'tenant:http_request_errors:ratio_rate5m{tenant_id="tiny"}') == 1.0
        assert not _everything_mentions(scenario.recorder, scenario.started, "tiny")
        unassigned = [a for a in scenario.am_alerts("UnattributedRequestsFailing")]
        assert [a["labels"]["severity"] for a in unassigned] == ["warning"]
        assert [e["payload"]["custom_details"]["tenant_id"] for e in pages.values()] == ["acme"]
        # the warning email went through a real SMTP session
        mail = next(m for m in world["mailbox"].messages if "globex" in m.get_body(("html",)).get_content())
        assert mail["To"] == "oncall@platform.test" and mail["From"] == "alertmanager@platform.test"
        assert "(warning)" in mail["Subject"]
    finally:
        scenario.close()


def prom_value(prom: PrometheusServer, expr: str) -> float:
    result = prom.wait_query(expr, timeout=TIMEOUT)
    return round(float(result[0]["value"][1]), 6)


def test_shared_cause_across_500_tenants_pages_at_most_three_times(world: dict[str, Any]) -> None:
    world["traffic"].set({f"tenant{i:03d}": (1.0, 0.5) for i in range(500)})
    world["pg"].stop()
    scenario = Scenario(world, ("postgres",))
    try:
        postgres = _wait(lambda: scenario.page_for("PostgresDown"), "PostgresDown page")[0]
        platform = _wait(lambda: scenario.page_for("ApiErrorsAcrossTenants"), "ApiErrorsAcrossTenants page")[0]
        # the 500 tenants' own alerts reached Alertmanager and are held back there
        burns = _wait(lambda: [a for a in scenario.am_alerts("TenantAvailabilityBudgetBurn")
                               if a["labels"]["severity"] == "critical"
                               ] if len(scenario.am_alerts("TenantAvailabilityBudgetBurn")) >= 500 else None,
                      "500 tenants' burn-rate alerts in Alertmanager")
        scenario.settle("TenantErrorRatioHigh", "TenantAvailabilityBudgetBurn")
        pages = scenario.pages()
        page_posts = [e for e in scenario.recorder.bodies("/pagerduty", scenario.started)
                      if e["event_action"] == "trigger"]
        print(f"shared cause: {len(pages)} pages ({len(page_posts)} trigger posts) for 500 tenants")
        assert len(pages) <= 3, sorted(e["payload"]["summary"] for e in pages.values())
        assert {"PostgresDown", "ApiErrorsAcrossTenants"} <= {
            e["payload"]["custom_details"]["alertname"] for e in pages.values()}
        suppressed = [a for a in burns if a["status"]["state"] == "suppressed"]
        assert len(suppressed) >= 450, f"only {len(suppressed)} of {len(burns)} inhibited"
        assert postgres["payload"]["custom_details"]["tenants_affected"] == "all tenants on main"
        affected = platform["payload"]["custom_details"]["tenants_affected"]
        assert affected.startswith("500 tenants above 5% 5xx; top: "), affected
        assert len(affected.split("top: ")[1].split(", ")) == 5
    finally:
        scenario.close()
        world["pg"].start()


def test_temporal_down_pages_once_and_watchdog_reaches_its_receiver(world: dict[str, Any]) -> None:
    world["traffic"].set({f"steady{i:02d}": (1.0, 0.0) for i in range(5)})
    scenario = Scenario(world, ("postgres", "temporal"))
    try:
        scenario.prom.wait_query('temporal_up{server="main"} == 1', timeout=TIMEOUT)
        heartbeat = _wait(lambda: scenario.recorder.bodies("/deadman", scenario.started), "Watchdog heartbeat")[0]
        assert heartbeat["attachments"][0]["title"] == "Watchdog"
        world["temporal"].stop()
        page = _wait(lambda: scenario.page_for("TemporalDown"), "TemporalDown page")[0]
        assert page["routing_key"] == ROUTING_KEY
        assert page["payload"]["summary"] == "TemporalDown [tenant _shared]: Temporal main is unreachable (all tenants)"
        scenario.settle("TemporalDown")
        assert [e["payload"]["custom_details"]["alertname"] for e in scenario.pages().values()] == ["TemporalDown"]
        slack = [m for m in scenario.recorder.bodies("/slack", scenario.started)
                 if "TemporalDown" in m["attachments"][0]["title"]]
        assert slack[0]["channel"] == "#alerts-critical"
        assert "*Tenants affected:* all tenants on main" in slack[0]["attachments"][0]["text"]
    finally:
        scenario.close()


def test_every_generated_rule_evaluates_without_error(world: dict[str, Any]) -> None:
    """Prometheus loaded every generated group and evaluated each rule cleanly."""
    scenario = Scenario(world, ("postgres",))
    try:
        def rules() -> list[dict[str, Any]] | None:
            body = httpx.get(f"{scenario.prom.url}/api/v1/rules", timeout=10).json()
            found = [r for g in body["data"]["groups"] for r in g["rules"]]
            return found if found and all(r.get("lastEvaluation", "").startswith("2") and
                                          not r["lastEvaluation"].startswith("0001") for r in found) else None

        found = _wait(rules, "every rule evaluated once")
        expected = sum(1 for p, t in alerts.render(world["cfg"]).items() if p.startswith("alerts/rules/")
                       for g in yaml.safe_load(t)["groups"] for _ in g["rules"])
        assert len(found) == expected
        assert [(r["name"], r.get("lastError")) for r in found if r["health"] != "ok"] == []
    finally:
        scenario.close()


def test_generated_files_on_disk(world: dict[str, Any]) -> None:
    am = yaml.safe_load(Path(world["tmp"] / "alerts/alertmanager.yml").read_text())
    email_cfg = next(r for r in am["receivers"] if r["name"] == "warning-email-slack")["email_configs"][0]
    assert email_cfg["smarthost"] == world['mailbox'].smarthost and "auth_password" not in email_cfg
