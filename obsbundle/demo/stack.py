"""`obsbundle demo`: the whole bundle on loopback, three seeded tenants and seeded incidents.

PostgreSQL, Redis and Temporal (seeded), the obsbundle exporters, node_exporter, the example API
under load with OTLP traces and JSON logs, Temporal workers, Prometheus with the generated rules,
Alertmanager with the generated routing and a loopback sink for every receiver. Every process it
starts is stopped on exit, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from obsbundle import config as config_mod
from obsbundle.demo import incidents as inc
from obsbundle.demo.alerting import demo_config, write_alerting_files
from obsbundle.demo.guide import print_guide, print_table
from obsbundle.demo.seed import TENANTS, namespace, seed_postgres, seed_redis, seed_temporal
from obsbundle.otlp_receiver import OTLPReceiver
from obsbundle.services import (
    AlertmanagerServer,
    ExporterProcess,
    NodeExporter,
    Notification,
    NotificationSink,
    PostgresServer,
    PrometheusServer,
    RedisServer,
    TemporalServer,
    UvicornService,
    wait_for,
)
from obsbundle.services.notification_sink import describe

ROOT = Path.cwd()


def sources(pg: PostgresServer, redis_url: str, temporal: str) -> dict[str, Any]:
    return {
        "postgres": [{
            "name": "main", "dsn": pg.dsn,
            "custom_queries": [{
                "name": "training_jobs",
                "sql": "SELECT tenant_id, count(*) AS queued FROM public.training_jobs "
                       "WHERE state = 'queued' GROUP BY tenant_id",
                "metrics": [{"column": "queued", "name": "queued", "help": "Training jobs queued per tenant."}],
            }],
        }],
        "redis": [{"name": "cache", "url": redis_url, "scan": {"interval": "5s"}}],
        "temporal": [{"name": "main", "address": temporal, "refresh_interval": "5s"}],
    }


class Stack:
    """Everything started so far, closed in reverse order."""

    def __init__(self) -> None:
        self.closers: list[Callable[[], None]] = []
        self.lock = threading.Lock()

    def add(self, thing: Any) -> Any:
        self.on_close(thing.close)
        return thing

    def on_close(self, close: Callable[[], None]) -> None:
        with self.lock:
            self.closers.append(close)

    def close(self) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()
        self.closers.clear()


def _parallel(*steps: Callable[[], Any]) -> list[Any]:
    """Run independent start-up steps side by side (most of their time is waiting on readiness)."""
    with ThreadPoolExecutor(len(steps)) as pool:
        futures = [pool.submit(step) for step in steps]
    return [f.result() for f in futures]


def _started(stack: Stack, *factories: Callable[[], Any]) -> list[Any]:
    """Start independent services side by side; each joins `stack` as soon as it is up."""
    return _parallel(*(lambda f=f: stack.add(f()) for f in factories))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(base_config: dict[str, Any], args: argparse.Namespace) -> int:
    duration = config_mod.parse_duration(args.duration) if args.duration else None
    active = list(dict.fromkeys(args.incident or inc.DEFAULT))
    stack = Stack()
    workdir = Path(tempfile.mkdtemp(prefix="obsbundle-demo-"))
    notes: queue.Queue[Notification] = queue.Queue()
    try:
        with _sigterm_as_interrupt():
            return _run(base_config, duration, active, stack, workdir, notes)
    except KeyboardInterrupt:
        return 0
    finally:
        print("\nstopping every process the demo started ...", flush=True)
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _run(base_config: dict[str, Any], duration: float | None, active: list[str], stack: Stack, workdir: Path,
         notes: queue.Queue[Notification]) -> int:
    began = time.monotonic()
    tenants = list(TENANTS)
    print(f"incidents: {', '.join(active)}", flush=True)
    print("starting PostgreSQL, Redis and Temporal on loopback ...", flush=True)
    pg, redis_server, temporal = _started(
        stack, PostgresServer, RedisServer, lambda: TemporalServer([namespace(t) for t in tenants]))
    print(f"  postgres              {pg.address}  (psql {pg.dsn})")
    print(f"  redis                 {redis_server.address}")
    print(f"  temporal              {temporal.address}  (namespaces {', '.join(namespace(t) for t in tenants)})")
    print(f"seeding tenants {', '.join(tenants)} ...", flush=True)
    _parallel(lambda: seed_postgres(pg), lambda: seed_redis(redis_server.url),
              lambda: seed_temporal(temporal.address))

    sink = stack.add(NotificationSink(notes.put))
    cfg = {k: v for k, v in base_config.items() if k != "sources"}
    cfg["sources"] = sources(pg, redis_server.url, temporal.address)
    cfg = demo_config(cfg, sink, workdir)
    am_file, rules = write_alerting_files(cfg, workdir)
    am = stack.add(AlertmanagerServer(am_file))

    from obsbundle.demo.workers import DemoWorkers

    workers = stack.add(DemoWorkers(temporal.address, cfg, inc.tenants_with_workers(tenants, active)))
    targets: dict[str, list[str]] = {"worker": [workers.metrics_address]}
    kinds = [k for k in ("postgres", "redis", "temporal") if importlib.util.find_spec(f"exporters.{k}")]
    exporter_cfg = {k: v for k, v in cfg.items() if k != "alerting"}
    exporters = _started(stack, *(lambda k=k: ExporterProcess(k, exporter_cfg) for k in kinds))
    for kind, exporter in zip(kinds, exporters, strict=True):
        targets[kind] = [exporter.address]
        print(f"  exporter {kind:<9}    http://{exporter.address}/metrics")
    node = stack.add(NodeExporter())
    targets["node"] = [node.address]
    print(f"  node_exporter         {node.metrics_url}")
    extras = _start_app(stack, targets, cfg, workdir, inc.traffic_profiles(tenants, active))

    prometheus = stack.add(PrometheusServer(targets, rule_files=[str(r) for r in rules], alertmanager=am.address,
                                            scrape_interval="2s", evaluation_interval="2s"))
    print(f"  prometheus            {prometheus.url}  ({len(rules)} rule files loaded)")
    print(f"  alertmanager          {am.url}")
    print(f"  notification sink     {sink.url} (Slack, PagerDuty, dead man's switch), smtp://{sink.smarthost}")
    if "pg-idle-transactions" in active:
        for session in inc.hold_idle_transactions(pg.dsn, inc.INCIDENTS["pg-idle-transactions"].tenant or ""):
            stack.add(session)
    if "postgres-down" in active:
        def stop_postgres() -> None:
            print("\n*** incident postgres-down: stopping PostgreSQL now\n", flush=True)
            pg.stop()

        stack.on_close(inc.later(inc.POSTGRES_DOWN_AFTER, stop_postgres).cancel)

    wait_for(prometheus.targets_up, 90, 0.5, what="every scrape target up")
    wait_for(lambda: prometheus.query("redis_tenant_keys"), 60, 0.5, what="first keyspace pass")
    if "app" in targets:
        prometheus.wait_query('sum(rate(http_server_requests_total{tenant_id!~"_.*"}[1m])) > 0', timeout=60)
    print(f"\nper-tenant figures, read back through Prometheus ({time.monotonic() - began:.0f} s after start):\n")
    print_table(prometheus)
    receiver = extras.get("otlp")
    if receiver is not None:
        spans = {t: len(receiver.spans(tenant_id=t)) for t in tenants}
        print("\nOTLP spans received so far: " + ", ".join(f"{t} {n}" for t, n in spans.items()))
    urls = {"prometheus": prometheus.url, "alertmanager": am.url, "grafana": cfg["dashboards"]["grafana_url"],
            "datasource_uid": cfg["dashboards"]["datasource_uid"]}
    print_guide(urls, active, ROOT, extras)
    print("\nnotifications (as they arrive):", flush=True)
    return _follow(notes, began, duration)


def _follow(notes: queue.Queue[Notification], began: float, duration: float | None) -> int:
    """Print each notification as it arrives, until `duration` or Ctrl-C."""
    counts: dict[str, int] = {}
    until = None if duration is None else time.monotonic() + duration
    if until is None:
        print("running; press Ctrl-C to stop and remove everything.", flush=True)
    try:
        while until is None or time.monotonic() < until:
            try:
                note = notes.get(timeout=0.5)
            except queue.Empty:
                continue
            channel = note.channel.split()[0]
            counts[channel] = counts.get(channel, 0) + 1
            print(describe(note, began), flush=True)
    finally:
        print("\nnotifications received: " + (", ".join(f"{n} {c}" for c, n in counts.items()) or "none"),
              flush=True)
    return 0


def _start_app(stack: Stack, targets: dict[str, list[str]], cfg: dict[str, Any], workdir: Path,
               profiles: dict[str, inc.Profile]) -> dict[str, Any]:
    """The example agent API (OTLP traces to a loopback receiver, JSON logs) under steady load."""
    if not (ROOT / "examples" / "agent_api.py").exists():
        print("  (examples/ not found: run the demo from a source checkout to include the API)")
        return {}
    sys.path.insert(0, str(ROOT))
    from examples import load

    receiver = stack.add(OTLPReceiver())
    app_cfg = {**cfg, "app": {**cfg.get("app", {}), "otlp": {"endpoint": receiver.http_endpoint},
                              "logs": {"format": "json", "access_log": True}}}
    app_cfg.pop("alerting", None)
    config_file = workdir / "app.yaml"
    config_file.write_text(yaml.safe_dump(app_cfg))
    app = stack.add(UvicornService("examples.agent_api:app", env={"OBSBUNDLE_CONFIG": str(config_file)}, cwd=ROOT))
    targets["app"] = [app.address]
    print(f"  example agent API     {app.url}  (metrics on /metrics, OTLP to {receiver.http_endpoint})")
    # The load runs until the demo exits (daemon thread).
    threading.Thread(target=lambda: asyncio.run(load.run(app.url, 7 * 86400, profiles=profiles)), daemon=True,
                     name="load").start()
    probe_cfg = {**cfg, "sources": {"probes": [{"name": "agent-api-health", "url": f"{app.url}/healthz",
                                                "interval": "5s"}]}}
    probe_cfg.pop("alerting", None)
    probes = stack.add(ExporterProcess("probes", probe_cfg))
    targets["probes"] = [probes.address]
    print(f"  exporter probes       http://{probes.address}/metrics")
    return {"otlp": receiver, "app_log": app.workdir / "service.log"}
