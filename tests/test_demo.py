"""`obsbundle demo` (what `make demo` runs) as a user runs it: a subprocess, read from its output.

Checks the per-tenant table against the seed, per-tenant series from every exporter in its
Prometheus, the seeded incidents arriving at the sink as a page, Slack messages and emails that
name the seeded tenants, and that Ctrl-C leaves no process running and no port listening.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from obsbundle.demo.alerting import ROUTING_KEY
from obsbundle.services import VENV_BIN, port_open, wait_for, which

ROOT = Path(__file__).resolve().parent.parent
WITHIN = 240  # the issue: notifications within 4 minutes of the start (3 on a quiet machine)


class Demo:
    """The demo process with its output collected line by line as it prints."""

    def __init__(self, *args: str) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [which("obsbundle", VENV_BIN), "demo", "--config", str(ROOT / "obsbundle.yaml"), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self.stderr = ""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, marker: str) -> int:
        def found() -> int | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"demo exited {self.proc.returncode}:\n{self.text}\n{self.stderr}")
            return next((i + 1 for i, line in enumerate(self.lines) if line.startswith(marker)), None)

        return int(wait_for(found, WITHIN - (time.monotonic() - self.started), 0.5, what=marker))

    def blocks(self) -> list[dict[str, str]]:
        """The notification blocks printed so far: channel, severity, alertname, tenants, summary, runbook."""
        out = []
        for i, line in enumerate(self.lines):
            head = re.match(r">>> \+\s*\d+s  (.+?) \| (\w*) \| (\S+)", line)
            if head and i + 3 < len(self.lines):
                fields = dict(re.match(r"\s+(\w+): (.*)", x).groups() for x in self.lines[i + 1:i + 4])  # type: ignore[union-attr]
                out.append({"channel": head[1], "severity": head[2], "alertname": head[3], **fields})
        return out

    def descendants(self) -> set[int]:
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(stat.parent.name))
        found, todo = set(), [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.add(pid)
            todo += children.get(pid, [])
        return found - {self.proc.pid}

    def ports(self) -> set[int]:
        return {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", self.text)}

    def interrupt(self) -> tuple[set[int], set[int]]:
        """SIGINT as Ctrl-C sends it; the processes and ports that were running just before."""
        pids, ports = self.descendants(), self.ports()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        return pids, ports

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _table(lines: list[str]) -> dict[str, dict[str, str]]:
    header = next(i for i, line in enumerate(lines) if line.startswith("tenant_id"))
    columns = [c.strip() for c in lines[header].split("  ") if c.strip()]
    rows = {}
    for line in lines[header + 1:]:
        if not line.strip():
            break
        rows[line.split()[0]] = dict(zip(columns[1:], line.split()[1:], strict=True))
    return rows


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_pages_slacks_and_emails_the_seeded_incidents_then_ctrl_c_leaves_nothing() -> None:
    demo = Demo()
    try:
        demo.wait_line("notifications (as they arrive)")
        table = _table(demo.lines)
        # Seed: weight w -> 10w agents + 1000w tasks rows, 500w strings + 20w hashes, 2w workflows;
        # beta's queue has no worker (the temporal-backlog incident), so its 4 workflows wait.
        for tenant, weight in {"acme": 3, "beta": 2, "gamma": 1}.items():
            row = table[tenant]
            assert row["PG live rows"] == f"{1010 * weight:,}"
            assert row["Redis keys"] == f"{520 * weight:,}"
            assert row["Temporal running"] == f"{2 * weight}"
            assert row["Temporal backlog"] == ("4" if tenant == "beta" else "0")
            assert float(row["API req/s"]) > 0
        assert table["_unassigned"]["Redis keys"] == "100"  # cache:global:* matches no tenant rule
        assert "14 rule files loaded" in demo.text

        prometheus = re.search(r"prometheus\s+(http://127\.0\.0\.1:\d+)", demo.text)[1]  # type: ignore[index]
        jobs = httpx.get(f"{prometheus}/api/v1/query", timeout=10, params={
            "query": 'count by (job) ({tenant_id=~"acme|beta|gamma", job!=""})'}).json()["data"]["result"]
        assert {r["metric"]["job"] for r in jobs} >= {"postgres", "redis", "temporal", "app", "worker"}

        def arrived() -> list[dict[str, str]] | None:
            blocks = demo.blocks()
            wanted = [
                any(b["channel"].startswith("PAGE") and b["alertname"] == "TemporalQueueWithoutWorkers"
                    and "beta" in b["tenants"] for b in blocks),
                any(b["channel"] == "Slack #alerts" and b["alertname"] == "TenantLatencyP95High"
                    and "gamma" in b["tenants"] for b in blocks),
                any(b["channel"].startswith("email") and b["alertname"] == "PostgresIdleInTransaction"
                    and "acme" in b["tenants"] for b in blocks),
                any(b["alertname"] in ("TenantErrorRatioHigh", "TenantAvailabilityBudgetBurn")
                    and "beta" in b["tenants"] for b in blocks),
            ]
            return blocks if all(wanted) else None

        blocks = wait_for(arrived, WITHIN - (time.monotonic() - demo.started), 1, what="the seeded notifications")
        for block in blocks:
            assert block["runbook"].endswith(f"#{block['alertname'].lower()}")
        # Healthy tenants and pseudo-tenants never page.
        pages = [b for b in blocks if b["channel"].startswith("PAGE")]
        assert all("_unassigned" not in b["tenants"] and "acme" not in b["tenants"] for b in pages)
        assert ROUTING_KEY not in demo.text

        pids, ports = demo.interrupt()
    finally:
        demo.kill()
    assert demo.proc.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr and "Traceback" not in demo.text
    assert len(pids) >= 8  # postgres, redis, temporal, alertmanager, prometheus, exporters, node, uvicorn
    assert [pid for pid in pids if _alive(pid)] == []
    assert len(ports) >= 12
    assert [port for port in sorted(ports) if port_open(port)] == []


def test_demo_postgres_down_is_one_page_for_the_shared_cause() -> None:
    demo = Demo("--incident", "postgres-down", "--duration", "55s")
    try:
        demo.proc.wait(WITHIN)
    finally:
        demo.kill()
    assert demo.proc.returncode == 0, demo.stderr
    assert "incident postgres-down: stopping PostgreSQL now" in demo.text
    pages = [b for b in demo.blocks() if b["channel"].startswith("PAGE") and b["severity"] == "critical"]
    assert [b["alertname"] for b in pages] == ["PostgresDown"], demo.text
    assert "all tenants" in pages[0]["tenants"]
    # No tenant-scoped notification at all: every tenant stayed healthy, only the server went away.
    assert [b for b in demo.blocks() if re.match(r"\d+ tenant\(s\)", b["tenants"])] == []
