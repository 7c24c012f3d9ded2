"""The driver diagram as plain values: reading it (for the editor, the picture, Home and the PDSA plan form) and
recording the picture posted in the channel. Changing it is bot/services/drivers_edit.py."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from bot.core.charts.driver_diagram import DiagramTree, DriverNode, IdeaNode
from bot.services.pdsa import ref_of
from storage import drivers_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Driver, PdsaCycle, Project

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
