"""The PostgreSQL exporter under a stopped, restarted and frozen server, and with bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from obsbundle.services import ExporterProcess, PostgresServer, by_tenant, run_cli, wait_for
from tests.support.postgres import tenant_config

SCRAPE_TIMEOUT = 3.0
SLACK = 3.0  # HTTP + process scheduling on a busy 2-core machine; the deadline itself is 3 s


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer()
    for tenant in ("one", "two"):
        server.execute(f"CREATE SCHEMA tenant_{tenant}")
        server.execute(f"CREATE TABLE tenant_{tenant}.items (id int)")
    yield server
    server.close()


@pytest.fixture(scope="module")
def exporter(pg: PostgresServer) -> Iterator[ExporterProcess]:
    proc = ExporterProcess("postgres", tenant_config(pg.dsn, connect_timeout="2s"),
                           extra_args=["--scrape-timeout", f"{SCRAPE_TIMEOUT:g}s"])
    yield proc
    proc.close()


def timed_scrape(exporter: ExporterProcess) -> tuple[dict, float]:
    started = time.monotonic()
    samples = exporter.scrape(timeout=SCRAPE_TIMEOUT + 30)
    return samples, time.monotonic() - started


def healthy(exporter: ExporterProcess) -> bool:
    return httpx.get(f"http://{exporter.address}/-/healthy", timeout=5).status_code == 200


def test_stopped_server_gives_up_0_then_values_return(pg: PostgresServer, exporter: ExporterProcess) -> None:
    samples, _ = timed_scrape(exporter)
    assert by_tenant(samples, "pg_up") == {"_shared": 1}
    assert by_tenant(samples, "pg_tenant_tables") == {"one": 1, "two": 1, "_unassigned": 0}

    pg.stop()
    try:
        samples, elapsed = timed_scrape(exporter)
        assert by_tenant(samples, "pg_up") == {"_shared": 0}
        assert "pg_tenant_tables" not in samples
        assert elapsed < SCRAPE_TIMEOUT + SLACK
        assert healthy(exporter)
    finally:
        pg.start()
    # no exporter restart: the very next scrape reconnects
    samples, _ = timed_scrape(exporter)
    assert by_tenant(samples, "pg_up") == {"_shared": 1}
    assert by_tenant(samples, "pg_tenant_tables") == {"one": 1, "two": 1, "_unassigned": 0}
    assert exporter.proc is not None and exporter.proc.poll() is None


def test_frozen_server_scrape_returns_inside_the_deadline(pg: PostgresServer, exporter: ExporterProcess) -> None:
    samples, _ = timed_scrape(exporter)  # connections are open and reused
    assert by_tenant(samples, "pg_up") == {"_shared": 1}
    pg.pause()  # SIGSTOP postmaster and backends: the port accepts connections, nothing answers
    try:
        for _ in range(2):  # first on the open connections, then while reconnecting
            samples, elapsed = timed_scrape(exporter)
            assert by_tenant(samples, "pg_up") == {"_shared": 0}
            assert elapsed < SCRAPE_TIMEOUT + SLACK
            codes = {dict(k)["collector"]: dict(k)["code"] for k in samples["obsbundle_collector_last_error_info"]}
            codes.pop("sizes")  # background refresh: serves its last pass, with its data age
            assert set(codes.values()) <= {"timeout", "busy"}, codes
            assert healthy(exporter)
    finally:
        pg.resume()
    wait_for(lambda: by_tenant(exporter.scrape(), "pg_up") == {"_shared": 1}, 30, what="pg_up back to 1")
    assert by_tenant(exporter.scrape(), "pg_tenant_tables")["one"] == 1


def _write(tmp_path: Path, document: dict) -> str:
    path = tmp_path / "obsbundle.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"sources": {"postgres": [{"name": "main"}]}}, "sources.postgres[0].dsn: required"),
        ({"sources": {"postgres": [{"name": "main", "dsn": "host=127.0.0.1 port"}]}},
         "sources.postgres[0].dsn: not a valid libpq connection string or URL"),
        ({"sources": {"postgres": [{"name": "main", "dsn": "postgresql://u:Pa55-in-url-99@h:notaport/db"}]}},
         "sources.postgres[0].dsn: port must be a number from 1 to 65535"),
        ({"tenancy": {"postgres": {"schema": "^tenant_(?P<tenant>[a-z"}},
          "sources": {"postgres": [{"name": "main", "dsn": "postgresql://127.0.0.1/x"}]}},
         "tenancy.postgres.schema: is not a valid regular expression"),
        ({"sources": {"postgres": []}}, "sources.postgres: no PostgreSQL source configured"),
        ({"tenancy": {"postgres": {"role": "^tenant_(.+)$"}},
          "sources": {"postgres": [{"name": "main", "dsn": "postgresql://127.0.0.1/x"}]}},
         "tenancy.postgres.role: regular expression needs a named group (?P<tenant>...)"),
        ({"sources": {"postgres": [{"name": "main", "dsn": "postgresql://127.0.0.1/x", "custom_queries": [
            {"name": "q", "sql": "SELECT 1", "metrics": [{"column": "a", "name": "a", "help": "A."}]},
            {"name": "q", "sql": "SELECT 2", "metrics": [{"column": "a", "name": "a", "help": "A."}]},
        ]}]}}, "sources.postgres[0].custom_queries[1].name: duplicate query name 'q'"),
    ],
    ids=["missing-dsn", "bad-dsn", "bad-dsn-with-password", "bad-regex", "no-source", "regex-without-group",
         "duplicate-query"],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, document: dict, message: str) -> None:
    result = run_cli("exporter", "postgres", "--config", _write(tmp_path, document),
                     "--web.listen-address", "127.0.0.1:0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"obsbundle: {message}"]
    assert "Pa55-in-url-99" not in result.stderr + result.stdout
