"""A loopback stand-in for Slack, PagerDuty, the dead man's switch and the on-call's mailbox.

Alertmanager reaches it through its real integrations (slack_configs, pagerduty_configs with
`url`, email_configs with a loopback smarthost), so what arrives is the exact payload a real
receiver would get. Each arrival is recorded and, for the demo, turned into a `Notification`
(channel, severity, tenants, summary, runbook) that `describe()` prints as one readable block.
"""

from __future__ import annotations

import email
import email.message
import html
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from http.server import BaseHTTPRequestHandler
from typing import Any

from obsbundle.services.http_target import QuietHTTPServer
from obsbundle.services.process import free_port

SLACK, PAGERDUTY, DEADMAN = "/slack", "/pagerduty", "/deadman"


@dataclass(frozen=True)
class Notification:
    """What an on-call reads first, whichever channel it came through."""

    channel: str  # "page (PagerDuty)", "Slack #alerts", "email oncall@..."
    status: str  # firing | resolved
    severity: str
    alertname: str
    tenants: str
    summary: str
    runbook: str
    at: float  # time.monotonic() on arrival


def describe(note: Notification, since: float) -> str:
    """One block per notification, aligned for a terminal."""
    head = f"{note.channel} | {note.severity} | {note.alertname}" + (" (resolved)" if note.status == "resolved" else "")
    return "\n".join([
        f">>> +{note.at - since:5.0f}s  {head}",
        f"      tenants: {note.tenants or '-'}",
        f"      summary: {note.summary or '-'}",
        f"      runbook: {note.runbook or '-'}",
    ])


_TITLE = re.compile(
    r"\[(?P<status>FIRING|RESOLVED)[^\]]*\] (?P<alertname>\S+)(?: \| tenant \S+)? \((?P<severity>\w*)\)")


def _title_fields(title: str) -> tuple[str, str, str]:
    found = _TITLE.search(title)
    if not found:
        return "firing", "", title
    return found["status"].lower(), found["severity"], found["alertname"]


def from_slack(body: dict[str, Any], at: float) -> Notification:
    attachment = (body.get("attachments") or [{}])[0]
    status, severity, alertname = _title_fields(str(attachment.get("title", "")))
    text = str(attachment.get("text", ""))
    tenants = re.search(r"\*Tenants affected:\* (.*)", text)
    summary = re.search(r"^\*(?!Tenants|Severity|Runbook|Dashboard)(.+?)\*", text, re.M)
    runbook = re.search(r"\*Runbook:\* (\S+)", text)
    return Notification(
        channel=f"Slack {body.get('channel', '')}".strip(), status=status, severity=severity, alertname=alertname,
        tenants=tenants[1].strip() if tenants else "", summary=summary[1] if summary else "",
        runbook=runbook[1] if runbook else "", at=at)


def from_pagerduty(body: dict[str, Any], at: float) -> Notification:
    payload = body.get("payload") or {}
    details = payload.get("custom_details") or {}
    return Notification(
        channel="PAGE (PagerDuty)", status="resolved" if body.get("event_action") == "resolve" else "firing",
        severity=str(details.get("severity") or payload.get("severity", "")),
        alertname=str(details.get("alertname", "")), tenants=str(details.get("tenants_affected", "")),
        summary=str(details.get("summary", "")), runbook=str(details.get("runbook_url", "")), at=at)


def from_email(message: email.message.EmailMessage, at: float) -> Notification:
    status, severity, alertname = _title_fields(str(message.get("Subject", "")))
    part = message.get_body(("html", "plain"))
    content = part.get_content() if part is not None else ""
    tenants = re.search(r"<b>Tenants affected:</b> (.*?)</p>", content, re.S)
    summary = re.search(r"<h3>(.*?)</h3>", content, re.S)
    runbook = re.search(r'<a href="([^"]*)">Runbook</a>', content)
    return Notification(
        channel=f"email {message.get('To', '')}".strip(), status=status, severity=severity, alertname=alertname,
        tenants=html.unescape(tenants[1]).strip() if tenants else "",
        summary=html.unescape(summary[1]).strip() if summary else "",
        runbook=html.unescape(runbook[1]) if runbook else "", at=at)


class NotificationSink:
    """HTTP paths /slack, /pagerduty and /deadman plus an SMTP server (aiosmtpd), all on loopback.

    `requests` keeps every HTTP body as it arrived and `messages` every accepted email;
    `on_notification` (if given) sees each one parsed, heartbeats to /deadman excepted.
    """

    def __init__(self, on_notification: Callable[[Notification], None] | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.requests: list[tuple[str, float, dict[str, Any]]] = []
        self.messages: list[email.message.EmailMessage] = []
        self.notifications: list[Notification] = []
        self.lock = threading.Lock()
        self.on_notification = on_notification
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink._record_http(self.path, json.loads(body or b"{}"))
                pagerduty = self.path.startswith(PAGERDUTY)
                reply = b'{"status":"success"}' if pagerduty else b"ok"
                self.send_response(202 if pagerduty else 200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="notification-sink").start()
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP verb at info
        self.smtp_port = free_port()
        self.smtp = Controller(self, hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.smtp_port}"

    def _record_http(self, path: str, body: dict[str, Any]) -> None:
        at = time.monotonic()
        with self.lock:
            self.requests.append((path, at, body))
        if path.startswith(SLACK):
            self._notify(from_slack(body, at))
        elif path.startswith(PAGERDUTY):
            self._notify(from_pagerduty(body, at))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, email.message.EmailMessage)
        with self.lock:
            self.messages.append(message)
        self._notify(from_email(message, time.monotonic()))
        return "250 OK"

    def _notify(self, note: Notification) -> None:
        with self.lock:
            self.notifications.append(note)
        if self.on_notification is not None:
            self.on_notification(note)

    def bodies(self, path: str, since: float = 0.0) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, at, body in self.requests if p == path and at >= since]

    def close(self) -> None:
        self.smtp.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
