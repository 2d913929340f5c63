"""Throwaway redis-server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from obsbundle.services.process import Service, free_port, port_open, wait_for, which


class RedisServer(Service):
    """No persistence, loopback only, DEBUG allowed from loopback (tests use DEBUG SLEEP/POPULATE)."""

    def __init__(self, extra_args: Iterable[str] = ()) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-redis-"))
        self.args = [
            which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--enable-debug-command", "local", *extra_args,
        ]
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = self._popen(self.args)
        wait_for(lambda: port_open(self.port), 15, what=f"redis on {self.port}")
