"""Demo chapter: the disaggregated PPH view, the honest gap verdict, small cells shown as "<8", and data quality."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlmodel import Session

from bot.offline.demo.data import month_starts
from storage import measures_repo as mrepo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import DataPoint

if TYPE_CHECKING:
    from bot.offline.demo import DemoContext

DEMO_MEASURE = "PPH of 1,000 ml or more"
# Births per month and PPH rates before -> after, shaped on the Lancashire case study: Black African, Black
# Caribbean and other Black women at about 12% falling towards 9%, White British about 5%. P is small on
# purpose, so its latest-window count is suppressed; Z and 99 make the missing-data warning real.
DEMO_GROUPS: dict[str, tuple[int, float, float]] = {
    "A": (300, 0.05, 0.05),
    "C": (60, 0.06, 0.06),
    "H": (50, 0.07, 0.07),
    "J": (50, 0.08, 0.08),
    "N": (45, 0.12, 0.095),
    "M": (35, 0.12, 0.10),
    "P": (12, 0.11, 0.10),
    "Z": (15, 0.08, 0.08),
    "99": (40, 0.11, 0.11),
}


def demo_rows(end: date, months: int = 24, seed: int = 4) -> list[dict[str, Any]]:
    """Monthly PPH counts by ethnic group for the `months` complete months before `end` (deterministic)."""
    rng = np.random.default_rng(seed)
    periods = month_starts(end, months)
    rows: list[dict[str, Any]] = []
    for i, period in enumerate(periods):
        progress = i / max(len(periods) - 1, 1)
        for code, (births, before, after) in DEMO_GROUPS.items():
            denominator = int(rng.poisson(births))
            rate = before + (after - before) * progress
            numerator = int(rng.binomial(denominator, rate))
            rows.append(
                {
                    "period": period,
                    "group": code,
                    "numerator": numerator,
                    "denominator": denominator,
                    "value": None,
                }
            )
    return rows


def seed_measure(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    user_id: str,
    rows: list[dict[str, Any]],
    name: str = DEMO_MEASURE,
    period: str = "month",
) -> int:
    """Create the PPH measure (when missing) and write its data points through storage; returns its id."""
    project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
    assert project is not None and project.id is not None
    measure = mrepo.find_measure_by_name(session, project_id=project.id, name=name)
    if measure is None:
        measure = mrepo.create_measure(
            session,
            project=project,
            created_by=user_id,
            name=name,
            measure_type="outcome",
            kind="proportion",
            numerator_definition="Women with measured blood loss of 1,000 ml or more",
            denominator_definition="All women giving birth in the unit",
            direction="lower",
            reference_group="A",
            period=period,
            target=None,
        )
    assert measure.id is not None
    batch = mrepo.add_batch(session, measure=measure, source="cli", filename="demo-pph.csv", user_id=user_id)
    assert batch.id is not None
    for row in rows:
        session.add(
            DataPoint(
                measure_id=measure.id,
                team_id=measure.team_id,
                period_start=row["period"],
                group_code=row["group"],
                numerator=row["numerator"],
                denominator=row["denominator"],
                value=row["value"],
                batch_id=batch.id,
            )
        )
    session.flush()
    return measure.id


def chapter(ctx: DemoContext) -> None:
    ctx.step("Equity: the PPH measure by ethnic group")
    team = ctx.driver.team_id
    with unit_of_work(ctx.engine) as session:
        project = repo.project_for_channel(session, team_id=team, channel_id=ctx.channel)
        assert project is not None and project.id is not None
        measures = mrepo.measures_for_project(session, project_id=project.id)
        has_data = any(
            m.name.lower().startswith("pph") and mrepo.latest_period(session, measure_id=m.id or 0)
            for m in measures
        )
        if not has_data:
            # Without the measures chapter's import, the analyst's extract is loaded here instead.
            seed_measure(
                session, team_id=team, channel_id=ctx.channel, user_id=ctx.analyst, rows=demo_rows(ctx.today)
            )
    ctx.driver.slash("/equity", "", user=ctx.lead, channel=ctx.channel)
    before = len(ctx.standin.files())
    ctx.driver.slash("/equity", "PPH", user=ctx.lead, channel=ctx.channel)
    ctx.standin.wait_for(lambda: len(ctx.standin.files()) > before or None, timeout=30)
    findings = ctx.standin.wait_for(
        lambda: next(
            (m for m in reversed(ctx.standin.messages(ctx.channel)) if "'equity_views'" in str(m.blocks)),
            None,
        ),
        timeout=30,
    )

    ctx.step("The analyst switches to the gaps dot plot: it arrives in the thread")
    count = len(ctx.standin.files())
    ctx.driver.click("equity_view_gaps", user=ctx.analyst, message=findings)
    ctx.standin.wait_for(lambda: len(ctx.standin.files()) > count or None, timeout=30)

    ctx.step("Data quality across every measure")
    count = len(ctx.standin.files())
    ctx.driver.slash("/equity", "missing", user=ctx.analyst, channel=ctx.channel)
    ctx.standin.wait_for(
        lambda: next((m for m in ctx.standin.messages(ctx.channel) if "Ethnicity recording" in m.text), None),
        timeout=30,
    )
