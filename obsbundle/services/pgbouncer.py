"""Throwaway PgBouncer in front of a PostgresServer."""

from __future__ import annotations

from collections.abc import Iterable

from obsbundle.services.postgres import PostgresServer
from obsbundle.services.process import Service, as_service_user, which


class PgBouncerServer(Service):
    """A real PgBouncer (transaction pooling) in front of `pg` as database `appdb`, admin user postgres.

    auth_type is trust, but PgBouncer still admits only the users in its auth file: `users`.
    """

    POOL_SIZE = 2

    def __init__(self, pg: PostgresServer, users: Iterable[str] = (), pool_size: int = POOL_SIZE) -> None:
        self._allocate("obsbundle-pgbouncer-", owned=True)
        self.pool_size = pool_size
        self.users = ["postgres", *(u for u in users if u != "postgres")]
        (self.workdir / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in self.users))
        (self.workdir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"appdb = host=127.0.0.1 port={pg.port} dbname=postgres pool_size={pool_size}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.workdir / 'userlist.txt'}\n"
            "admin_users = postgres\npool_mode = transaction\n"
            "ignore_startup_parameters = options\n"
        )
        self.start()

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/pgbouncer"

    def dsn(self, user: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/appdb"

    def start(self) -> None:
        self.proc = self._popen(as_service_user([which("pgbouncer", "/usr/sbin"),
                                                 str(self.workdir / "pgbouncer.ini")]))
        self._wait_listening("pgbouncer")
