"""Per-tenant keyspace accounting by a background, incremental SCAN.

Why not on scrape: counting keys per prefix is O(keyspace). redis_exporter's `check-key-groups`
walks the whole keyspace on every scrape, so its scrape time grows with the keyspace (seconds at
1M keys). Here a thread walks it with `SCAN cursor COUNT count`; each reply is cut into lookups of
`batch` keys, and for each a short read-only script returns every key's TYPE and TTL state (and
MEMORY USAGE for sampled keys). Every Redis call is bounded (about 0.7 us per key for SCAN, 2 us
per key for a lookup on a 1M-key dataset: about 0.7 ms and 0.4 ms at the defaults), and /metrics
serves the last complete pass instantly.

Cost control:
- two connections keep the next SCAN and the current lookups in flight, so Redis and Python work
  in parallel and a pass needs about one round-trip wait per `count` keys;
- work runs in time slices (`slice`), with a `rest` between them, whatever the scrapes do: a
  scrape never starts, waits for or pauses a pass. It serves the last complete pass as the bytes
  rendered once when that pass completed (collectors/runtime/exposition.py), so it needs the GIL
  for its own few hundred series only;
- at each slice boundary a PING measures Redis's latency to other clients; above `busy_latency`
  the scanner backs off for `busy_pause` until Redis is quiet again.

Memory is estimated per tenant: the first `memory_min_samples` keys seen of each tenant, then one
in every 1/`memory_sample_ratio`, get MEMORY USAGE; the estimate is keys x mean(sampled). It is
exact for tenants with no more keys than `memory_min_samples`; the error bound is in docs/redis.md.

SCAN may return a key twice if the hash table is resized during the pass (a Redis guarantee
trade-off); such a key is counted twice for that pass only.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.connection import Connection

try:  # hiredis packs a 500-key command in C, skipping redis-py's per-argument Python loop
    from hiredis import pack_command

    # hiredis's stub types the command as a 1-tuple; it takes any number of arguments
    _hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None = pack_command
except ImportError:  # pragma: no cover - hiredis is a declared dependency
    _hiredis_pack = None

from collectors.metricset import MetricSet
from collectors.redis.connection import RedisTarget
from collectors.runtime import BackgroundRefresh, CollectorError
from obsbundle.catalog import Catalog
from obsbundle.settings import RedisScan
from obsbundle.tenancy import SHARED, UNASSIGNED, TenantResolver, normalize

log = logging.getLogger("obsbundle.redis")

TYPES = {1: "string", 2: "list", 3: "set", 4: "zset", 5: "hash", 6: "stream", 7: "other"}

# Per key: 0 if it vanished, else type code * 2 + 1 if it has no TTL. Then MEMORY USAGE (or -1)
# for each key index in ARGV. `no-writes` lets Redis skip write/OOM bookkeeping (half the cost)
# and run it on read-only replicas; Redis < 7 gets the same body without the shebang.
_LUA_BODY = """
local T = {string=1, list=2, set=3, zset=4, hash=5, stream=6}
local out = {}
local n = #KEYS
for i = 1, n do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t == 'none' then
    out[i] = 0
  else
    local c = (T[t] or 7) * 2
    if redis.call('PTTL', KEYS[i]) == -1 then c = c + 1 end
    out[i] = c
  end
end
for j = 1, #ARGV do
  out[n + j] = redis.call('MEMORY', 'USAGE', KEYS[tonumber(ARGV[j])]) or -1
end
return out
"""
LUA = "#!lua flags=no-writes\n" + _LUA_BODY

KEYSPACE_FAMILIES = (
    "redis_tenant_keys", "redis_tenant_keys_without_ttl", "redis_tenant_keys_by_type",
    "redis_tenant_memory_bytes", "redis_keyspace_pass_memory_sampled_keys",
    "redis_keyspace_pass_age_seconds", "redis_keyspace_pass_duration_seconds",
    "redis_keyspace_pass_keys_scanned", "redis_keyspace_pass_longest_call_seconds",
    "redis_keyspace_pass_paused_seconds", "redis_keyspace_pass_cpu_seconds",
    "redis_keyspace_passes_total", "redis_keyspace_pass_errors_total",
)


# Not configurable: how soon a failed pass is retried.
RETRY_INTERVAL = 5.0


class _Tally:
    """One tenant's counters for the pass in progress."""

    __slots__ = ("codes", "mem_n", "mem_sum", "seen")

    def __init__(self) -> None:
        self.codes = [0] * 16
        self.seen = 0
        self.mem_n = 0
        self.mem_sum = 0.0

    @property
    def keys(self) -> int:
        return sum(self.codes[2:])

    @property
    def no_ttl(self) -> int:
        return sum(self.codes[3::2])

    def by_type(self) -> dict[str, int]:
        return {name: self.codes[2 * c] + self.codes[2 * c + 1] for c, name in TYPES.items()
                if self.codes[2 * c] + self.codes[2 * c + 1]}

    def memory_estimate(self) -> float | None:
        if not self.mem_n:
            return None
        return self.keys * self.mem_sum / self.mem_n


