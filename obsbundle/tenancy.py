"""Resolve a source's names (schemas, roles, keys, namespaces) to a `tenant_id` label value.

The label is always `tenant_id`. Reserved values start with `_` and a real tenant id never does:

- `_shared`: a figure that belongs to the whole server
- `_unassigned`: data that matches no tenancy rule
- `_overflow`: a tenant past the cardinality cap (`tenancy.max_tenants` distinct ids per process)

Admission to the cap is sticky while a tenant keeps being seen, so its series never flap between
its own id and `_overflow`; see TenantResolver for authoritative vs volatile sources and release.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obsbundle.settings import Settings, Tenancy

LABEL = "tenant_id"
SHARED = "_shared"
UNASSIGNED = "_unassigned"
OVERFLOW = "_overflow"
RESERVED = frozenset({SHARED, UNASSIGNED, OVERFLOW})

MAX_LENGTH = 63
HASH_HEX = 16  # 64 bits: ~3e-10 chance of any accidental collision among 100,000 folded names
_VALID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_FOLDED = re.compile(rf".*-[0-9a-f]{{{HASH_HEX}}}")
_INVALID_RUN = re.compile(r"[^a-z0-9_.-]+")


def raw_bytes(raw: str | bytes) -> bytes:
    """The bytes a name was made of: bytes as given; text as UTF-8, with surrogate escapes (how
    non-UTF-8 Redis keys are decoded) turned back into their original bytes."""
    if isinstance(raw, bytes):
        return raw
    try:
        return raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return raw.encode("utf-8", "surrogatepass")


def normalize(raw: str | bytes) -> str:
    """A safe, bounded tenant id for a captured name; distinct names never share one.

    The scheme is injective by construction, with two disjoint kinds of output:

    - pass-through: a name already in the label alphabet (lowercase ASCII letters, digits, `_.-`,
      alphanumeric first, at most 63 chars) that does NOT end in `-` plus 16 hex digits is kept as is;
    - folded: anything else becomes `<folded stem>-<16 hex digits of sha256(raw bytes)>`.

    Every folded id ends in `-` plus 16 hex digits and no pass-through id does, so a clean name can
    never equal another name's folded form (a clean name that looks folded is folded itself). Two
    folded ids are equal only if 64-bit hashes of the original bytes are, so `Acme`/`acme`,
    `\xff\xfe`/`\xfe\xff` and two 300-char names sharing a prefix stay apart.
    """
    data = raw_bytes(raw)
    text = raw if isinstance(raw, str) else data.decode("utf-8", "surrogateescape")
    if _VALID.fullmatch(text) and not _FOLDED.fullmatch(text):
        return text
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    folded = _INVALID_RUN.sub("_", folded).strip("_.-")
    digest = hashlib.sha256(data).hexdigest()[:HASH_HEX]
    stem = folded[: MAX_LENGTH - len(digest) - 1].rstrip("_.-")
    return f"{stem}-{digest}" if stem else f"t-{digest}"


def is_reserved(tenant_id: str) -> bool:
    return tenant_id.startswith("_")


VOLATILE_KINDS = frozenset({"application_name", "client_name"})  # set by any client, per session


class TenantResolver:
    """Applies one source's rules (kind -> regex with a `tenant` group) and the cardinality cap.

    The cap can't be poisoned: ids from authoritative sources (schemas, roles, databases, key
    prefixes, namespaces) share `max_tenants` slots; ids first seen only in volatile names
    (`application_name`, Redis client names), which any client can set, get their own smaller
    budget `max_volatile_tenants`, so junk session names can never take a real tenant's slot. A
    volatile id later seen from an authoritative source moves to an authoritative slot (same id).

    An id not seen for `release_after` seconds is released. No series flaps because of it: a
    released id had no samples for that whole time, and if it returns it is admitted again under
    the same id (ids are a pure function of the name), or, if the cap is full by then, reported as
    `_overflow` from then on. Admitted ids never move to `_overflow` while they keep being seen.

    `overflowed` counts distinct ids refused admission (once per id, however many passes or
    scrapes see it), the same in every exporter.
    """

    def __init__(
        self,
        rules: Mapping[str, str | None],
        max_tenants: int,
        max_volatile_tenants: int | None = None,
        release_after: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = {kind: re.compile(pattern) for kind, pattern in rules.items() if pattern}
        self.max_tenants = max_tenants
        self.max_volatile = max(1, max_tenants // 10) if max_volatile_tenants is None else max_volatile_tenants
        self.release_after = release_after
        self._clock = clock
        self._seen: dict[str, float] = {}  # admitted id -> last seen
        self._volatile: set[str] = set()  # admitted ids seen only from volatile sources so far
        self._refused: dict[str, float] = {}  # id -> last refused, for counting each id once
        self._next_sweep = clock() + min(60.0, release_after / 4)
        self._lock = threading.Lock()
        self.overflowed = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Settings, source: str) -> TenantResolver:
        """The resolver for one source kind (`postgres`, `redis`, `temporal`) of a loaded config."""
        from obsbundle.settings import settings  # settings -> config; keep this module import-light

        return cls.for_source(settings(config).tenancy, source)

    @classmethod
    def for_source(cls, tenancy: Tenancy, source: str) -> TenantResolver:
        """The resolver for one source kind from the typed `tenancy` section."""
        return cls(tenancy.rules(source), tenancy.max_tenants, tenancy.max_volatile_tenants, tenancy.release_after)

    def has_rule(self, kind: str) -> bool:
        return kind in self._rules

    def match(self, kind: str, name: str | None) -> str | None:
        """The normalised tenant id the rule captures from `name`, or None; no cap applied."""
        rule = self._rules.get(kind)
        if rule is None or not name:
            return None
        found = rule.search(name)
        if not found:
            return None
        captured = found.group("tenant")
        return normalize(captured) if captured else None

    def resolve(self, kind: str, name: str | None) -> str:
        """`tenant_id` for `name` under rule `kind`: a tenant, `_unassigned` or `_overflow`."""
        tenant = self.match(kind, name)
        return UNASSIGNED if tenant is None else self.admit(tenant, volatile=kind in VOLATILE_KINDS)

    def resolve_first(self, candidates: Iterable[tuple[str, str | None]]) -> str:
        """The first rule that matches among (kind, name) pairs, e.g. role then application_name."""
        for kind, name in candidates:
            tenant = self.match(kind, name)
            if tenant is not None:
                return self.admit(tenant, volatile=kind in VOLATILE_KINDS)
        return UNASSIGNED

    def admit(self, tenant: str, volatile: bool = False) -> str:
        """Apply the cap to an already-normalised tenant id seen now."""
        if tenant in RESERVED:
            return tenant
        with self._lock:
            now = self._clock()
            if now >= self._next_sweep:
                self._sweep(now)
            return self._admit(tenant, volatile, now)

    def admit_all(self, tenants: Iterable[str]) -> list[str]:
        """admit() for many authoritative ids seen now, under one lock and one clock read (a
        PostgreSQL scrape admits every schema's tenant: 10,000 calls at 10,000 tenants)."""
        with self._lock:
            now = self._clock()
            if now >= self._next_sweep:
                self._sweep(now)
            return [tenant if tenant in RESERVED else self._admit(tenant, False, now) for tenant in tenants]

    def _admit(self, tenant: str, volatile: bool, now: float) -> str:
        """The cap for one tenant; the caller holds the lock."""
        if tenant in self._seen:
            self._seen[tenant] = now
            if not volatile and tenant in self._volatile and self._authoritative_room():
                self._volatile.discard(tenant)
            return tenant
        if self._authoritative_room() if not volatile else len(self._volatile) < self.max_volatile:
            self._seen[tenant] = now
            if volatile:
                self._volatile.add(tenant)
            self._refused.pop(tenant, None)
            return tenant
        if tenant not in self._refused:
            self.overflowed += 1
        if tenant in self._refused or len(self._refused) < 100_000:
            self._refused[tenant] = now
        return OVERFLOW

    def _authoritative_room(self) -> bool:
        return len(self._seen) - len(self._volatile) < self.max_tenants

    def _sweep(self, now: float) -> None:
        cutoff = now - self.release_after
        for tenant in [t for t, seen in self._seen.items() if seen < cutoff]:
            del self._seen[tenant]
            self._volatile.discard(tenant)
        for tenant in [t for t, seen in self._refused.items() if seen < cutoff]:
            del self._refused[tenant]
        self._next_sweep = now + min(60.0, self.release_after / 4)

    @property
    def admitted(self) -> int:
        with self._lock:
            return len(self._seen)
