"""Session-wide real services. Tests that stop or pause a service start their own instance.
Each area's fixtures are a module of the tests.fixtures plugin package, registered here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from obsbundle.services import PostgresServer, RedisServer

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.redis", "tests.fixtures.temporal"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer | None]:
    """A throwaway PostgreSQL; None when OBSBUNDLE_TEST_PG_DSN names an existing one."""
    if os.environ.get("OBSBUNDLE_TEST_PG_DSN"):
        yield None
        return
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def pg_dsn(pg_server: PostgresServer | None) -> str:
    return os.environ.get("OBSBUNDLE_TEST_PG_DSN") or pg_server.dsn  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    if os.environ.get("OBSBUNDLE_TEST_REDIS_URL"):
        yield None
        return
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | None) -> str:
    return os.environ.get("OBSBUNDLE_TEST_REDIS_URL") or redis_server.url  # type: ignore[union-attr]
