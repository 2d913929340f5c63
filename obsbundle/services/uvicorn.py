"""ASGI apps under uvicorn on a free loopback port: in a child process (`UvicornService`, the app
by import path) or in a daemon thread of this process (`UvicornThread`, an app object)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from obsbundle.services.process import Loopback, Service, free_port, wait_for, which


class UvicornService(Service):
    """An ASGI app (`module:attr`) under uvicorn in its own process, on a free loopback port."""

    def __init__(self, target: str, env: dict[str, str] | None = None, cwd: str | Path | None = None) -> None:
        self.target = target
        self._allocate("obsbundle-app-")
        self.env = {**os.environ, **(env or {})}
        self.cwd = str(cwd) if cwd else None
        self.start()

    def start(self) -> None:
        self.proc = self._popen(
            [which("uvicorn"), self.target, "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"],
            env=self.env, cwd=self.cwd,
        )
        self._wait_listening(f"uvicorn {self.target}", 60)


class UvicornThread(Loopback):
    """An ASGI app served by uvicorn from a daemon thread on a free loopback port (the test can
    reach into the app's own objects, e.g. its OpenTelemetry provider)."""

    def __init__(self, app: Any) -> None:
        import uvicorn  # the `demo` extra

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 30, what="uvicorn started")

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
