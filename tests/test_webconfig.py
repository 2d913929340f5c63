"""`--web.config.file`: the exporter-toolkit format checked by promtool, and a real Prometheus
scraping over TLS with a client certificate and basic auth."""

from __future__ import annotations

import logging
import ssl
import subprocess
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml

from exporters.http import ExporterServer
from exporters.runtime import ScrapeRunner
from exporters.webconfig import load_web_config
from obsbundle.errors import ConfigError
from obsbundle.services import PrometheusServer, run_cli, which
from tests.test_runtime import CATALOG, Sleepy

PASSWORD = "s3cr/et?pass"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}-ca.pem", directory / f"{name}-ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", f"/CN={name} test CA")
    return cert, key


def _signed(directory: Path, name: str, ca: tuple[Path, Path], san: str) -> tuple[Path, Path]:
    cert, key, csr = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca, rogue = _ca(d, "good"), _ca(d, "rogue")
    server = _signed(d, "server", ca, "IP:127.0.0.1")
    client = _signed(d, "client", ca, "DNS:prometheus")
    bad_client = _signed(d, "badclient", rogue, "DNS:prometheus")
    return {"ca": ca[0], "server_cert": server[0], "server_key": server[1], "client_cert": client[0],
            "client_key": client[1], "bad_cert": bad_client[0], "bad_key": bad_client[1]}


@pytest.fixture(scope="module")
def web_file(pki: dict[str, Path]) -> Path:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    path = pki["ca"].parent / "web.yml"
    path.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(pki["server_cert"]), "key_file": str(pki["server_key"]),
                              "client_ca_file": str(pki["ca"]), "client_auth_type": "RequireAndVerifyClientCert",
                              "min_version": "TLS12"},
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
        "basic_auth_users": {"prometheus": hashed},
    }))
    return path


def promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([which("promtool"), "check", "web-config", str(path)], capture_output=True, text=True,
                          timeout=60)


def test_promtool_accepts_the_file_we_serve(web_file: Path) -> None:
    assert promtool_check(web_file).returncode == 0
    web = load_web_config(str(web_file))
    assert web.tls and set(web.basic_auth_users) == {"prometheus"}


def test_prometheus_scrapes_over_tls_with_basic_auth_and_a_client_cert(
    pki: dict[str, Path], web_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = ScrapeRunner("test", [Sleepy("rows", 0, {"acme": 4})], CATALOG, timeout=2)
    server = ExporterServer(runner, "127.0.0.1:0", web_config=load_web_config(str(web_file)))
    server.start_background()
    base = f"https://127.0.0.1:{server.port}"
    good_ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    good_ctx.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
    try:
        prom = PrometheusServer({"tls": [f"127.0.0.1:{server.port}"]}, job_settings={"tls": {
            "scheme": "https",
            "basic_auth": {"username": "prometheus", "password": PASSWORD},
            "tls_config": {"ca_file": str(pki["ca"]), "cert_file": str(pki["client_cert"]),
                           "key_file": str(pki["client_key"])},
        }})
        try:
            result = prom.wait_query('test_rows{tenant_id="acme"}')
            assert float(result[0]["value"][1]) == 4
            assert prom.query('up{job="tls"}')[0]["value"][1] == "1"
        finally:
            prom.close()

        ok = httpx.get(f"{base}/metrics", auth=("prometheus", PASSWORD), verify=good_ctx)
        assert ok.status_code == 200 and ok.headers["x-content-type-options"] == "nosniff"
        wrong = httpx.get(f"{base}/metrics", auth=("prometheus", PASSWORD + "x"), verify=good_ctx)
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"].startswith("Basic")
        assert PASSWORD not in wrong.text and "test_rows" not in wrong.text
        assert httpx.get(f"{base}/metrics", verify=good_ctx).status_code == 401

        bad_ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        bad_ctx.load_cert_chain(str(pki["bad_cert"]), str(pki["bad_key"]))
        no_cert_ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        for ctx in (bad_ctx, no_cert_ctx):
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                httpx.get(f"{base}/metrics", auth=("prometheus", PASSWORD), verify=ctx)
        with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.shutdown()
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(("document", "message"), [
    ({"tls_server_config": {"cert_file": "c", "key_file": "k", "cipher_suites": ["TLS_AES_128_GCM_SHA256"]}},
     "tls_server_config.cipher_suites: only supported by the Go exporter-toolkit"),
    ({"tls_server_config": {"cert_file": "c", "key_file": "k", "client_allowed_sans": ["x"]}},
     "tls_server_config.client_allowed_sans: only supported by the Go exporter-toolkit"),
    ({"tls_server_config": {"cert_file": "c", "key_file": "k", "client_auth_type": "RequireAnyClientCert",
                            "client_ca_file": "ca"}},
     "client_auth_type: RequireAnyClientCert (a certificate requested but not verified) is only supported"),
    ({"http_server_config": {"http2": True}}, "http_server_config.http2: only supported by the Go"),
    ({"rate_limit": {"interval": "1s", "burst": 5}}, "rate_limit: only supported by the Go"),
])
def test_keys_only_the_go_toolkit_supports_are_rejected(tmp_path: Path, document: dict, message: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(document))
    assert promtool_check(path).returncode in (0, 1)  # promtool may or may not load the (fake) cert paths
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_web_config(str(path))


def test_cli_errors_are_one_line_and_never_echo_a_hash(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    config = tmp_path / "obsbundle.yaml"
    config.write_text(yaml.safe_dump({"sources": {"redis": [{"name": "r1", "url": "redis://127.0.0.1:1"}]}}))
    cases = {
        "unknown.yml": ({"basic_auth_users": {"u": hashed}, "tls_server_config": {"cert_file": "c",
                         "key_file": "k", "ciphers": "x"}}, "tls_server_config.ciphers: unknown key"),
        "nothash.yml": ({"basic_auth_users": {"u": "plaintext-secret"}}, "is not a bcrypt hash"),
        "dup.yml": ("basic_auth_users:\n  u: " + hashed + "\n  u: " + hashed + "\n", "duplicate key"),
        "badcert.yml": ({"tls_server_config": {"cert_file": str(tmp_path / "none.pem"), "key_file": "k"}},
                        "cannot load the certificate and key"),
    }
    for name, (document, message) in cases.items():
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
        result = run_cli("exporter", "redis", "--config", str(config), "--web.listen-address", "127.0.0.1:0",
                         "--web.config.file", str(path), timeout=60)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
        assert hashed not in result.stderr and "plaintext-secret" not in result.stderr
