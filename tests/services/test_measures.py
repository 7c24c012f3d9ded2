"""Pure pieces of the measures surface: form parsing and validation, and the Block Kit builders."""

from __future__ import annotations

from datetime import date

import pytest

from bot.core.equity.disclosure import check_text_for_disclosure
from bot.core.extracts import RejectedRow
from bot.services.measures import ImportOutcome, Replacement, period_label, summary_lines
from handlers import measures as handlers
from handlers.blocks import ids
from handlers.blocks import measures as mb
from storage.measures_repo import Completeness

MEASURE = {
    "id": 1,
    "name": "PPH",
    "measure_type": "outcome",
    "kind": "proportion",
    "direction": "lower",
    "reference_group": "A",
    "period": "month",
    "target": 0.06,
    "numerator_definition": "PPH",
    "denominator_definition": "births",
}


@pytest.mark.parametrize(
    ("text", "kind", "entry", "problem"),
    [
        ("14/230", "proportion", (14, 230), None),
        ("14 of 230", "proportion", (14, 230), None),
        ("1,204/2,300", "rate_per_1000", (1204, 2300), None),
        ("14.5/230", "proportion", None, "whole numbers"),
        ("-1/230", "proportion", None, "negative"),
        ("240/230", "proportion", None, "can't be larger"),
        ("240/230", "rate_per_1000", (240, 230), None),
        ("14", "proportion", None, "two whole numbers"),
        ("14", "count", (14, None), None),
        ("-3", "count", None, "negative"),
        ("3.5", "count", None, "whole number"),
        ("2.75", "value", 2.75, None),
        ("abc", "value", None, "number"),
    ],
)
def test_parse_log_row(text: str, kind: str, entry: object, problem: str | None) -> None:
    parsed, message = handlers.parse_log_row(text, kind)
    assert parsed == entry
    assert (message is None) if problem is None else (problem in (message or ""))


def test_parse_target() -> None:
    assert handlers.parse_target("6%", "proportion") == pytest.approx(0.06)
    assert handlers.parse_target("6", "proportion") == pytest.approx(0.06)
    assert handlers.parse_target("0.06", "proportion") == pytest.approx(0.06)
    assert handlers.parse_target("120", "rate_per_1000") == 120
    assert handlers.parse_target("", "count") is None
    with pytest.raises(ValueError):
        handlers.parse_target("150%", "proportion")
    with pytest.raises(ValueError):
        handlers.parse_target("lots", "count")


def _state(period: str | None, rows: dict[str, str]) -> dict[str, object]:
    values: dict[str, object] = {
        ids.B_LOG_PERIOD: {ids.A_INPUT: {"type": "datepicker", "selected_date": period}}
    }
    for code, text in rows.items():
        values[ids.B_LOG_ROW_PREFIX + code] = {ids.A_INPUT: {"type": "plain_text_input", "value": text}}
    blocks = [{"type": "input", "block_id": ids.B_LOG_ROW_PREFIX + c} for c in ("N", "M", "A")]
    return {"state": {"values": values}, "blocks": blocks}


def test_read_log_form_snaps_the_period_and_checks_rows() -> None:
    start, rows, errors = handlers.read_log_form(
        _state("2025-03-17", {"N": "14/230", "A": "1/2"}),
        kind="proportion",
        period="quarter",
        today=date(2025, 6, 1),
    )
    assert start == date(2025, 1, 1) and rows == {"N": (14, 230), "A": (1, 2)} and errors == {}
    _, _, errors = handlers.read_log_form(
        _state("2025-07-01", {"N": "14/230"}), kind="proportion", period="month", today=date(2025, 6, 1)
    )
    assert list(errors) == [ids.B_LOG_PERIOD]
    _, _, errors = handlers.read_log_form(
        _state("2025-05-01", {}), kind="proportion", period="month", today=date(2025, 6, 1)
    )
    assert list(errors) == [ids.B_LOG_ROW_PREFIX + "N"]


