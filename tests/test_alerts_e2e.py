"""End to end with real binaries on loopback: the generated rules in Prometheus (for_scale 0.01),
the generated alertmanager.yml in Alertmanager, Slack and PagerDuty pointed at a recording HTTP
server. Sources: the real obsbundle Redis exporter scraping a real Redis we stop and start, and
the example agent API (`examples/agent_api.py`, instrumented by collectors.app) driven with
per-tenant error mixes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import redis as redis_py
import yaml

import generators.alerts as alerts
from examples.agent_api import create_app
from obsbundle import config as obsconfig
from obsbundle.services import (
    AlertmanagerServer,
    ExporterProcess,
    PrometheusServer,
    RedisServer,
    UvicornThread,
    wait_for,
)

ROUTING_KEY = "e2e-routing-key-0123456789"
RUNBOOKS = "https://runbooks.example/docs/runbooks.md"
GRAFANA = "https://grafana.example/d"
# tenant -> (500s, requests) per round: every window of two or more rounds keeps acme above the 10%
# critical threshold and umbrella/globex between the 5% warning and it (1/16 = 6.25%, at most 9.4%)
ERROR_MIX = {"acme": (1, 2), "umbrella": (1, 16), "globex": (1, 16), "initech": (0, 2)}
SEEDED_KEYS = {"acme": 3, "globex": 2}
PREMIUM = {"umbrella": {"page": True, "slack_channel": "#umbrella-oncall"}}
TIMEOUT = 60


class Recorder:
    """A loopback HTTP server standing in for Slack and PagerDuty: it records every JSON POST."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder.lock:
                    recorder.requests.append((self.path, json.loads(body)))
                reply = b'{"status":"success"}' if self.path.startswith("/pagerduty") else b"ok"
                self.send_response(202 if self.path.startswith("/pagerduty") else 200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def slack(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for path, body in self.requests if path == "/slack"]

    def pagerduty(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for path, body in self.requests if path == "/pagerduty"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Traffic:
    """Keeps requests flowing through the example API for each tenant at its error share."""

    def __init__(self, base_url: str) -> None:
        self.stop = threading.Event()
        self.base = base_url
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self.stop.is_set():
                for tenant, (errors, requests) in ERROR_MIX.items():
                    for i in range(requests):
                        status = 500 if i < errors else 200
                        client.get(f"/v1/echo?status={status}", headers={"X-Tenant-ID": tenant})
                time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("alerts-e2e")
    recorder = Recorder()
    (tmp / "slack_url").write_text(f"{recorder.url}/slack\n")
    (tmp / "pd_key").write_text(ROUTING_KEY + "\n")
    redis = RedisServer()
    with redis_py.Redis.from_url(redis.url) as client:  # seeded: two tenants' keys
        client.mset({f"tenant:{t}:session:{i}": "x" for t, n in SEEDED_KEYS.items() for i in range(n)})
    user_config = {
        "sources": {"redis": [{"name": "cache", "url": redis.url}]},
        "alerting": {
            "for_scale": 0.01, "group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h",
            "runbook_base_url": RUNBOOKS, "dashboard_base_url": GRAFANA,
            "slack": {"api_url_file": str(tmp / "slack_url")},
            "pagerduty": {"routing_key_file": str(tmp / "pd_key"), "url": f"{recorder.url}/pagerduty"},
            "tenants": PREMIUM,
        },
    }
    cfg = obsconfig.parse(yaml.safe_dump(user_config))
    files = alerts.render(cfg)
    for path, text in files.items():
        if path.startswith("alerts/"):
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / path).write_text(text)
    services: list[Any] = [redis]
    otel = None
    traffic = None
    try:
        exporter = ExporterProcess("redis", user_config)
        services.append(exporter)
        app, otel = create_app()
        api = UvicornThread(app)
        traffic = Traffic(api.url)
        am = AlertmanagerServer(tmp / "alerts/alertmanager.yml")
        services.append(am)
        prom = PrometheusServer(
            targets={"redis": [exporter.address], "agent-api": [api.address]},
            rule_files=sorted(str(p) for p in (tmp / "alerts/rules").glob("*.yaml")),
            alertmanager=am.address, evaluation_interval="1s",
        )
        services.append(prom)
        wait_for(prom.targets_up, TIMEOUT, 0.5, what="prometheus targets up")
        yield {"redis": redis, "prom": prom, "am": am, "recorder": recorder, "cfg": cfg, "api": api}
    finally:
        if traffic:
            traffic.close()
        for service in reversed(services):
            service.close()
        if otel:
            otel.shutdown()
        recorder.close()


def _wait(predicate: Any, what: str) -> Any:
    return wait_for(predicate, TIMEOUT, 0.25, what=what)


def _am_alerts(am: AlertmanagerServer, alertname: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{am.url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}, timeout=5)
    return response.json()


def _pd_events(recorder: Recorder, alertname: str, action: str) -> list[dict[str, Any]]:
    return [e for e in recorder.pagerduty()
            if e["event_action"] == action and e["payload"]["custom_details"]["alertname"] == alertname]


def _slack_messages(recorder: Recorder, alertname: str, status: str) -> list[dict[str, Any]]:
    return [m for m in recorder.slack()
            if any(f"] {alertname}" in a["title"] and a["title"].startswith(f"[{status}") for a in m["attachments"])]


def test_redis_down_pages_and_slacks_then_resolves(stack: dict[str, Any]) -> None:
    redis, prom, recorder = stack["redis"], stack["prom"], stack["recorder"]
    prom.wait_query('redis_up{server="cache",tenant_id="_shared"} == 1', timeout=TIMEOUT)
    keys = prom.wait_query('redis_tenant_keys{server="cache"} > 0', lambda r: len(r) >= 2, timeout=TIMEOUT)
    assert {r["metric"]["tenant_id"]: float(r["value"][1]) for r in keys} == SEEDED_KEYS
    assert _pd_events(recorder, "RedisDown", "trigger") == []

    redis.stop()
    trigger = _wait(lambda: _pd_events(recorder, "RedisDown", "trigger"), "PagerDuty trigger for RedisDown")[0]
    assert trigger["routing_key"] == ROUTING_KEY  # read from routing_key_file
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"] == (
        "RedisDown [tenant _shared]: Redis cache is down (all tenants)")
    details = trigger["payload"]["custom_details"]
    assert details["tenant_id"] == "_shared"
    assert details["severity"] == "critical"
    assert details["runbook_url"] == f"{RUNBOOKS}#redisdown"
    assert details["dashboard_url"] == f"{GRAFANA}/obs-redis"
    assert {link["text"]: link["href"] for link in trigger["links"]} == {
        "Runbook": f"{RUNBOOKS}#redisdown", "Dashboard": f"{GRAFANA}/obs-redis"}

    slack = _wait(lambda: _slack_messages(recorder, "RedisDown", "FIRING"), "Slack message for RedisDown")[0]
    assert slack["channel"] == "#alerts"
    attachment = slack["attachments"][0]
    assert attachment["title"] == "[FIRING:1] RedisDown | tenant _shared (critical)"
    assert attachment["title_link"] == f"{GRAFANA}/obs-redis"
    assert attachment["color"] == "danger"
    text = attachment["text"]
    assert "*Severity:* critical | *Tenant:* _shared" in text
    assert f"*Runbook:* {RUNBOOKS}#redisdown" in text
    assert f"*Dashboard:* {GRAFANA}/obs-redis\n" in text
    assert {a["text"]: a["url"] for a in attachment["actions"]} == {
        "Runbook": f"{RUNBOOKS}#redisdown", "Dashboard": f"{GRAFANA}/obs-redis"}

    # the exporter's server collector fails too; Alertmanager holds it back behind RedisDown
    inhibited = _wait(lambda: _am_alerts(stack["am"], "ObsbundleCollectorFailing"), "collector alert in Alertmanager")
    assert inhibited[0]["labels"]["server"] == "cache" and inhibited[0]["labels"]["collector"] == "server"
    assert inhibited[0]["status"]["state"] == "suppressed" and inhibited[0]["status"]["inhibitedBy"]
    # a marker routed like the collector alert but not inhibited, sent after it: once the marker is
    # notified, the collector alert's group (older, same group_wait) has been flushed
    marker = f"E2EMarker{time.monotonic_ns()}"
    stack["am"].post_alert({**inhibited[0]["labels"], "alertname": marker, "server": "e2e-marker"},
                           inhibited[0]["annotations"])
    _wait(lambda: marker in json.dumps(recorder.requests), "notification of a marker sent after the collector alert")
    assert not [m for m in recorder.slack() if "ObsbundleCollectorFailing" in json.dumps(m)]

    redis.start()
    resolve = _wait(lambda: _pd_events(recorder, "RedisDown", "resolve"), "PagerDuty resolve for RedisDown")[0]
    assert resolve["dedup_key"] == trigger["dedup_key"]
    resolved = _wait(lambda: _slack_messages(recorder, "RedisDown", "RESOLVED"), "Slack resolved for RedisDown")
    assert resolved[0]["attachments"][0]["color"] == "good"


