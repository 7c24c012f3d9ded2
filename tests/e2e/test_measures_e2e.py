"""End to end through the Slack stand-in: /measure new, log, list, import (CSV and XLSX), undo and the CLI import."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlmodel import Session, func, select

from bot import cli
from bot.core.equity.disclosure import check_text_for_disclosure
from bot.services import measures as importing
from handlers.blocks import ids
from storage.models import AuditLog, DataBatch, DataPoint, DataRevision, Measure
from tests.helpers import clock_now

CHANNEL = "C0MATERNITY"
LEAD = "U0QILEAD01"
MIDWIFE = "U0MIDWIFE1"
ANALYST = "U0ANALYST1"
PPH = "PPH of 1,000 ml or more"


def start_project(live: Any, channel: str = CHANNEL, lead: str = LEAD) -> None:
    r = live.driver.slash("/mfi", "new", user=lead, channel=channel)
    view = r.wait_view()
    live.driver.submit_view(
        view["id"],
        {
            "project_name": "Reducing PPH inequity",
            "project_aim": "Reduce PPH among Black women from 12% to 6% by March 2027",
            "project_focus_groups": ["N", "M"],
        },
        user=lead,
    )
    live.standin.wait_for(lambda: live.standin.last_message(channel))


def measure_form(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        ids.B_MEASURE_NAME: PPH,
        ids.B_MEASURE_TYPE: "outcome",
        ids.B_MEASURE_KIND: "proportion",
        ids.B_MEASURE_NUMERATOR_DEF: "Women with measured blood loss of 1,000 ml or more",
        ids.B_MEASURE_DENOMINATOR_DEF: "All women giving birth in the unit",
        ids.B_MEASURE_DIRECTION: "lower",
        ids.B_MEASURE_PERIOD: "month",
    }
    values.update(overrides)
    return values


def add_measure(live: Any, channel: str = CHANNEL, **overrides: Any) -> None:
    before = len(live.standin.messages(channel))
    view = live.driver.slash("/measure", "new", user=LEAD, channel=channel).wait_view()
    response = live.driver.submit_view(view["id"], measure_form(**overrides), user=LEAD)
    assert response.status == 200 and not (response.json or {}).get("errors"), response.body
    live.standin.wait_for(lambda: len(live.standin.messages(channel)) > before or None)


def count(engine: Any, model: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def points(engine: Any) -> dict[tuple[date, str], tuple[int | None, int | None, float | None]]:
    with Session(engine) as session:
        return {
            (p.period_start, p.group_code): (p.numerator, p.denominator, p.value)
            for p in session.exec(select(DataPoint))
        }


def assert_channel_safe(live: Any, channel: str = CHANNEL) -> None:
    for message in live.standin.messages(channel):
        text = message.text + " " + str(message.blocks)
        assert check_text_for_disclosure(text, []) == [], text
    assert live.standin.violations == []


def last_ephemeral(live: Any, user: str = LEAD, containing: str = "") -> str:
    def found() -> Any:
        texts = [e.text + str(e.blocks) for e in live.standin.ephemerals(user)] + [
            r.text for r in live.standin.responses() if r.user == user
        ]
        texts = [t for t in texts if containing in t]
        return texts or None

    return str(live.standin.wait_for(found)[-1])


def open_log(live: Any, user: str = LEAD) -> dict[str, Any]:
    return dict(live.driver.slash("/measure", "log", user=user, channel=CHANNEL).wait_view())


def last_month(today: date | None = None) -> date:
    first = (today or clock_now().date()).replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


# --- /measure new ----------------------------------------------------------------------------------------------


def test_measure_new_validation_errors_inline_and_nothing_saved(live: Any) -> None:
    start_project(live)
    view = live.driver.slash("/measure", "new", user=LEAD, channel=CHANNEL).wait_view()
    # The reminder is in the form itself, with the reason.
    assert "no balancing measure" in str(view["blocks"]) and "unintended harm" in str(view["blocks"])
    cases = [
        ({ids.B_MEASURE_NAME: "PP"}, ids.B_MEASURE_NAME),
        ({ids.B_MEASURE_DENOMINATOR_DEF: ""}, ids.B_MEASURE_DENOMINATOR_DEF),
        ({ids.B_MEASURE_TARGET: "six"}, ids.B_MEASURE_TARGET),
        ({ids.B_MEASURE_TARGET: "150%"}, ids.B_MEASURE_TARGET),
        ({ids.B_MEASURE_REFERENCE: "N"}, ids.B_MEASURE_REFERENCE),
    ]
    for overrides, block_id in cases:
        response = live.driver.submit_view(view["id"], measure_form(**overrides), user=LEAD)
        assert response.json["response_action"] == "errors"
        assert list(response.json["errors"]) == [block_id], response.json
    assert count(live.engine, Measure) == 0
    assert live.standin.violations == []


def test_measure_new_saves_posts_and_reminds_about_balancing(live: Any) -> None:
    start_project(live)
    add_measure(live, **{ids.B_MEASURE_TARGET: "6%"})
    message = live.standin.last_message(CHANNEL)
    assert PPH in message.text and "no balancing measure" in str(message.blocks)
    assert "unintended harm" in str(message.blocks) and "caesarean" in str(message.blocks)
    with Session(live.engine) as session:
        measure = session.exec(select(Measure)).one()
        assert (measure.kind, measure.direction, measure.reference_group, measure.period) == (
            "proportion",
            "lower",
            "A",
            "month",
        )
        assert measure.target == pytest.approx(0.06)
    # A duplicate name is refused inline.
    view = live.driver.slash("/measure", "new", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(
        view["id"], measure_form(**{ids.B_MEASURE_NAME: PPH.upper()}), user=LEAD
    )
    assert list(response.json["errors"]) == [ids.B_MEASURE_NAME]
    # Adding a balancing measure removes the reminder.
    add_measure(live, **{ids.B_MEASURE_NAME: "Caesarean birth", ids.B_MEASURE_TYPE: "balancing"})
    assert "no balancing measure" not in str(live.standin.last_message(CHANNEL).blocks)
    assert_channel_safe(live)


def test_add_a_measure_button_on_the_project_card(live: Any) -> None:
    start_project(live)
    card = next(m for m in live.standin.messages(CHANNEL) if ids.A_OPEN_MEASURE_NEW in str(m.blocks))
    calls = len(live.standin.calls("views.open"))
    live.driver.click(ids.A_OPEN_MEASURE_NEW, user=LEAD, message=card)
    live.standin.wait_for(lambda: len(live.standin.calls("views.open")) > calls or None)
    assert any(v["callback_id"] == ids.CB_MEASURE_NEW for v in live.standin.views())


# --- /measure log ----------------------------------------------------------------------------------------------


def test_measure_log_validation_errors(live: Any) -> None:
    start_project(live)
    add_measure(live)
    view = open_log(live)
    row = ids.B_LOG_ROW_PREFIX
    period = last_month()
    cases = [
        ({row + "N": "14.5/230"}, row + "N"),
        ({row + "N": "-1/230"}, row + "N"),
        ({row + "M": "240/230"}, row + "M"),
        ({row + "A": "fourteen"}, row + "A"),
        ({ids.B_LOG_PERIOD: clock_now().date() + timedelta(days=40), row + "N": "14/230"}, ids.B_LOG_PERIOD),
        ({}, row + "M"),  # no rows at all: the error sits on the first row (focus groups in NHS order)
    ]
    for values, block_id in cases:
        response = live.driver.submit_view(view["id"], {ids.B_LOG_PERIOD: period, **values}, user=LEAD)
        assert response.json["response_action"] == "errors", response.body
        assert block_id in response.json["errors"], response.json
    assert count(live.engine, DataPoint) == 0 and count(live.engine, DataBatch) == 0
    assert live.standin.violations == []


def test_measure_log_default_rows_and_full_list_switch(live: Any) -> None:
    start_project(live)
    add_measure(live)
    view = open_log(live)
    rows = [
        b["block_id"][len(ids.B_LOG_ROW_PREFIX) :]
        for b in view["blocks"]
        if b.get("block_id", "").startswith(ids.B_LOG_ROW_PREFIX)
    ]
    assert rows == ["M", "N", "A", "OTHERS", "Z", "99"]
    live.driver.click(ids.A_LOG_FULL_LIST, user=LEAD, view_id=view["id"])
    full = live.standin.wait_for(
        lambda: live.standin.view(view["id"]) if len(live.standin.view(view["id"])["blocks"]) > 20 else None
    )
    rows = [
        b["block_id"][len(ids.B_LOG_ROW_PREFIX) :]
        for b in full["blocks"]
        if b.get("block_id", "").startswith(ids.B_LOG_ROW_PREFIX)
    ]
    assert len(rows) == 18 and "OTHERS" not in rows and rows[-2:] == ["Z", "99"]
    response = live.driver.submit_view(
        view["id"], {ids.B_LOG_PERIOD: last_month(), ids.B_LOG_ROW_PREFIX + "K": "9/120"}, user=LEAD
    )
    assert response.status == 200 and not response.body.strip()
    live.standin.wait_for(lambda: points(live.engine) or None)
    assert points(live.engine) == {(last_month(), "K"): (9, 120, None)}
    assert live.standin.violations == []


def test_measure_log_replacing_keeps_history_and_undo_restores(live: Any) -> None:
    start_project(live)
    add_measure(live)
    period = last_month()
    row = ids.B_LOG_ROW_PREFIX
    view = open_log(live)
    # Any day in the month is snapped to the month's start.
    live.driver.submit_view(
        view["id"],
        {
            ids.B_LOG_PERIOD: period + timedelta(days=9),
            row + "N": "14/230",
            row + "A": "12/300",
            row + "OTHERS": "9/150",
        },
        user=LEAD,
    )
    live.standin.wait_for(lambda: len(points(live.engine)) == 3 or None)
    first = points(live.engine)
    assert first[(period, "N")] == (14, 230, None) and first[(period, "OTHERS")] == (9, 150, None)
    view = open_log(live, user=MIDWIFE)
    live.driver.submit_view(
        view["id"], {ids.B_LOG_PERIOD: period, row + "N": "15/231", row + "Z": "0/12"}, user=MIDWIFE
    )
    live.standin.wait_for(lambda: points(live.engine).get((period, "N")) == (15, 231, None) or None)
    reply = live.standin.wait_for(
        lambda: next(
            (
                m
                for m in reversed(live.standin.messages(CHANNEL))
                if ids.A_UNDO_BATCH in str(m.blocks) and MIDWIFE in m.text
            ),
            None,
        )
    )
    assert "replaced" in reply.text
    with Session(live.engine) as session:
        history = list(session.exec(select(DataRevision).where(DataRevision.group_code == "N")))
        assert [(h.old_numerator, h.new_numerator) for h in history] == [(None, 14), (14, 15)]
        assert count(live.engine, DataBatch) == 2
    # Undo by button: the earlier values come back exactly and the added Z row goes.
    live.driver.click(ids.A_UNDO_BATCH, user=LEAD, message=reply)
    live.standin.wait_for(lambda: points(live.engine) == first or None)
    # The reply loses its Undo button once the undo is done (the message update follows the database change).
    live.standin.wait_for(
        lambda: ids.A_UNDO_BATCH not in str(live.standin.message(CHANNEL, reply.ts).blocks) or None
    )
    # Undo by command: the latest batch not yet undone is the first entry.
    live.driver.slash("/measure", "undo", user=LEAD, channel=CHANNEL)
    live.standin.wait_for(lambda: points(live.engine) == {} or None)
    with Session(live.engine) as session:
        assert all(b.undone_at is not None for b in session.exec(select(DataBatch)))
        assert (
            session.exec(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "data.undo")
            ).one()
            == 2
        )
    live.driver.slash("/measure", "undo", user=LEAD, channel=CHANNEL)
    last_ephemeral(live, containing="nothing to undo")
    assert_channel_safe(live)


# --- /measure list ---------------------------------------------------------------------------------------------


def test_measure_list_shows_definition_latest_period_and_completeness(live: Any) -> None:
    start_project(live)
    add_measure(live)
    period = last_month()
    view = open_log(live)
    row = ids.B_LOG_ROW_PREFIX
    live.driver.submit_view(
        view["id"],
        {
            ids.B_LOG_PERIOD: period,
            row + "N": "10/150",
            row + "A": "10/150",
            row + "Z": "2/60",
            row + "99": "3/40",
        },
        user=LEAD,
    )
    live.standin.wait_for(lambda: len(points(live.engine)) == 4 or None)
    live.driver.slash("/measure", "list", user=LEAD, channel=CHANNEL)

    def listing() -> Any:
        found = [r for r in live.standin.responses() if PPH in str(r.body.get("blocks"))]
        return found[-1] if found else None

    body = str(live.standin.wait_for(listing).body["blocks"])
    assert "outcome" in body and "proportion" in body and "lower is better" in body
    assert "British (A)" in body and period.strftime("%b %Y") in body
    assert (
        "75.0% with a stated ethnicity" in body
        and "Not stated (Z) 15.0%" in body
        and "Not known (99) 10.0%" in body
    )
    assert "no balancing measure" in body


# --- imports ---------------------------------------------------------------------------------------------------


def aggregated_csv(periods: list[date], n: int = 20, d: int = 200) -> bytes:
    rows = [
        {"period": p.strftime("%Y-%m"), "ethnicity": code, "numerator": n, "denominator": d}
        for p in periods
        for code in ("A", "Black African", "M", "Z", "99")
    ]
    return pd.DataFrame(rows).to_csv(index=False).encode()


def record_rows(months: int = 3) -> pd.DataFrame:
    start = last_month() - timedelta(days=31 * (months - 1))
    rows = []
    for m in range(months):
        day = (start + timedelta(days=31 * m)).replace(day=5)
        for code in ("N", "M", "A", "Z"):
            for i in range(40):
                rows.append({"date": day.isoformat(), "ethnicity": code, "outcome": int(i % 10 == 0)})
    rows.append({"date": day.isoformat(), "ethnicity": "BAME", "outcome": 0})  # not recognisable: rejected
    return pd.DataFrame(rows)


def xlsx_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False)
    return buffer.getvalue()


def import_file(
    live: Any,
    filename: str,
    content: bytes,
    *,
    measure: str | None = PPH,
    user: str = ANALYST,
    expect_result: bool = True,
) -> Any:
    """`/measure import`, choose the file in the private form and submit; returns the channel's reply."""
    view = live.driver.slash(
        "/measure", f"import {measure or ''}".strip(), user=user, channel=CHANNEL
    ).wait_view()
    assert view["callback_id"] == ids.CB_MEASURE_IMPORT
    before = len(live.standin.messages(CHANNEL))
    values: dict[str, Any] = {ids.B_IMPORT_FILE: (filename, content)}
    if measure is not None:
        values[ids.B_IMPORT_MEASURE] = measure
    response = live.driver.submit_view(view["id"], values, user=user)
    assert response.status == 200, response.body
    if not expect_result:
        return response

    def result() -> Any:
        for message in live.standin.messages(CHANNEL)[before:]:
            if filename in message.text:
                return message
        return None

    return live.standin.wait_for(result, timeout=15)


