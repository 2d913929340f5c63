"""One configured Redis source: URL, credentials, TLS and timeouts turned into redis-py clients.

The password never lives in the config file's URL if we can help it: it comes from
`password_file` or an environment variable (`password_env`, default REDIS_PASSWORD), is
registered with `obsbundle.secrets` so logs scrub it, and `display` is the only form of the URL
that is ever printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from obsbundle.errors import ConfigError
from obsbundle.secrets import redact_url, register_secret, register_url_secrets
from obsbundle.settings import RedisSource

CLIENT_NAME = "obsbundle-exporter"


@dataclass(frozen=True)
class RedisTarget:
    """Everything needed to open a connection to one source; `display` is safe to log."""

    name: str
    url: str
    display: str
    username: str | None
    password: str | None = field(repr=False)
    socket_timeout: float
    tls: dict[str, Any]

    @classmethod
    def from_source(cls, source: RedisSource, path: str, environ: Mapping[str, str] | None = None) -> RedisTarget:
        """Validate one `sources.redis[i]` entry; ConfigError names the path, never the secret."""
        env = os.environ if environ is None else environ
        url = source.url
        register_url_secrets(url)
        display = redact_url(url)
        try:
            parts = urlsplit(url)
            port = parts.port
            db = parts.path.strip("/") or "0"
        except ValueError:
            raise ConfigError(f"{path}.url: not a valid redis:// URL ({display})") from None
        if parts.scheme not in ("redis", "rediss"):
            raise ConfigError(f"{path}.url: scheme must be redis:// or rediss://")
        if not parts.hostname:
            raise ConfigError(f"{path}.url: missing host ({display})")
        if not db.isdigit():
            raise ConfigError(f"{path}.url: database must be a number, got {db!r}")
        del port  # parsed only to validate it

        password = parts.password
        if env.get(source.password_env):
            password = env[source.password_env]
        if source.password_file:
            try:
                password = Path(source.password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{path}.password_file: cannot read ({exc.strerror})") from None
            if not password:
                raise ConfigError(f"{path}.password_file: file is empty")
        register_secret(password)

        tls: dict[str, Any] = {}
        if parts.scheme == "rediss":
            for key, option, file in (("tls_ca_file", "ssl_ca_certs", source.tls_ca_file),
                                      ("tls_cert_file", "ssl_certfile", source.tls_cert_file),
                                      ("tls_key_file", "ssl_keyfile", source.tls_key_file)):
                if file:
                    if not Path(file).is_file():
                        raise ConfigError(f"{path}.{key}: no such file")
                    tls[option] = file
            if source.tls_insecure_skip_verify:
                tls.update(ssl_cert_reqs="none", ssl_check_hostname=False)
        elif source.tls_ca_file or source.tls_cert_file or source.tls_key_file:
            raise ConfigError(f"{path}.url: TLS options need a rediss:// URL")

        return cls(
            name=source.name,
            url=url,
            display=display,
            username=source.username or parts.username or None,
            password=password or None,
            socket_timeout=source.socket_timeout,
            tls=tls,
        )

    def client(self, decode_responses: bool = True, timeout: float | None = None) -> redis.Redis:
        """A client with bounded timeouts and no silent retries, so a hung server fails fast."""
        seconds = self.socket_timeout if timeout is None else timeout
        return redis.Redis.from_url(
            self.url,
            username=self.username,
            password=self.password,
            socket_timeout=seconds,
            socket_connect_timeout=seconds,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            decode_responses=decode_responses,
            client_name=CLIENT_NAME,
            health_check_interval=0,
            **self.tls,
        )

    def describe(self) -> str:
        """Secret-free identification for log lines."""
        user = f" user={self.username}" if self.username else ""
        return f"redis {self.name} ({self.display}{user})"
