"""Queries and writes for a project's driver diagram: drivers, change ideas and their history. Callers own the
transaction; every read is scoped to one project (and a lookup by id to one workspace)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import ChangeIdea, Driver, DriverHistory, PdsaCycle, utcnow

INFLUENCE_CAN = ("yes", "partly")  # the team can influence it (the framework's "positioned to influence")


def get_driver(session: Session, *, team_id: str, driver_id: int) -> Driver | None:
    driver = session.get(Driver, driver_id)
    return driver if driver is not None and driver.team_id == team_id else None


def get_idea(session: Session, *, team_id: str, idea_id: int) -> ChangeIdea | None:
    idea = session.get(ChangeIdea, idea_id)
    return idea if idea is not None and idea.team_id == team_id else None


def drivers(session: Session, *, project_id: int, retired: bool = False) -> list[Driver]:
    """The project's drivers in diagram order (active only unless `retired`)."""
    query = select(Driver).where(Driver.project_id == project_id)
    if not retired:
        query = query.where(col(Driver.retired_at).is_(None))
    return list(session.exec(query.order_by(col(Driver.position), col(Driver.id))))


def ideas(session: Session, *, project_id: int, retired: bool = False) -> list[ChangeIdea]:
    query = select(ChangeIdea).where(ChangeIdea.project_id == project_id)
    if not retired:
        query = query.where(col(ChangeIdea.retired_at).is_(None))
    return list(session.exec(query.order_by(col(ChangeIdea.position), col(ChangeIdea.id))))


def history(session: Session, *, project_id: int) -> list[DriverHistory]:
    return list(
        session.exec(
            select(DriverHistory)
            .where(DriverHistory.project_id == project_id)
            .order_by(col(DriverHistory.id))
        )
    )


def count_drivers(session: Session, *, project_id: int) -> tuple[int, int]:
    """(active drivers, active drivers the team can influence: influence yes or partly)."""
    rows = session.exec(
        select(Driver.influence, func.count())
        .where(Driver.project_id == project_id, col(Driver.retired_at).is_(None))
        .group_by(col(Driver.influence))
    ).all()
    total = sum(int(n) for _, n in rows)
    can = sum(int(n) for influence, n in rows if influence in INFLUENCE_CAN)
    return total, can


def count_ideas(session: Session, *, project_id: int) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(ChangeIdea)
            .where(ChangeIdea.project_id == project_id, col(ChangeIdea.retired_at).is_(None))
        ).one()
    )


def next_position(session: Session, *, project_id: int) -> int:
    top = session.exec(select(func.max(Driver.position)).where(Driver.project_id == project_id)).one()
    top_idea = session.exec(
        select(func.max(ChangeIdea.position)).where(ChangeIdea.project_id == project_id)
    ).one()
    return max(int(top or 0), int(top_idea or 0)) + 1


def cycles_by_idea(session: Session, *, project_id: int) -> dict[int, list[PdsaCycle]]:
    """The project's cycles linked to a change idea, by idea id, in cycle order."""
    found: dict[int, list[PdsaCycle]] = {}
    for cycle in session.exec(
        select(PdsaCycle)
        .where(PdsaCycle.project_id == project_id, col(PdsaCycle.change_idea_id).is_not(None))
        .order_by(col(PdsaCycle.number))
    ):
        assert cycle.change_idea_id is not None
        found.setdefault(cycle.change_idea_id, []).append(cycle)
    return found


def replayed(session: Session, *, project_id: int, request_key: str | None) -> DriverHistory | None:
    """The history row a request already wrote (a retried or replayed form), if any."""
    if not request_key:
        return None
    return session.exec(
        select(DriverHistory).where(
            DriverHistory.project_id == project_id, DriverHistory.request_key == request_key
        )
    ).first()


def record(
    session: Session,
    *,
    project_id: int,
    team_id: str,
    item: str,
    item_id: int | None,
    action: str,
    old: dict[str, Any],
    new: dict[str, Any],
    changed_by: str,
    request_key: str | None = None,
) -> DriverHistory:
    row = DriverHistory(
        project_id=project_id,
        team_id=team_id,
        item=item,
        item_id=item_id,
        action=action,
        old=old,
        new=new,
        changed_by=changed_by,
        changed_at=utcnow(),
        request_key=request_key,
    )
    session.add(row)
    session.flush()
    return row


def last_posted(session: Session, *, project_id: int) -> tuple[str, datetime, str, str] | None:
    """The Slack file id, time, alt text and tree key of the diagram picture last posted in the channel."""
    row = session.exec(
        select(DriverHistory)
        .where(
            DriverHistory.project_id == project_id,
            DriverHistory.item == "diagram",
            DriverHistory.action == "post",
        )
        .order_by(col(DriverHistory.id).desc())
    ).first()
    if row is None or not row.new.get("file_id"):
        return None
    new = row.new
    return str(new["file_id"]), row.changed_at, str(new.get("alt_text") or ""), str(new.get("tree_key") or "")
