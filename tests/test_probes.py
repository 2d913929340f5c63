"""Uptime probes against loopback HTTP/HTTPS servers: success, duration bound, status, reason, TLS expiry."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpcore
import httpx
import pytest

from collectors.probes import Prober, ProbeSpec, failure_reason
from exporters.probes import build
from obsbundle import config as obsconfig
from obsbundle.errors import ConfigError
from obsbundle.services import ExporterProcess, TargetServer, free_port, run_cli, self_signed_cert, wait_for
from obsbundle.settings import ProbeSource, section
from obsbundle.tenancy import normalize

CERT_DAYS = 30


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"), CERT_DAYS)


@pytest.fixture(scope="module")
def http_target() -> Iterator[TargetServer]:
    server = TargetServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def https_target(cert: tuple[Path, Path]) -> Iterator[TargetServer]:
    server = TargetServer(cert)
    yield server
    server.close()


def spec(name: str, url: str, **entry: object) -> ProbeSpec:
    """One probe as the config would give it (the schema fills the defaults)."""
    return ProbeSpec.from_source(section(ProbeSource, "source-probes.yaml", {"name": name, "url": url, **entry}))


def check(spec: ProbeSpec):
    prober = Prober(spec)
    try:
        return prober.check()
    finally:
        prober.close()


def test_http_ok_error_slow_and_refused(http_target: TargetServer):
    ok = check(spec("ok", http_target.url("/ok"), timeout="5s"))
    assert (ok.success, ok.reason, ok.status, ok.cert_expiry_days) == (True, "ok", 200, None)
    assert 0 < ok.duration < 5
    assert {"connect", "request", "processing", "transfer"} <= set(ok.phases) and "tls" not in ok.phases
    assert sum(ok.phases.values()) <= ok.duration

    error = check(spec("error", http_target.url("/error")))
    assert (error.success, error.reason, error.status) == (False, "http_status", 500)
    accepted = check(spec("error-ok", http_target.url("/error"), expect_status=[500]))
    assert (accepted.success, accepted.reason, accepted.status) == (True, "ok", 500)

    slow = check(spec("slow", http_target.url("/slow?s=3"), timeout="500ms"))
    assert (slow.success, slow.reason, slow.status) == (False, "timeout", 0)
    assert 0.5 <= slow.duration < 2.0  # bounded by the timeout, not the 3 s the server takes

    refused = check(spec("refused", f"http://127.0.0.1:{free_port()}/"))
    assert (refused.success, refused.reason, refused.status) == (False, "connection_refused", 0)
    assert refused.duration < 2.0


def test_https_cert_expiry_and_untrusted_cert(https_target: TargetServer, cert: tuple[Path, Path]):
    trusted = check(spec("tls", https_target.url("/ok"), tls_ca_file=str(cert[0])))
    assert (trusted.success, trusted.reason, trusted.status) == (True, "ok", 200)
    assert CERT_DAYS - 0.01 < trusted.cert_expiry_days <= CERT_DAYS
    assert trusted.phases["tls"] > 0

    untrusted = check(spec("tls-untrusted", https_target.url("/ok")))
    assert (untrusted.success, untrusted.reason, untrusted.status) == (False, "tls", 0)
    assert untrusted.cert_expiry_days is None


def test_failure_reason_walks_the_cause_chain():
    def chained(outer: Exception, inner: BaseException) -> Exception:
        try:
            try:
                raise inner
            except BaseException as exc:
                raise outer from exc
        except Exception as exc:
            return exc

    assert failure_reason(chained(httpx.ConnectError("x"), socket.gaierror(-2, "Name or service not known"))) == "dns"
    refused = chained(httpx.ConnectError("x"), ConnectionRefusedError(111, "refused"))
    assert failure_reason(refused) == "connection_refused"
    assert failure_reason(chained(httpx.ConnectError("x"), ssl.SSLCertVerificationError("bad"))) == "tls"
    assert failure_reason(httpx.ReadTimeout("slow")) == "timeout"
    assert failure_reason(chained(httpx.ConnectError("x"), httpcore.ConnectError("boom"))) == "other"


def _probe_config(http_target: TargetServer, https_target: TargetServer, cert: tuple[Path, Path]) -> dict:
    probes = [
        {"name": "landing", "url": http_target.url("/ok")},
        {"name": "api-acme", "url": https_target.url("/ok"), "tenant": "acme", "tls_ca_file": str(cert[0])},
        {"name": "api-error", "url": http_target.url("/error"), "tenant": "beta"},
        {"name": "api-slow", "url": http_target.url("/slow?s=3"), "tenant": "gamma", "timeout": "500ms"},
        {"name": "api-down", "url": f"http://127.0.0.1:{free_port()}/healthz", "tenant": "Delta Co"},
    ]
    for probe in probes:
        probe.setdefault("interval", "1s")
        probe.setdefault("timeout", "2s")
    return {"sources": {"probes": probes}}


def test_probes_exporter_serves_every_probe(http_target, https_target, cert):
    exporter = ExporterProcess("probes", _probe_config(http_target, https_target, cert))
    try:
        def all_reported():
            samples = exporter.scrape()
            return samples if len(samples.get("probe_success", {})) == 5 else None

        samples = wait_for(all_reported, 60, 0.3, what="5 probes reported")
        text = exporter.scrape_text()
    finally:
        exporter.close()

    def by_probe(name: str, **match: str) -> dict[str, float]:
        rows = [dict(k) | {"_v": v} for k, v in samples.get(name, {}).items()]
        return {r["probe"]: r["_v"] for r in rows if all(r.get(k) == x for k, x in match.items())}

    tenants = {dict(k)["probe"]: dict(k)["tenant_id"] for k in samples["probe_success"]}
    assert tenants == {"landing": "_shared", "api-acme": "acme", "api-error": "beta", "api-slow": "gamma",
                       "api-down": normalize("Delta Co")}
    assert by_probe("probe_success") == {"landing": 1, "api-acme": 1, "api-error": 0, "api-slow": 0, "api-down": 0}
    assert by_probe("probe_http_status_code") == {
        "landing": 200, "api-acme": 200, "api-error": 500, "api-slow": 0, "api-down": 0}
    reasons = {dict(k)["probe"]: dict(k)["reason"] for k in samples["probe_failure_info"]}
    assert reasons == {"landing": "ok", "api-acme": "ok", "api-error": "http_status", "api-slow": "timeout",
                       "api-down": "connection_refused"}
    expiry = by_probe("probe_tls_cert_expiry_days")
    assert set(expiry) == {"api-acme"} and CERT_DAYS - 0.01 < expiry["api-acme"] <= CERT_DAYS
    durations = by_probe("probe_duration_seconds")
    assert 0.5 <= durations["api-slow"] < 2.0 and durations["landing"] < 2.0
    assert by_probe("probe_http_phase_duration_seconds", phase="tls").keys() == {"api-acme"}
    success = {dict(k)["server"]: v for k, v in samples["obsbundle_collector_success"].items()}
    assert success == dict.fromkeys(tenants, 1.0)
    assert "# HELP probe_success " in text


def test_probes_config_errors_are_one_line(tmp_path: Path):
    with pytest.raises(ConfigError, match="no probes configured"):
        build(obsconfig.parse("sources: {probes: []}"))
    dup = "sources: {probes: [{name: a, url: 'http://127.0.0.1:1/'}, {name: a, url: 'http://127.0.0.1:2/'}]}"
    with pytest.raises(ConfigError, match="duplicate probe name a"):
        build(obsconfig.parse(dup))
    missing_ca = "sources: {probes: [{name: a, url: 'https://127.0.0.1:1/', tls_ca_file: /nonexistent.pem}]}"
    with pytest.raises(ConfigError, match="tls_ca_file"):
        build(obsconfig.parse(missing_ca))
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: {probes: [{name: a, url: 'ftp://x/'}]}\n")
    result = run_cli("exporter", "probes", "--config", str(bad), "--web.listen-address", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "sources.probes[0].url" in result.stderr
    assert "Traceback" not in result.stderr
