"""The driver diagram's use cases: read it, add, edit, move and retire drivers and change ideas, with history kept.

Each write opens and commits its own unit of work, checks that every id it is given belongs to the project (a
payload's ids are claims), and returns plain values: what was saved, or the problems to show inline in the form.
A request key (the form's view id, or a button press's own timestamp) makes a replayed request change nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.core.charts.driver_diagram import DiagramTree, DriverNode, IdeaNode
from bot.services.pdsa import ref_of
from storage import drivers_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import ChangeIdea, Driver, PdsaCycle, Project, utcnow

MAX_DRIVERS = 60  # active drivers on one diagram: every list of them fits one Slack select (100 options)
MAX_IDEAS = 100  # active change ideas: a select of them fits Slack's 100 options
MAX_TEXT = 300
MAX_WHO = 200
WHERE = ("policy", "pathway", "resources", "communication", "staff_practice", "data", "other")
WHERE_LABELS = {
    "policy": "Policy",
    "pathway": "Pathway",
    "resources": "Resources",
    "communication": "Communication",
    "staff_practice": "Staff practice",
    "data": "Data",
    "other": "Other",
}
INFLUENCE = ("yes", "partly", "not_directly")
INFLUENCE_LABELS = {"yes": "Yes", "partly": "Partly", "not_directly": "Not directly"}

# Fields a form can be wrong about (the handler maps them to its blocks).
TEXT, PARENT, WHERE_FIELD, INFLUENCE_FIELD, WHO, DRIVER, WHY = (
    "text",
    "parent",
    "where",
    "influence",
    "who_can",
    "driver",
    "why",
)
NOT_ON_DIAGRAM = (
    "That isn't on this project's driver diagram (it may have been retired), so nothing was saved."
)


@dataclass(frozen=True)
class DriverInfo:
    id: int
    parent_id: int | None
    label: str  # "2" for a primary driver, "2.1" for a secondary
    text: str
    where: tuple[str, ...]
    influence: str
    who_can: str


@dataclass(frozen=True)
class IdeaInfo:
    id: int
    driver_id: int
    text: str
    cycles: tuple[tuple[str, str], ...]  # (the cycle as its card names it, "1.2"; outcome)


@dataclass(frozen=True)
class Diagram:
    project_id: int
    project_name: str
    channel_id: str
    aim: str
    drivers: tuple[DriverInfo, ...]  # tree order: each primary, then its secondaries
    ideas: tuple[IdeaInfo, ...]
    # (file id, when, alt text, tree key) of the picture last posted in the channel
    last_post: tuple[str, datetime, str, str] | None = None

    @property
    def can_influence(self) -> int:
        return sum(1 for d in self.drivers if d.influence in drivers_repo.INFLUENCE_CAN)

    def driver(self, driver_id: int) -> DriverInfo | None:
        return next((d for d in self.drivers if d.id == driver_id), None)

    def idea(self, idea_id: int) -> IdeaInfo | None:
        return next((i for i in self.ideas if i.id == idea_id), None)

    def primaries(self) -> list[DriverInfo]:
        return [d for d in self.drivers if d.parent_id is None]

    def ideas_under(self, driver_id: int) -> list[IdeaInfo]:
        return [i for i in self.ideas if i.driver_id == driver_id]

    def outline(self) -> list[tuple[str, DriverInfo | IdeaInfo]]:
        """Every item in reading order: ("driver", d) or ("idea", i)."""
        items: list[tuple[str, DriverInfo | IdeaInfo]] = []
        for primary in self.primaries():
            items.append(("driver", primary))
            for secondary in (d for d in self.drivers if d.parent_id == primary.id):
                items.append(("driver", secondary))
                items += [("idea", i) for i in self.ideas_under(secondary.id)]
            items += [("idea", i) for i in self.ideas_under(primary.id)]
        return items

    def tree_key(self) -> str:
        """A fingerprint of what the picture shows: equal keys draw the same picture."""
        return hashlib.sha256(repr(self.tree()).encode()).hexdigest()[:32]

    def tree(self) -> DiagramTree:
        def node(d: DriverInfo) -> DriverNode:
            return DriverNode(
                text=d.text,
                influence=d.influence,
                who_can=d.who_can,
                where=d.where,
                secondaries=tuple(node(s) for s in self.drivers if s.parent_id == d.id),
                ideas=tuple(IdeaNode(text=i.text, cycles=i.cycles) for i in self.ideas_under(d.id)),
            )

        return DiagramTree(
            project_name=self.project_name, aim=self.aim, primaries=tuple(node(p) for p in self.primaries())
        )


@dataclass(frozen=True)
class Outcome:
    """What a write did: `saved` words for the person, or problems by field (nothing was saved)."""

    saved: str = ""
    problems: dict[str, str] = field(default_factory=dict)
    item_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def outcome_of(cycle: PdsaCycle) -> str:
    if cycle.decision in ("adopt", "adapt", "abandon"):
        return cycle.decision
    return "running" if cycle.status in ("doing", "studied", "acted") else "planned"


# ---------------------------------------------------------------- reading


def diagram_in(session: Session, *, project_id: int) -> Diagram | None:
    """The project's diagram as plain values, read inside the caller's unit of work."""
    project = session.get(Project, project_id)
    if project is None or project.id is None:
        return None
    rows = drivers_repo.drivers(session, project_id=project_id)
    active = {d.id for d in rows}
    primaries = [d for d in rows if d.parent_id is None]
    ordered: list[DriverInfo] = []
    for i, primary in enumerate(primaries, start=1):
        ordered.append(_info(primary, str(i)))
        children = [d for d in rows if d.parent_id == primary.id]
        ordered += [_info(child, f"{i}.{j}") for j, child in enumerate(children, start=1)]
    cycles = drivers_repo.cycles_by_idea(session, project_id=project_id)
    ideas = tuple(
        IdeaInfo(
            id=int(idea.id or 0),
            driver_id=idea.driver_id,
            text=idea.text,
            cycles=tuple((ref_of(session, c), outcome_of(c)) for c in cycles.get(int(idea.id or 0), [])),
        )
        for idea in drivers_repo.ideas(session, project_id=project_id)
        if idea.driver_id in active
    )
    posted = drivers_repo.last_posted(session, project_id=project_id)
    return Diagram(
        project_id=project.id,
        project_name=project.name,
        channel_id=project.channel_id,
        aim=project.aim,
        drivers=tuple(ordered),
        ideas=ideas,
        last_post=posted,
    )


def _info(driver: Driver, label: str) -> DriverInfo:
    return DriverInfo(
        id=int(driver.id or 0),
        parent_id=driver.parent_id,
        label=label,
        text=driver.text,
        where=tuple(driver.where or ()),
        influence=driver.influence,
        who_can=driver.who_can,
    )


def for_channel(engine: Engine, *, team_id: str, channel_id: str) -> Diagram | None:
    """The diagram of the channel's project, or None when the channel has none."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return None
        return diagram_in(session, project_id=project.id)


