"""Config loading: env expansion, defaults, and one-line errors that name the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from obsbundle import config
from obsbundle.errors import ConfigError
from obsbundle.services import run_cli

ROOT = Path(__file__).resolve().parent.parent


def error_of(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        config.parse(text, "obsbundle.yaml", environ or {})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_working_default_config_loads_with_loopback_defaults() -> None:
    cfg = config.load(ROOT / "obsbundle.yaml", environ={})
    assert cfg["sources"]["postgres"][0]["dsn"] == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert cfg["sources"]["redis"][0]["url"] == "redis://127.0.0.1:6379/0"
    assert cfg["sources"]["temporal"][0]["address"] == "127.0.0.1:7233"
    assert cfg["tenancy"]["label"] == "tenant_id"
    assert cfg["thresholds"]["error_ratio"] == {"warning": 0.05, "for": "5m"}  # the burn rate pages


def test_environment_overrides_and_defaults() -> None:
    env = {"PG_DSN": "postgresql://u@db:5433/x", "REDIS_URL": ""}
    cfg = config.load(ROOT / "obsbundle.yaml", environ=env)
    assert cfg["sources"]["postgres"][0]["dsn"] == "postgresql://u@db:5433/x"
    assert cfg["sources"]["redis"][0]["url"] == "redis://127.0.0.1:6379/0"  # empty -> default


def test_unset_variable_without_default_names_the_path() -> None:
    text = "sources:\n  postgres:\n    - {name: main, dsn: '${NOPE}'}\n"
    assert error_of(text) == "sources.postgres[0].dsn: environment variable NOPE is not set"


def test_schema_defaults_are_filled_and_user_values_merge_over_packaged_ones() -> None:
    cfg = config.parse("thresholds:\n  latency_p95_seconds: {warning: 1}\n"
                       "sources:\n  postgres: [{name: main, dsn: 'host=x'}]\n", environ={})
    assert cfg["thresholds"]["latency_p95_seconds"] == {"warning": 1, "critical": 5, "for": "10m"}
    assert cfg["sources"]["postgres"][0]["statement_timeout"] == "5s"
    assert cfg["tenancy"]["max_tenants"] == 5000


def test_typed_settings_carry_the_schema_defaults() -> None:
    from obsbundle.settings import settings

    typed = settings(config.parse(
        "tenancy:\n  redis: {key: '^t:(?P<tenant>[^:]+):'}\n"
        "exporter:\n  listen_addresses: {redis: '127.0.0.1:9999'}\n"
        "sources:\n  redis: [{name: cache, url: 'redis://127.0.0.1:6379/0', scan: {count: 500}}]\n"
        "  temporal: [{name: main, address: '127.0.0.1:7233'}]\n", environ={}))
    assert typed.tenancy.max_tenants == 5000
    assert typed.tenancy.rules("redis") == {
        "key": "^t:(?P<tenant>[^:]+):",
        "client_name": "^tenant[:=-](?P<tenant>[^:;]+)",
        "user": "^tenant_(?P<tenant>.+)$",
    }
    assert typed.exporter.scrape_timeout == 10.0
    assert typed.exporter.listen_addresses == {"postgres": "127.0.0.1:9187", "redis": "127.0.0.1:9999",
                                               "temporal": "127.0.0.1:9233", "probes": "127.0.0.1:9115"}
    (redis,) = typed.sources.redis
    assert (redis.socket_timeout, redis.password_env, redis.scan.count, redis.scan.batch, redis.scan.rest) == (
        2.0, "REDIS_PASSWORD", 500, 200, 0.005)
    (temporal,) = typed.sources.temporal
    assert (temporal.refresh_interval, temporal.closed_window, temporal.visibility_rps, temporal.namespaces) == (
        30.0, 3600.0, 5.0, ())
    # One place per default: the packaged defaults file no longer restates the schema's sections.
    assert not {"tenancy", "exporter", "sources"} & set(config.defaults())


@pytest.mark.parametrize(
    "text,expected",
    [
        ("sources:\n  postgres:\n    - {name: main}\n", "sources.postgres[0].dsn: required"),
        ("sources:\n  postgres:\n    - {name: main, dsn: x, bogus: 1}\n", "sources.postgres[0].bogus: unknown key"),
        ("sources:\n  redis:\n    - {name: c, url: 'http://x'}\n", "sources.redis[0].url: must match ^rediss?://"),
        ("tenancy:\n  max_tenants: 0\n", "tenancy.max_tenants: must be >= 1"),
        ("tenancy:\n  max_tenants: lots\n", "tenancy.max_tenants: must be of type integer"),
        ("tenancy:\n  label: tenant\n", "tenancy.label: must be 'tenant_id'"),
        ("tenancy:\n  postgres: {schema: 'tenant_(['}\n", "tenancy.postgres.schema: is not a valid regular expression"),
        ("tenancy:\n  redis: {key: '^tenant:([^:]+):'}\n",
         "tenancy.redis.key: regular expression needs a named group (?P<tenant>...)"),
        ("nonsense: 1\n", "nonsense: unknown key"),
        ("- a\n- b\n", "obsbundle.yaml: top level must be a mapping"),
    ],
)
def test_bad_config_gives_one_line_naming_the_path(text: str, expected: str) -> None:
    assert error_of(text) == expected


def test_yaml_syntax_error_names_line_and_column() -> None:
    assert error_of("sources: {postgres: [\n").startswith("obsbundle.yaml: line 2 column 1:")


def test_invalid_value_is_never_echoed() -> None:
    secret = "postgresql://u:hunter2secret@h/db"
    text = f"sources:\n  postgres:\n    - {{name: 'Not Valid Name', dsn: '{secret}'}}\n"
    message = error_of(text)
    assert "hunter2secret" not in message
    assert message.startswith("sources.postgres[0].name: must match")


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), (7, 7)])
def test_durations(text: str | int, seconds: float) -> None:
    assert config.parse_duration(text) == seconds


def test_cli_reports_bad_config_in_one_line_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  postgres:\n    - {name: main}\n")
    for args in (["check", "--config", str(bad)], ["exporter", "postgres", "--config", str(bad)]):
        result = run_cli(*args)
        assert result.returncode == 2, result
        assert result.stderr == "obsbundle: sources.postgres[0].dsn: required\n"
        assert "Traceback" not in result.stdout + result.stderr


def test_cli_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("check", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert result.stderr == f"obsbundle: {tmp_path / 'absent.yaml'}: no such config file\n"


def test_cli_version_and_help() -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("obsbundle ")
    helptext = run_cli("--help")
    assert helptext.returncode == 0
    for command in ("generate", "check", "exporter", "demo"):
        assert command in helptext.stdout
    exporter_help = run_cli("exporter", "--help").stdout
    for flag in ("--web.listen-address", "--web.telemetry-path", "--config"):
        assert flag in exporter_help
