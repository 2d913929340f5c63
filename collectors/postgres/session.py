"""One reusable PostgreSQL connection per collector, bounded by the scrape deadline.

Why not just `statement_timeout`: a server that accepts TCP but never answers (SIGSTOPped, or a
saturated host) never enforces it, and libpq then blocks forever in a read. So every query runs
under a watchdog that shuts the socket down at the deadline; the blocked read returns at once, the
collector reports `timeout`, and the next scrape reconnects. Each collector owns its session, so
concurrent collectors never share a connection (psycopg connections serialise, and a watchdog must
only ever break the query it guards).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from collectors.runtime import CollectorError, error_code
from obsbundle.errors import ConfigError
from obsbundle.secrets import register_secret, register_url_secrets
from obsbundle.settings import PgBouncerSource, PostgresSource

APPLICATION_NAME = "obsbundle-exporter"
_MARGIN = 0.05  # finish just before the runner gives up on us, so the error code is ours

Query = str | sql.SQL | sql.Composed  # what a psycopg cursor executes


@dataclass(frozen=True)
class ConnectionSettings:
    """Parsed, validated connection parameters; `repr` never shows the password."""

    params: dict[str, Any] = field(repr=False)
    connect_timeout: float
    statement_timeout: float
    session_options: bool  # False for PgBouncer's admin console, which rejects `options`

    @classmethod
    def from_source(cls, source: PostgresSource, path: str) -> ConnectionSettings:
        """The server's connection; ConfigError names `path`, never the DSN or password."""
        return cls._parse(source.dsn, source.password_file, path, source, session_options=True)

    @classmethod
    def for_pgbouncer(cls, source: PostgresSource, bouncer: PgBouncerSource, path: str) -> ConnectionSettings:
        """The PgBouncer admin console's connection, under its server's timeouts."""
        return cls._parse(bouncer.dsn, bouncer.password_file, f"{path}.pgbouncer", source, session_options=False)

    @classmethod
    def _parse(
        cls, dsn: str, password_file: str | None, path: str, timeouts: PostgresSource, session_options: bool
    ) -> ConnectionSettings:
        """Validate a DSN (URL or key=value) without ever echoing it."""
        register_url_secrets(dsn)
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            raise ConfigError(f"{path}.dsn: not a valid libpq connection string or URL") from None
        ports = str(params.get("port") or "5432").split(",")
        if not all(p.strip().isdigit() and 0 < int(p) < 65536 for p in ports):
            raise ConfigError(f"{path}.dsn: port must be a number from 1 to 65535")
        if password_file:
            try:
                params["password"] = Path(password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{path}.password_file: cannot read ({exc.strerror})") from None
        password = params.get("password")
        register_secret(None if password is None else str(password))
        if not session_options:
            params.pop("options", None)
        return cls(params, timeouts.connect_timeout, timeouts.statement_timeout, session_options)


class Session:
    """A lazily (re)connected autocommit connection; queries are bounded by a deadline."""

    def __init__(self, settings: ConnectionSettings, simple_protocol: bool = False) -> None:
        self.settings = settings
        self.simple_protocol = simple_protocol
        self._conn: psycopg.Connection[Any] | None = None
        self._timeout_ms: int | None = None

    # -- connection lifecycle --------------------------------------------------------------------

    def _connect(self, deadline: float) -> psycopg.Connection[Any]:
        remaining = deadline - time.monotonic() - _MARGIN
        if remaining <= 0:
            raise CollectorError("timeout")
        params = dict(self.settings.params)
        params["connect_timeout"] = max(1, int(min(self.settings.connect_timeout, remaining)))
        params.setdefault("application_name", APPLICATION_NAME)
        if self.settings.session_options:
            # A read-only session: custom queries run here too, and none of them should write.
            ours = "-c default_transaction_read_only=on -c lock_timeout=1000"
            params["options"] = f"{params['options']} {ours}" if params.get("options") else ours
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.simple_protocol:
            kwargs["cursor_factory"] = psycopg.ClientCursor
            kwargs["prepare_threshold"] = None
        try:
            conn = psycopg.connect(**params, **kwargs)
        except psycopg.OperationalError as exc:
            raise CollectorError(error_code(exc, fallback="connection_failed")) from None
        self._timeout_ms = None
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _usable(self) -> psycopg.Connection[Any] | None:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self.close()
            return None
        return conn

    # -- queries ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def guarded(self, deadline: float) -> Iterator[psycopg.Connection[Any]]:
        """The connection, with a watchdog that breaks it if the block outlives `deadline`.

        A query error leaves the autocommit connection usable; a broken connection is replaced on
        next use; a watchdog break drops it and is reported as `CollectorError("timeout")`.
        """
        fired = threading.Event()
        done = threading.Event()
        lock = threading.Lock()
        holder: list[psycopg.Connection[Any]] = []

        def fire() -> None:
            with lock:
                if done.is_set():
                    return
                fired.set()
                if holder:
                    _shutdown_socket(holder[0])

        timer = threading.Timer(max(0.0, deadline - time.monotonic() - _MARGIN), fire)
        timer.daemon = True
        timer.start()
        try:
            conn = self._usable()
            if conn is None:
                conn = self._conn = self._connect(deadline)
            with lock:
                holder.append(conn)
            if fired.is_set():  # connecting used up the budget
                raise CollectorError("timeout")
            yield conn
        except psycopg.Error:
            # A query error leaves an autocommit connection usable; a broken one is replaced on
            # next use (`_usable`), and a watchdog break below.
            if fired.is_set():
                self.close()
                raise CollectorError("timeout") from None
            raise
        finally:
            with lock:
                done.set()
            timer.cancel()
            if fired.is_set():
                self.close()

    def run(
        self, deadline: float, query: Query, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one statement, statement_timeout cut to the time left.

        A reused connection that turns out dead (server restarted since the last scrape) is
        replaced and the statement retried once, so values come back on the first scrape.
        """
        reused = self._usable() is not None
        try:
            return self._run_once(deadline, query, params)
        except psycopg.OperationalError:
            conn = self._conn
            if not reused or (conn is not None and not conn.broken):
                raise
            self.close()
        return self._run_once(deadline, query, params)

    def _run_once(
        self, deadline: float, query: Query, params: Sequence[Any] | None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.guarded(deadline) as conn:
            if self.settings.session_options:
                self._limit(conn, deadline)
            with conn.cursor() as cur:
                cur.execute(query, params)
                if not cur.description:
                    return [], []
                return [d.name for d in cur.description], cur.fetchall()

    def query(
        self, deadline: float, query: Query, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return self.run(deadline, query, params)[1]

    def query_dicts(self, deadline: float, query: Query) -> list[dict[str, Any]]:
        """Rows as column -> value dicts: collectors read every column by its name, never its position."""
        names, rows = self.run(deadline, query)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _limit(self, conn: psycopg.Connection[Any], deadline: float) -> None:
        remaining = deadline - time.monotonic() - _MARGIN
        if remaining <= 0:
            raise CollectorError("timeout")
        timeout_ms = max(1, int(min(self.settings.statement_timeout, remaining) * 1000))
        # Only send SET when the value changes by more than 10% to spare a round trip per query.
        if self._timeout_ms is None or abs(timeout_ms - self._timeout_ms) > self._timeout_ms / 10:
            conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(timeout_ms)))
            self._timeout_ms = timeout_ms


def _shutdown_socket(conn: psycopg.Connection[Any]) -> None:
    """Break a blocked read: shutdown() acts on the socket itself, so libpq's fd stays valid."""
    with contextlib.suppress(Exception):
        fd = conn.pgconn.socket
        dup = socket.socket(fileno=os.dup(fd))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()