def load(engine: Engine, *, team_id: str, project_id: int) -> Diagram | None:
    with unit_of_work(engine) as session:
        if repo.get_project(session, team_id=team_id, project_id=project_id) is None:
            return None
        return diagram_in(session, project_id=project_id)


# ---------------------------------------------------------------- checks shared by the writes


def _text_problem(text: str, what: str) -> str | None:
    if not text.strip():
        return f"Write the {what} in a few words."
    if len(text) > MAX_TEXT:
        return (
            f"Keep the {what} to {MAX_TEXT} characters (this is {len(text)}); details can go in a PDSA plan."
        )
    return None


def _driver_fields(
    *, text: str, where: Sequence[str], influence: str, who_can: str
) -> tuple[dict[str, Any], dict[str, str]]:
    problems: dict[str, str] = {}
    if (problem := _text_problem(text, "driver")) is not None:
        problems[TEXT] = problem
    unknown = [w for w in where if w not in WHERE]
    if unknown:
        problems[WHERE_FIELD] = "Choose from the list of places racism may be operating."
    if influence not in INFLUENCE:
        problems[INFLUENCE_FIELD] = (
            "Choose whether the team can influence this driver: yes, partly or not directly."
        )
    if len(who_can) > MAX_WHO:
        problems[WHO] = f"Keep this to {MAX_WHO} characters."
    elif influence == "not_directly" and not who_can.strip():
        problems[WHO] = (
            "Say who can influence it (for example the trust board, commissioners), so it has an owner."
        )
    fields = {
        "text": " ".join(text.split()),
        "where": [w for w in WHERE if w in where],
        "influence": influence,
        "who_can": " ".join(who_can.split()),
    }
    return fields, problems


