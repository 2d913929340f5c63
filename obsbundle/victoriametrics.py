"""Throwaway distributed-store services for the scale-out test and benchmarks: VictoriaMetrics
(single-node, remote-write receiver and Prometheus query API), vmalert, and Prometheus in agent
mode running a generated shard config. Same lifecycle as obsbundle.local_services."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from obsbundle.local_services import PrometheusServer, Service, free_port, wait_for, which


class VictoriaMetricsServer(PrometheusServer):
    """victoria-metrics on a free port; the query helpers are PrometheusServer's (same HTTP API).
    Recent samples are visible at once (no latency offset, no response cache) so tests see what
    just arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-vm-"))
        self.start()

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def start(self) -> None:
        self.proc = self._popen([
            which("victoria-metrics", "/usr/bin"),
            f"-storageDataPath={self.workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=1d",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ])
        wait_for(lambda: httpx.get(f"{self.url}/health", timeout=1).status_code == 200, 30,
                 what="victoria-metrics healthy")

    def flush(self) -> None:
        """Make samples written so far searchable now (VictoriaMetrics buffers for about a second)."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10)

    def metrics_text(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text


class PrometheusAgent(Service):
    """`prometheus --enable-feature=agent` running a given config (e.g. a generated shard)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-agent-"))
        (self.workdir / "agent.yml").write_text(yaml.safe_dump(dict(config)))
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = self._popen([
            which("prometheus"), "--enable-feature=agent",
            f"--config.file={self.workdir / 'agent.yml'}",
            f"--storage.agent.path={self.workdir / 'wal'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ])
        wait_for(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200, 30,
                 what="prometheus agent ready")

    def active_targets(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]


class VmalertServer(Service):
    """vmalert evaluating rule files against a store, writing recording rules and alert state back,
    and notifying an Alertmanager."""

    def __init__(self, rule_files: Iterable[str | Path], datasource_url: str, alertmanager_url: str,
                 evaluation_interval: str = "1s", external_labels: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-vmalert-"))
        self.rule_files = [str(Path(f).resolve()) for f in rule_files]
        self.datasource_url = datasource_url
        self.alertmanager_url = alertmanager_url
        self.evaluation_interval = evaluation_interval
        self.external_labels = dict(external_labels or {})
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [
            which("vmalert", "/usr/bin"),
            *(f"-rule={f}" for f in self.rule_files),
            f"-datasource.url={self.datasource_url}",
            f"-remoteWrite.url={self.datasource_url}",
            f"-remoteRead.url={self.datasource_url}",
            f"-notifier.url={self.alertmanager_url}",
            f"-evaluationInterval={self.evaluation_interval}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-remoteWrite.flushInterval=1s",
            "-loggerLevel=ERROR",
            *(f"-external.label={k}={v}" for k, v in self.external_labels.items()),
        ]
        self.proc = self._popen(cmd)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"vmalert exited {self.proc.returncode}: {self.log_text()[-3000:]}")
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200

        wait_for(ready, 30, what="vmalert healthy")

    def groups(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]

    def rules(self) -> list[dict[str, Any]]:
        """Every alerting and recording rule vmalert evaluates, with its `lastError`."""
        return [r for g in self.groups() for r in g.get("rules", [])]
