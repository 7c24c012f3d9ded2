"""The scheduler leader's fencing token (LeaderTerm): begun by each new leader, checked by every claim and post."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import LeaderTerm

ROW = 1


class Deposed(Exception):
    """The term this instance claims and posts under is no longer the current one: another instance leads."""


def begin_term(session: Session, *, holder: str, now: datetime) -> int:
    """A new term for `holder` (one more than any before); from its commit, claims and posts of older terms fail."""
    result = session.exec(
        update(LeaderTerm)
        .where(col(LeaderTerm.id) == ROW)
        .values(term=LeaderTerm.term + 1, holder=holder, started_at=now)
        .returning(col(LeaderTerm.term))
    ).first()
    if result is not None:
        return int(result[0])
    try:
        with session.begin_nested():
            session.add(LeaderTerm(id=ROW, term=1, holder=holder, started_at=now))
        return 1
    except IntegrityError:  # another instance made the row first: bump it like any other
        return begin_term(session, holder=holder, now=now)


def current_term(session: Session, *, lock: bool = False) -> int | None:
    """The current term (None before any leader). With `lock`, a share lock on PostgreSQL: a new leader's
    begin_term waits until this transaction ends, so a claim checked here commits before the term moves on."""
    query = select(LeaderTerm.term).where(LeaderTerm.id == ROW)
    if lock:
        query = query.with_for_update(read=True)
    return session.exec(query).first()


def check_term(session: Session, *, term: int | None, lock: bool = False) -> None:
    """Raise Deposed unless `term` is the current one; an unelected run (term None) is not fenced."""
    if term is None:
        return
    current = current_term(session, lock=lock)
    if current != term:
        raise Deposed(f"leader term {term} has ended (current term {current})")
