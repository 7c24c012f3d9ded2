"""Leader election between instances: a PostgreSQL advisory lock held on a dedicated connection.

Only the leader runs scheduled deliveries; every instance serves Slack requests. The lock belongs to a
database session, so it is released the moment that session ends, whatever ends it: a clean shutdown, a
crash, or a SIGKILL (the kernel closes the socket and PostgreSQL ends the backend).

Takeover bound: a follower polls every `poll_seconds`, so after a leader process dies another instance
leads within ``poll_seconds + connection teardown``. Teardown is milliseconds when the process dies and its
host lives on (the kernel closes the socket); when the whole host or its network vanishes, PostgreSQL only
notices through TCP keepalives, which this module tightens on its session to about
``KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT`` = 25 s. A leader that loses its own connection
steps down at its next poll, before anyone else can have taken the lock for longer than that.

Even if two leaders overlap for a moment, the delivery ledger's unique key stops a double post.
SQLite has one process per database file (bot.runtime refuses a second), so there the role is "single".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

logger = logging.getLogger(__name__)

# Any constant 64-bit number, unique to this application within the database ("mfi-ar" in ASCII).
LOCK_KEY = 0x6D66692D6172
KEEPALIVE_IDLE = 10
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3


class LeaderElector:
    """Decides whether this instance is the one that runs scheduled deliveries.

    :param engine: the application's engine; only its URL is used (the lock needs a connection of its own,
        never one from the request pool, which would hand it to another thread or recycle it).
    :param poll_seconds: how often a follower tries for the lock and a leader checks its connection.
    :param on_change: called with True when this instance becomes leader and False when it steps down.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        poll_seconds: float = 5.0,
        on_change: Callable[[bool], None] | None = None,
        key: int = LOCK_KEY,
    ) -> None:
        self.single = engine.dialect.name != "postgresql"
        self._url = engine.url
        self.poll_seconds = poll_seconds
        self.key = key
        self._on_change = on_change
        self._conn: Any = None
        self._leader = self.single
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leader

    def role(self) -> str:
        if self.single:
            return "single"
        return "leader" if self._leader else "follower"

    def start(self) -> None:
        if self.single or self._thread is not None:
            return
        self._stop.clear()
        self.poll()  # decide at once, so a lone instance leads from its first second
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 5)
            self._thread = None
        with self._lock:
            was_leader = self._leader and not self.single
            self._close()
            if not self.single:
                self._leader = False
        if was_leader:
            logger.info("Stepped down as scheduler leader (shutting down)")

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.poll()

    def poll(self) -> bool:
        """One round: a follower tries for the lock, a leader checks it still has its session."""
        if self.single:
            return True
        with self._lock:
            before = self._leader
            try:
                if self._leader:
                    self._conn.execute("SELECT 1")
                else:
                    if self._conn is None or self._conn.closed:
                        self._conn = self._connect()
                    row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                    self._leader = bool(row and row[0])
            except Exception:  # any failure of the lock connection means "not leader"
                logger.warning(
                    "Leader election: lock connection failed; not leading until it is back", exc_info=True
                )
                self._close()
                self._leader = False
            changed = before != self._leader
        if changed:
            logger.info("Scheduler role: %s", "leader" if self._leader else "follower")
            if self._on_change is not None:
                self._on_change(self._leader)
        return self._leader

    def _connect(self) -> Any:
        import psycopg

        url = self._url.set(drivername="postgresql")
        conn = psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            connect_timeout=10,
            application_name="mfi-ar leader election",
            keepalives=1,
            keepalives_idle=KEEPALIVE_IDLE,
            keepalives_interval=KEEPALIVE_INTERVAL,
            keepalives_count=KEEPALIVE_COUNT,
        )
        # The server's side of this session: notice a vanished host (no FIN) within ~25 s and free the lock.
        conn.execute(f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE}")
        conn.execute(f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL}")
        conn.execute(f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}")
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # ends the session, which releases the advisory lock
            except Exception:  # closing a broken connection may fail; it is gone either way
                logger.debug("Closing the lock connection failed", exc_info=True)
            self._conn = None
