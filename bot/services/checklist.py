"""The project's stage checklist from the evidence it holds (read inside the caller's unit of work)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.core.checklist import Evidence, StageCheck, checklist
from storage import drivers_repo, registers_repo
from storage import repositories as repo
from storage.models import Project


def evidence_for(session: Session, project: Project, *, progress: dict[str, Any] | None = None) -> Evidence:
    """The project's evidence; `progress` (storage.repositories.project_progress) when the caller has it already."""
    assert project.id is not None
    progress = progress if progress is not None else repo.project_progress(session, project=project)
    drivers, influenceable = drivers_repo.count_drivers(session, project_id=project.id)
    return Evidence(
        focus_groups=len(project.focus_groups or []),
        racism_context=bool(project.racism_context.strip()),
        drivers=drivers,
        drivers_influenceable=influenceable,
        bias_with_action=registers_repo.bias_with_action(session, project_id=project.id),
        measures=progress["measure_count"],
        measures_with_data=progress["measures_with_data"],
        balancing_measures=progress["balancing_count"],
        partners_consented=progress["partners_consented"],
        cycles_with_involvement=progress["cycles_with_involvement"],
        evaluated_with_affected=registers_repo.evaluated_with_affected(session, project_id=project.id),
    )


def checklist_for(
    session: Session, project: Project, *, progress: dict[str, Any] | None = None
) -> list[StageCheck]:
    return checklist(evidence_for(session, project, progress=progress))
