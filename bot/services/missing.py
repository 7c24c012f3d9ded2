"""The who-is-missing register: entries from the analysis, from the team and from PDSA Studies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import registers as rules
from bot.core.equity.analysis import COUNT_KINDS
from bot.core.missing_register import find_missing
from bot.services.registers import ProjectRef, ref
from storage import measures_repo, pdsa_repo, registers_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import MissingEntry, PdsaCycle, Project

NOT_IN_PROJECT = "That entry isn't in this project's register of who is missing, so nothing was changed."


@dataclass(frozen=True)
class MissingView:
    number: int
    source: str
    who: str
    how_to_hear: str
    what_happened: str
    status: str
    cycle_number: int | None = None
    edits: int = 0


@dataclass(frozen=True)
class MissingPage:
    project: ProjectRef
    entries: list[MissingView]
    page: int
    pages: int
    total: int
    added: int = 0  # entries the analysis found just now


@dataclass(frozen=True)
class MissingSaved:
    errors: dict[str, str] = field(default_factory=dict)
    entry: MissingView | None = None
    project: ProjectRef | None = None
    created: bool = False
    changed: bool = False


def _view(session: Session, row: MissingEntry) -> MissingView:
    assert row.id is not None
    cycle = session.get(PdsaCycle, row.cycle_id) if row.cycle_id else None
    return MissingView(
        number=row.number,
        source=row.source,
        who=row.who,
        how_to_hear=row.how_to_hear,
        what_happened=row.what_happened,
        status=row.status,
        cycle_number=cycle.number if cycle is not None and cycle.project_id == row.project_id else None,
        edits=len(
            registers_repo.history(session, project_id=row.project_id, kind="missing", entry_id=row.id)
        ),
    )


def sync_from_analysis(session: Session, project: Project) -> int:
    """Add what the analysis finds that the register does not hold yet; returns how many were added."""
    assert project.id is not None
    added = 0
    for measure in measures_repo.measures_for_project(session, project_id=project.id):
        if measure.id is None or measure.archived or measure.kind not in COUNT_KINDS:
            continue
        frame = pd.DataFrame(
            measures_repo.data_points(session, measure_id=measure.id),
            columns=["period", "group", "numerator", "denominator", "value"],
        )
        for found in find_missing(
            frame,
            measure_id=measure.id,
            measure_name=measure.name,
            focus_groups=list(project.focus_groups or []),
            threshold=project.suppression_threshold,
        ):
            if registers_repo.add_missing(
                session,
                project=project,
                source="analysis",
                who=found.who,
                created_by=None,
                source_key=found.key,
            ):
                added += 1
    return added


def missing_page(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, page: int = 1, refresh: bool = True
) -> MissingPage | None:
    """A page of the register; with `refresh`, what the analysis finds is added first."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return None
        added = sync_from_analysis(session, project) if refresh else 0
        total = registers_repo.count_missing(session, project_id=project_id)
        pages = rules.pages(total)
        page = min(max(1, page), pages)
        rows = registers_repo.list_missing(
            session, project_id=project_id, offset=(page - 1) * rules.PAGE_SIZE, limit=rules.PAGE_SIZE
        )
        return MissingPage(
            project=ref(session, project, user_id=user_id),
            entries=[_view(session, r) for r in rows],
            page=page,
            pages=pages,
            total=total,
            added=added,
        )


def missing_entry(
    engine: Engine, *, team_id: str, project_id: int, number: int
) -> tuple[ProjectRef, MissingView] | None:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        row = registers_repo.get_missing(session, project_id=project_id, number=number) if project else None
        if project is None or row is None:
            return None
        return ref(session, project, user_id=""), _view(session, row)


def save_missing(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, number: int | None, raw: dict[str, Any]
) -> MissingSaved:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return MissingSaved(errors={"who": NOT_IN_PROJECT})
        fields, errors = rules.parse_missing(raw)
        row = None
        if number is not None:
            row = registers_repo.get_missing(session, project_id=project_id, number=number)
            if row is None:
                errors = {"who": NOT_IN_PROJECT}
        if errors:
            return MissingSaved(errors=errors)
        if row is None:
            row = registers_repo.add_missing(
                session, project=project, source="team", created_by=user_id, **fields
            )
            assert row is not None
            created, changed = True, True
        else:
            changed = registers_repo.update_missing(session, entry=row, changed_by=user_id, fields=fields)
            created = False
        session.flush()
        return MissingSaved(
            entry=_view(session, row),
            project=ref(session, project, user_id=user_id),
            created=created,
            changed=changed,
        )


def record_from_study(session: Session, *, cycle: PdsaCycle, who: str, user_id: str) -> MissingEntry | None:
    """The Study's "Who did this not work for?" answer, as a register entry (inside the caller's unit of work)."""
    text = who.strip()
    if not text or cycle.id is None:
        return None
    project = session.get(Project, cycle.project_id)
    if project is None:
        return None
    return registers_repo.add_missing(
        session,
        project=project,
        source="study",
        who=text,
        created_by=user_id,
        cycle_id=cycle.id,
        source_key=f"study:{cycle.id}:{len(pdsa_repo.entries(session, cycle_id=cycle.id, kind='study'))}",
    )