def _active_driver(
    session: Session, *, team_id: str, project_id: int, driver_id: int | None
) -> Driver | None:
    if driver_id is None:
        return None
    driver = drivers_repo.get_driver(session, team_id=team_id, driver_id=driver_id)
    if driver is None or driver.project_id != project_id or driver.retired_at is not None:
        return None
    return driver


def _active_idea(
    session: Session, *, team_id: str, project_id: int, idea_id: int | None
) -> ChangeIdea | None:
    if idea_id is None:
        return None
    idea = drivers_repo.get_idea(session, team_id=team_id, idea_id=idea_id)
    if idea is None or idea.project_id != project_id or idea.retired_at is not None:
        return None
    return idea


def _snapshot(row: Driver | ChangeIdea) -> dict[str, Any]:
    keep = ("text", "where", "influence", "who_can", "parent_id", "driver_id", "position")
    return {k: v for k, v in row.model_dump().items() if k in keep}


# ---------------------------------------------------------------- drivers


def save_driver(
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    user_id: str,
    driver_id: int | None,
    parent_id: int | None,
    secondary: bool,
    text: str,
    where: Sequence[str],
    influence: str,
    who_can: str,
    request_key: str | None,
) -> Outcome:
    """Add a driver (driver_id None) or edit one; a secondary's parent may change (a move)."""
    fields, problems = _driver_fields(text=text, where=where, influence=influence, who_can=who_can)
    with unit_of_work(engine) as session:
        if repo.get_project(session, team_id=team_id, project_id=project_id) is None:
            return Outcome(problems={TEXT: NOT_ON_DIAGRAM})
        done = drivers_repo.replayed(session, project_id=project_id, request_key=request_key)
        if done is not None:
            return Outcome(saved="That was saved already.", item_id=done.item_id)
        existing = _active_driver(session, team_id=team_id, project_id=project_id, driver_id=driver_id)
        if driver_id is not None and existing is None:
            return Outcome(problems={TEXT: NOT_ON_DIAGRAM})
        if existing is not None:
            secondary = existing.parent_id is not None
        parent = _active_driver(session, team_id=team_id, project_id=project_id, driver_id=parent_id)
        if secondary:
            if parent is None or parent.parent_id is not None:
                problems[PARENT] = (
                    "Choose the primary driver this one sits under from the list."
                    if parent_id is None
                    else "That primary driver isn't on this project's diagram any more: choose another."
                )
            elif existing is not None and parent.id == existing.id:
                problems[PARENT] = "A driver can't sit under itself."
        if existing is None and drivers_repo.count_drivers(session, project_id=project_id)[0] >= MAX_DRIVERS:
            problems[TEXT] = (
                f"This diagram has {MAX_DRIVERS} drivers, the most it can hold. Retire one you no longer need first."
            )
        if problems:
            return Outcome(problems=problems)
        now = utcnow()
        new_parent = parent.id if secondary and parent is not None else None
        if existing is None:
            driver = Driver(
                project_id=project_id,
                team_id=team_id,
                parent_id=new_parent,
                position=drivers_repo.next_position(session, project_id=project_id),
                created_by=user_id,
                created_at=now,
                updated_at=now,
                **fields,
            )
            session.add(driver)
            session.flush()
            drivers_repo.record(
                session,
                project_id=project_id,
                team_id=team_id,
                item="driver",
                item_id=driver.id,
                action="add",
                old={},
                new=_snapshot(driver),
                changed_by=user_id,
                request_key=request_key,
            )
            kind = "secondary driver" if secondary else "primary driver"
            return Outcome(saved=f"Added the {kind}.", item_id=driver.id)
        old = _snapshot(existing)
        for key, value in fields.items():
            setattr(existing, key, value)
        if secondary:
            existing.parent_id = new_parent
        existing.updated_at = now
        session.add(existing)
        new = _snapshot(existing)
        if new == old:
            return Outcome(
                saved="Nothing needed changing: the driver already read like that.", item_id=existing.id
            )
        drivers_repo.record(
            session,
            project_id=project_id,
            team_id=team_id,
            item="driver",
            item_id=existing.id,
            action="move" if old.get("parent_id") != new.get("parent_id") else "edit",
            old=old,
            new=new,
            changed_by=user_id,
            request_key=request_key,
        )
        return Outcome(
            saved="Saved the driver; its earlier wording is kept in the history.", item_id=existing.id
        )


