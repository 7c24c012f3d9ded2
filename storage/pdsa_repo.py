"""Queries and writes for PDSA cycles, their history entries, and the data a Study needs. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.core import pdsa
from bot.core.equity.types import GroupCounts
from storage import answers_repo
from storage.db import remembered
from storage.models import Answer, DataPoint, Measure, PdsaCycle, PdsaEntry, Project, ProjectMember, utcnow
from storage.repositories import audit

CYCLE_FIELDS = (
    "title",
    "change_idea",
    "change_idea_id",  # the driver diagram's change idea this cycle tests (None: not linked)
    "question",
    "measure_ids",
    "balancing_measure_id",
    "predictions",
    "plan",
    "start_date",
    "end_date",
    "involvement",
    "involvement_pending",
)
OPEN_STATUSES = ("planned", "doing")


# ---------------------------------------------------------------- measures (until storage/measures_repo.py lands)


def window_counts(
    session: Session, *, measure: Measure, groups: Sequence[str], start: date, end: date
) -> tuple[dict[str, GroupCounts], list[date], dict[str, list[date]]]:
    """Numerator and denominator per group, summed over the measure's periods that overlap start..end.

    Returns the counts (only groups with any data), the periods in the window (expected or found), and,
    per group, the periods that have no data for it (for the "which data are missing" message).
    """
    assert measure.id is not None
    # Periods start at most one quarter before the window: fetch a little wider, then filter exactly.
    rows = list(
        session.exec(
            select(DataPoint).where(
                DataPoint.measure_id == measure.id,
                col(DataPoint.period_start) >= start - timedelta(days=92),
                col(DataPoint.period_start) <= end,
            )
        )
    )
    rows = [r for r in rows if pdsa.overlaps(r.period_start, measure.period, start, end)]
    periods = sorted({r.period_start for r in rows} | set(pdsa.expected_periods(start, end, measure.period)))
    out: dict[str, GroupCounts] = {}
    missing: dict[str, list[date]] = {}
    # Everyone (overall) is every stored group: the NHS codes, Not stated (Z), Not known (99) and the log form's
    # "All other groups" row, which stands for the people not entered under their own code.
    everyone = tuple(sorted({r.group_code for r in rows} - {pdsa.OVERALL}))
    for group in groups:
        if group == pdsa.OVERALL and any(r.group_code == pdsa.OVERALL for r in rows):
            codes: tuple[str, ...] = (pdsa.OVERALL,)
        elif group == pdsa.OVERALL:
            codes = everyone
        else:
            codes = pdsa.group_codes_for(group)
        mine = [
            r for r in rows if r.group_code in codes and r.numerator is not None and r.denominator is not None
        ]
        have = {r.period_start for r in mine}
        missing[group] = [p for p in periods if p not in have]
        if mine:
            out[group] = GroupCounts(
                group, sum(int(r.numerator or 0) for r in mine), sum(int(r.denominator or 0) for r in mine)
            )
    return out, periods, missing


def add_rebase_date(session: Session, *, measure: Measure, on: date) -> bool:
    """Append a rebase date for the measure's SPC limits; False when it was already there."""
    text = on.isoformat()
    if text in measure.rebase_dates:
        return False
    measure.rebase_dates = sorted(
        [*measure.rebase_dates, text]
    )  # a new list, so the JSON column is marked dirty
    session.add(measure)
    return True


# ---------------------------------------------------------------- cycles


def next_number(session: Session, *, project_id: int) -> int:
    current = session.exec(select(func.max(PdsaCycle.number)).where(PdsaCycle.project_id == project_id)).one()
    return int(current or 0) + 1


def create_cycle(
    session: Session,
    *,
    project: Project,
    created_by: str,
    previous: PdsaCycle | None = None,
    **fields: Any,
) -> PdsaCycle:
    """A new cycle (numbered within the project) and its "plan" entry; continues `previous`'s ramp when given."""
    assert project.id is not None
    unknown = set(fields) - set(CYCLE_FIELDS)
    if unknown:
        raise ValueError(f"not cycle fields: {sorted(unknown)}")
    cycle = PdsaCycle(
        project_id=project.id,
        team_id=project.team_id,
        number=next_number(session, project_id=project.id),
        channel_id=project.channel_id,
        created_by=created_by,
        **fields,
    )
    if previous is not None:
        cycle.series_id = previous.series_id or previous.id
        cycle.ramp_step = previous.ramp_step + 1
        cycle.previous_cycle_id = previous.id
    session.add(cycle)
    session.flush()
    if cycle.series_id is None:
        cycle.series_id = cycle.id
        session.add(cycle)
    add_entry(session, cycle=cycle, kind="plan", user_id=created_by, data=plan_snapshot(cycle))
    audit(
        session,
        team_id=project.team_id,
        project_id=project.id,
        user_id=created_by,
        action="pdsa.create",
        detail={"number": cycle.number},
    )
    return cycle


