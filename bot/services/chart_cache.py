"""A content-addressed cache for analyses and charts, with single-flight, in process memory only.

A key is a digest of every input that changes the output (the measure's settings, its data frame's content, the
day, the window, the view, the PDSA cycle marks), so there is no invalidation code: a new data point, an undo,
an import, a changed setting, a new cycle or a new day gives a new key, and the old entry simply ages out of
the LRU. When several people ask for the same key at once, the first computes it and the others wait for that
result (single-flight) instead of computing it again; an exception is not cached and is raised to each waiter.

What is stored must be immutable to its callers: charts are frozen (PNG bytes and strings); analyses are
stored pickled and every caller gets its own copy (see `bot/services/equity_analysis.py`).

Privacy: keys are digests and values stay in this process's memory; nothing is written to disk. The bound is
set from the settings (`MFI_CHART_CACHE_MB`, `MFI_CHART_CACHE_ENTRIES`; 0 MB turns the cache off) by
`configure`, which `bot.runtime` calls at start-up.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")

DEFAULT_MAX_BYTES = (
    64 * 1024 * 1024
)  # about 250 charts of 3 years of weekly data (~200 KB) with their analyses
DEFAULT_MAX_ENTRIES = 2048


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int  # computed here
    waits: int  # waited for another thread computing the same key (single-flight)
    evictions: int
    entries: int
    bytes: int


class _Flight:
    """One computation in progress: the waiters block on `done`, then read `value` or `error`."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class ContentCache:
    """LRU by entries and by bytes (each value's size as given), thread-safe, single-flight per key."""

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._hits = self._misses = self._waits = self._evictions = 0

    def configure(self, *, max_bytes: int, max_entries: int) -> None:
        """Change the bounds (0 bytes or 0 entries: keep nothing; computations still share in flight)."""
        with self._lock:
            self._max_bytes, self._max_entries = max(0, max_bytes), max(0, max_entries)
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._hits = self._misses = self._waits = self._evictions = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._hits, self._misses, self._waits, self._evictions, len(self._entries), self._bytes
            )

    def get_or_compute(self, key: str, compute: Callable[[], T], *, size: Callable[[T], int]) -> T:
        """The value stored under `key`, or `compute()`'s result (stored when it fits); callers asking for the
        same key while it is computed wait for it. `compute` runs without the lock held."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return found[0]  # type: ignore[no-any-return]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self._misses += 1
            else:
                self._waits += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[no-any-return]
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                flight.error = exc
                del self._flights[key]
            flight.done.set()
            raise
        with self._lock:
            flight.value = value
            del self._flights[key]
            self._store(key, value, size(value))
        flight.done.set()
        return value

    def _store(self, key: str, value: Any, nbytes: int) -> None:
        if nbytes > self._max_bytes or self._max_entries == 0:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        self._entries[key] = (value, nbytes)
        self._bytes += nbytes
        self._evict()

    def _evict(self) -> None:
        while self._entries and (len(self._entries) > self._max_entries or self._bytes > self._max_bytes):
            _, (_, nbytes) = self._entries.popitem(last=False)
            self._bytes -= nbytes
            self._evictions += 1


# One cache per process, shared by /equity, its buttons, the Home summary grid and /equity missing.
CACHE = ContentCache()


def configure(*, max_mb: float, max_entries: int) -> None:
    CACHE.configure(max_bytes=int(max_mb * 1024 * 1024), max_entries=max_entries)


# ---------------------------------------------------------------- keys


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of a data frame's content: column names, dtypes, index and every value."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(repr(len(frame)).encode())
    if len(frame):
        h.update(pd.util.hash_pandas_object(frame, index=True, categorize=True).to_numpy().tobytes())
    return h.hexdigest()


def digest(*parts: object) -> str:
    """A key from plain values (strings, numbers, dates, None, tuples, lists, sorted dicts and frozen
    dataclasses), by their repr: two keys are equal only when every part is."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()
