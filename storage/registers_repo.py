"""The framework's registers: bias review entries, the team reflection, who is missing, and their history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement
from sqlmodel import Session, SQLModel, col, func, select

from storage.models import (
    BiasReview,
    MissingEntry,
    PdsaCycle,
    PdsaEntry,
    Project,
    ProjectMember,
    RegisterHistory,
    TeamReflection,
    utcnow,
)

Entry = TypeVar("Entry", BiasReview, MissingEntry)

# Fields a person may change on each register (everything else is bookkeeping).
BIAS_FIELDS = (
    "reviewed_kind",
    "subject",
    "where_bias",
    "evidence_kinds",
    "evidence",
    "institutional",
    "action",
    "owner_id",
    "due_date",
    "status",
    "driver_id",
    "cycle_ids",
)
MISSING_FIELDS = ("who", "how_to_hear", "what_happened", "status")
TEAM_FIELDS = ("roles", "composition", "missing_voices", "who_else")


def _next_number(session: Session, model: type[Entry], project_id: int) -> int:
    highest = session.exec(select(func.max(model.number)).where(model.project_id == project_id)).one()
    return int(highest or 0) + 1


def _remember(session: Session, *, row: SQLModel, kind: str, project_id: int, team_id: str, by: str) -> None:
    entry_id = getattr(row, "id", None)
    assert entry_id is not None
    session.add(
        RegisterHistory(
            project_id=project_id,
            team_id=team_id,
            kind=kind,
            entry_id=entry_id,
            changed_by=by,
            previous=row.model_dump(mode="json"),
        )
    )


def _changed(row: SQLModel, fields: dict[str, Any]) -> bool:
    return any(getattr(row, name) != value for name, value in fields.items())


# --- bias review ----------------------------------------------------------------------------------------------


def list_bias(
    session: Session, *, project_id: int, offset: int = 0, limit: int | None = None
) -> list[BiasReview]:
    query = select(BiasReview).where(BiasReview.project_id == project_id).order_by(col(BiasReview.number))
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def count_bias(session: Session, *, project_id: int) -> int:
    return int(session.exec(select(func.count()).where(BiasReview.project_id == project_id)).one())


def get_bias(session: Session, *, project_id: int, number: int) -> BiasReview | None:
    return session.exec(
        select(BiasReview).where(BiasReview.project_id == project_id, BiasReview.number == number)
    ).first()


def add_bias(session: Session, *, project: Project, created_by: str, fields: dict[str, Any]) -> BiasReview:
    assert project.id is not None
    entry = BiasReview(
        project_id=project.id,
        team_id=project.team_id,
        number=_next_number(session, BiasReview, project.id),
        created_by=created_by,
        updated_by=created_by,
        **{k: v for k, v in fields.items() if k in BIAS_FIELDS},
    )
    session.add(entry)
    session.flush()
    return entry


def update_bias(session: Session, *, entry: BiasReview, changed_by: str, fields: dict[str, Any]) -> bool:
    """Apply the changes, keeping the entry as it was in the history; False when nothing changed."""
    fields = {k: v for k, v in fields.items() if k in BIAS_FIELDS}
    if not _changed(entry, fields):
        return False
    _remember(
        session, row=entry, kind="bias", project_id=entry.project_id, team_id=entry.team_id, by=changed_by
    )
    for name, value in fields.items():
        setattr(entry, name, value)
    entry.updated_by, entry.updated_at = changed_by, utcnow()
    session.add(entry)
    return True


def bias_with_action(session: Session, *, project_id: int) -> int:
    """Entries that name an action the team will take (and did not drop)."""
    return int(
        session.exec(
            select(func.count()).where(
                BiasReview.project_id == project_id,
                BiasReview.action != "",
                BiasReview.status != "dropped",
            )
        ).one()
    )


def evaluated_with_affected(session: Session, *, project_id: int) -> int:
    """Studied cycles whose latest Act recorded that those most affected took part (yes or partly)."""
    rows = session.exec(
        select(PdsaEntry.cycle_id, PdsaEntry.kind, PdsaEntry.data)
        .join(PdsaCycle, col(PdsaCycle.id) == col(PdsaEntry.cycle_id))
        .where(PdsaCycle.project_id == project_id, col(PdsaEntry.kind).in_(("study", "act")))
        .order_by(col(PdsaEntry.id))
    ).all()
    studied: set[int] = set()
    involved: dict[int, bool] = {}
    for cycle_id, kind, data in rows:
        if kind == "study":
            studied.add(cycle_id)
        else:
            involved[cycle_id] = (data or {}).get("involved") in ("yes", "partly")
    return sum(1 for cycle_id, took_part in involved.items() if took_part and cycle_id in studied)


# --- who is missing -------------------------------------------------------------------------------------------


def list_missing(
    session: Session, *, project_id: int, offset: int = 0, limit: int | None = None
) -> list[MissingEntry]:
    query = (
        select(MissingEntry).where(MissingEntry.project_id == project_id).order_by(col(MissingEntry.number))
    )
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def count_missing(session: Session, *, project_id: int) -> int:
    return int(session.exec(select(func.count()).where(MissingEntry.project_id == project_id)).one())


def get_missing(session: Session, *, project_id: int, number: int) -> MissingEntry | None:
    return session.exec(
        select(MissingEntry).where(MissingEntry.project_id == project_id, MissingEntry.number == number)
    ).first()


def source_keys(session: Session, *, project_id: int) -> set[str]:
    return {
        key
        for key in session.exec(
            select(MissingEntry.source_key).where(
                MissingEntry.project_id == project_id, col(MissingEntry.source_key).is_not(None)
            )
        )
        if key
    }


def add_missing(
    session: Session,
    *,
    project: Project,
    source: str,
    who: str,
    created_by: str | None,
    source_key: str | None = None,
    how_to_hear: str = "",
    what_happened: str = "",
    status: str = "open",
    cycle_id: int | None = None,
) -> MissingEntry | None:
    """A new entry; None when an automatic entry with the same key is already there (the analysis adds once)."""
    assert project.id is not None
    if source_key is not None and source_key in source_keys(session, project_id=project.id):
        return None
    entry = MissingEntry(
        project_id=project.id,
        team_id=project.team_id,
        number=_next_number(session, MissingEntry, project.id),
        source=source,
        source_key=source_key,
        who=who,
        how_to_hear=how_to_hear,
        what_happened=what_happened,
        status=status,
        cycle_id=cycle_id,
        created_by=created_by,
        updated_by=created_by,
    )
    session.add(entry)
    session.flush()
    return entry


def update_missing(session: Session, *, entry: MissingEntry, changed_by: str, fields: dict[str, Any]) -> bool:
    fields = {k: v for k, v in fields.items() if k in MISSING_FIELDS}
    if not _changed(entry, fields):
        return False
    _remember(
        session, row=entry, kind="missing", project_id=entry.project_id, team_id=entry.team_id, by=changed_by
    )
    for name, value in fields.items():
        setattr(entry, name, value)
    entry.updated_by, entry.updated_at = changed_by, utcnow()
    session.add(entry)
    return True


# --- team reflection ------------------------------------------------------------------------------------------


def get_team(session: Session, *, project_id: int) -> TeamReflection | None:
    return session.exec(select(TeamReflection).where(TeamReflection.project_id == project_id)).first()


def save_team(
    session: Session,
    *,
    project: Project,
    changed_by: str,
    fields: dict[str, Any],
    members_seen: Sequence[str],
) -> TeamReflection:
    """Create or update the project's reflection; an edit keeps the earlier version in the history."""
    assert project.id is not None
    fields = {k: v for k, v in fields.items() if k in TEAM_FIELDS}
    row = get_team(session, project_id=project.id)
    if row is None:
        row = TeamReflection(
            project_id=project.id,
            team_id=project.team_id,
            updated_by=changed_by,
            members_seen=list(members_seen),
        )
    elif _changed(row, fields):
        _remember(
            session, row=row, kind="team", project_id=project.id, team_id=project.team_id, by=changed_by
        )
    for name, value in fields.items():
        setattr(row, name, value)
    row.members_seen = sorted(set(members_seen))
    row.updated_by, row.updated_at = changed_by, utcnow()
    session.add(row)
    session.flush()
    return row