@dataclass
class PassResult:
    """A complete pass: per-tenant tallies and what it cost."""

    tallies: dict[str, _Tally] = field(default_factory=dict)
    keys_scanned: int = 0
    duration: float = 0.0
    cpu: float = 0.0
    longest_call: float = 0.0
    paused: float = 0.0
    finished_at: float = 0.0
    redis_calls: int = 0


def _text(key: bytes) -> str:
    try:
        return key.decode()
    except UnicodeDecodeError:  # keep the bytes: normalize() hashes them back, so \xff\xfe != \xfe\xff
        return key.decode("utf-8", "surrogateescape")


class _Stopped(Exception):
    pass


class _Batch:
    __slots__ = ("keys", "memory", "sent_at", "tallies")

    def __init__(self, keys: list[bytes], tallies: list[_Tally], memory: list[int]) -> None:
        self.keys, self.tallies, self.memory = keys, tallies, memory
        self.sent_at = 0.0


class KeyspaceScanner(BackgroundRefresh):
    """Background collector: serves the last complete pass; `refresh_once()` runs one synchronously."""

    def __init__(
        self,
        target: RedisTarget,
        resolver: TenantResolver,
        key_rule: str | None,
        settings: RedisScan,
        catalog: Catalog,
    ) -> None:
        super().__init__("keyspace", target.name, self._refresh, catalog, settings.interval,
                         budget=2.0, retry_interval=RETRY_INTERVAL)
        self.target = target
        self.resolver = resolver
        self.settings = settings
        self._catalog = catalog
        self._search = re.compile(key_rule).search if key_rule else None
        self._client: redis.Redis | None = None
        self._script_sha: str | None = None
        self._use_script = True
        # state of the pass in progress (only the refreshing thread touches it)
        self._tallies: dict[str, _Tally] = {}
        self._by_raw: dict[str | None, _Tally] = {}
        self._result = PassResult()
        self.last_pass: PassResult | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        # The scanner is CPU-bound Python between socket waits. With the default 5 ms GIL switch
        # interval every hand-off to a scrape thread can cost 5 ms; 1 ms keeps /metrics latency
        # close to its idle value while a pass runs.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        super().start()

    def close(self, join_timeout: float = 0.0) -> None:
        super().close(join_timeout or self.target.socket_timeout + 1)
        if self._client is not None:
            self._client.close()

    # -- serving -----------------------------------------------------------------------------

    def collect(self, out: MetricSet, deadline: float) -> None:
        """The last complete pass plus pass counters; raises (after adding them) if the latest
        pass failed, so the collector reports the error while the previous figures stay served.
        Touches no scanner state: the pass in progress neither waits for nor yields to a scrape."""
        out.declare_empty(KEYSPACE_FAMILIES)
        shared = {"tenant_id": SHARED}
        out.add("redis_keyspace_passes_total", self.refreshes, shared)
        out.add("redis_keyspace_pass_errors_total", self.failures, shared)
        if self.last_pass is not None:
            out.add("redis_keyspace_pass_age_seconds", self.data_age(), shared)
        super().collect(out, deadline)

    def _refresh(self, out: MetricSet) -> None:
        result = self.run_pass()
        for tenant, tally in result.tallies.items():
            keys = tally.keys
            if not keys:
                continue
            labels = {"tenant_id": tenant}
            out.add("redis_tenant_keys", keys, labels)
            out.add("redis_tenant_keys_without_ttl", tally.no_ttl, labels)
            for type_name, count in tally.by_type().items():
                out.add("redis_tenant_keys_by_type", count, {**labels, "type": type_name})
            out.add("redis_tenant_memory_bytes", tally.memory_estimate(), labels)
        shared = {"tenant_id": SHARED}
        out.add("redis_keyspace_pass_duration_seconds", result.duration, shared)
        out.add("redis_keyspace_pass_keys_scanned", result.keys_scanned, shared)
        out.add("redis_keyspace_pass_memory_sampled_keys", sum(t.mem_n for t in result.tallies.values()), shared)
        out.add("redis_keyspace_pass_longest_call_seconds", result.longest_call, shared)
        out.add("redis_keyspace_pass_paused_seconds", result.paused, shared)
        out.add("redis_keyspace_pass_cpu_seconds", result.cpu, shared)
        self.last_pass = result

    # -- one pass ----------------------------------------------------------------------------

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = self.target.client(decode_responses=False)
        return self._client

    def run_pass(self) -> PassResult:
        """Walk the whole keyspace once; raises on a Redis failure (the caller keeps the old pass)."""
        pool = self._redis().connection_pool
        conns: list[Connection] = []
        ok = False
        try:
            conns.append(pool.get_connection())
            conns.append(pool.get_connection())
            result = self._walk(*conns)
            ok = True
            return result
        finally:
            for conn in conns:
                if not ok:
                    conn.disconnect()  # replies may still be in flight: never reuse this socket
                pool.release(conn)

    def _walk(self, scan_conn: Connection, look_conn: Connection) -> PassResult:
        s = self.settings
        result = PassResult()
        started, cpu_started = time.monotonic(), time.thread_time()
        self._prepare_lookup(look_conn)
        self._tallies, self._by_raw, self._result = {}, {}, result

        scan_sent = self._send_scan(scan_conn, 0)
        inflight: list[_Batch] = []
        slice_started = time.monotonic()
        while True:
            reply = scan_conn.read_response()
            self._note_call(result, scan_sent)
            cursor, keys = int(reply[0]), reply[1]
            now = time.monotonic()
            rest = cursor != 0 and (now - slice_started >= s.slice or self._stop.is_set())
            if cursor != 0 and not rest:
                scan_sent = self._send_scan(scan_conn, cursor)  # Redis scans on while we work
            batches = [self._prepare(keys[i:i + s.batch]) for i in range(0, len(keys), s.batch)]
            self._send_lookups(look_conn, batches)
            result.keys_scanned += len(keys)
            for batch in inflight:
                self._finish(look_conn, batch)
            inflight = batches
            if cursor == 0 or rest:
                for batch in inflight:
                    self._finish(look_conn, batch)
                inflight = []
                if cursor == 0:
                    break
                self._rest(scan_conn, result)
                slice_started = time.monotonic()
                scan_sent = self._send_scan(scan_conn, cursor)

        result.tallies = self._tallies
        result.duration = time.monotonic() - started
        result.cpu = time.thread_time() - cpu_started
        result.finished_at = time.monotonic()
        self._tallies = {}
        self._by_raw = {}
        return result

    # -- pacing ------------------------------------------------------------------------------

    def _rest(self, conn: Connection, result: PassResult) -> None:
        """Between slices: rest, then back off while Redis answers others slowly."""
        s = self.settings
        pause_until = time.monotonic() + s.rest
        while True:
            delay = pause_until - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                raise _Stopped
            if self._stop.is_set():
                raise _Stopped
            sent = time.monotonic()
            conn.send_command("PING")
            conn.read_response()
            latency = time.monotonic() - sent
            if latency <= s.busy_latency:
                return
            result.paused += s.busy_pause
            pause_until = time.monotonic() + s.busy_pause

    # -- batches -----------------------------------------------------------------------------

    def _send_scan(self, conn: Connection, cursor: int) -> float:
        conn.send_command("SCAN", cursor, "COUNT", self.settings.count)
        return time.monotonic()

    def _note_call(self, result: PassResult, sent: float) -> None:
        result.redis_calls += 1
        elapsed = time.monotonic() - sent
        if elapsed > result.longest_call:
            result.longest_call = elapsed

    def _tally_for(self, raw: str | None) -> _Tally:
        tenant = UNASSIGNED if not raw else self.resolver.admit(normalize(raw))
        tally = self._tallies.get(tenant)
        if tally is None:
            tally = self._tallies[tenant] = _Tally()
        if len(self._by_raw) < 100_000:  # a rule capturing per-key ids must not grow this forever
            self._by_raw[raw] = tally
        return tally

    def _prepare(self, keys: list[bytes]) -> _Batch:
        """Resolve each key's tenant and choose which keys get MEMORY USAGE (1-based indexes).

        This loop is the scanner's main CPU cost (about 1 us per key), hence the local names.
        """
        search, by_raw, tally_for = self._search, self._by_raw, self._tally_for
        floor, stride = self.settings.memory_min_samples, max(1, round(1.0 / self.settings.memory_sample_ratio))
        if search is None:
            raws: list[str | None] = [None] * len(keys)
        else:
            raws = [m.group("tenant") if (m := search(_text(key))) else None for key in keys]
        tallies = [by_raw.get(raw) or tally_for(raw) for raw in raws]
        memory: list[int] = []
        for i, tally in enumerate(tallies, 1):
            seen = tally.seen = tally.seen + 1
            if seen <= floor or (seen - floor) % stride == 0:
                memory.append(i)
        return _Batch(keys, tallies, memory)

    def _prepare_lookup(self, conn: Connection) -> None:
        """Load the lookup script once per connection; fall back to plain pipelines if denied."""
        if not self._use_script:
            return
        for body in (LUA, _LUA_BODY):
            conn.send_command("SCRIPT", "LOAD", body)
            try:
                sha = conn.read_response()
            except redis.exceptions.NoPermissionError:
                log.info("%s: scripting not permitted; using pipelined TYPE/PTTL", self.target.describe())
                self._use_script = False
                return
            except redis.ResponseError:
                continue  # Redis < 7 rejects the shebang: try the plain body
            self._script_sha = sha.decode() if isinstance(sha, bytes) else sha
            return
        self._use_script = False

    def _send_lookups(self, conn: Connection, batches: list[_Batch]) -> None:
        """All of one SCAN reply's lookups in one write: Redis runs them back to back, each short."""
        if not batches:
            return
        packed: list[bytes] = []
        for batch in batches:
            if self._use_script:
                command = (b"EVALSHA", self._script_sha, len(batch.keys), *batch.keys, *batch.memory)
                packed += [_hiredis_pack(command)] if _hiredis_pack else conn.pack_command(*command)
            else:
                commands: list[tuple[Any, ...]] = []
                for key in batch.keys:
                    commands += [("TYPE", key), ("PTTL", key)]
                commands += [("MEMORY", "USAGE", batch.keys[i - 1]) for i in batch.memory]
                packed += conn.pack_commands(commands)
        conn.send_packed_command(packed, check_health=False)
        sent = time.monotonic()
        for batch in batches:
            batch.sent_at = sent

    def _read_lookup(self, conn: Connection, batch: _Batch) -> list[int]:
        if self._use_script:
            try:
                reply = conn.read_response()
            except redis.exceptions.NoScriptError:  # SCRIPT FLUSH mid-pass: the next pass reloads it
                raise CollectorError("script_flushed") from None
            self._note_call(self._result, batch.sent_at)
            script_codes: list[int] = reply  # the lookup script replies with a list of integers
            return script_codes
        n = len(batch.keys)
        replies = [conn.read_response() for _ in range(2 * n + len(batch.memory))]
        self._note_call(self._result, batch.sent_at)
        codes: list[int] = []
        for i in range(n):
            kind = replies[2 * i]
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            code = 0 if kind == "none" else next((c for c, t in TYPES.items() if t == kind), 7) * 2
            codes.append(code + 1 if code and replies[2 * i + 1] == -1 else code)
        return codes + [-1 if m is None else int(m) for m in replies[2 * n:]]

    def _finish(self, conn: Connection, batch: _Batch) -> None:
        reply = self._read_lookup(conn, batch)
        tallies = batch.tallies
        for tally, code in zip(tallies, reply, strict=False):
            tally.codes[code] += 1
        n = len(tallies)
        for j, index in enumerate(batch.memory):
            used = reply[n + j]
            if used >= 0 and reply[index - 1]:
                tally = tallies[index - 1]
                tally.mem_n += 1
                tally.mem_sum += used
