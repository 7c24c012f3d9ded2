"""Importing an extract through the private form, and undoing an entry: the units of work around
bot/services/measures.py's apply_import and undo_batch, returning plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from bot.core.extracts import ImportRefused, ParsedImport
from bot.services import measures as importing
from bot.services.measure_forms import local_today
from storage import measures_repo
from storage import repositories as repo
from storage.db import unit_of_work

# ---------------------------------------------------------------- the import form


@dataclass(frozen=True)
class ImportForm:
    project_id: int
    channel_id: str
    measures: list[dict[str, Any]]
    measure_id: int | None  # preselected: the one named, or the only one


def import_form(engine: Engine, *, team_id: str, channel_id: str, measure_name: str) -> ImportForm | None:
    """The form for the channel's project; None when the channel has no project."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return None
        measures = measures_repo.measures_for_project(session, project_id=project.id)
        chosen = (
            measures_repo.resolve_measure(session, project_id=project.id, key=measure_name)
            if measure_name and measures
            else measures[0]
            if len(measures) == 1
            else None
        )
        return ImportForm(
            project.id, project.channel_id, [m.model_dump() for m in measures], chosen.id if chosen else None
        )


@dataclass(frozen=True)
class ImportTarget:
    channel_id: str
    measure_id: int
    measure_name: str
    period: str
    today: date


PROJECT_GONE = "This project no longer exists."
NOT_THIS_PROJECTS = "Choose one of this project's measures."


def import_target(
    engine: Engine, *, team_id: str, project_id: int | None, measure_id: int | None, channel_id: str | None
) -> ImportTarget | str:
    """The measure an import form saves into; the words for the form when the project or measure does not fit."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id) if project_id else None
        measure = (
            measures_repo.get_measure(session, team_id=team_id, measure_id=measure_id) if measure_id else None
        )
        if project is None or project.channel_id != channel_id:
            return PROJECT_GONE
        if measure is None or measure.project_id != project.id:
            return NOT_THIS_PROJECTS
        return ImportTarget(
            project.channel_id,
            int(measure.id or 0),
            measure.name,
            importing.measure_period(measure),
            local_today(project),
        )


def earlier_import(engine: Engine, *, team_id: str, file_key: str) -> importing.AlreadyImported | None:
    """The import of this file version that is already saved (and not undone), if any."""
    with unit_of_work(engine) as session:
        return importing.already_imported(session, team_id=team_id, file_key=file_key)


def save_import(
    engine: Engine,
    *,
    team_id: str,
    measure_id: int,
    parsed: ParsedImport,
    filename: str,
    user_id: str,
    file_key: str,
) -> importing.ImportOutcome | importing.AlreadyImported:
    """Save a read extract once per file version: the outcome, or the import that was there first (also when
    another delivery of the same file won the race to the database). Raises ImportRefused when nothing can be."""
    try:
        with unit_of_work(engine) as session:
            measure = measures_repo.get_measure(session, team_id=team_id, measure_id=measure_id)
            if measure is None:
                raise ImportRefused("The measure was deleted before the import finished. Nothing was saved.")
            return importing.apply_import(
                session,
                measure=measure,
                parsed=parsed,
                source="import",
                filename=filename,
                user_id=user_id,
                file_key=file_key,
            )
    except importing.AlreadyImported as earlier:
        return earlier
    except IntegrityError:
        # Another delivery of the same file version was saved first (the unique index on its key).
        winner = earlier_import(engine, team_id=team_id, file_key=file_key)
        if winner is None:
            raise
        return winner


# ---------------------------------------------------------------- undo


@dataclass(frozen=True)
class Undone:
    outcome: importing.UndoOutcome
    channel_id: str


def undo_in_channel(
    engine: Engine, *, team_id: str, channel_id: str, user_id: str, batch_id: int | None
) -> Undone | str | None:
    """Undo an entry of the channel's project (the latest when no number is given): what was undone, the words
    saying why not, or None when the channel has no project."""
    try:
        with unit_of_work(engine) as session:
            project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
            if project is None or project.id is None:
                return None
            if batch_id is not None:
                batch = measures_repo.get_batch(session, team_id=team_id, batch_id=batch_id)
                measure = (
                    measures_repo.get_measure(session, team_id=team_id, measure_id=batch.measure_id)
                    if batch
                    else None
                )
                if measure is None or measure.project_id != project.id:
                    return f"This channel's project has no entry {batch_id}."
            else:
                latest = measures_repo.batches_for_project(
                    session, project_id=project.id, include_undone=False
                )
                if not latest or latest[0].id is None:
                    return "There is nothing to undo in this channel's project."
                batch_id = latest[0].id
            outcome = importing.undo_batch(session, batch_id=batch_id, team_id=team_id, user_id=user_id)
            return Undone(outcome, project.channel_id)
    except importing.UndoRefused as refused:
        return refused.message


def undo(engine: Engine, *, team_id: str, batch_id: int, user_id: str) -> importing.UndoOutcome | str:
    """Undo an entry by its number (the Undo button): what was undone, or the words saying why not."""
    try:
        with unit_of_work(engine) as session:
            return importing.undo_batch(session, batch_id=batch_id, team_id=team_id, user_id=user_id)
    except importing.UndoRefused as refused:
        return refused.message
