"""PDSA cycles as plain values: a cycle read inside the caller's unit of work, rendered after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.core import pdsa
from bot.core.blockkit import typed
from storage import measures_repo, pdsa_repo
from storage.models import PdsaCycle, PdsaEntry, Project


@dataclass
class CycleInfo:
    """A cycle as plain values (read inside the unit of work, rendered after it)."""

    id: int
    number: int
    ref: str  # "N.S": series number and ramp step
    title: str
    change_idea: str
    question: str
    predictions: list[dict[str, Any]]
    plan: dict[str, Any]
    start_date: date
    end_date: date
    involvement: str
    involvement_pending: bool
    status: str
    decision: str | None
    measures: list[str]
    balancing: str | None
    kind: str
    today: date
    ramp_step: int = 1
    history: list[str] = field(default_factory=list)
    retrospective: bool = False  # planned after its end date: a test that already ran, recorded afterwards

    @property
    def overdue(self) -> bool:
        return pdsa.is_overdue(self.status, self.end_date, self.today, retrospective=self.retrospective)

    @property
    def next_step(self) -> str:
        return pdsa.next_step(
            self.status, self.ref, self.end_date, self.today, self.decision, retrospective=self.retrospective
        )


def local_today(project: Project) -> date:
    """Today where the project is (its time zone), for due dates and overdue cycles."""
    try:
        return datetime.now(ZoneInfo(project.timezone)).date()
    except (KeyError, ValueError):
        return date.today()


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def cycle_info(session: Session, cycle: PdsaCycle, *, today: date, with_history: bool = False) -> CycleInfo:
    assert cycle.id is not None
    measures = [
        measures_repo.get_measure(session, project_id=cycle.project_id, measure_id=int(i))
        for i in cycle.measure_ids
    ]
    named = [m for m in measures if m is not None]
    balancing = (
        measures_repo.get_measure(session, project_id=cycle.project_id, measure_id=cycle.balancing_measure_id)
        if cycle.balancing_measure_id
        else None
    )
    info = CycleInfo(
        id=cycle.id,
        number=cycle.number,
        ref=f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}",
        title=cycle.title,
        change_idea=cycle.change_idea,
        question=cycle.question,
        predictions=list(cycle.predictions),
        plan=dict(cycle.plan),
        start_date=cycle.start_date,
        end_date=cycle.end_date,
        involvement=cycle.involvement,
        involvement_pending=cycle.involvement_pending,
        status=cycle.status,
        decision=cycle.decision,
        measures=[m.name for m in named],
        balancing=balancing.name if balancing else None,
        kind=named[0].kind if named else "proportion",
        today=today,
        ramp_step=cycle.ramp_step,
        retrospective=as_utc(cycle.created_at).date() > cycle.end_date,
    )
    if with_history:
        info.history = [history_line(e) for e in pdsa_repo.entries(session, cycle_id=cycle.id)]
    return info


def history_line(entry: PdsaEntry) -> str:
    when = f"{entry.created_at.day} {entry.created_at:%b %Y}"
    who = f" <@{entry.user_id}>" if entry.user_id else ""
    data = entry.data
    if entry.kind == "plan":
        text = "planned the cycle"
    elif entry.kind == "do" and "what" not in data:  # an observation saved from a message (a shortcut)
        text = f"Do observation: {typed(str(data.get('observations', ''))[:120])}"
    elif entry.kind == "do":
        text = (
            f"Do (ran as planned: {typed(data.get('as_planned'))}): {typed(str(data.get('what', ''))[:120])}"
        )
    elif entry.kind == "study":
        failed = [
            pdsa.group_name(s["group"]) for s in data.get("scores", []) if s.get("outcome") == "not_held"
        ]
        text = "Study: " + (
            f"the prediction did not hold for {', '.join(failed)}" if failed else "predictions compared"
        )
    elif entry.kind == "act":
        text = f"Act: *{typed(data.get('decision'))}*: {typed(str(data.get('reason', ''))[:120])}"
    elif entry.kind == "edit":
        text = "edited " + ", ".join(sorted(data.get("previous", {}))) + " (earlier values kept)"
    else:
        text = f":warning: {typed(data.get('message', entry.kind))}"
    return f"• {when}{who}: {text}"