@pytest.mark.parametrize("layout", ["aggregated-csv", "record-csv", "record-xlsx", "aggregated-xlsx"])
def test_import_through_the_private_form_and_undo(live: Any, layout: str) -> None:
    start_project(live)
    add_measure(live)
    periods = [last_month() - timedelta(days=62), last_month()]
    periods = [p.replace(day=1) for p in periods]
    if layout.startswith("aggregated"):
        frame = pd.read_csv(io.BytesIO(aggregated_csv(periods)))
    else:
        frame = record_rows()
    content = frame.to_csv(index=False).encode() if layout.endswith("csv") else xlsx_bytes(frame)
    filename = f"extract.{layout.rsplit('-', 1)[1]}"
    reply = import_file(live, filename, content)
    assert "imported" in reply.text and ids.A_UNDO_BATCH in str(reply.blocks)
    # The extract never reached the channel: no message there carries a file.
    assert all(not m.files for m in live.standin.messages(CHANNEL))
    stored = points(live.engine)
    assert stored and {g for _, g in stored} >= {"A", "N", "M", "Z"}
    detail = last_ephemeral(live, ANALYST, containing="only you can see this")
    assert f"Rows read: {len(frame):,}" in detail and "(exact)" in detail
    assert "still in your Slack files" in detail and "Delete file" in detail
    if layout.startswith("record"):
        assert all(v[1] == 40 and v[0] == 4 for (_, g), v in stored.items() if g != "99")
        # Every record was classified, so no Not known (99) records is a known zero, stored as such.
        assert {v[:2] for (_, g), v in stored.items() if g == "99"} == {(0, 0)}
        assert "BAME" in detail and "not recognised" in detail and f"row {len(frame) + 1}" in detail
    # Importing another file replaces earlier values and says so; undo puts them back.
    if layout == "aggregated-csv":
        second = import_file(live, "extract2.csv", aggregated_csv(periods, n=25))
        assert "Replaced earlier values" in str(second.blocks)
        live.driver.click(ids.A_UNDO_BATCH, user=LEAD, message=second)
        live.standin.wait_for(lambda: points(live.engine) == stored or None)
    live.driver.click(ids.A_UNDO_BATCH, user=LEAD, message=reply)
    live.standin.wait_for(lambda: points(live.engine) == {} or None)
    assert_channel_safe(live)