def retire(
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    user_id: str,
    item: str,
    item_id: int,
    why: str,
    request_key: str | None,
) -> Outcome:
    """Take a driver or change idea off the diagram; its history (and any cycles' link to it) stays."""
    with unit_of_work(engine) as session:
        done = drivers_repo.replayed(session, project_id=project_id, request_key=request_key)
        if done is not None:
            return Outcome(saved="That was retired already.", item_id=done.item_id)
        row: Driver | ChangeIdea | None
        if item == "driver":
            row = _active_driver(session, team_id=team_id, project_id=project_id, driver_id=item_id)
        else:
            row = _active_idea(session, team_id=team_id, project_id=project_id, idea_id=item_id)
        if row is None:
            return Outcome(problems={WHY: NOT_ON_DIAGRAM})
        if isinstance(row, Driver):
            under = [d for d in drivers_repo.drivers(session, project_id=project_id) if d.parent_id == row.id]
            ideas = [i for i in drivers_repo.ideas(session, project_id=project_id) if i.driver_id == row.id]
            if under or ideas:
                parts = []
                if under:
                    parts.append(f"{len(under)} secondary driver{'s' if len(under) != 1 else ''}")
                if ideas:
                    parts.append(f"{len(ideas)} change idea{'s' if len(ideas) != 1 else ''}")
                return Outcome(
                    problems={
                        WHY: f"This driver still has {' and '.join(parts)} under it. Move or retire them first, "
                        "so nothing is lost from the diagram by accident."
                    }
                )
        if len(why) > MAX_WHO * 5:
            return Outcome(problems={WHY: f"Keep the reason to {MAX_WHO * 5} characters."})
        row.retired_at = utcnow()
        row.updated_at = row.retired_at
        session.add(row)
        drivers_repo.record(
            session,
            project_id=project_id,
            team_id=team_id,
            item=item,
            item_id=row.id,
            action="retire",
            old=_snapshot(row),
            new={"why": " ".join(why.split())},
            changed_by=user_id,
            request_key=request_key,
        )
        what = "driver" if item == "driver" else "change idea"
        return Outcome(
            saved=f"Retired the {what}; it is kept in the history and in the export.", item_id=row.id
        )