# --- history, export and deletion -----------------------------------------------------------------------------


def history(session: Session, *, project_id: int, kind: str, entry_id: int) -> list[RegisterHistory]:
    return list(
        session.exec(
            select(RegisterHistory)
            .where(
                RegisterHistory.project_id == project_id,
                RegisterHistory.kind == kind,
                RegisterHistory.entry_id == entry_id,
            )
            .order_by(col(RegisterHistory.id))
        )
    )


def export_rows(session: Session, *, project_id: int) -> dict[str, list[dict[str, Any]]]:
    """A sheet per register (and one for the registers' history), oldest first."""

    def rows(model: Any, order: Any) -> list[dict[str, Any]]:
        return [
            r.model_dump()
            for r in session.exec(select(model).where(model.project_id == project_id).order_by(order))
        ]

    return {
        "bias_review": rows(BiasReview, col(BiasReview.number)),
        "team_reflection": rows(TeamReflection, col(TeamReflection.id)),
        "who_is_missing": rows(MissingEntry, col(MissingEntry.number)),
        "register_history": rows(RegisterHistory, col(RegisterHistory.id)),
    }


def deletion_steps(project_id: int) -> list[tuple[str, type[SQLModel], ColumnElement[bool]]]:
    """What a project's deletion removes from the registers (run before the project row goes)."""
    return [
        ("register_history", RegisterHistory, col(RegisterHistory.project_id) == project_id),
        ("bias_review", BiasReview, col(BiasReview.project_id) == project_id),
        ("team_reflection", TeamReflection, col(TeamReflection.project_id) == project_id),
        ("missing_entry", MissingEntry, col(MissingEntry.project_id) == project_id),
    ]


def add_people(
    session: Session, *, project: Project, role: str, user_ids: Sequence[str], added_by: str
) -> list[str]:
    """Add people to the project in `role` (member or partner); returns those who were not on it already."""
    assert project.id is not None
    on_project = set(
        session.exec(select(ProjectMember.user_id).where(ProjectMember.project_id == project.id))
    )
    added = []
    for user_id in dict.fromkeys(user_ids):
        if user_id in on_project:
            continue
        session.add(
            ProjectMember(
                project_id=project.id, team_id=project.team_id, user_id=user_id, role=role, added_by=added_by
            )
        )
        added.append(user_id)
    session.flush()
    return added
