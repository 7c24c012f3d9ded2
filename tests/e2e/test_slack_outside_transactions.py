"""No Slack call while a transaction is open (issue 13): the PDSA, measure and prompt flows driven end to end
with every Slack Web API call and response_url reply checked against the connections the thread holds."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot.core.prompts import load_catalogue
from handlers.blocks import ids
from storage.db import unit_of_work
from storage.models import PdsaCycle
from tests.e2e.test_pdsa_e2e import act, cycles, do, last_ephemeral, plan, seed, study, wait_thread
from tests.helpers import CHANNEL, LEAD, MIDWIFE, start_project
from tests.slack_watch import slack_outside_transactions


def test_the_watch_sees_a_slack_call_inside_a_transaction(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = WebClient(token="xoxb-test", base_url=live.standin.api_url)

    def call_slack() -> None:
        with suppress(SlackApiError):  # the answer does not matter here, only when the call is made
            client.auth_test()

    with slack_outside_transactions(live.engine, monkeypatch) as watch:
        call_slack()
        assert watch.calls == 1 and watch.violations == []
        with unit_of_work(live.engine) as session:
            session.connection()  # the transaction holds a connection from here
            call_slack()
        call_slack()
    assert len(watch.violations) == 1 and "auth.test inside a transaction" in watch.violations[0]


def test_pdsa_steps_and_refusals_call_slack_outside_transactions(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_project(live)
    measures = seed(live.engine)
    with slack_outside_transactions(live.engine, monkeypatch) as watch:
        plan(live, measures)
        live.standin.wait_for(lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts)
        do(live)
        wait_thread(live, "ran as planned")
        study(live)
        wait_thread(live, "Predicted against observed")
        act(live, decision="abandon")
        live.standin.wait_for(lambda: cycles(live.engine)[0].status == "acted")
        wait_thread(live, "Act: abandon")
        # The refusals (a closed cycle, for someone who is not a lead) are told after the transaction too.
        for word in ("edit", "act"):
            seen = len(live.standin.ephemerals(MIDWIFE))
            live.driver.slash("/pdsa", f"{word} 1", user=MIDWIFE, channel=CHANNEL)
            assert "leads" in last_ephemeral(live, MIDWIFE, seen)
        seen = len(live.standin.ephemerals(LEAD))
        live.driver.slash("/pdsa", "show 1", user=LEAD, channel=CHANNEL)
        assert "Act: *abandon*" in last_ephemeral(live, LEAD, seen)
        live.driver.slash("/pdsa", "list", user=LEAD, channel=CHANNEL)
        live.driver.slash("/pdsa", "do 9", user=LEAD, channel=CHANNEL)
        last_ephemeral(live, LEAD, seen + 2)
    assert watch.calls > 10
    assert watch.violations == []


def test_a_study_with_no_measure_is_refused_outside_a_transaction(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_project(live)
    measures = seed(live.engine, with_data=False)
    plan(live, measures)
    live.standin.wait_for(lambda: cycles(live.engine) and cycles(live.engine)[0].card_ts)
    with unit_of_work(
        live.engine
    ) as session:  # a cycle left with no measure (e.g. planned before any existed)
        (cycle,) = session.exec(select(PdsaCycle)).all()
        cycle.measure_ids = []
        session.add(cycle)
    with slack_outside_transactions(live.engine, monkeypatch) as watch:
        seen = len(live.standin.ephemerals(LEAD))
        live.driver.slash("/pdsa", "study 1", user=LEAD, channel=CHANNEL)
        assert "has no measure to study" in last_ephemeral(live, LEAD, seen)
    assert watch.calls and watch.violations == []


def _replied(live: Any, words: str) -> Any:
    return live.standin.wait_for(lambda: next((r for r in live.standin.responses() if words in r.text), None))


def test_measure_flows_and_their_refusals_call_slack_outside_transactions(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.e2e.test_measures_e2e import add_measure, last_month, open_log, points

    with slack_outside_transactions(live.engine, monkeypatch) as watch:
        # No project in the channel yet: each word says so (these replies used to be sent inside a transaction).
        for word in ("new", "log", "list", "import", "undo"):
            before = len(live.standin.responses())
            live.driver.slash("/measure", word, user=LEAD, channel=CHANNEL)
            live.standin.wait_for(lambda before=before: len(live.standin.responses()) > before or None)
        assert "no project in this channel" in live.standin.responses()[-1].text
        start_project(live)
        live.driver.slash("/measure", "log", user=LEAD, channel=CHANNEL)
        _replied(live, "no measures yet")
        add_measure(live)
        view = open_log(live)
        live.driver.submit_view(
            view["id"],
            {
                ids.B_LOG_PERIOD: last_month(),
                ids.B_LOG_ROW_PREFIX + "N": "14/230",
                ids.B_LOG_ROW_PREFIX + "A": "12/300",
            },
            user=LEAD,
        )
        live.standin.wait_for(lambda: len(points(live.engine)) == 2 or None)
        live.driver.slash("/measure", "list", user=LEAD, channel=CHANNEL)
        live.driver.slash("/measure", "undo 999", user=LEAD, channel=CHANNEL)
        _replied(live, "has no entry 999")
        live.driver.slash("/measure", "undo", user=LEAD, channel=CHANNEL)
        live.standin.wait_for(lambda: not points(live.engine) or None)
    assert watch.calls > 10
    assert watch.violations == []


def test_prompt_flows_and_their_refusals_call_slack_outside_transactions(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with slack_outside_transactions(live.engine, monkeypatch) as watch:
        live.driver.slash("/mfi", "schedule", user=LEAD, channel=CHANNEL)
        _replied(live, "no project in this channel")
        start_project(live)
        # Not a lead: refused, with the leads named (these replies used to be sent inside a transaction).
        live.driver.slash("/mfi", "schedule", user=MIDWIFE, channel=CHANNEL)
        live.driver.slash("/mfi", "prompts", user=MIDWIFE, channel=CHANNEL)
        live.standin.wait_for(
            lambda: (
                len([r for r in live.standin.responses() if "Only the project's leads" in r.text]) == 2
                or None
            )
        )
        live.driver.slash("/mfi", "schedule pause", user=LEAD, channel=CHANNEL)
        _replied(live, "Paused.")
        live.driver.slash("/mfi", "prompts", user=LEAD, channel=CHANNEL)
        listing = live.standin.wait_for(
            lambda: next(
                (r for r in live.standin.responses() if ids.A_PROMPT_PIN in str(r.body.get("blocks"))), None
            )
        )
        # Pin from the Home tab (the stand-in cannot click inside an ephemeral message).
        naming = load_catalogue().for_stage("naming", "team")
        published = len(live.standin.calls("views.publish"))
        live.driver.open_home(LEAD)
        # Click in the view this visit published, not an earlier one still being replaced.
        live.standin.wait_for(lambda: len(live.standin.calls("views.publish")) > published or None)
        home = live.standin.wait_for(lambda: live.standin.home_view(LEAD))
        live.driver.click(ids.A_PROMPT_PIN, user=LEAD, view_id=home["id"], selected_option=naming[0].id)
        live.standin.wait_for(
            lambda: (h := live.standin.home_view(LEAD)) and "Pinned for next time" in str(h) and h or None
        )
        view = live.driver.slash("/mfi", "schedule", user=LEAD, channel=CHANNEL).wait_view()
        response = live.driver.submit_view(view["id"], {}, user=LEAD)
        assert response.status == 200
    assert listing is not None and watch.calls > 5
    assert watch.violations == []
