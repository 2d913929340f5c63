"""Throwaway PostgreSQL: a primary from initdb, and a streaming standby cloned from it."""

from __future__ import annotations

import glob
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from obsbundle.services.process import Service, as_service_user, port_open, wait_for


def pg_bindir() -> str:
    """The newest installed server's bin directory (Debian keeps them out of PATH)."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    if not dirs:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return dirs[-1]


class PostgresServer(Service):
    """initdb + postgres as the service user, TCP on 127.0.0.1 only, pg_stat_statements preloaded."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self._allocate("obsbundle-pg-", owned=True)
        self.datadir = self.workdir / "data"
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.workdir),
            "shared_preload_libraries": "pg_stat_statements",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            "track_io_timing": "on",
            **(settings or {}),
        }
        bindir = pg_bindir()
        self.postgres = f"{bindir}/postgres"
        subprocess.run(
            as_service_user([f"{bindir}/initdb", "-D", str(self.datadir), "-U", "postgres",
                             "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]),
            check=True, capture_output=True,
        )
        self.start()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        args = [self.postgres, "-D", str(self.datadir)]
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        self.proc = self._popen(as_service_user(args))
        self._wait_listening("postgres")
        wait_for(self._accepting, 30, what="postgres to accept queries")

    def _accepting(self) -> bool:
        import psycopg

        with psycopg.connect(self.dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def stop(self) -> None:
        # SIGINT = fast shutdown; the runuser wrapper forwards signals to the process group.
        if self.proc is None:
            return
        self._stop_with(signal.SIGINT, 20)
        wait_for(lambda: not port_open(self.port), 10, what="postgres port to close")

    def execute(self, sql: str, params: Iterable[Any] | None = None, dbname: str = "postgres") -> list[tuple]:
        import psycopg

        dsn = self.dsn.rsplit("/", 1)[0] + f"/{dbname}"
        with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []


class ReplicaServer(PostgresServer):
    """A streaming standby of `primary`, cloned with pg_basebackup -R (hot standby, read-only)."""

    def __init__(self, primary: PostgresServer) -> None:
        self._allocate("obsbundle-pg-replica-", owned=True)
        self.datadir = self.workdir / "data"
        self.settings = {**primary.settings, "port": str(self.port), "unix_socket_directories": str(self.workdir)}
        bindir = Path(primary.postgres).parent
        self.postgres = primary.postgres
        subprocess.run(
            as_service_user([str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                             "-U", "postgres", "-D", str(self.datadir), "-R", "-X", "stream", "--no-sync",
                             "--checkpoint=fast"]),
            check=True, capture_output=True,
        )
        self.start()
