"""Meeting the bot: the welcome DM is claimed once per person before it is sent, and released if sending fails."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Welcome


def claim_welcome(engine: Engine, *, team_id: str, user_id: str) -> frozenset[str] | None:
    """Claim this person's one welcome; their roles on the workspace's projects when claimed now, None when they
    have had it (or another delivery of the same first visit claimed it)."""
    with unit_of_work(engine) as session:
        if session.get(Welcome, (team_id, user_id)) is not None:
            return None
        try:
            with session.begin_nested():
                session.add(Welcome(team_id=team_id, user_id=user_id))
        except IntegrityError:
            return None  # another delivery of the same first visit claimed it
        return frozenset(
            role for _project, role in repo.projects_for_user(session, team_id=team_id, user_id=user_id)
        )


def release_welcome(engine: Engine, *, team_id: str, user_id: str) -> None:
    """Remove the claim (the DM could not be sent), so the next visit tries again."""
    with unit_of_work(engine) as session:
        claimed = session.get(Welcome, (team_id, user_id))
        if claimed is not None:
            session.delete(claimed)
