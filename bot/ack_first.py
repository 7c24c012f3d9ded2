"""Acknowledgements first: work that can wait steps aside while Slack waits for an answer.

Slack gives a request 3 seconds for its acknowledgement, and a person is looking at the spinner meanwhile. The
same interpreter also runs work nobody is waiting on at that moment: the fan-out's posts on the leader, and the
Home tabs refreshed after a form is saved. With every core busy, those compete with the acknowledgement for the
interpreter and the CPU. So each request holds `answering()` until it has been acknowledged (bot.app.AckFirstApp's
dispatch, for HTTP and Socket Mode alike), and work that can wait calls `step_aside()` before each piece: it waits while
any acknowledgement is pending, for at most `most` seconds, so a steady stream of requests slows it down but
never stops it.

One gate per process: the interpreter and the CPU are shared by everything in it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


class AckFirst:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pending = 0
        self.waits = 0  # how many times work stepped aside (for tests and logs)

    @property
    def pending(self) -> int:
        return self._pending

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Around one request, until it has been acknowledged."""
        with self._changed:
            self._pending += 1
        try:
            yield
        finally:
            with self._changed:
                self._pending -= 1
                if self._pending == 0:
                    self._changed.notify_all()

    def step_aside(self, most: float) -> float:
        """Wait while any acknowledgement is pending, at most `most` seconds; the seconds waited."""
        if self._pending == 0:  # the usual case costs no lock
            return 0.0
        started = time.monotonic()
        with self._changed:
            if self._pending:
                self.waits += 1
            self._changed.wait_for(lambda: self._pending == 0, timeout=most)
        return time.monotonic() - started


class Lane:
    """One background thread for work nobody is waiting on, which steps aside for acknowledgements.

    Work is submitted under a key with the items it is for; items submitted under a key not yet run join it (each
    once, in order), and the latest `run` is the one called, with all of them. So ten forms saved on one project in
    a burst refresh each person's Home once, in one batch, after the burst, instead of ten times during it.
    """

    def __init__(self, name: str, gate: AckFirst, most: float, idle: float = 30.0) -> None:
        self.name, self.gate, self.most, self.idle = name, gate, most, idle
        self._changed = threading.Condition()
        self._pending: dict[Hashable, tuple[Callable[[list[str]], None], dict[str, None]]] = {}
        self._busy = False
        self._thread: threading.Thread | None = None

    def submit(self, key: Hashable, items: Iterable[str], run: Callable[[list[str]], None]) -> None:
        with self._changed:
            _, waiting = self._pending.get(key, (run, {}))
            waiting.update(dict.fromkeys(items))
            self._pending[key] = (run, waiting)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until everything submitted so far has run (shutdown, tests); whether it all did in time."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                if not self._changed.wait_for(lambda: bool(self._pending), timeout=self.idle):
                    self._thread = None  # idle: the next submission starts another
                    return
            self.gate.step_aside(self.most)
            with self._changed:
                key = next(iter(self._pending))
                run, items = self._pending.pop(key)
                self._busy = True
            try:
                run(list(items))
            except Exception:  # one failed batch must not stop the lane: the next submission tries again
                logger.exception("%s: background work failed", self.name)
            finally:
                del run, items  # hold nothing of the work (and so of its engine) while idle
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()


ACK_FIRST = AckFirst()

# How long each kind of work that can wait gives way at most, per piece. A fan-out post gives way briefly (a
# form's acknowledgement takes tens of milliseconds when the machine is not saturated); a Home refresh, which
# nobody sees until they open the tab, longer.
POST_STEP_ASIDE = 0.1
HOME_STEP_ASIDE = 1.0

_HOMES: weakref.WeakKeyDictionary[object, Lane] = weakref.WeakKeyDictionary()
_HOMES_LOCK = threading.Lock()


def homes(engine: object) -> Lane:
    """The lane for Home tabs refreshed after something changed (handlers.home.publish_for_people), one per engine.

    A deployment has one engine per process, so one lane. Each running bot drains its own lane when it stops, and
    one bot's slow refreshes (a Slack that no longer answers) cannot hold up another's, as in the test suite, where
    each test runs its own bot in the same process.
    """
    with _HOMES_LOCK:
        lane = _HOMES.get(engine)
        if lane is None:
            lane = _HOMES[engine] = Lane("homes", ACK_FIRST, HOME_STEP_ASIDE)
        return lane
