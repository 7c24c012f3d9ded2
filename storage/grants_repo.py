"""The forms the bot opened (view_grant rows: whose form, for which project) and who is on a project's record:
the queries behind bot/services/access.py. Session first, keyword-only arguments; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from storage.models import ProjectMember, ViewGrant, utcnow


def is_on_record(session: Session, *, project_id: int, user_id: str, roles: Sequence[str]) -> bool:
    """Whether the person holds one of `roles` on the project."""
    found = session.exec(
        select(ProjectMember.id).where(
            ProjectMember.project_id == project_id,
            ProjectMember.user_id == user_id,
            col(ProjectMember.role).in_(list(roles)),
        )
    ).first()
    return found is not None


def get_grant(session: Session, *, team_id: str, view_id: str) -> ViewGrant | None:
    return session.get(ViewGrant, (team_id, view_id))


def add_opening(session: Session, *, team_id: str, view_id: str, user_id: str) -> None:
    """A form being opened for this person, before Slack gives its view id."""
    session.add(ViewGrant(team_id=team_id, view_id=view_id, user_id=user_id, status="opening"))


def drop_grant(session: Session, *, team_id: str, view_id: str) -> None:
    session.exec(
        delete(ViewGrant).where(col(ViewGrant.team_id) == team_id, col(ViewGrant.view_id) == view_id)
    )


def drop_grants_opened_before(session: Session, *, before: datetime) -> None:
    session.exec(delete(ViewGrant).where(col(ViewGrant.opened_at) < before))


def put_grant(
    session: Session,
    *,
    team_id: str,
    view_id: str,
    user_id: str,
    project_id: int | None,
    channel_id: str | None,
    callback_id: str,
) -> None:
    session.merge(
        ViewGrant(
            team_id=team_id,
            view_id=view_id,
            user_id=user_id,
            project_id=project_id,
            channel_id=channel_id,
            callback_id=callback_id,
        )
    )


def opening_since(session: Session, *, team_id: str, user_id: str, since: datetime) -> str | None:
    """A form still being opened for this person (noted since `since`), if any."""
    return session.exec(
        select(ViewGrant.view_id).where(
            ViewGrant.team_id == team_id,
            ViewGrant.user_id == user_id,
            ViewGrant.status == "opening",
            col(ViewGrant.opened_at) >= since,
        )
    ).first()


def mark_applying(session: Session, *, team_id: str, view_id: str, stale_before: datetime) -> bool:
    """Atomically mark an open form (or one stuck applying since before `stale_before`) as being saved."""
    result = session.exec(
        update(ViewGrant)
        .where(col(ViewGrant.team_id) == team_id, col(ViewGrant.view_id) == view_id)
        .where(
            (col(ViewGrant.status) == "open")
            | ((col(ViewGrant.status) == "applying") & (col(ViewGrant.updated_at) < stale_before))
        )
        .values(status="applying", updated_at=utcnow())
    )
    return bool(result.rowcount == 1)


def settle(session: Session, *, team_id: str, view_id: str, applied: bool) -> None:
    session.exec(
        update(ViewGrant)
        .where(col(ViewGrant.team_id) == team_id, col(ViewGrant.view_id) == view_id)
        .values(status="applied" if applied else "open", updated_at=utcnow())
    )
