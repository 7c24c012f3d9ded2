"""Rows for the service tests (tests/services/): a project, its measures and their data, written directly."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine

from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import DataBatch, DataPoint, Measure

TEAM = "T1"
CHANNEL = "C1"
LEAD, MEMBER, PARTNER = "U0LEAD", "U0MEMBER", "U0PARTNER"


def make_project(
    engine: Engine,
    *,
    channel: str = CHANNEL,
    team: str = TEAM,
    name: str = "PPH equity",
    leads: Sequence[str] = (LEAD,),
    partners: Sequence[str] = (),
    **fields: Any,
) -> int:
    with unit_of_work(engine) as session:
        project = repo.create_project(
            session,
            team_id=team,
            enterprise_id=None,
            channel_id=channel,
            created_by=leads[0],
            name=name,
            aim="Reduce PPH among Black African and Black Caribbean women",
            focus_groups=["N", "M"],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context="",
            leads=list(leads),
            partners=list(partners),
            timezone="Europe/London",
            **fields,
        )
        assert project.id is not None
        return project.id


def make_measure(
    engine: Engine,
    project_id: int,
    *,
    name: str = "PPH",
    team: str = TEAM,
    rows: Sequence[tuple[date, str, int, int]] = (),
    **fields: Any,
) -> int:
    """A monthly proportion measure with `rows` of (period, group, numerator, denominator)."""
    with unit_of_work(engine) as session:
        measure = Measure(
            project_id=project_id,
            team_id=team,
            name=name,
            kind=fields.pop("kind", "proportion"),
            measure_type=fields.pop("measure_type", "outcome"),
            direction=fields.pop("direction", "lower"),
            created_by=LEAD,
            **fields,
        )
        session.add(measure)
        session.flush()
        assert measure.id is not None
        if rows:
            batch = DataBatch(measure_id=measure.id, team_id=team, source="log")
            session.add(batch)
            session.flush()
            for period, group, numerator, denominator in rows:
                session.add(
                    DataPoint(
                        measure_id=measure.id,
                        team_id=team,
                        period_start=period,
                        group_code=group,
                        numerator=numerator,
                        denominator=denominator,
                        batch_id=batch.id or 0,
                    )
                )
        return measure.id


def monthly_rows(months: int = 12, start: date = date(2025, 1, 1)) -> list[tuple[date, str, int, int]]:
    """Every month from `start`: White British (A) 5%, Black African (N) 10%, Black Caribbean (M) 2 of 20 (small),
    with Not stated (Z) and Not known (99) recorded."""
    rows = []
    for i in range(months):
        month = date(start.year + (start.month - 1 + i) // 12, (start.month - 1 + i) % 12 + 1, 1)
        rows += [(month, "A", 50, 1000), (month, "N", 30, 300), (month, "M", 2, 20), (month, "Z", 1, 10)]
        rows += [(month, "99", 0, 5)]
    return rows
