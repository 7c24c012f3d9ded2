"""Changing the driver diagram: add, edit, move and retire drivers and change ideas, with history kept, and a PDSA
cycle's link to its change idea.

Each write opens and commits its own unit of work (or runs inside the caller's, the `_in` forms), checks that every
id it is given belongs to the project (a payload's ids are claims), and returns plain values: what was saved, or the
problems to show inline in the form. A request key (the form's view id, or a button press's own timestamp) makes a
replayed request change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.drivers import (
    DRIVER,
    INFLUENCE,
    INFLUENCE_FIELD,
    MAX_DRIVERS,
    MAX_IDEAS,
    MAX_TEXT,
    MAX_WHO,
    NOT_ON_DIAGRAM,
    PARENT,
    TEXT,
    WHERE,
    WHERE_FIELD,
    WHO,
    WHY,
    Outcome,
)
from storage import drivers_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import ChangeIdea, Driver, utcnow

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
    movable: bool = False,
) -> Outcome:
    """Add a driver (driver_id None) or edit one. An edit may move a secondary under another primary; with
    `movable` (the edit form offers it) a secondary may also become a primary, and a primary with no secondary
    under it a secondary (its change ideas go with it)."""
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
        if existing is not None and not movable:
            secondary = existing.parent_id is not None
        if existing is not None and secondary and existing.parent_id is None:
            under = [
                d for d in drivers_repo.drivers(session, project_id=project_id) if d.parent_id == existing.id
            ]
            if under:
                problems[PARENT] = (
                    f"This primary driver has {len(under)} secondary driver{'s' if len(under) != 1 else ''} "
                    "under it, and a secondary can't have its own. Move them first, or keep it a primary."
                )
        parent = _active_driver(session, team_id=team_id, project_id=project_id, driver_id=parent_id)
        if secondary:
            if parent is None or parent.parent_id is not None:
                problems[PARENT] = (
                    "Choose the primary driver this one sits under from the list."
                    if parent_id is None
                    else "That primary driver isn't on this project's diagram any more: choose another."
                )
            elif existing is not None and parent.id == existing.id:
                problems.setdefault(PARENT, "A driver can't sit under itself.")
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
        if secondary or movable:
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
