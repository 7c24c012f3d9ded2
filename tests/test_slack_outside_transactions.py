"""No Slack call while a transaction is open (issue 13): the PDSA, measure and prompt flows driven end to end
with every Slack Web API call and response_url reply checked against the connections the thread holds."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import select

from storage.db import unit_of_work
from storage.models import PdsaCycle
from tests.helpers import CHANNEL, LEAD, MIDWIFE, start_project
from tests.slack_watch import slack_outside_transactions
from tests.test_pdsa_e2e import act, cycles, do, last_ephemeral, plan, seed, study, wait_thread


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