def plan_snapshot(cycle: PdsaCycle) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in CYCLE_FIELDS:
        value = getattr(cycle, name)
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def update_cycle(session: Session, *, cycle: PdsaCycle, changed_by: str, **fields: Any) -> dict[str, Any]:
    """Apply edits and keep the previous values as a PdsaEntry(kind="edit"). Returns the previous values."""
    previous: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in CYCLE_FIELDS:
            raise ValueError(f"{name} is not an editable cycle field")
        old = getattr(cycle, name)
        if old != value:
            previous[name] = old.isoformat() if isinstance(old, date) else old
            setattr(cycle, name, value)
    if previous:
        cycle.updated_at = utcnow()
        session.add(cycle)
        add_entry(
            session,
            cycle=cycle,
            kind="edit",
            user_id=changed_by,
            data={"previous": previous, "status_when_edited": cycle.status},
        )
        audit(
            session,
            team_id=cycle.team_id,
            project_id=cycle.project_id,
            user_id=changed_by,
            action="pdsa.edit",
            detail={"number": cycle.number, "fields": sorted(previous)},
        )
    return previous


def get_cycle(session: Session, *, project_id: int, number: int) -> PdsaCycle | None:
    return session.exec(
        select(PdsaCycle).where(PdsaCycle.project_id == project_id, PdsaCycle.number == number)
    ).first()


def get_cycle_by_id(session: Session, *, team_id: str, cycle_id: int) -> PdsaCycle | None:
    """A cycle by id, only within its own workspace."""
    cycle = session.get(PdsaCycle, cycle_id)
    return cycle if cycle is not None and cycle.team_id == team_id else None


def find_cycle(session: Session, *, project_id: int, ref: str) -> PdsaCycle | None:
    """A cycle by series and ramp step as the card shows it ("1.2"), or by series alone ("3": that test's latest
    ramp step, the one people are working on); a number that starts no series is the cycle with that number."""
    ref = ref.strip().lstrip("#")
    if ref.isdigit():
        cycle = get_cycle(session, project_id=project_id, number=int(ref))
        if cycle is None or cycle.id is None or cycle.series_id not in (None, cycle.id):
            return cycle
        return (
            session.exec(
                select(PdsaCycle)
                .where(PdsaCycle.project_id == project_id, PdsaCycle.series_id == cycle.id)
                .order_by(col(PdsaCycle.ramp_step).desc())
            ).first()
            or cycle
        )
    series, _, step = ref.partition(".")
    if not (series.isdigit() and step.isdigit()):
        return None
    first = get_cycle(session, project_id=project_id, number=int(series))
    if first is None or first.id is None:
        return None
    return session.exec(
        select(PdsaCycle).where(
            PdsaCycle.project_id == project_id,
            PdsaCycle.series_id == (first.series_id or first.id),
            PdsaCycle.ramp_step == int(step),
        )
    ).first()


def list_cycles(session: Session, *, project_id: int) -> list[PdsaCycle]:
    """The project's cycles by number. Its measures and cycles are loaded with them and held for the rest of the
    unit of work, so reading each cycle's measures and series (session.get) costs no further query: the
    session's identity map holds objects weakly, and without this every cycle read them again."""
    return remembered(session, ("cycles", project_id), lambda: _cycles(session, project_id))


def _cycles(session: Session, project_id: int) -> list[PdsaCycle]:
    cycles = list(
        session.exec(
            select(PdsaCycle).where(PdsaCycle.project_id == project_id).order_by(col(PdsaCycle.number))
        )
    )
    measures = list(session.exec(select(Measure).where(Measure.project_id == project_id)))
    held: list[object] = session.info.setdefault("mfi_held", [])
    held += [*cycles, *measures]
    return cycles