def move(
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    user_id: str,
    item: str,
    item_id: int,
    direction: str,
    request_key: str | None,
) -> Outcome:
    """Move a driver or change idea one place up or down among its siblings."""
    with unit_of_work(engine) as session:
        if drivers_repo.replayed(session, project_id=project_id, request_key=request_key) is not None:
            return Outcome(saved="That was moved already.", item_id=item_id)
        siblings: list[Any]
        if item == "driver":
            row = _active_driver(session, team_id=team_id, project_id=project_id, driver_id=item_id)
            if row is None:
                return Outcome(problems={TEXT: NOT_ON_DIAGRAM})
            siblings = [
                d
                for d in drivers_repo.drivers(session, project_id=project_id)
                if d.parent_id == row.parent_id
            ]
        else:
            idea = _active_idea(session, team_id=team_id, project_id=project_id, idea_id=item_id)
            if idea is None:
                return Outcome(problems={TEXT: NOT_ON_DIAGRAM})
            siblings = [
                i for i in drivers_repo.ideas(session, project_id=project_id) if i.driver_id == idea.driver_id
            ]
        index = next(i for i, s in enumerate(siblings) if s.id == item_id)
        other = index - 1 if direction == "up" else index + 1
        if not 0 <= other < len(siblings):
            return Outcome(saved="It is already at the " + ("top." if direction == "up" else "bottom."))
        ordered = list(siblings)
        ordered[index], ordered[other] = ordered[other], ordered[index]
        positions = sorted({s.position for s in siblings})
        if len(positions) < len(siblings):
            positions = list(range(min(positions), min(positions) + len(siblings)))
        old = {"order": [s.id for s in siblings]}
        for position, sibling in zip(positions, ordered, strict=True):
            sibling.position = position
            session.add(sibling)
        drivers_repo.record(
            session,
            project_id=project_id,
            team_id=team_id,
            item=item,
            item_id=item_id,
            action="move",
            old=old,
            new={"order": [s.id for s in ordered]},
            changed_by=user_id,
            request_key=request_key,
        )
        return Outcome(saved="Moved.", item_id=item_id)


# ---------------------------------------------------------------- change ideas


def save_idea(
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    user_id: str,
    idea_id: int | None,
    driver_id: int | None,
    text: str,
    request_key: str | None,
) -> Outcome:
    """Add a change idea under a driver, or edit one (a new driver is a move)."""
    with unit_of_work(engine) as session:
        if repo.get_project(session, team_id=team_id, project_id=project_id) is None:
            return Outcome(problems={TEXT: NOT_ON_DIAGRAM})
        return save_idea_in(
            session,
            team_id=team_id,
            project_id=project_id,
            user_id=user_id,
            idea_id=idea_id,
            driver_id=driver_id,
            text=text,
            request_key=request_key,
        )


def save_idea_in(
    session: Session,
    *,
    team_id: str,
    project_id: int,
    user_id: str,
    idea_id: int | None,
    driver_id: int | None,
    text: str,
    request_key: str | None,
) -> Outcome:
    """As save_idea, inside the caller's unit of work (the PDSA plan adds its new idea with the cycle)."""
    done = drivers_repo.replayed(session, project_id=project_id, request_key=request_key)
    if done is not None:
        return Outcome(saved="That was saved already.", item_id=done.item_id)
    problems: dict[str, str] = {}
    if (problem := _text_problem(text, "change idea")) is not None:
        problems[TEXT] = problem
    existing = _active_idea(session, team_id=team_id, project_id=project_id, idea_id=idea_id)
    if idea_id is not None and existing is None:
        return Outcome(problems={TEXT: NOT_ON_DIAGRAM})
    driver = _active_driver(session, team_id=team_id, project_id=project_id, driver_id=driver_id)
    if driver is None:
        if driver_id is None and not drivers_repo.drivers(session, project_id=project_id):
            problems[DRIVER] = (
                "A change idea hangs off a driver: add a driver to the diagram first (`/mfi drivers`)."
            )
        elif driver_id is None:
            problems[DRIVER] = "Choose the driver this change idea works on."
        else:
            problems[DRIVER] = "That driver isn't on this project's diagram any more: choose another."
    if existing is None and drivers_repo.count_ideas(session, project_id=project_id) >= MAX_IDEAS:
        problems[TEXT] = f"This diagram has {MAX_IDEAS} change ideas, the most it can hold. Retire one first."
    if problems:
        return Outcome(problems=problems)
    assert driver is not None and driver.id is not None
    now = utcnow()
    clean = " ".join(text.split())
    if existing is None:
        idea = ChangeIdea(
            project_id=project_id,
            team_id=team_id,
            driver_id=driver.id,
            text=clean,
            position=drivers_repo.next_position(session, project_id=project_id),
            created_by=user_id,
            created_at=now,
            updated_at=now,
        )
        session.add(idea)
        session.flush()
        drivers_repo.record(
            session,
            project_id=project_id,
            team_id=team_id,
            item="idea",
            item_id=idea.id,
            action="add",
            old={},
            new=_snapshot(idea),
            changed_by=user_id,
            request_key=request_key,
        )
        return Outcome(saved="Added the change idea.", item_id=idea.id)
    old = _snapshot(existing)
    existing.text, existing.driver_id, existing.updated_at = clean, driver.id, now
    session.add(existing)
    new = _snapshot(existing)
    if new == old:
        return Outcome(
            saved="Nothing needed changing: the change idea already read like that.", item_id=existing.id
        )
    drivers_repo.record(
        session,
        project_id=project_id,
        team_id=team_id,
        item="idea",
        item_id=existing.id,
        action="move" if old["driver_id"] != new["driver_id"] else "edit",
        old=old,
        new=new,
        changed_by=user_id,
        request_key=request_key,
    )
    return Outcome(
        saved="Saved the change idea; its earlier wording is kept in the history.", item_id=existing.id
    )


