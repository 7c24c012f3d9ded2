"""The import service on both databases: batches, revisions, replacement, undo, refusal and all-or-nothing writes."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from bot.core.equity.disclosure import check_text_for_disclosure
from bot.core.extracts import ImportRefused, read_extract
from bot.offline.demo.data import UNRECOGNISABLE, pph_extract, pph_extract_csv
from bot.services import measures as importing
from storage import measures_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import AuditLog, DataBatch, DataPoint, DataRevision, Measure

JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)
TODAY = date(2025, 6, 15)


def make_measure(engine: Engine, *, kind: str = "proportion", name: str = "PPH") -> int:
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id="T1", channel_id="C1")
        if project is None:
            project = repo.create_project(
                session,
                team_id="T1",
                enterprise_id=None,
                channel_id="C1",
                created_by="U1",
                name="PPH equity",
                aim="Reduce PPH among Black women",
                focus_groups=["N", "M"],
                reference_group="A",
                baseline="",
                target="",
                target_date=None,
                racism_context="",
                leads=["U1"],
                partners=[],
                timezone="Europe/London",
            )
        measure = measures_repo.create_measure(
            session,
            project=project,
            created_by="U1",
            name=name,
            measure_type="outcome",
            kind=kind,
            numerator_definition="PPH >= 1000 ml",
            denominator_definition="births",
            direction="lower",
            reference_group="A",
            period="month",
            target=None,
        )
        assert measure.id is not None
        return measure.id


def csv(rows: list[tuple[str, str, Any, Any]]) -> bytes:
    frame = pd.DataFrame(rows, columns=["period", "ethnicity", "numerator", "denominator"])
    return frame.to_csv(index=False).encode()


def run_import(
    engine: Engine, measure_id: int, data: bytes, filename: str = "x.csv", file_key: str | None = None
) -> importing.ImportOutcome:
    with unit_of_work(engine) as session:
        measure = session.get(Measure, measure_id)
        assert measure is not None
        parsed = read_extract(data, filename=filename, period="month", today=TODAY)
        return importing.apply_import(
            session,
            measure=measure,
            parsed=parsed,
            source="import",
            filename=filename,
            user_id="U1",
            file_key=file_key,
        )


def current(engine: Engine) -> dict[tuple[date, str], tuple[Any, Any, Any]]:
    with Session(engine) as session:
        return {
            (p.period_start, p.group_code): (p.numerator, p.denominator, p.value)
            for p in session.exec(select(DataPoint))
        }


def rows_in(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_import_creates_points_revisions_and_summary(engine: Engine) -> None:
    measure_id = make_measure(engine)
    outcome = run_import(
        engine,
        measure_id,
        csv(
            [
                ("2025-01", "A", 10, 200),
                ("2025-01", "N", 20, 150),
                ("2025-02", "Black African", 18, 140),
                ("2025-02", "BAME", 3, 40),
            ]
        ),
    )
    assert (outcome.rows_read, outcome.rows_used, outcome.rejected_count) == (4, 3, 1)
    assert outcome.created == 3 and not outcome.replaced
    assert current(engine) == {
        (JAN, "A"): (10, 200, None),
        (JAN, "N"): (20, 150, None),
        (FEB, "N"): (18, 140, None),
    }
    with Session(engine) as session:
        batch = session.exec(select(DataBatch)).one()
        assert batch.summary["rows_used"] == 3 and batch.summary["periods"] == ["2025-01-01", "2025-02-01"]
        assert all(not r.existed_before for r in session.exec(select(DataRevision)))
        assert (
            session.exec(select(AuditLog).where(AuditLog.action == "data.import")).one().detail["batch_id"]
            == batch.id
        )
    assert any("BAME" in line for line in importing.detail_lines(outcome))


def test_replacing_keeps_history_and_undo_restores_exactly(engine: Engine) -> None:
    measure_id = make_measure(engine)
    first = run_import(engine, measure_id, csv([("2025-01", "A", 10, 200), ("2025-01", "N", 20, 150)]))
    before = current(engine)
    second = run_import(
        engine,
        measure_id,
        csv([("2025-01", "A", 10, 200), ("2025-01", "N", 21, 151), ("2025-02", "N", 5, 90)]),
    )
    assert (second.created, second.unchanged, len(second.replaced)) == (1, 1, 1)
    assert second.replaced[0].old == (20, 150, None) and second.replaced[0].new == (21, 151, None)
    with Session(engine) as session:
        history = measures_repo.history(session, measure_id=measure_id, period_start=JAN, group_code="N")
        assert [(h.old_numerator, h.new_numerator) for h in history] == [(None, 20), (20, 21)]
    # The first batch cannot be undone while a later one changed the same point.
    with pytest.raises(importing.UndoRefused, match="Undo those first"), unit_of_work(engine) as session:
        importing.undo_batch(session, batch_id=first.batch_id, team_id="T1", user_id="U2")
    with unit_of_work(engine) as session:
        undone = importing.undo_batch(session, batch_id=second.batch_id, team_id="T1", user_id="U2")
    assert (undone.restored, undone.deleted) == (1, 1)
    assert current(engine) == before
    with Session(engine) as session:
        point = session.exec(select(DataPoint).where(DataPoint.group_code == "N")).one()
        assert point.batch_id == first.batch_id
    with pytest.raises(importing.UndoRefused, match="already undone"), unit_of_work(engine) as session:
        importing.undo_batch(session, batch_id=second.batch_id, team_id="T1", user_id="U2")
    # Another workspace cannot see, let alone undo, this batch.
    with pytest.raises(importing.UndoRefused, match="no data entry"), unit_of_work(engine) as session:
        importing.undo_batch(session, batch_id=first.batch_id, team_id="T2", user_id="U9")
    with unit_of_work(engine) as session:
        importing.undo_batch(session, batch_id=first.batch_id, team_id="T1", user_id="U2")
    assert current(engine) == {}


def test_failure_midway_leaves_no_trace(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    measure_id = make_measure(engine)
    real = importing._write_point
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("injected")
        return str(real(*args, **kwargs))

    monkeypatch.setattr(importing, "_write_point", failing)
    with pytest.raises(RuntimeError):
        run_import(
            engine,
            measure_id,
            csv([("2025-01", "A", 10, 200), ("2025-01", "N", 20, 150), ("2025-01", "M", 12, 100)]),
        )
    for model in (DataBatch, DataPoint, DataRevision):
        assert rows_in(engine, model) == 0


def test_log_period_and_others_row(engine: Engine) -> None:
    measure_id = make_measure(engine)
    with unit_of_work(engine) as session:
        measure = session.get(Measure, measure_id)
        assert measure is not None
        outcome = importing.log_period(
            session,
            measure=measure,
            period_start=JAN,
            rows={"N": (14, 230), "OTHERS": (9, 150), "Z": (0, 12)},
            user_id="U1",
        )
    assert outcome.created == 3 and outcome.groups == ["N", "OTHERS", "Z"]
    with Session(engine) as session:
        assert {b.source for b in session.exec(select(DataBatch))} == {"log"}
        # Not known (99) was left blank: not entered, so that period's completeness is unknown, not 100%.
        complete = measures_repo.completeness(session, measure_id=measure_id, kind="proportion")
        assert complete is not None and (complete.total, complete.unknown_periods, complete.periods) == (
            0,
            1,
            1,
        )
        assert measures_repo.blank_missing_categories(session, measure_id=measure_id, period_start=JAN) == [
            "99"
        ]
    with unit_of_work(engine) as session:
        measure = session.get(Measure, measure_id)
        assert measure is not None
        importing.log_period(session, measure=measure, period_start=JAN, rows={"99": (0, 0)}, user_id="U1")
    with Session(engine) as session:
        complete = measures_repo.completeness(session, measure_id=measure_id, kind="proportion")
        assert complete is not None and (complete.total, complete.stated, complete.not_stated) == (
            392,
            380,
            12,
        )
        assert complete.unknown_periods == 0
        assert measures_repo.blank_missing_categories(session, measure_id=measure_id, period_start=JAN) == []
        assert measures_repo.latest_period(session, measure_id=measure_id) == JAN
        assert {
            "period": JAN,
            "group": "N",
            "numerator": 14,
            "denominator": 230,
            "value": None,
        } in measures_repo.data_points(session, measure_id=measure_id)


def test_shape_must_fit_the_measure(engine: Engine) -> None:
    measure_id = make_measure(engine)
    values = (
        pd.DataFrame({"period": ["2025-01"], "ethnicity": ["A"], "value": [2.5]}).to_csv(index=False).encode()
    )
    with pytest.raises(ImportRefused, match="one value per group"):
        run_import(engine, measure_id, values)
    value_measure = make_measure(engine, kind="value", name="Length of stay")
    with pytest.raises(ImportRefused, match="one value per group, but this file has counts"):
        run_import(engine, value_measure, csv([("2025-01", "A", 10, 200)]))
    outcome = run_import(engine, value_measure, values)
    assert outcome.created == 1 and rows_in(engine, DataBatch) == 1


def test_nothing_usable_is_refused(engine: Engine) -> None:
    measure_id = make_measure(engine)
    with pytest.raises(ImportRefused, match="No row") as refused:
        run_import(engine, measure_id, csv([("2025-01", "BAME", 10, 200), ("2025-01", "Other", 1, 2)]))
    assert rows_in(engine, DataBatch) == 0
    # Privately: every problem with its row; publicly: what to do, with no count and no row number.
    assert "'BAME'" in refused.value.message and "row 2" in refused.value.message
    assert "'Other'" in refused.value.message and "row 3" in refused.value.message
    assert refused.value.public == (
        "No row could be used: the ethnicity column 'ethnicity' must hold NHS ethnic "
        "category codes (A to S, Z) or their names."
    )
    assert check_text_for_disclosure(refused.value.public, []) == []


def test_a_file_version_is_imported_once_until_undone(engine: Engine) -> None:
    measure_id = make_measure(engine)
    first = run_import(engine, measure_id, csv([("2025-01", "A", 10, 200)]), file_key="F1@100")
    with pytest.raises(importing.AlreadyImported) as again:
        run_import(engine, measure_id, csv([("2025-01", "A", 11, 200)]), file_key="F1@100")
    assert again.value.batch_id == first.batch_id and "already imported" in again.value.message
    assert rows_in(engine, DataBatch) == 1 and current(engine)[(JAN, "A")] == (10, 200, None)
    # A new version of the same file is a new import; an undone import may be imported again.
    run_import(engine, measure_id, csv([("2025-01", "A", 12, 200)]), file_key="F1@200")
    with unit_of_work(engine) as session:
        importing.undo_batch(session, batch_id=first.batch_id + 1, team_id="T1", user_id="U1")
        importing.undo_batch(session, batch_id=first.batch_id, team_id="T1", user_id="U1")
    run_import(engine, measure_id, csv([("2025-01", "A", 10, 200)]), file_key="F1@100")
    assert current(engine)[(JAN, "A")] == (10, 200, None)


def test_the_unique_index_stops_a_concurrent_second_import(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    measure_id = make_measure(engine)
    run_import(engine, measure_id, csv([("2025-01", "A", 10, 200)]), file_key="F9@1")
    with pytest.raises(IntegrityError), unit_of_work(engine) as session:
        measure = session.get(Measure, measure_id)
        assert measure is not None
        # What a second delivery racing the first would do after both passed the check.
        measures_repo.add_batch(
            session, measure=measure, source="import", filename="x.csv", user_id="U1", file_key="F9@1"
        )
    assert rows_in(engine, DataBatch) == 1


def test_duplicate_measure_name(engine: Engine) -> None:
    make_measure(engine)
    with pytest.raises(measures_repo.DuplicateMeasure):
        make_measure(engine, name="pph")


def test_demo_extract_is_seeded_and_realistic() -> None:
    end = date(2025, 7, 1)
    a, b = pph_extract(end), pph_extract(end)
    pd.testing.assert_frame_equal(a, b)
    assert set(UNRECOGNISABLE) <= set(a["Ethnic Category"])
    parsed = read_extract(pph_extract_csv(end), filename="x.csv", period="month", today=end)
    assert parsed.shape == "record" and len(parsed.periods) == 36
    assert parsed.rejected_count == len(UNRECOGNISABLE)
    frame = parsed.frame
    small = frame[frame["group"] == "P"]["numerator"]
    assert ((small >= 1) & (small <= 7)).mean() > 0.5  # a small group, so disclosure control shows
    rate = frame.groupby("group")[["numerator", "denominator"]].sum()
    assert rate.loc["A", "numerator"] / rate.loc["A", "denominator"] == pytest.approx(0.05, abs=0.01)
    assert rate.loc["N", "numerator"] / rate.loc["N", "denominator"] == pytest.approx(0.105, abs=0.02)
    assert {"Z", "99"} <= set(frame["group"])


def test_an_import_that_merges_periods_says_so_and_equity_repeats_it(engine: Engine) -> None:
    from datetime import timedelta

    from bot.services import equity

    measure_id = make_measure(engine)
    days = [date(2025, 3, 1) + timedelta(days=i) for i in range(45)]  # 1 Mar to 14 Apr
    rows = [(d.isoformat(), g, 2 + i % 3, 40) for i, d in enumerate(days) for g in ("A", "N")]
    outcome = run_import(engine, measure_id, csv(rows), filename="daily.csv")
    assert outcome.grouping == "Daily values were grouped into months for the chart"
    # Two months of points, each the sum of its days.
    march = sum(2 + i % 3 for i, d in enumerate(days) if d.month == 3)
    assert current(engine)[(date(2025, 3, 1), "A")] == (march, 40 * 31, None)
    lines = importing.summary_lines(outcome, safe=True)
    april = sum(1 for d in days if d.month == 4)
    assert (
        f"Daily values were grouped into months for the chart: the measure reports monthly. Apr 2025 has only "
        f"{april} of its 30 days in the data."
    ) in lines
    with Session(engine) as session:
        assert measures_repo.data_periods(session, measure_id=measure_id) == ["day"]
    job = equity.channel_job(engine, team_id="T1", channel_id="C1", measure_id=measure_id)
    assert job is not None
    assert job.data_period == "day" and job.period == "month"
    notes = [
        w.message
        for w in equity.analyse(job, window_months=3).analysis.warnings
        if w.code == "PERIODS_GROUPED"
    ]
    assert notes and notes[0].startswith("Daily values were grouped into months for the chart.")
    # Monthly data say nothing of the kind; undoing the daily import takes the note away with it.
    plain = run_import(engine, make_measure(engine, name="Monthly"), csv([("2025-01", "A", 3, 40)]))
    assert plain.grouping is None and not any(
        "grouped" in line for line in importing.summary_lines(plain, safe=True)
    )
    with unit_of_work(engine) as session:
        importing.undo_batch(session, batch_id=outcome.batch_id, team_id="T1", user_id="U1")
    with Session(engine) as session:
        assert measures_repo.data_periods(session, measure_id=measure_id) == []


def test_a_measure_keeps_its_quarters_setting(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        project = repo.create_project(
            session,
            team_id="T1",
            enterprise_id=None,
            channel_id="C9",
            created_by="U1",
            name="Q",
            aim="",
            focus_groups=["N"],
            reference_group="A",
            baseline="",
            target="",
            target_date=None,
            racism_context="",
            leads=["U1"],
            partners=[],
            timezone="Europe/London",
        )
        made = [
            measures_repo.create_measure(
                session,
                project=project,
                created_by="U1",
                name=name,
                measure_type="outcome",
                kind="proportion",
                numerator_definition="",
                denominator_definition="",
                direction="lower",
                reference_group="A",
                period="quarter",
                target=None,
                **extra,
            )
            for name, extra in (("FY", {}), ("Cal", {"quarters": "calendar"}))
        ]
        ids_ = made[0].id, made[1].id
    with Session(engine) as session:
        fy_m, cal_m = session.get(Measure, ids_[0]), session.get(Measure, ids_[1])
        assert fy_m is not None and cal_m is not None
        assert (fy_m.quarters, importing.measure_period(fy_m)) == ("financial", "fy_quarter")
        assert (cal_m.quarters, importing.measure_period(cal_m)) == ("calendar", "quarter")
    data = csv([("2024/25 Q1", "A", 3, 40), ("2024 Q3", "A", 4, 50)])
    outcome = run_import_as(engine, ids_[0], data)
    assert importing.periods_text(outcome.periods, outcome.period) == "2024/25 Q1 to 2024/25 Q2 (2 periods)"
    outcome = run_import_as(engine, ids_[1], data)
    assert importing.periods_text(outcome.periods, outcome.period) == "2024 Q2 to 2024 Q3 (2 periods)"


def run_import_as(engine: Engine, measure_id: int, data: bytes) -> importing.ImportOutcome:
    """Import the way Slack and the CLI do: into the measure's own period."""
    with unit_of_work(engine) as session:
        measure = session.get(Measure, measure_id)
        assert measure is not None
        parsed = read_extract(
            data,
            filename="q.csv",
            period=importing.measure_period(measure),  # type: ignore[arg-type]
            quarters=measure.quarters,
            today=TODAY,
        )
        return importing.apply_import(
            session, measure=measure, parsed=parsed, source="import", filename="q.csv", user_id="U1"
        )
