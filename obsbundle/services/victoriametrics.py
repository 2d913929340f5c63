"""Throwaway distributed-store services for the scale-out test: VictoriaMetrics (single node:
remote-write receiver and Prometheus query API), vmalert, and Prometheus in agent mode running a
given (generated shard) config. Debian package `victoria-metrics` ships the first two."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from obsbundle.services.process import Service, which
from obsbundle.services.prometheus import PrometheusAPI


class VictoriaMetricsServer(Service, PrometheusAPI):
    """victoria-metrics on a free port, queried through PrometheusAPI (the same HTTP API). Recent
    samples are visible at once (no latency offset, no response cache) so tests see what arrived."""

    def __init__(self, retention: str = "1d") -> None:
        self.retention = retention  # samples older than this are refused (a benchmark imports a month)
        self._allocate("obsbundle-vm-")
        self.start()

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def import_text(self, path: Path) -> None:
        """Bulk-import a Prometheus text file whose samples carry millisecond timestamps, then flush
        so every sample is searchable."""
        with path.open("rb") as body:
            httpx.post(f"{self.url}/api/v1/import/prometheus", content=body, timeout=1800).raise_for_status()
        httpx.get(f"{self.url}/internal/force_flush", timeout=60).raise_for_status()

    def start(self) -> None:
        self.proc = self._popen([
            which("victoria-metrics", "/usr/bin"),
            f"-storageDataPath={self.workdir / 'data'}",
            f"-httpListenAddr={self.address}",
            f"-retentionPeriod={self.retention}",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ])
        self._wait_http("/health", "victoria-metrics")


class PrometheusAgent(Service):
    """`prometheus --enable-feature=agent` running the given config (e.g. a generated shard file)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._allocate("obsbundle-agent-")
        (self.workdir / "agent.yml").write_text(yaml.safe_dump(dict(config)))
        self.start()

    def start(self) -> None:
        self.proc = self._popen([
            which("prometheus"), "--enable-feature=agent",
            f"--config.file={self.workdir / 'agent.yml'}",
            f"--storage.agent.path={self.workdir / 'wal'}",
            f"--web.listen-address={self.address}",
            "--log.level=warn",
        ])
        self._wait_http("/-/ready", "prometheus agent")

    def active_targets(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]


class VmalertServer(Service):
    """vmalert evaluating rule files against a store, writing recording rules and alert state
    back to it, and notifying an Alertmanager."""

    def __init__(self, rule_files: Iterable[str | Path], datasource_url: str, alertmanager_url: str,
                 evaluation_interval: str = "1s") -> None:
        self._allocate("obsbundle-vmalert-")
        self.rule_files = [str(Path(f).resolve()) for f in rule_files]
        self.datasource_url = datasource_url
        self.alertmanager_url = alertmanager_url
        self.evaluation_interval = evaluation_interval
        self.start()

    def start(self) -> None:
        self.proc = self._popen([
            which("vmalert", "/usr/bin"),
            *(f"-rule={f}" for f in self.rule_files),
            f"-datasource.url={self.datasource_url}",
            f"-remoteWrite.url={self.datasource_url}",
            f"-remoteRead.url={self.datasource_url}",
            f"-notifier.url={self.alertmanager_url}",
            f"-evaluationInterval={self.evaluation_interval}",
            f"-httpListenAddr={self.address}",
            "-remoteWrite.flushInterval=1s",
            "-loggerLevel=ERROR",
        ])
        self._wait_http("/health", "vmalert")

    def rules(self) -> list[dict[str, Any]]:
        """Every alerting and recording rule vmalert evaluates, with `health` and `lastError`."""
        groups = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return [r for g in groups for r in g.get("rules", [])]
