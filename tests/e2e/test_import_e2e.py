"""The private import form end to end through the stand-in: a trust's raw export, refusals under disclosure control,
replays, forged files and size limits, each with nothing changed where nothing should be."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from sqlmodel import Session, select

from bot.core.equity.disclosure import check_text_for_disclosure
from handlers.blocks import ids
from storage.models import DataBatch, DataPoint, Measure
from tests.e2e.test_measures_e2e import (
    ANALYST,
    CHANNEL,
    LEAD,
    PPH,
    add_measure,
    count,
    last_ephemeral,
    last_month,
    points,
    start_project,
)


def trust_export(bad_rows: bool = True, outcome: str = "yes/no") -> bytes:
    """What a maternity system exports: one row per birth, Yes/No outcomes, a few rows it should not have."""
    start = last_month() - timedelta(days=60)
    rows = []
    for i in range(1200):
        day = start + timedelta(days=i % 85)
        group = ("A", "N", "M", "H", "Not stated")[i % 5]
        event = i % 9 == 0
        value = ("Yes" if event else "No") if outcome == "yes/no" else "maybe"
        rows.append({"Delivery Date": day.strftime("%d/%m/%Y"), "Ethnic Category": group, "PPH": value})
    if bad_rows:
        rows[20]["Ethnic Category"] = "BAME"
        rows[400]["Ethnic Category"] = "BAME"
        rows[300]["Ethnic Category"] = "Other"
        rows[50]["Delivery Date"] = "31/02/2025"
        rows[60]["PPH"] = "unknown"
    return pd.DataFrame(rows).to_csv(index=False).encode()


def submit_import(live: Any, upload: Any, *, user: str = ANALYST, measure: str = PPH) -> Any:
    view = live.driver.slash("/measure", "import", user=user, channel=CHANNEL).wait_view()
    return view, live.driver.submit_view(
        view["id"], {ids.B_IMPORT_MEASURE: measure, ids.B_IMPORT_FILE: upload}, user=user
    )


def channel_text(live: Any) -> str:
    return "\n".join(m.text + " " + json.dumps(m.blocks) for m in live.standin.messages(CHANNEL))


def wait_channel(live: Any, containing: str) -> str:
    return str(
        live.standin.wait_for(
            lambda: next((m.text for m in live.standin.messages(CHANNEL) if containing in m.text), None),
            timeout=15,
        )
    )


def test_the_form_says_what_is_accepted_with_an_example_and_names_the_measure(live: Any) -> None:
    start_project(live)
    add_measure(live)
    view = live.driver.slash("/measure", f"import {PPH}", user=ANALYST, channel=CHANNEL).wait_view()
    text = json.dumps(view)
    assert "period, ethnicity, numerator, denominator" in text and "date,ethnicity,outcome" in text
    assert "not* shared in the channel" in text
    file_block = next(b for b in view["blocks"] if b.get("block_id") == ids.B_IMPORT_FILE)
    assert file_block["element"]["type"] == "file_input" and file_block["element"]["max_files"] == 1
    measure_block = next(b for b in view["blocks"] if b.get("block_id") == ids.B_IMPORT_MEASURE)
    assert measure_block["element"]["initial_option"]["text"]["text"] == PPH
    assert live.standin.violations == []


def test_a_trusts_raw_export_with_yes_no_outcomes_and_a_few_bad_rows(live: Any) -> None:
    start_project(live)
    add_measure(live)
    submit_import(live, ("pph_extract.csv", trust_export()))
    reply = wait_channel(live, "imported pph_extract.csv")
    posted = channel_text(live)
    assert check_text_for_disclosure(posted, [1, 2, 3]) == [], posted
    assert "BAME" not in posted and "row" not in reply
    with Session(live.engine) as session:
        assert sum(p.denominator or 0 for p in session.exec(select(DataPoint))) == 1195
    detail = last_ephemeral(live, ANALYST, containing="only you can see this")
    assert "Rows read: 1,200 · used: 1,195 · not used: 5 (exact)" in detail
    # Every problem, the one affecting most rows first, each with its rows.
    assert detail.index("'BAME'") < detail.index("'Other'")
    assert "Ethnicity 'BAME' not recognised (column 'Ethnic Category'): 2 rows (rows 22, 402)" in detail
    assert "Date in column 'Delivery Date' could not be read: 1 row (row 52)" in detail
    assert "Outcome in column 'PPH' is not 1/0, Yes/No, Y/N or True/False: 1 row (row 62)" in detail
    # The extract never reached the channel, and its owner is told honestly what happened to it.
    assert all(not m.files for m in live.standin.messages(CHANNEL))
    assert [c.error for c in live.standin.calls("files.delete")] == ["cant_delete_file"]
    assert "still in your Slack files" in detail and "does not let a bot delete" in detail


def test_a_refusal_in_the_channel_says_what_to_do_and_the_details_go_privately(live: Any) -> None:
    start_project(live)
    add_measure(live)
    submit_import(live, ("pph_extract.csv", trust_export(outcome="maybe")))
    refusal = wait_channel(live, "was not imported")
    assert "nothing was saved" in refusal
    assert "No row could be used: the outcome column 'PPH' must hold Yes or No" in refusal
    assert "The details are in a message only they can see." in refusal
    assert check_text_for_disclosure(channel_text(live), [1, 2]) == []
    assert "BAME" not in refusal and "row" not in refusal.replace("No row could be used", "")
    detail = last_ephemeral(live, ANALYST, containing="Your file pph_extract.csv was not imported")
    assert "could be used, so nothing was saved" in detail
    first = detail.index("Outcome in column 'PPH'")
    assert first < detail.index("'BAME'") and "1,196 rows" in detail
    assert count(live.engine, DataBatch) == 0 and points(live.engine) == {}


def test_the_same_file_again_is_not_imported_twice(live: Any) -> None:
    start_project(live)
    add_measure(live)
    _, response = submit_import(live, ("pph_extract.csv", trust_export(bad_rows=False)))
    assert response.json is None or not response.json.get("errors")
    wait_channel(live, "imported pph_extract.csv")
    uploaded = next(f for f in live.standin.calls("files.info"))
    stored = live.standin.file(str(uploaded.args["file"]))
    before_points, before_messages = points(live.engine), len(live.standin.messages(CHANNEL))
    view, again = submit_import(live, stored)
    assert again.json["response_action"] == "errors"
    assert "already imported" in again.json["errors"][ids.B_IMPORT_FILE]
    assert live.standin.is_open(view["id"])
    assert count(live.engine, DataBatch) == 1 and points(live.engine) == before_points
    assert len(live.standin.messages(CHANNEL)) == before_messages


def test_someone_elses_file_id_is_not_imported(live: Any) -> None:
    start_project(live)
    add_measure(live)
    theirs = live.standin.add_user_file("lead_private.csv", trust_export(), user=LEAD, channel=None)
    submit_import(live, theirs, user=ANALYST)
    told = last_ephemeral(live, ANALYST, containing="was not uploaded by you")
    assert "Nothing was saved" in told
    assert count(live.engine, DataBatch) == 0 and live.standin.calls("files.delete") == []


def test_a_file_over_the_configured_size_is_refused_in_the_form(live: Any) -> None:
    start_project(live)
    add_measure(live)
    live.settings.mfi_import_max_mb = 0.01
    view, response = submit_import(live, ("pph_extract.csv", trust_export()))
    error = response.json["errors"][ids.B_IMPORT_FILE]
    assert "the most I import is 10 KB" in error and "Export only the columns needed" in error
    assert live.standin.is_open(view["id"]) and count(live.engine, DataBatch) == 0


def test_a_file_larger_than_slack_said_is_cut_off_and_nothing_saved(live: Any) -> None:
    start_project(live)
    add_measure(live)
    stored = live.standin.add_user_file("pph_extract.csv", trust_export(), user=ANALYST, channel=None)
    stored.declared_size = 200
    submit_import(live, stored)
    refusal = wait_channel(live, "was not imported")
    assert "larger than" in refusal and "Slack reported" in refusal
    assert count(live.engine, DataBatch) == 0


def test_a_file_url_off_slacks_hosts_is_never_fetched(live: Any) -> None:
    start_project(live)
    add_measure(live)
    stored = live.standin.add_user_file("pph_extract.csv", trust_export(), user=ANALYST, channel=None)
    stored.url_private_download = "file:///etc/passwd"
    submit_import(live, stored)
    refusal = wait_channel(live, "was not imported")
    assert "not stored on Slack's file servers" in refusal and "root:" not in channel_text(live)
    assert count(live.engine, DataBatch) == 0


def test_a_measure_or_project_from_another_channel_is_refused_inline(live: Any) -> None:
    start_project(live)
    add_measure(live)
    other = "C0SECONDQI"
    live.standin.add_channel(other, "second-qi", members=[LEAD, ANALYST])
    start_project(live, channel=other)
    add_measure(live, channel=other, **{ids.B_MEASURE_NAME: "Other measure"})
    view = live.driver.slash("/measure", "import", user=ANALYST, channel=CHANNEL).wait_view()
    # A forged form: the other channel's measure id in this channel's form.
    with Session(live.engine) as session:
        other_id = session.exec(select(Measure).where(Measure.name == "Other measure")).one().id
    state = live.driver.build_state(
        view, {ids.B_IMPORT_MEASURE: PPH, ids.B_IMPORT_FILE: ("x.csv", trust_export())}, user=ANALYST
    )
    state[ids.B_IMPORT_MEASURE][ids.A_INPUT]["selected_option"]["value"] = str(other_id)
    live.standin.set_view_state(view["id"], state)
    payload = {
        "type": "view_submission",
        "team": {"id": live.driver.team_id},
        "user": {"id": ANALYST},
        "api_app_id": "A0MFIAR01",
        "trigger_id": live.standin.new_trigger_id(user=ANALYST),
        "view": {**live.standin.view(view["id"]), "state": {"values": state}},
    }
    response = live.driver._send_payload(payload)
    assert response.json["errors"] == {ids.B_IMPORT_MEASURE: "Choose one of this project's measures."}
    assert count(live.engine, DataBatch) == 0


def test_help_and_the_form_name_the_private_import(live: Any) -> None:
    start_project(live)
    live.driver.slash("/measure", "help", user=LEAD, channel=CHANNEL)
    assert "privately" in last_ephemeral(live, LEAD, containing="/measure import")


def test_when_the_channel_post_fails_the_importer_is_told_what_was_saved(live: Any) -> None:
    start_project(live)
    add_measure(live)
    live.standin.inject("chat.postMessage", error="not_in_channel")
    live.standin.inject("chat.postEphemeral", error="not_in_channel")
    submit_import(live, ("pph_extract.csv", trust_export(bad_rows=False)))
    dm = live.standin.wait_for(
        lambda: next(
            (
                m
                for m in live.standin.messages(live.standin.dm_channel(ANALYST))
                if "is saved, but I could not post" in m.text
            ),
            None,
        ),
        timeout=15,
    )
    assert "/invite @MFI-AR" in dm.text and "(entry 1)" in dm.text
    assert count(live.engine, DataBatch) == 1


def test_a_concurrent_second_delivery_of_the_same_file_is_stopped_by_the_database(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slack_sdk import WebClient

    from bot.services import measures as importing
    from handlers import measures

    start_project(live)
    add_measure(live)
    submit_import(live, ("pph_extract.csv", trust_export(bad_rows=False)))
    wait_channel(live, "imported pph_extract.csv")
    file_id = str(live.standin.calls("files.info")[0].args["file"])
    with Session(live.engine) as session:
        measure = session.exec(select(Measure).where(Measure.name == PPH)).one()
    real = importing.already_imported
    calls = {"n": 0}

    def raced(*args: Any, **kwargs: Any) -> Any:
        # The first check sees nothing yet, as a delivery racing the first one would.
        calls["n"] += 1
        return None if calls["n"] == 1 else real(*args, **kwargs)

    monkeypatch.setattr(importing, "already_imported", raced)
    job = measures._ImportJob(
        team_id=live.driver.team_id,
        channel_id=CHANNEL,
        user_id=ANALYST,
        measure_id=measure.id or 0,
        measure_name=PPH,
        period="month",
        today=last_month() + timedelta(days=40),
        file_id=file_id,
    )
    before = len(live.standin.messages(CHANNEL))
    measures.run_import(
        WebClient(base_url=live.standin.api_url, token="xoxb-standin"), live.engine, live.settings, job
    )
    assert "already imported" in last_ephemeral(live, ANALYST, containing="already imported")
    assert count(live.engine, DataBatch) == 1 and len(live.standin.messages(CHANNEL)) == before


def test_a_channel_message_that_fails_the_disclosure_check_is_not_posted(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers.blocks import measures as measures_blocks

    start_project(live)
    add_measure(live)
    monkeypatch.setattr(
        measures_blocks,
        "import_result",
        lambda outcome, by: (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "3 of 41 births had a PPH"}}],
            "3 of 41 births",
        ),
    )
    submit_import(live, ("pph_extract.csv", trust_export(bad_rows=False)))
    wait_channel(live, "An import finished")
    assert "3 of 41" not in channel_text(live)
    assert count(live.engine, DataBatch) == 1