def _tenants(events: list[dict[str, Any]]) -> set[str]:
    return {e["payload"]["custom_details"]["tenant_id"] for e in events}


def test_tenant_past_error_threshold_pages_only_for_that_tenant(stack: dict[str, Any]) -> None:
    prom, recorder = stack["prom"], stack["recorder"]
    ratios = prom.wait_query(
        "tenant:http_request_errors:ratio_rate5m",
        lambda r: {x["metric"].get("tenant_id") for x in r} >= set(ERROR_MIX), timeout=TIMEOUT)
    by_tenant = {x["metric"]["tenant_id"]: float(x["value"][1]) for x in ratios}
    assert by_tenant["initech"] == 0.0 and by_tenant["acme"] > 0.1
    assert 0.05 < by_tenant["globex"] < 0.1 and 0.05 < by_tenant["umbrella"] < 0.1
    # the latency recording rules match the app's real bucket labels (le="2.0"): every request is fast
    assert prom.query_by("tenant:http_request_slow:ratio_rate5m") == dict.fromkeys(ERROR_MIX, 0.0)
    p95 = prom.query_by("tenant:http_request_duration_seconds:p95_rate5m")
    assert set(p95) == set(ERROR_MIX) and all(0 < v < 2 for v in p95.values())

    # acme (standard tenant) past the 10% critical: paged, on the default route
    _wait(lambda: "acme" in _tenants(_pd_events(recorder, "TenantErrorRatioHigh", "trigger")), "page for acme")
    page = next(e for e in _pd_events(recorder, "TenantErrorRatioHigh", "trigger")
                if e["payload"]["custom_details"]["tenant_id"] == "acme")
    details = page["payload"]["custom_details"]
    assert page["payload"]["severity"] == "critical"
    assert details["runbook_url"] == f"{RUNBOOKS}#tenanterrorratiohigh"
    assert details["dashboard_url"] == f"{GRAFANA}/obs-application?var-tenant_id=acme"
    assert page["payload"]["summary"] == "TenantErrorRatioHigh [tenant acme]: High 5xx ratio for tenant acme"
    # umbrella (premium: page true, own channel) past the 5% warning: its warning pages too
    _wait(lambda: "umbrella" in _tenants(_pd_events(recorder, "TenantErrorRatioHigh", "trigger")),
          "page for premium tenant umbrella")
    premium = next(e for e in _pd_events(recorder, "TenantErrorRatioHigh", "trigger")
                   if e["payload"]["custom_details"]["tenant_id"] == "umbrella")
    assert premium["payload"]["severity"] == "warning"
    # globex (standard) past the 5% warning: Slack only
    slack = _wait(lambda: [m for m in _slack_messages(recorder, "TenantErrorRatioHigh", "FIRING")
                           if "tenant globex" in m["attachments"][0]["title"]], "Slack warning for globex")
    assert slack[0]["channel"] == "#alerts"
    assert slack[0]["attachments"][0]["title"] == "[FIRING:1] TenantErrorRatioHigh | tenant globex (warning)"
    _wait(lambda: _pd_events(recorder, "TenantAvailabilityBudgetBurn", "trigger"), "burn-rate page for acme")
    # every alert Prometheus fires is in Alertmanager, and a marker sent after them was notified: each
    # of their groups has been flushed, so anything else that would page has arrived
    _wait(lambda: all(a in [x["labels"] for x in stack["am"].alerts()] for a in prom.firing_alerts()),
          "every firing alert in Alertmanager")
    marker = f"E2EMarker{time.monotonic_ns()}"
    stack["am"].post_alert({"alertname": marker, "severity": "warning"})
    _wait(lambda: marker in json.dumps(recorder.requests), "notification of a marker sent after them")

    app_pages = [e for e in recorder.pagerduty() if e["payload"]["custom_details"]["alertname"] != "RedisDown"]
    assert _tenants(app_pages) == {"acme", "umbrella"}
    channels = {(m["attachments"][0]["title"].split(" | tenant ")[1].split(" ")[0], m["channel"])
                for m in _slack_messages(recorder, "TenantErrorRatioHigh", "FIRING")}
    assert channels == {("acme", "#alerts"), ("globex", "#alerts"), ("umbrella", "#umbrella-oncall")}
    assert "initech" not in json.dumps(recorder.requests)
    # the warning under acme's critical is inhibited: Slack only ever shows the critical for acme
    acme_titles = [m["attachments"][0]["title"] for m in _slack_messages(recorder, "TenantErrorRatioHigh", "FIRING")
                   if "tenant acme" in m["attachments"][0]["title"]]
    assert acme_titles == ["[FIRING:1] TenantErrorRatioHigh | tenant acme (critical)"]


def test_every_generated_rule_evaluates_without_error(stack: dict[str, Any]) -> None:
    """Prometheus loaded every generated group and evaluated each rule cleanly (no runtime matching errors)."""
    body = httpx.get(f"{stack['prom'].url}/api/v1/rules", timeout=10).json()
    rules = [r for g in body["data"]["groups"] for r in g["rules"]]
    expected = sum(1 for p, t in alerts.render(stack["cfg"]).items() if p.startswith("alerts/rules/")
                   for g in yaml.safe_load(t)["groups"] for _ in g["rules"])
    assert len(rules) == expected
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