def series_number(session: Session, *, cycle: PdsaCycle) -> int:
    """The number of the first cycle of the ramp: the N in "PDSA N.S"."""
    if cycle.series_id is None or cycle.series_id == cycle.id:
        return cycle.number
    first = session.get(PdsaCycle, cycle.series_id)
    return first.number if first is not None else cycle.number


def set_status(session: Session, *, cycle: PdsaCycle, status: str, decision: str | None = None) -> None:
    cycle.status = status
    if decision is not None:
        cycle.decision = decision
    cycle.updated_at = utcnow()
    session.add(cycle)


def set_card_ts(session: Session, *, cycle: PdsaCycle, ts: str) -> None:
    cycle.card_ts = ts
    session.add(cycle)


def add_entry(
    session: Session, *, cycle: PdsaCycle, kind: str, data: dict[str, Any], user_id: str | None
) -> PdsaEntry:
    assert cycle.id is not None
    entry = PdsaEntry(cycle_id=cycle.id, team_id=cycle.team_id, kind=kind, data=data, user_id=user_id)
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, *, cycle_id: int, kind: str | None = None) -> list[PdsaEntry]:
    query = select(PdsaEntry).where(PdsaEntry.cycle_id == cycle_id)
    if kind is not None:
        query = query.where(PdsaEntry.kind == kind)
    return list(session.exec(query.order_by(col(PdsaEntry.id))))


def latest_study(session: Session, *, cycle_id: int) -> PdsaEntry | None:
    found = entries(session, cycle_id=cycle_id, kind="study")
    return found[-1] if found else None


def study_dates(session: Session, *, project_id: int) -> dict[int, datetime]:
    """When each cycle of the project was last studied (cycle id -> the latest study entry's time), in one query."""
    return remembered(session, ("study_dates", project_id), lambda: _study_dates(session, project_id))


def _study_dates(session: Session, project_id: int) -> dict[int, datetime]:
    rows = session.exec(
        select(PdsaEntry.cycle_id, func.max(PdsaEntry.created_at))
        .join(PdsaCycle, col(PdsaCycle.id) == col(PdsaEntry.cycle_id))
        .where(PdsaCycle.project_id == project_id, PdsaEntry.kind == "study")
        .group_by(col(PdsaEntry.cycle_id))
    )
    return {int(cycle_id): created for cycle_id, created in rows if created is not None}


def study_scores(session: Session, *, project_id: int) -> list[dict[str, Any]]:
    """The latest study's scores of every cycle in the project (one vote per cycle and group)."""
    return remembered(session, ("study_scores", project_id), lambda: _study_scores(session, project_id))


def _study_scores(session: Session, project_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(PdsaEntry)
        .join(PdsaCycle, col(PdsaCycle.id) == col(PdsaEntry.cycle_id))
        .where(PdsaCycle.project_id == project_id, PdsaEntry.kind == "study")
        .order_by(col(PdsaEntry.id))
    ).all()
    latest: dict[int, PdsaEntry] = {}
    for entry in rows:
        latest[entry.cycle_id] = entry
    return [score for entry in latest.values() for score in entry.data.get("scores") or []]


# ---------------------------------------------------------------- partner reflections during a cycle


def partner_reflections(
    session: Session, *, project_id: int, start: date, end: date
) -> tuple[list[str], int]:
    """Partner answers given during start..end: texts the partner agreed to share in the channel, and how many others."""
    since = datetime.combine(start, time.min, tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    answers = list(
        session.exec(
            select(Answer)
            .where(
                Answer.project_id == project_id,
                Answer.from_partner == True,  # noqa: E712
                col(Answer.created_at) >= since,
                col(Answer.created_at) < until,
            )
            .order_by(col(Answer.id))
        )
    )
    sharing = {
        m.user_id
        for m in session.exec(
            select(ProjectMember).where(
                ProjectMember.project_id == project_id,
                ProjectMember.role == "partner",
                ProjectMember.share_in_channel == True,  # noqa: E712
                ProjectMember.stopped == False,  # noqa: E712
            )
        )
    }
    project = session.get(Project, project_id)
    if project is not None and any(a.anonymous for a in answers):
        # Anonymous answers count only once enough people could have given them (storage.answers_repo.pooling).
        visible = {s.answer.id for s in answers_repo.visible_answers(session, project=project)}
        answers = [a for a in answers if not a.anonymous or a.id in visible]
    shared = [a.text for a in answers if a.user_id is not None and not a.anonymous and a.user_id in sharing]
    return shared, len(answers) - len(shared)
