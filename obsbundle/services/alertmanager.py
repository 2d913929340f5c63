"""Throwaway Alertmanager, with the bits of its v2 API the end-to-end tests drive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from obsbundle.services.process import Service, free_port, which


class AlertmanagerServer(Service):
    def __init__(self, config_file: str | Path) -> None:
        self._allocate("obsbundle-am-")
        self.cluster_port = free_port()
        self.config_file = Path(config_file)
        self.start()

    def start(self) -> None:
        self.proc = self._popen([
            which("prometheus-alertmanager", "/usr/bin"),
            f"--config.file={self.config_file}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ])
        self._wait_http("/-/ready", "alertmanager")

    def alerts(self, *matchers: str) -> list[dict[str, Any]]:
        """Every alert it holds (active, inhibited, silenced) matching all `matchers` (`name="value"`)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=[("filter", m) for m in matchers], timeout=5)
        response.raise_for_status()
        return response.json()

    def post_alert(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        """Inject one firing alert, as Prometheus would send it."""
        response = httpx.post(f"{self.url}/api/v2/alerts",
                              json=[{"labels": labels, "annotations": annotations or {}}], timeout=5)
        response.raise_for_status()
