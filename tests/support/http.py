"""Raw HTTP for the tests that send what a well-behaved client library refuses to build."""

from __future__ import annotations

import json
import socket
from typing import Any


def raw_request(port: int, head: bytes) -> bytes:
    """Send raw request bytes (headers httpx refuses to build) and return the raw response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among a service's output lines (uvicorn's own lines are skipped)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found
