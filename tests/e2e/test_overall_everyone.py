"""Everyone (overall) is everyone: every stored group, including "All other groups" and Not stated / Not known.

The log form has a row for the focus and reference groups, one for "All other groups" (stored as OTHERS) and
one each for Not stated (Z) and Not known (99). A total built from the NHS codes alone drops the people in
the "All other groups" row; one built from the national codes alone drops the missing categories too.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from bot.core import ethnicity
from bot.core.equity import analysis as an
from bot.core.equity.disclosure import DisclosurePolicy
from handlers.blocks import ids
from storage import pdsa_repo
from storage.models import DataBatch, DataPoint, Measure, Project
from tests.e2e.test_pdsa_e2e import PLAN, cycles, entries, plan, study, wait_thread
from tests.helpers import ANALYST, CHANNEL, LEAD, start_project

BEFORE = [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)]
DURING = [date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)]
# Per month. Before the cycle: 11% among Black African women, nobody in the other rows had a PPH, so everyone's
# rate was about 7.3%. During: 10% for Black African women and for everyone. Counts from 1 to 7 are avoided so
# the channel net has nothing to find.
ROWS_BEFORE = {"N": (44, 400), ethnicity.OTHERS: (0, 100), "Z": (0, 50), "99": (0, 50)}
ROWS_DURING = {"N": (40, 400), ethnicity.OTHERS: (12, 100), "Z": (8, 50), "99": (0, 50)}


def _seed(engine: Any) -> int:
    with Session(engine) as session, session.begin():
        project = session.exec(select(Project).where(Project.channel_id == CHANNEL)).one()
        measure = Measure(
            project_id=project.id or 0,
            team_id=project.team_id,
            name="PPH 1,000 ml or more",
            measure_type="outcome",
            kind="proportion",
            direction="lower",
            created_by=LEAD,
        )
        session.add(measure)
        session.flush()
        batch = DataBatch(measure_id=measure.id or 0, team_id=project.team_id, source="log", user_id=ANALYST)
        session.add(batch)
        session.flush()
        for months, rows in ((BEFORE, ROWS_BEFORE), (DURING, ROWS_DURING)):
            for month in months:
                for code, (num, den) in rows.items():
                    session.add(
                        DataPoint(
                            measure_id=measure.id or 0,
                            team_id=project.team_id,
                            period_start=month,
                            group_code=code,
                            numerator=num,
                            denominator=den,
                            batch_id=batch.id or 0,
                        )
                    )
        return measure.id or 0


def test_study_and_its_baseline_count_everyone(live: Any) -> None:
    start_project(live)
    measure_id = _seed(live.engine)
    values: dict[str, Any] = {
        **PLAN,
        ids.B_PDSA_PREDICT_PREFIX + "ALL": "lower — fewer PPHs for everyone",
        ids.B_PDSA_BALANCING: None,
    }
    _, response = plan(live, {"outcome": measure_id, "balancing": measure_id}, **values)
    assert not response.body, response.body
    live.standin.wait_for(lambda: cycles(live.engine)[0].card_ts)

    # The Study window: the overall row is pre-filled with every stored row (60 of 600 a month), not only
    # the Black African row (40 of 400).
    view, response = study(
        live,
        values={
            ids.B_PDSA_STUDY_LEARNING: "Fewer for Black African women",
            ids.B_PDSA_OBSERVED_PREFIX + "ALL": "180/1800",
            ids.B_PDSA_OBSERVED_PREFIX + "N": "120/1200",
        },
    )
    initial = {
        b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"
    }
    assert initial[ids.B_PDSA_OBSERVED_PREFIX + "ALL"] == "180/1800"
    assert initial[ids.B_PDSA_OBSERVED_PREFIX + "N"] == "120/1200"
    assert not response.body, response.body
    wait_thread(live, "Predicted against observed")

    # The baseline (the window before): everyone's rate was about 7.3%, so 10% is a rise and "lower" did not
    # hold. Counted from the Black African row alone the baseline would be 11% and the prediction would hold.
    (entry,) = entries(live.engine, "study")
    scores = {s["group"]: s for s in entry.data["scores"]}
    assert scores["ALL"]["outcome"] == "not_held", scores["ALL"]
    assert "rose" in scores["ALL"]["reason"]


def test_window_counts_before_the_cycle_include_every_stored_group(engine: Any) -> None:
    from tests.core.test_pdsa import _project

    with Session(engine) as session, session.begin():
        project = _project(session)
        measure = Measure(
            project_id=project.id,
            team_id="T1",
            name="PPH",
            measure_type="outcome",
            kind="proportion",
            created_by="U1",
        )
        session.add(measure)
        session.flush()
        batch = DataBatch(measure_id=measure.id or 0, team_id="T1", source="log")
        session.add(batch)
        session.flush()
        for month in BEFORE:
            for code, (num, den) in {**ROWS_DURING, "A": (10, 100)}.items():
                session.add(
                    DataPoint(
                        measure_id=measure.id or 0,
                        team_id="T1",
                        period_start=month,
                        group_code=code,
                        numerator=num,
                        denominator=den,
                        batch_id=batch.id or 0,
                    )
                )
        session.flush()
        counts, _, missing = pdsa_repo.window_counts(
            session, measure=measure, groups=["ALL", "N", "A"], start=BEFORE[0], end=BEFORE[-1]
        )
        assert counts["ALL"].numerator == 4 * (40 + 12 + 8 + 0 + 10)
        assert counts["ALL"].denominator == 4 * (400 + 100 + 50 + 50 + 100)
        assert missing["ALL"] == []


def _equity_frame() -> pd.DataFrame:
    rows = []
    months = [date(2025, m, 1) for m in range(1, 13)]
    for i, month in enumerate(months):
        late = i >= 8
        # Black African women: worse in the last third. White British: better. "All other groups" and the
        # missing categories: much better, which is what moves the combined rate.
        for code, (num, den) in {
            "A": (60 if late else 80, 1000),
            "N": (60 if late else 50, 500),
            ethnicity.OTHERS: (10 if late else 60, 500),
            "Z": (8 if late else 30, 200),
            "99": (8 if late else 30, 200),
        }.items():
            rows.append({"period": month, "group": code, "numerator": num, "denominator": den})
    return pd.DataFrame(rows)


def test_equity_combined_rate_is_everyones() -> None:
    result = an.analyse_measure(
        _equity_frame(),
        kind="proportion",
        direction="lower",
        reference="A",
        focus_groups=["N"],
        period="month",
        policy=DisclosurePolicy(),
        today=date(2026, 1, 10),
    )
    [warning] = [w for w in result.warnings if w.code == "SUBGROUP_MOVES_AGAINST_AGGREGATE"]
    # Everyone: (80+50+60+30+30)/2400 = 10.4% before, (60+60+10+8+8)/2400 = 6.1% after. From the national codes
    # alone it would read 8.7% to 8.0%.
    assert "(10.4% to 6.1%)" in warning.message, warning.message


def test_nudge_compares_with_the_all_other_groups_row() -> None:
    from bot.core.equity import wording
    from bot.services.nudge import _analysis, _policy

    frame = _equity_frame()
    project = Project(
        team_id="T1",
        channel_id="C1",
        created_by="U1",
        name="PPH",
        aim="a",
        focus_groups=["N"],
        reference_group=ethnicity.OTHERS,
    )
    measure = Measure(
        project_id=1,
        team_id="T1",
        name="PPH",
        measure_type="outcome",
        kind="proportion",
        direction="lower",
        created_by="U1",
        reference_group=ethnicity.OTHERS,
    )

    def nudge_line(data: pd.DataFrame) -> str:
        ca = _analysis(data, project=project, measure=measure, today=date(2026, 1, 10))
        return wording.nudge_line(ca, _policy(project))[0]

    with_others = nudge_line(frame)
    without_others = nudge_line(frame[frame["group"] != ethnicity.OTHERS])
    # The "All other groups" row is part of the comparison: in Oct to Dec 2025 all the others are White British
    # (60/1000) and the "All other groups" row (10/500): 70/1500 = 4.7%, not White British's 6.0% alone.
    assert "12.0% vs 4.7% for all other groups combined" in with_others, with_others
    assert with_others != without_others, with_others
