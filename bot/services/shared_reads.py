"""Reads shared by requests that arrive together, never older than the request.

Twenty people opening one measure's chart at the same moment each need its data (thousands of rows); reading
them twenty times over costs more than drawing the chart. `SharedReads.read(key, read)` gives each caller the
result of a read that *began after the caller asked*, so nothing committed before a request is missed, while
callers that ask during one read share the next one: twenty simultaneous requests make two reads, not twenty. The
leader-term check before each post (bot/services/delivery/batching.TermGate) is shared the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Key:
    """One key's state: requests so far, those already served, the read in progress."""

    def __init__(self) -> None:
        self.asked = 0
        self.covered = 0  # every request up to this one has had a read begun after it asked
        self.reading = False
        self.value: Any = None
        self.waiting = 0


class SharedReads(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._keys: dict[Hashable, _Key] = {}
        self.reads = 0  # reads made (for the tests)

    def read(self, key: Hashable, read: Callable[[], T]) -> T:
        with self._cond:
            state = self._keys.setdefault(key, _Key())
            state.asked += 1
            mine = state.asked
            state.waiting += 1
            while True:
                if state.covered >= mine:
                    value: T = state.value
                    self._leave(key, state)
                    return value
                if not state.reading:
                    state.reading = True
                    covers = state.asked
                    break
                self._cond.wait()
        try:
            value = read()
        except BaseException:
            with self._cond:
                state.reading = False  # the waiters try again: one of them reads
                self._leave(key, state)
                self._cond.notify_all()
            raise
        with self._cond:
            self.reads += 1
            state.reading = False
            state.value = value
            state.covered = max(state.covered, covers)
            self._leave(key, state)
            self._cond.notify_all()
        return value

    def _leave(self, key: Hashable, state: _Key) -> None:
        """Under the lock: this caller is done; the key's state (and the value it holds) goes with the last."""
        state.waiting -= 1
        if state.waiting == 0 and not state.reading and self._keys.get(key) is state:
            del self._keys[key]
