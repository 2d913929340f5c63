"""Resolve a source's names (schemas, roles, keys, namespaces) to a `tenant_id` label value.

The label is always `tenant_id`. Reserved values start with `_` and a real tenant id never does:

- `_shared`: a figure that belongs to the whole server
- `_unassigned`: data that matches no tenancy rule
- `_overflow`: a tenant past the cardinality cap (`tenancy.max_tenants` distinct ids per process)

Admission to the cap is sticky for the life of the process, so a tenant's series never flap
between its own id and `_overflow` from one scrape to the next.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from obsbundle.settings import Settings, Tenancy

LABEL = "tenant_id"
SHARED = "_shared"
UNASSIGNED = "_unassigned"
OVERFLOW = "_overflow"
RESERVED = frozenset({SHARED, UNASSIGNED, OVERFLOW})

MAX_LENGTH = 63
_VALID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_INVALID_RUN = re.compile(r"[^a-z0-9_.-]+")


def normalize(raw: str) -> str:
    """A safe, bounded, collision-free tenant id for a captured name.

    Already-clean ids (lowercase ASCII letters, digits, `_.-`, first char alphanumeric, at most 63
    chars) pass through unchanged. Anything else is folded to that alphabet and suffixed with a
    hash of the original, so `Acme` and `acme` (or two 300-char names sharing a prefix) stay apart.
    """
    if _VALID.fullmatch(raw):
        return raw
    folded = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii").lower()
    folded = _INVALID_RUN.sub("_", folded).strip("_.-")
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    stem = folded[: MAX_LENGTH - len(digest) - 1].rstrip("_.-")
    return f"{stem}-{digest}" if stem else f"t-{digest}"


def is_reserved(tenant_id: str) -> bool:
    return tenant_id.startswith("_")


class TenantResolver:
    """Applies one source's rules (kind -> regex with a `tenant` group) and the cardinality cap."""

    def __init__(self, rules: Mapping[str, str | None], max_tenants: int) -> None:
        self._rules = {kind: re.compile(pattern) for kind, pattern in rules.items() if pattern}
        self.max_tenants = max_tenants
        self._admitted: set[str] = set()
        self._lock = threading.Lock()
        self.overflowed = 0  # names sent to _overflow since start, for a self-metric

    @classmethod
    def from_config(cls, config: Mapping | Settings, source: str) -> TenantResolver:
        """The resolver for one source kind (`postgres`, `redis`, `temporal`) of a loaded config."""
        from obsbundle.settings import settings  # settings -> config; keep this module import-light

        return cls.for_source(settings(config).tenancy, source)

    @classmethod
    def for_source(cls, tenancy: Tenancy, source: str) -> TenantResolver:
        """The resolver for one source kind from the typed `tenancy` section."""
        return cls(tenancy.rules(source), tenancy.max_tenants)

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
        return UNASSIGNED if tenant is None else self.admit(tenant)

    def resolve_first(self, candidates: Iterable[tuple[str, str | None]]) -> str:
        """The first rule that matches among (kind, name) pairs, e.g. role then application_name."""
        for kind, name in candidates:
            tenant = self.match(kind, name)
            if tenant is not None:
                return self.admit(tenant)
        return UNASSIGNED

    def admit(self, tenant: str) -> str:
        """Apply the cap to an already-normalised tenant id."""
        if tenant in RESERVED:
            return tenant
        with self._lock:
            if tenant in self._admitted:
                return tenant
            if len(self._admitted) >= self.max_tenants:
                self.overflowed += 1
                return OVERFLOW
            self._admitted.add(tenant)
            return tenant

    @property
    def admitted(self) -> int:
        with self._lock:
            return len(self._admitted)