def test_default_and_full_log_groups() -> None:
    assert mb.default_log_groups(["N", "M"], "A") == ["N", "M", "A", "OTHERS", "Z", "99"]
    assert mb.default_log_groups(["HL:Black"], "BEST") == ["M", "N", "P", "OTHERS", "Z", "99"]
    assert len(mb.full_log_groups()) == 18 and "OTHERS" not in mb.full_log_groups()


def test_log_modal_stays_within_block_kit_limits() -> None:
    measures = [MEASURE, {**MEASURE, "id": 2, "name": "Interpreter offered", "direction": "higher"}]
    view = mb.log_modal(
        channel_id="C1",
        project_id=1,
        measures=measures,
        measure_id=2,
        groups=mb.full_log_groups(),
        full=True,
        period_initial=date(2025, 5, 1),
        values={"N": "3/40"},
    )
    assert len(view["blocks"]) <= 100
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert inputs[0]["block_id"] == ids.B_LOG_MEASURE and inputs[0]["dispatch_action"]
    row_n = next(b for b in inputs if b["block_id"] == ids.B_LOG_ROW_PREFIX + "N")
    assert row_n["element"]["initial_value"] == "3/40"
    assert "higher is better" in str(view["blocks"])


def test_measure_modal_balancing_reminder_only_when_missing() -> None:
    with_reminder = mb.measure_modal(
        channel_id="C1", project_id=1, project_reference="A", has_balancing=False
    )
    without = mb.measure_modal(channel_id="C1", project_id=1, project_reference="A", has_balancing=True)
    assert "unintended harm" in str(with_reminder["blocks"]) and "unintended harm" not in str(
        without["blocks"]
    )
    reference = next(b for b in with_reminder["blocks"] if b.get("block_id") == ids.B_MEASURE_REFERENCE)
    values = [o["value"] for g in reference["element"]["option_groups"] for o in g["options"]]
    assert values[:3] == ["A", "BEST", "OTHERS"] and "HL:Black" in values and "N" in values


def test_measure_list_shows_shares_and_reminder() -> None:
    rows = [{**MEASURE, "latest": date(2025, 5, 1), "completeness": Completeness(200, 180, 12, 8)}]
    blocks, _ = mb.measure_list("PPH equity", rows, has_balancing=False)
    text = str(blocks)
    assert "May 2025" in text and "90.0% with a stated ethnicity" in text and "Not known (99) 4.0%" in text
    assert "target 6.0%" in text and "no balancing measure" in text


def test_import_reply_is_safe_for_the_channel() -> None:
    outcome = ImportOutcome(
        batch_id=7,
        measure_id=1,
        measure_name="PPH",
        period="month",
        source="import",
        filename="x.csv",
        shape="record",
        rows_read=21784,
        rows_used=21781,
        rejected_count=3,
        rejected=[RejectedRow(12, "ethnicity value not recognised", "BAME")],
        periods=[date(2025, 1, 1), date(2025, 2, 1)],
        groups=["A", "N"],
        replaced=[Replacement(date(2025, 1, 1), "N", (3, 40, None), (4, 41, None))],
    )
    blocks, text = mb.import_result(outcome, by="U1")
    posted = text + str(blocks)
    assert check_text_for_disclosure(posted, [3, 4]) == []
    assert (
        "about 21,785" in posted
        and "not used: <8" in posted
        and "rounded" in posted
        and ids.A_UNDO_BATCH in posted
    )
    assert "21,781" not in posted and "21,780" not in posted  # no rows used: read minus used would give 3
    assert "row 12" not in posted and "BAME" not in posted
    exact = summary_lines(outcome, safe=False)
    assert "Rows read: 21,784" in exact[0] and "not used: 3" in exact[0] and "(exact)" in exact[0]


def test_period_labels() -> None:
    assert period_label(date(2025, 3, 1), "month") == "Mar 2025"
    assert period_label(date(2025, 4, 1), "quarter") == "2025 Q2"
    assert period_label(date(2025, 3, 3), "week") == "w/c 3 Mar 2025"
