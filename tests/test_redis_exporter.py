"""`obsbundle exporter redis` as a real process: catalog parity, outages, auth, Prometheus, bad config."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from obsbundle.catalog import static_catalog
from obsbundle.services import (
    ExporterProcess,
    PrometheusServer,
    RedisServer,
    by_tenant,
    free_port,
    run_cli,
    wait_for,
)
from tests.support.redis import EXPORTER_ACL, redis_config


def passes(exporter: ExporterProcess) -> float:
    return by_tenant(exporter.scrape(), "redis_keyspace_passes_total").get("_shared", 0.0)


def up(exporter: ExporterProcess) -> float | None:
    return by_tenant(exporter.scrape(), "redis_up").get("_shared")


def test_emitted_families_equal_the_catalog(seeded_redis):
    server, truth = seeded_redis
    exporter = ExporterProcess("redis", redis_config(server.url))
    try:
        wait_for(lambda: passes(exporter) >= 1, 30, what="first keyspace pass")
        samples = exporter.scrape()
        assert by_tenant(samples, "redis_up") == {"_shared": 1.0}
        assert by_tenant(samples, "redis_tenant_keys") == {t: float(n) for t, n in truth.keys.items()}
        families = {f.name for f in text_string_to_metric_families(exporter.scrape_text())}
        emitted = {f for f in families if f.startswith("redis_")}
        catalogued = {m.name.removesuffix("_total") if m.type == "counter" else m.name
                      for m in static_catalog().by_source("redis")}
        assert emitted == catalogued
    finally:
        exporter.close()


def test_stopped_redis_gives_up_0_and_recovers():
    server = RedisServer()
    redis.Redis.from_url(server.url).set("tenant:acme:k", "v")
    exporter = ExporterProcess("redis", redis_config(server.url))
    try:
        wait_for(lambda: passes(exporter) >= 1, 30, what="first keyspace pass")
        server.stop()
        samples = exporter.scrape()
        assert by_tenant(samples, "redis_up") == {"_shared": 0.0}
        # the last complete pass is still served while Redis is away
        assert by_tenant(samples, "redis_tenant_keys") == {"acme": 1.0}
        assert exporter.proc is not None and exporter.proc.poll() is None
        server.start()
        wait_for(lambda: up(exporter) == 1.0, 30, what="redis_up back to 1")
        log = exporter.log_text()
        assert "unreachable" in log and "reachable again" in log
    finally:
        exporter.close()
        server.close()


def test_frozen_redis_scrape_returns_inside_the_deadline():
    server = RedisServer()
    exporter = ExporterProcess("redis", redis_config(server.url, socket_timeout="1s"), ["--scrape-timeout", "3s"])
    try:
        wait_for(lambda: up(exporter) == 1.0, 30, what="redis_up 1")
        server.pause()
        for _ in range(2):  # the second scrape meets a collector still stuck on the first: `busy`
            started = time.monotonic()
            samples = exporter.scrape(timeout=20)
            assert time.monotonic() - started < 3 + 2  # deadline plus HTTP slack
            assert by_tenant(samples, "redis_up") == {"_shared": 0.0}
        server.resume()
        wait_for(lambda: up(exporter) == 1.0, 30, what="redis_up back to 1")
    finally:
        server.resume()
        exporter.close()
        server.close()


def test_requirepass_and_acl_credentials(tmp_path):
    secret, acl_secret = "S3cret-requirepass-9f2", "S3cret-acl-user-7c1"
    server = RedisServer(["--requirepass", secret])
    admin = redis.Redis.from_url(server.url, password=secret)
    wait_for(admin.ping, 15, what="redis ping")
    admin.execute_command("ACL", "SETUSER", "obsbundle", f">{acl_secret}", *EXPORTER_ACL)
    admin.set("tenant:acme:k", "v")
    good_file, bad_file = tmp_path / "good", tmp_path / "bad"
    good_file.write_text(acl_secret + "\n")
    bad_file.write_text("wrong-password-123\n")
    exporters = {
        "env": ExporterProcess("redis", redis_config(server.url), env={"REDIS_PASSWORD": secret}),
        "acl": ExporterProcess("redis", redis_config(server.url, username="obsbundle", password_file=str(good_file))),
        "wrong_acl": ExporterProcess("redis", redis_config(server.url, username="obsbundle",
                                                           password_file=str(bad_file))),
        "wrong_env": ExporterProcess("redis", redis_config(server.url), env={"REDIS_PASSWORD": "nope-" + secret}),
        "none": ExporterProcess("redis", redis_config(server.url), env={"REDIS_PASSWORD": ""}),
    }
    try:
        for name in ("env", "acl"):
            exporter = exporters[name]
            wait_for(lambda e=exporter: passes(e) >= 1, 30, what=f"{name}: first keyspace pass")
            samples = exporter.scrape()
            assert by_tenant(samples, "redis_up") == {"_shared": 1.0}, name
            assert by_tenant(samples, "redis_tenant_keys") == {"acme": 1.0}, name
        for name in ("wrong_acl", "wrong_env", "none"):
            exporter = exporters[name]
            assert up(exporter) == 0.0, name
            wait_for(lambda e=exporter: "authentication failed" in e.log_text(), 10, what=f"{name}: auth log")
            line = next(x for x in exporter.log_text().splitlines() if "authentication failed" in x)
            assert "level=error" in line and "redis cache (redis://127.0.0.1:" in line, line
        for exporter in exporters.values():
            text, log = exporter.scrape_text(), exporter.log_text()
            for value in (secret, acl_secret, "wrong-password-123"):
                assert value not in text and value not in log
    finally:
        for exporter in exporters.values():
            exporter.close()
        admin.close()
        server.close()


def test_prometheus_scrapes_the_exporter(seeded_redis):
    server, truth = seeded_redis
    exporter = ExporterProcess("redis", redis_config(server.url))
    prometheus = PrometheusServer({"redis": [exporter.address]})
    try:
        wait_for(prometheus.targets_up, 60, what="prometheus target up")
        result = prometheus.wait_query(
            'redis_tenant_keys{job="redis",server="cache"}',
            lambda rows: {r["metric"]["tenant_id"]: float(r["value"][1]) for r in rows}
            == {t: float(n) for t, n in truth.keys.items()},
            timeout=60,
        )
        assert result
        assert prometheus.query_by('redis_up{job="redis"}') == {"_shared": 1.0}
        hits = prometheus.query_by('redis_keyspace_hits_total{job="redis"}')
        assert set(hits) == {"_shared"}
    finally:
        prometheus.close()
        exporter.close()


def test_bad_config_exits_2_with_one_line(tmp_path):
    cases = {
        "port": ("redis://:hunter2secret@127.0.0.1:notaport/0", "sources.redis[0].url"),
        "scheme": ("http://127.0.0.1:6379/0", "sources.redis[0].url"),
        "db": ("redis://127.0.0.1:6379/zero", "sources.redis[0].url"),
    }
    for name, (url, expected) in cases.items():
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(f"sources:\n  redis:\n    - name: cache\n      url: '{url}'\n")
        result = run_cli("exporter", "redis", "--config", str(cfg), "--web.listen-address", "127.0.0.1:0")
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (name, lines)
        assert "hunter2secret" not in result.stderr and "Traceback" not in result.stderr
    cfg = tmp_path / "missing.yaml"
    cfg.write_text("sources:\n  redis:\n    - name: cache\n      url: redis://127.0.0.1:6379/0\n"
                   f"      password_file: {tmp_path / 'nope'}\n")
    result = run_cli("exporter", "redis", "--config", str(cfg), "--web.listen-address", "127.0.0.1:0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "obsbundle: sources.redis[0].password_file: cannot read (No such file or directory)"
    ]


def test_healthy_endpoint_while_redis_is_missing():
    """No Redis at all at start-up: the exporter still starts and serves redis_up 0."""
    server = RedisServer()
    url = server.url
    server.close()
    exporter = ExporterProcess("redis", redis_config(url))
    try:
        assert httpx.get(f"http://{exporter.address}/-/healthy", timeout=5).status_code == 200
        assert up(exporter) == 0.0
    finally:
        exporter.close()


def _make_certs(directory) -> dict[str, str]:
    """A throwaway CA, a server cert for 127.0.0.1 and a client cert (openssl CLI)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl CLI not found: `make test` installs it"
    files = {name: str(directory / name) for name in
             ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key", "ext.cnf")}
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", files["ca.key"], "-out", files["ca.crt"],
        "-days", "2", "-subj", "/CN=obsbundle-test-ca")
    for who in ("server", "client"):
        csr = str(directory / f"{who}.csr")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", files[f"{who}.key"], "-out", csr,
            "-subj", f"/CN={who}")
        run("x509", "-req", "-in", csr, "-CA", files["ca.crt"], "-CAkey", files["ca.key"], "-CAcreateserial",
            "-out", files[f"{who}.crt"], "-days", "2", "-extfile", files["ext.cnf"])
    return files


def test_tls_with_client_certificate(tmp_path):
    certs = _make_certs(tmp_path)
    tls_port = free_port()
    server = RedisServer(["--tls-port", str(tls_port), "--tls-cert-file", certs["server.crt"],
                          "--tls-key-file", certs["server.key"], "--tls-ca-cert-file", certs["ca.crt"]])
    redis.Redis.from_url(server.url).set("tenant:acme:k", "v")
    url = f"rediss://127.0.0.1:{tls_port}/0"
    good = ExporterProcess("redis", redis_config(url, tls_ca_file=certs["ca.crt"], tls_cert_file=certs["client.crt"],
                                                 tls_key_file=certs["client.key"]))
    no_client_cert = ExporterProcess("redis", redis_config(url, tls_ca_file=certs["ca.crt"]))
    try:
        wait_for(lambda: passes(good) >= 1, 30, what="first keyspace pass over TLS")
        samples = good.scrape()
        assert by_tenant(samples, "redis_up") == {"_shared": 1.0}
        assert by_tenant(samples, "redis_tenant_keys") == {"acme": 1.0}
        assert up(no_client_cert) == 0.0  # the server requires a client certificate
    finally:
        good.close()
        no_client_cert.close()
        server.close()
