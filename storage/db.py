"""Engine creation, migrations (alembic owns the schema) and the one-unit-of-work helper."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, Engine, Integer, any_, bindparam, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


# The connection pool (PostgreSQL). An instance runs up to 16 HTTP threads (waitress), 32 listener threads (Bolt's
# work after ack()), MFI_DELIVERY_WORKERS posting threads and the scheduler's sync: about 60 threads that may each
# want a connection. None holds one for long: every transaction is short and no Slack call or wait happens inside
# one (ARCHITECTURE.md), so a connection is back in the pool within milliseconds and 30 serve 60 threads. A thread
# that finds none free waits up to POOL_TIMEOUT seconds (not the 3-second ack: forms validate before they write).
# Two or three instances at 30 each stay under PostgreSQL's default max_connections of 100, leaving room for the
# leader-election and migration sessions and an operator's psql. Raise MFI_DB_POOL_SIZE / MFI_DB_MAX_OVERFLOW with
# max_connections when running more instances or more threads.
POOL_SIZE = 10
MAX_OVERFLOW = 20
POOL_TIMEOUT = 10


def make_engine(url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, object] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if path in ("", ":memory:") or url == "sqlite://":
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets the scheduler thread read while a listener writes; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if path and path != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=POOL_TIMEOUT
    )


def among(session: Session, column: Any, ids: Collection[int]) -> ColumnElement[bool]:
    """`column IN (ids)` for a batch of integer ids. On PostgreSQL `column = ANY(:ids)`: one array parameter, so
    the statement is the same text whatever the number of ids, compiled and parsed once (an IN list of 500 ids is
    500 parameters for SQLAlchemy to render and a query too long for psycopg to remember: a quarter of the
    fan-out's planning at 10,000 projects). On SQLite, the usual IN."""
    if session.get_bind().dialect.name == "postgresql":
        return cast("ColumnElement[bool]", column == any_(bindparam(None, list(ids), type_=ARRAY(Integer))))
    return cast("ColumnElement[bool]", column.in_(ids))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


# A PostgreSQL advisory-lock key of our own ("mfi-ar" in ASCII, then 0001); bot/leader.py holds "mfi-ar" itself.
MIGRATION_LOCK_KEY = 0x6D66692D6172_0001


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (idempotent).

    On PostgreSQL several instances may start at once: each takes a session advisory lock first, so one migrates
    while the others wait, then find nothing left to do. The lock lives on its own connection and ends with it.
    """
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
        if not lock.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}).scalar():
            logger.info("Another instance is applying migrations; waiting for it to finish")
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends normally, rolled back (no partial rows) when it raises."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


# --- what a request has saved --------------------------------------------------------------------------------
# A listener that fails after its transaction committed must not tell the person "nothing was changed". Every
# committed transaction that wrote a row is counted for the request running on this thread (handlers.access starts
# the count around each listener).


@dataclass
class WriteTracker:
    committed: bool = False


_tracking = threading.local()


@contextmanager
def track_writes() -> Iterator[WriteTracker]:
    """Count committed writes made on this thread while the block runs."""
    tracker = WriteTracker()
    previous = getattr(_tracking, "tracker", None)
    _tracking.tracker = tracker
    try:
        yield tracker
    finally:
        _tracking.tracker = previous


@event.listens_for(OrmSession, "after_flush")
def _note_flush(session: OrmSession, _flush_context: object) -> None:
    session.info["mfi_wrote"] = True
    session.info.pop(_MEMO, None)


@event.listens_for(OrmSession, "do_orm_execute")
def _note_bulk_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info["mfi_wrote"] = True
    if not state.is_select:  # any other statement (text() included) may have changed what was remembered
        state.session.info.pop(_MEMO, None)


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_memo(session: OrmSession, _transaction: object) -> None:
    session.info.pop(_MEMO, None)


# --- reads repeated within one unit of work ------------------------------------------------------------------
# Building many people's Home tabs in one transaction asks for the same project's progress, cycles and members once
# per person. A repository read may remember its answer for the rest of the transaction: forgotten at every write
# (flush or bulk statement) and at the transaction's end, and not used while the session holds unflushed changes.

_MEMO = "mfi_memo"
T = TypeVar("T")


def remembered(session: OrmSession, key: tuple[Any, ...], read: Callable[[], T]) -> T:
    """`read()` once per key while nothing is written in this unit of work; a list comes back as a fresh copy."""
    if session.new or session.dirty or session.deleted:
        return read()
    memo: dict[tuple[Any, ...], Any] = session.info.setdefault(_MEMO, {})
    if key not in memo:
        memo[key] = read()
    found = memo[key]
    return cast(T, list(found) if isinstance(found, list) else found)


@event.listens_for(OrmSession, "after_commit")
def _note_commit(session: OrmSession) -> None:
    if session.info.pop("mfi_wrote", False):
        tracker: WriteTracker | None = getattr(_tracking, "tracker", None)
        if tracker is not None:
            tracker.committed = True
