"""Secrets never reach output: URL/DSN redaction and the log filter."""

from __future__ import annotations

import logging

import pytest

from obsbundle.secrets import ScrubFilter, redact_url, register_secret, register_url_secrets, scrub


@pytest.mark.parametrize(
    "url,expected",
    [
        ("postgresql://app:s3cr3t-pw@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("redis://:p%40ss@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://user:pw@h:6380", "rediss://user:***@h:6380"),
        ("host=db user=app password=s3cr3t dbname=x", "host=db user=app password=*** dbname=x"),
        ("host=db password='a b c' dbname=x", "host=db password=*** dbname=x"),
        ("postgresql://db/x?password=s3cr3t&sslmode=require", "postgresql://db/x?password=***&sslmode=require"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_registered_secrets_are_scrubbed_from_free_text_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    register_url_secrets("postgresql://app:Very-Secret-42@db/x")
    register_secret("https://hooks.slack.example/T000/B000/XXXXSECRET")
    assert scrub("failed: password Very-Secret-42 rejected") == "failed: password *** rejected"

    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "posting to %s failed", (
        "https://hooks.slack.example/T000/B000/XXXXSECRET",), None)
    try:
        raise RuntimeError("auth failed for Very-Secret-42")
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    ScrubFilter().filter(record)
    text = record.getMessage()
    assert "XXXXSECRET" not in text and "Very-Secret-42" not in text
    assert text == "posting to *** failed: RuntimeError: auth failed for ***"
    assert record.exc_info is None  # no traceback reaches a handler
