"""The bias review register: list, open for editing, save (with history kept)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import registers as rules
from bot.services.registers import ProjectRef, ref
from storage import drivers_repo, pdsa_repo, registers_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import BiasReview, Driver

NOT_IN_PROJECT = "That entry isn't in this project's bias review (it may have been opened elsewhere), so nothing was changed."
MAX_CYCLE_OPTIONS = 100  # Slack's most options in a multi_static_select
OPTION_TEXT_MAX = 75  # Slack's longest option text


@dataclass(frozen=True)
class BiasEntry:
    number: int
    reviewed_kind: str
    subject: str
    where_bias: str
    evidence_kinds: tuple[str, ...]
    evidence: str
    institutional: str
    action: str
    owner_id: str | None
    due_date: date | None
    status: str
    cycle_numbers: tuple[int, ...]
    driver_id: int | None = None
    edits: int = 0
    driver: str = ""  # the linked driver's words ("" when none is linked)


@dataclass(frozen=True)
class BiasPage:
    project: ProjectRef
    entries: list[BiasEntry]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class BiasForm:
    project: ProjectRef
    entry: BiasEntry | None
    cycles: list[tuple[str, str]]  # (option value: the cycle's number, label)
    drivers: list[tuple[str, str]] = field(default_factory=list)  # (option value: the driver's id, label)


@dataclass(frozen=True)
class BiasSaved:
    errors: dict[str, str] = field(default_factory=dict)
    entry: BiasEntry | None = None
    project: ProjectRef | None = None
    created: bool = False
    changed: bool = False
    status_changed: bool = False


def _cycle_numbers(session: Session, project_id: int) -> dict[int, int]:
    return {c.id: c.number for c in pdsa_repo.list_cycles(session, project_id=project_id) if c.id is not None}


def _driver_texts(session: Session, project_id: int) -> dict[int, str]:
    """Every driver of the project, retired ones too (an entry may still name one), by id."""
    return {
        d.id: d.text
        for d in drivers_repo.drivers(session, project_id=project_id, retired=True)
        if d.id is not None
    }


def _driver_options(session: Session, project_id: int, keep: int | None) -> list[tuple[str, str]]:
    """The form's driver choices: the live drivers in diagram order, primaries first with their secondaries
    under them, and the entry's own driver even if it has since been retired (so saving does not unlink it)."""
    rows = drivers_repo.drivers(session, project_id=project_id, retired=True)
    live = [d for d in rows if d.retired_at is None or d.id == keep]
    primaries = [d for d in live if d.parent_id is None]
    out: list[tuple[str, str]] = []
    for primary in primaries:
        out.append((str(primary.id), _label(primary)))
        out.extend((str(d.id), _label(d, prefix="↳ ")) for d in live if d.parent_id == primary.id)
    placed = {v for v, _ in out}
    out.extend((str(d.id), _label(d)) for d in live if str(d.id) not in placed)
    return out[:MAX_CYCLE_OPTIONS]


def _label(driver: Driver, *, prefix: str = "") -> str:
    """An option's text, whole words within Slack's 75 characters."""
    suffix = " (retired)" if driver.retired_at is not None else ""
    limit = OPTION_TEXT_MAX - len(prefix) - len(suffix)
    text = " ".join(driver.text.split())
    if len(text) > limit:
        text = (text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]) + "…"
    return prefix + text + suffix


def _entry(
    session: Session, row: BiasReview, numbers: dict[int, int], drivers: dict[int, str] | None = None
) -> BiasEntry:
    assert row.id is not None
    drivers = drivers if drivers is not None else _driver_texts(session, row.project_id)
    return BiasEntry(
        number=row.number,
        reviewed_kind=row.reviewed_kind,
        subject=row.subject,
        where_bias=row.where_bias,
        evidence_kinds=tuple(row.evidence_kinds or ()),
        evidence=row.evidence,
        institutional=row.institutional,
        action=row.action,
        owner_id=row.owner_id,
        due_date=row.due_date,
        status=row.status,
        cycle_numbers=tuple(sorted(numbers[c] for c in row.cycle_ids or () if c in numbers)),
        driver_id=row.driver_id,
        driver=drivers.get(row.driver_id, "") if row.driver_id is not None else "",
        edits=len(registers_repo.history(session, project_id=row.project_id, kind="bias", entry_id=row.id)),
    )


def bias_page(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, page: int = 1
) -> BiasPage | None:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return None
        total = registers_repo.count_bias(session, project_id=project_id)
        pages = rules.pages(total)
        page = min(max(1, page), pages)
        numbers = _cycle_numbers(session, project_id)
        drivers = _driver_texts(session, project_id)
        rows = registers_repo.list_bias(
            session, project_id=project_id, offset=(page - 1) * rules.PAGE_SIZE, limit=rules.PAGE_SIZE
        )
        return BiasPage(
            project=ref(session, project, user_id=user_id),
            entries=[_entry(session, r, numbers, drivers) for r in rows],
            page=page,
            pages=pages,
            total=total,
        )


def bias_form(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, number: int | None
) -> BiasForm | None:
    """What the add (number None) or edit form needs; None when the entry is not in this project."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return None
        numbers = _cycle_numbers(session, project_id)
        entry = None
        if number is not None:
            row = registers_repo.get_bias(session, project_id=project_id, number=number)
            if row is None:
                return None
            entry = _entry(session, row, numbers)
        cycles = [
            (str(c.number), f"PDSA {c.number}: {c.title}")
            for c in pdsa_repo.list_cycles(session, project_id=project_id)
        ][-MAX_CYCLE_OPTIONS:]
        return BiasForm(
            project=ref(session, project, user_id=user_id),
            entry=entry,
            cycles=cycles,
            drivers=_driver_options(session, project_id, entry.driver_id if entry else None),
        )


def save_bias(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, number: int | None, raw: dict[str, Any]
) -> BiasSaved:
    """Add (number None) or edit an entry; errors keyed by field name change nothing."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return BiasSaved(errors={"reviewed_kind": NOT_IN_PROJECT})
        by_number = {
            str(c.number): c.id for c in pdsa_repo.list_cycles(session, project_id=project_id) if c.id
        }
        row = None
        if number is not None:
            row = registers_repo.get_bias(session, project_id=project_id, number=number)
        offered = _driver_options(session, project_id, row.driver_id if row is not None else None)
        fields, errors = rules.parse_bias(
            raw, cycles=by_number, drivers={value: int(value) for value, _ in offered}
        )
        if number is not None and row is None:
            errors = {"reviewed_kind": NOT_IN_PROJECT}
        if errors:
            return BiasSaved(errors=errors)
        if row is None:
            row = registers_repo.add_bias(session, project=project, created_by=user_id, fields=fields)
            created, changed, status_changed = True, True, False
        else:
            before = row.status
            changed = registers_repo.update_bias(session, entry=row, changed_by=user_id, fields=fields)
            created, status_changed = False, row.status != before
        session.flush()
        return BiasSaved(
            entry=_entry(session, row, _cycle_numbers(session, project_id)),
            project=ref(session, project, user_id=user_id),
            created=created,
            changed=changed,
            status_changed=status_changed,
        )
