"""Structured logs: JSON lines from collectors.app with request context, hostile input, secrets;
`--log.format` of the exporter processes."""

from __future__ import annotations

import io
import json
import logging

import httpx

from collectors.app.logs import stream_handler
from examples.agent_api import create_app
from obsbundle.logs import MAX_MESSAGE_CHARS, JSONFormatter, LogfmtFormatter
from obsbundle.secrets import register_secret
from obsbundle.services import ExporterProcess, UvicornThread, free_port, wait_for
from tests.support.http import json_lines


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("svc", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_every_record_in_a_request_carries_tenant_trace_span_service_and_one_access_line() -> None:
    out = io.StringIO()
    app, otel = create_app({"app": {"logs": {"format": None}}})
    handler = stream_handler("agent-api", "json", out)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    otel._access = logging.getLogger("obsbundle.access")
    server = UvicornThread(app)
    try:
        for tenant in ("acme", "beta"):
            assert httpx.get(f"{server.url}/v1/echo", headers={"X-Tenant-ID": tenant}, timeout=10).status_code == 200
    finally:
        server.close()
        otel.shutdown()
        root.removeHandler(handler)
        root.setLevel(previous)
    lines = [r for r in json_lines(out.getvalue()) if r["logger"] in ("examples.agent_api", "obsbundle.access")]
    assert [(r["logger"], r["tenant_id"]) for r in lines] == [
        ("examples.agent_api", "acme"), ("obsbundle.access", "acme"),
        ("examples.agent_api", "beta"), ("obsbundle.access", "beta"),
    ]
    for user, access in (lines[0:2], lines[2:4]):
        assert user["trace_id"] == access["trace_id"] and user["span_id"] == access["span_id"]
        assert len(user["trace_id"]) == 32 and len(user["span_id"]) == 16
        assert user["service"] == access["service"] == "agent-api" and user["level"] == "info"
        assert (access["method"], access["route"], access["status"]) == ("GET", "/v1/echo", 200)
        assert access["msg"].startswith("GET /v1/echo 200 ")
    assert lines[0]["trace_id"] != lines[2]["trace_id"]


def test_json_logs_from_instrument_go_to_stdout_and_hostile_messages_stay_one_line(capsys) -> None:
    register_secret("hunter2-webhook-token")
    _app, otel = create_app({"app": {"logs": {"format": "json"}}})
    try:
        log = logging.getLogger("hostile")
        log.warning('line1\nline2 "quoted" \x00\x1b[31m token=%s', "hunter2-webhook-token")
        log.warning("x" * (MAX_MESSAGE_CHARS * 3))
        log.warning("fake\n{\"level\":\"error\",\"tenant_id\":\"victim\"}", extra={"tenant_id": "acme"})
    finally:
        otel.shutdown()
    stdout = capsys.readouterr().out
    records = [json.loads(line) for line in stdout.splitlines() if '"logger":"hostile"' in line]
    assert len(records) == 3  # three records, three lines: nothing a message holds starts another
    first, huge, forged = records
    assert first["msg"] == 'line1\nline2 "quoted" \x00\x1b[31m token=***'
    assert "hunter2" not in stdout
    assert len(huge["msg"]) < MAX_MESSAGE_CHARS + 64 and huge["msg"].endswith("chars truncated]")
    assert (forged["level"], forged["tenant_id"], forged["service"]) == ("warning", "acme", "agent-api")
    assert logging.getLogger("hostile").handlers == []


def test_logfmt_and_json_formatters_escape_and_keep_reserved_keys() -> None:
    record = _record('say "hi"\nnext %s', "x=1", tenant_id="a b", msg_extra=3, level="forged")
    logfmt = LogfmtFormatter().format(record)
    assert "\n" not in logfmt
    assert ' level=warning logger=svc msg="say \\"hi\\"\\nnext x=1" tenant_id="a b" msg_extra=3' in logfmt
    assert "forged" not in logfmt
    parsed = json.loads(JSONFormatter().format(record))
    assert (parsed["level"], parsed["msg"], parsed["tenant_id"]) == ("warning", 'say "hi"\nnext x=1', "a b")


def test_exporter_log_format_json_and_logfmt_default() -> None:
    config = {"sources": {"probes": [{"name": "down", "url": f"http://127.0.0.1:{free_port()}/healthz"}]}}
    for args, check in (
        (["--log.format", "json"], lambda line: json.loads(line)["msg"].startswith("listening on port")),
        ([], lambda line: line.startswith("ts=") and ' level=info ' in line and 'msg="listening on port' in line),
    ):
        proc = ExporterProcess("probes", config, extra_args=args)
        try:
            line = wait_for(lambda p=proc: next((x for x in p.log_text().splitlines() if "listening on port" in x),
                                                None), 10, what="listening line")
            assert check(line), line
        finally:
            proc.close()
