"""Scrape bodies whose background part is rendered, and compressed, once per completed pass.

A background pass (`BackgroundRefresh`) renders its samples to text when it completes and
attaches that `Rendered` pass to every scrape's MetricSet. `ExpositionCache.render` joins the
attached families into one block, with its CRC-32 and its raw deflate stream, and keeps the block
until an attached pass changes. A scrape then renders only its own small part (per-scrape
collectors, live counters, self-metrics): at 10,000 tenants that is a few hundred series instead
of 40,000, and the block's bytes are the same object from one scrape to the next.

gzip (what Prometheus asks for) follows the same split: the block's deflate stream ends with a
sync flush (byte-aligned, not final), so the scrape's part is compressed on its own and appended
(RFC 1951 blocks concatenate), and the CRC-32 continues from the block's. Only the small part is
compressed per scrape.

`prepare` builds the block ahead of the scrape, in the refresh thread that just completed a pass
(the runner hooks it to BackgroundRefresh.on_refresh), so no scrape pays for joining and
compressing it; a scrape only builds one itself if its passes differ from the prepared ones.
"""

from __future__ import annotations

import struct
import threading
import zlib

from collectors.metricset import MetricSet, Rendered
from obsbundle.catalog import Catalog

__all__ = ["Exposition", "ExpositionCache"]

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown
_LEVEL = 1  # the cheapest level: /metrics is compressed for the wire, not for storage


class _Block:
    """The attached passes' families, as text, CRC-32 and an unfinished raw deflate stream."""

    def __init__(self, passes: tuple[Rendered, ...], mixed: frozenset[str], text: bytes) -> None:
        self.passes = passes
        self.mixed = mixed  # families the scrape's own part also has samples of: rendered per scrape
        self.text = text
        self.crc = zlib.crc32(text)
        compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.deflated = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)

    def serves(self, passes: tuple[Rendered, ...], mixed: frozenset[str]) -> bool:
        return (self.mixed == mixed and len(self.passes) == len(passes)
                and all(a is b for a, b in zip(self.passes, passes, strict=True)))


_EMPTY = _Block((), frozenset(), b"")


class Exposition:
    """One /metrics body in text format 0.0.4: the cached block, then the scrape's own families."""

    def __init__(self, block: _Block, own: bytes) -> None:
        self._block = block
        self._own = own
        self._gzipped: bytes | None = None
        self._body: bytes | None = None

    @property
    def body(self) -> bytes:
        """The uncompressed body (joined on first use only: Prometheus asks for gzip)."""
        if self._body is None:
            self._body = self._block.text + self._own if self._block.text else self._own
        return self._body

    @property
    def cached_bytes(self) -> bytes:
        """The part rendered once per pass (the same object until an attached pass changes)."""
        return self._block.text

    def gzipped(self) -> bytes:
        """The body as gzip; compresses only the scrape's own part (the block's is cached)."""
        if self._gzipped is None:
            compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
            tail = compressor.compress(self._own) + compressor.flush(zlib.Z_FINISH)
            crc = zlib.crc32(self._own, self._block.crc)
            trailer = struct.pack("<II", crc, (len(self._block.text) + len(self._own)) & 0xFFFFFFFF)
            self._gzipped = b"".join((_GZIP_HEADER, self._block.deflated, tail, trailer))
        return self._gzipped


class ExpositionCache:
    """Renders scrape results, re-rendering the background block only when a pass completes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the swap only; builds run outside it
        self._block = _EMPTY

    def render(self, result: MetricSet) -> Exposition:
        passes = tuple(result.attached)
        if not passes:
            return Exposition(_EMPTY, result.render_text())
        attached = set().union(*(p.lines for p in passes))
        mixed = frozenset(attached & result.own_names(with_samples=True))
        block = self._block
        if not block.serves(passes, mixed):
            block = self._build(passes, mixed, result.catalog)
        return Exposition(block, result.render_families((result.own_names() - attached) | mixed))

    def prepare(self, passes: tuple[Rendered, ...]) -> None:
        """Build the block for these passes now (a refresh thread, after a pass), not at a scrape;
        with the families the last scrape also had samples of left out, as that scrape did."""
        mixed = self._block.mixed
        if passes and not self._block.serves(passes, mixed):
            self._build(passes, mixed, passes[0].snapshot.catalog)

    @property
    def prepared(self) -> bytes:
        """The block's text as it stands (what the next scrape serves if its passes match)."""
        return self._block.text

    def _build(self, passes: tuple[Rendered, ...], mixed: frozenset[str], catalog: Catalog) -> _Block:
        """Join and compress outside the lock, so a scrape never waits for another's build."""
        families = MetricSet(catalog)
        families.attached = list(passes)
        block = _Block(passes, mixed, families.render_families(families.names() - mixed))
        with self._lock:
            self._block = block
        return block