def test_values_shape_import(live: Any) -> None:
    start_project(live)
    add_measure(
        live,
        **{
            ids.B_MEASURE_NAME: "Length of stay (days)",
            ids.B_MEASURE_KIND: "value",
            ids.B_MEASURE_TYPE: "balancing",
            ids.B_MEASURE_DENOMINATOR_DEF: "",
        },
    )
    frame = pd.DataFrame(
        {
            "period": [last_month().strftime("%Y-%m")] * 3,
            "ethnicity": ["A", "N", "M"],
            "value": [2.1, 2.6, 2.4],
        }
    )
    reply = import_file(live, "los.csv", frame.to_csv(index=False).encode(), measure="Length of stay (days)")
    assert "imported" in reply.text
    assert points(live.engine)[(last_month(), "N")] == (None, None, 2.6)


def test_identifier_column_is_refused(live: Any) -> None:
    start_project(live)
    add_measure(live)
    frame = record_rows(1)
    frame.insert(0, "NHS Number", "9434765919")
    reply = import_file(live, "extract.csv", frame.to_csv(index=False).encode())
    assert "was not imported" in reply.text and "identifier" in reply.text
    assert count(live.engine, DataBatch) == 0 and count(live.engine, DataPoint) == 0


def test_failed_import_leaves_no_trace(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    start_project(live)
    add_measure(live)
    real = importing._write_point
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("disk full (injected)")
        return str(real(*args, **kwargs))

    monkeypatch.setattr(importing, "_write_point", failing)
    before = len(live.standin.messages(CHANNEL))
    import_file(live, "extract.csv", aggregated_csv([last_month()]), expect_result=False)
    told = last_ephemeral(live, ANALYST, containing="failed on our side")
    assert "nothing was saved" in told
    assert calls["n"] == 4
    assert len(live.standin.messages(CHANNEL)) == before
    for model in (DataBatch, DataPoint, DataRevision):
        assert count(live.engine, model) == 0
    with Session(live.engine) as session:
        assert not list(session.exec(select(AuditLog).where(AuditLog.action == "data.import")))


def test_a_data_file_shared_in_the_channel_is_not_imported_and_its_owner_is_warned(live: Any) -> None:
    start_project(live)
    add_measure(live)
    before = len(live.standin.messages(CHANNEL))
    live.driver.share_file(
        "extract.csv", aggregated_csv([last_month()]), user=MIDWIFE, channel=CHANNEL, initial_comment=PPH
    )
    warning = last_ephemeral(live, MIDWIFE, containing="delete it from the channel")
    assert "/measure import" in warning
    assert len(live.standin.messages(CHANNEL)) == before + 1  # only the person's own upload
    assert count(live.engine, DataBatch) == 0


def test_measures_are_isolated_per_channel(live: Any) -> None:
    start_project(live)
    add_measure(live)
    view = open_log(live)
    live.driver.submit_view(
        view["id"], {ids.B_LOG_PERIOD: last_month(), ids.B_LOG_ROW_PREFIX + "N": "14/230"}, user=LEAD
    )
    live.standin.wait_for(lambda: points(live.engine) or None)
    other = "C0SECONDQI"
    live.standin.add_channel(other, "second-qi", members=[LEAD, MIDWIFE])
    start_project(live, channel=other)
    live.driver.slash("/measure", "list", user=LEAD, channel=other)
    last_ephemeral(live, containing="has no measures yet. Add one")
    live.driver.slash("/measure", f"import {PPH}", user=LEAD, channel=other)
    last_ephemeral(live, containing="no measures yet. Define one with `/measure new`, then import")
    live.driver.slash("/measure", "log", user=LEAD, channel=other)
    last_ephemeral(live, containing="no measures yet. Define one with `/measure new` first")
    live.driver.slash("/measure", "undo 1", user=LEAD, channel=other)
    last_ephemeral(live, containing="This channel's project has no entry 1")
    live.driver.slash("/measure", "undo", user=LEAD, channel=other)
    last_ephemeral(live, containing="nothing to undo")
    assert len(points(live.engine)) == 1


def test_cli_import(
    live: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    start_project(live)
    add_measure(live)
    path = tmp_path / "extract.csv"
    path.write_bytes(aggregated_csv([last_month()]))
    monkeypatch.setenv("DATABASE_URL", live.settings.database_url)
    assert cli.main(["import", str(path), "--project", "Reducing PPH inequity", "--measure", PPH]) == 0
    out = capsys.readouterr().out
    assert "Imported extract.csv" in out and "Rows read: 5 " in out
    assert len(points(live.engine)) == 5
    with Session(live.engine) as session:
        assert session.exec(select(DataBatch)).one().source == "cli"
    assert cli.main(["import", str(path), "--project", "No such", "--measure", PPH]) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("nhs_number,ethnicity,date,outcome\n9434765919,A,2024-01-01,1\n")
    assert cli.main(["import", str(bad), "--project", "1", "--measure", "1"]) == 1
    assert "identifier" in capsys.readouterr().err


def test_measure_new_offers_financial_or_calendar_quarters_and_daily_periods(live: Any) -> None:
    start_project(live)
    view = live.driver.slash("/measure", "new", user=LEAD, channel=CHANNEL).wait_view()
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.B_MEASURE_QUARTERS)
    # NHS reporting runs April to March, so financial-year quarters are the default.
    assert block["element"]["initial_option"]["value"] == "financial"
    assert {o["value"] for o in block["element"]["options"]} == {"financial", "calendar"}
    period_block = next(b for b in view["blocks"] if b.get("block_id") == ids.B_MEASURE_PERIOD)
    assert "day" in {o["value"] for o in period_block["element"]["options"]}
    add_measure(live, **{ids.B_MEASURE_PERIOD: "quarter", ids.B_MEASURE_QUARTERS: "calendar"})
    assert "quarterly (calendar year)" in live.standin.last_message(CHANNEL).text
    add_measure(live, **{ids.B_MEASURE_NAME: "Daily PPH", ids.B_MEASURE_PERIOD: "day"})
    with Session(live.engine) as session:
        stored = {m.name: (m.period, m.quarters) for m in session.exec(select(Measure))}
    assert stored == {PPH: ("quarter", "calendar"), "Daily PPH": ("day", "financial")}
    assert live.standin.violations == []


def test_daily_data_into_a_monthly_measure_is_grouped_and_said_and_a_daily_measure_keeps_days(
    live: Any,
) -> None:
    start_project(live)
    add_measure(live)
    add_measure(live, **{ids.B_MEASURE_NAME: "Daily PPH", ids.B_MEASURE_PERIOD: "day"})
    first = last_month() - timedelta(days=40)
    days = [first + timedelta(days=i) for i in range(40)]
    rows = [
        {"period": d.isoformat(), "ethnicity": code, "numerator": 10, "denominator": 100}
        for d in days
        for code in ("A", "N")
    ]
    content = pd.DataFrame(rows).to_csv(index=False).encode()
    reply = import_file(live, "daily.csv", content)
    said = "Daily values were grouped into months for the chart"
    assert said in str(reply.blocks)
    months = sorted({d.replace(day=1) for d in days})
    assert {p for p, _ in points(live.engine)} == set(months)
    assert_channel_safe(live)
    live.driver.slash("/equity", PPH, user=LEAD, channel=CHANNEL)
    # The /equity details (in the headline's thread) repeat that the periods were grouped.
    live.standin.wait_for(
        lambda: (
            [
                r
                for m in live.standin.messages(CHANNEL)
                for r in live.standin.thread(CHANNEL, m.ts)
                if said in str(r.blocks) and "Details for" in str(r.blocks)
            ]
            or None
        ),
        timeout=30,
    )

    reply = import_file(live, "daily2.csv", content, measure="Daily PPH")
    assert said not in str(reply.blocks) and "grouped" not in str(reply.blocks)
    with Session(live.engine) as session:
        daily = session.exec(select(Measure).where(Measure.name == "Daily PPH")).one()
        stored = {
            p.period_start for p in session.exec(select(DataPoint).where(DataPoint.measure_id == daily.id))
        }
    assert stored == set(days)
    before = len(live.standin.files())
    live.driver.slash("/equity", "Daily PPH", user=LEAD, channel=CHANNEL)
    chart = live.standin.wait_for(lambda: live.standin.files()[before:] or None, timeout=30)[0]
    # The latest window of about three months holds every one of the 40 days.
    assert f"40 days, {days[0].day} {days[0]:%b %Y} to {days[-1].day} {days[-1]:%b %Y}" in chart.alt_txt