def plan_choices(session: Session, *, project_id: int) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """For the PDSA plan form: (change ideas, drivers) as (id, label), in diagram order (each fits one select)."""
    diagram = diagram_in(session, project_id=project_id)
    if diagram is None:
        return [], []
    labels = {d.id: d.label for d in diagram.drivers}
    ideas = [
        (i.id, f"{labels.get(i.driver_id, '?')} → {i.text}")
        for _, i in diagram.outline()
        if isinstance(i, IdeaInfo)
    ]
    drivers = [(d.id, f"{d.label}. {d.text}") for d in diagram.drivers]
    return ideas[:MAX_IDEAS], drivers[:MAX_DRIVERS]


CYCLE_IDEA_GONE = (
    "That change idea isn't on this project's driver diagram (it may have been retired): choose another, "
    "or leave it empty. Nothing was saved."
)
BOTH = "Choose a change idea from the diagram, or a driver to add this one under: not both."


def link_for_cycle(
    session: Session,
    *,
    team_id: str,
    project_id: int,
    user_id: str,
    idea_id: int | None,
    new_under_driver: int | None,
    change_idea_text: str,
) -> int | None | dict[str, str]:
    """The change idea a new or edited cycle hangs off, inside the caller's unit of work: the chosen one (it must be
    on this project's diagram), or a new one added under `new_under_driver` from the cycle's own words. Problems
    come back by field ("idea", "driver", "text"); nothing is written then."""
    if idea_id is not None and new_under_driver is not None:
        return {DRIVER: BOTH}
    if idea_id is not None:
        idea = _active_idea(session, team_id=team_id, project_id=project_id, idea_id=idea_id)
        return int(idea.id or 0) if idea is not None else {"idea": CYCLE_IDEA_GONE}
    if new_under_driver is None:
        return None
    outcome = save_idea_in(
        session,
        team_id=team_id,
        project_id=project_id,
        user_id=user_id,
        idea_id=None,
        driver_id=new_under_driver,
        text=change_idea_text,
        request_key=None,
    )
    return outcome.problems if outcome.problems else outcome.item_id


# ---------------------------------------------------------------- the picture in the channel


def record_post(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, file_id: str, alt_text: str, tree_key: str
) -> None:
    with unit_of_work(engine) as session:
        drivers_repo.record(
            session,
            project_id=project_id,
            team_id=team_id,
            item="diagram",
            item_id=None,
            action="post",
            old={},
            new={"file_id": file_id, "alt_text": alt_text, "tree_key": tree_key},
            changed_by=user_id,
        )
