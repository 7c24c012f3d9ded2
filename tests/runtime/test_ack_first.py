"""Acknowledgements first (bot.ack_first): work that can wait gives way while a request waits for its ack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import BoltRequest
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.ack_first import ACK_FIRST, AckFirst, Lane, homes
from bot.app import AckFirstApp
from bot.offline.standin import StandIn
from bot.scheduler import BotScheduler
from tests.conftest import Live, make_settings
from tests.helpers import LEAD, start_project
from tests.runtime.test_scheduler import CHANNEL, MONDAY, make_project, make_scheduler, prompts_in


def hold(gate: AckFirst) -> tuple[threading.Event, threading.Thread]:
    """A request waiting for its acknowledgement until the returned event is set."""
    entered, release = threading.Event(), threading.Event()

    def request() -> None:
        with gate.answering():
            entered.set()
            release.wait(30)

    thread = threading.Thread(target=request)
    thread.start()
    assert entered.wait(10)
    return release, thread


def test_work_steps_aside_until_the_acknowledgement_and_never_longer_than_its_limit() -> None:
    gate = AckFirst()
    assert gate.step_aside(5) == 0.0 and gate.waits == 0  # nothing waiting: straight on

    release, request = hold(gate)
    done: list[int] = []
    worker = threading.Thread(target=lambda: (gate.step_aside(30), done.append(gate.pending)))
    worker.start()
    worker.join(0.2)
    assert worker.is_alive() and not done  # still giving way
    release.set()
    worker.join(10)
    request.join(10)
    assert done == [0] and gate.waits == 1

    release, request = hold(gate)
    gate.step_aside(0.05)  # a request that never finishes only delays work by the limit
    assert gate.pending == 1
    release.set()
    request.join(10)


def test_the_lane_runs_a_burst_once_with_everyone_in_it_and_survives_a_failure() -> None:
    gate = AckFirst()
    lane = Lane("test-lane", gate, most=30)
    runs: list[tuple[str, list[str]]] = []
    release, request = hold(gate)
    lane.submit(("engine", "T1"), ["U1", "U2"], lambda people: runs.append(("first", people)))
    lane.submit(("engine", "T1"), ["U2", "U3"], lambda people: runs.append(("second", people)))
    lane.submit(("engine", "T2"), ["U9"], lambda people: runs.append(("other team", people)))
    assert not lane.drain(timeout=0.2) and runs == []  # nothing runs while an acknowledgement is due
    release.set()
    request.join(10)
    assert lane.drain(timeout=10)
    # Each person once, in the order they came, by the latest submission's function; teams apart.
    assert runs == [("second", ["U1", "U2", "U3"]), ("other team", ["U9"])]

    def fails(people: list[str]) -> None:
        raise RuntimeError("the database went away")

    lane.submit("k", ["U1"], fails)
    lane.submit("j", ["U4"], lambda people: runs.append(("after", people)))
    assert lane.drain(timeout=10)
    assert runs[-1] == ("after", ["U4"])


def test_each_engine_has_its_own_home_lane_and_a_stuck_one_holds_up_no_other() -> None:
    class Engine:  # anything an engine is keyed by: the lane is looked up by identity
        pass

    first, second = Engine(), Engine()
    assert homes(first) is homes(first) and homes(first) is not homes(second)
    stuck = threading.Event()
    homes(first).submit("T1", ["U1"], lambda people: stuck.wait(30))  # a Slack that no longer answers
    done: list[list[str]] = []
    homes(second).submit("T1", ["U2"], done.append)
    assert homes(second).drain(timeout=10) and done == [["U2"]]
    assert not homes(first).drain(timeout=0.1)
    stuck.set()
    assert homes(first).drain(timeout=10)


def test_an_idle_lane_lets_its_thread_go_and_starts_another_when_work_comes() -> None:
    lane = Lane("test-lane", AckFirst(), most=1, idle=0.05)
    runs: list[list[str]] = []
    lane.submit("k", ["U1"], runs.append)
    first = lane._thread
    assert first is not None and lane.drain(timeout=10)
    first.join(10)
    assert not first.is_alive() and lane._thread is None
    lane.submit("k", ["U2"], runs.append)
    assert lane.drain(timeout=10) and runs == [["U1"], ["U2"]]


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn().start()
    yield server
    server.stop()


def test_a_request_holds_the_gate_until_it_is_acknowledged_not_while_its_listener_runs_on(
    standin: StandIn,
) -> None:
    app = AckFirstApp(
        client=WebClient(token="xoxb-standin", base_url=standin.api_url),
        signing_secret="secret",
        request_verification_enabled=False,
    )
    seen: dict[str, int] = {}
    dispatched = threading.Event()
    finished = threading.Event()

    @app.command("/mfi")
    def listener(ack: Any) -> None:
        seen["before ack"] = ACK_FIRST.pending
        ack()
        dispatched.wait(10)  # the listener goes on after its acknowledgement has been answered
        seen["after ack"] = ACK_FIRST.pending
        finished.set()

    body = (
        "command=%2Fmfi&text=help&team_id=T0MFIAR01&user_id=U0QILEAD01&channel_id=C0MATERNITY&trigger_id=1.2"
    )
    response = app.dispatch(
        BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})
    )
    dispatched.set()
    assert response.status == 200
    assert finished.wait(10)
    assert seen == {"before ack": 1, "after ack": 0}


def test_a_fan_out_post_waits_for_a_pending_acknowledgement(engine: Engine, standin: StandIn) -> None:
    gate = AckFirst()
    make_project(engine)
    scheduler = make_scheduler(engine, standin, step_aside=lambda: gate.step_aside(30))
    release, request = hold(gate)
    reports: list[Any] = []
    run = threading.Thread(target=lambda: reports.append(scheduler.run_due(MONDAY)))
    run.start()
    standin.wait_for(lambda: gate.waits >= 1 or None)
    assert prompts_in(standin, CHANNEL) == []  # claimed and built, not posted while the form waits
    release.set()
    request.join(10)
    run.join(30)
    assert reports[0].posted == 1 and len(prompts_in(standin, CHANNEL)) == 1


def test_the_production_scheduler_gives_way_to_this_process_acknowledgements(database_url: str) -> None:
    from storage.db import make_engine

    engine = make_engine(database_url)
    scheduler = BotScheduler.for_app(make_settings(database_url=database_url), engine, clock=lambda: MONDAY)
    try:
        before = ACK_FIRST.waits
        release, request = hold(ACK_FIRST)
        scheduler.deliverer.config.step_aside()  # waits its short limit, then goes on
        assert ACK_FIRST.waits == before + 1
        release.set()
        request.join(10)
    finally:
        scheduler.shutdown()
        engine.dispose()


@pytest.mark.e2e
def test_home_refreshes_wait_for_acknowledgements_and_a_burst_publishes_once(
    live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_project(live)
    assert homes(live.engine).drain(timeout=10)
    monkeypatch.setattr(homes(live.engine), "most", 30.0)
    published = len(live.standin.calls("views.publish"))
    release, request = hold(ACK_FIRST)  # another person's form, waiting for its acknowledgement
    try:
        for aim in (
            "Reduce PPH among Black women from 12% to 7%",
            "Reduce PPH among Black women from 12% to 5%",
        ):
            updates = len(live.standin.calls("chat.update"))
            view = live.driver.slash("/mfi", "edit", user=LEAD, channel=CHANNEL).wait_view()
            response = live.driver.submit_view(view["id"], {"project_aim": aim}, user=LEAD)
            assert response.status == 200 and not response.body
            live.standin.wait_for(lambda n=updates: len(live.standin.calls("chat.update")) > n or None)
        # Both edits are saved and shown in the channel; their Home refreshes wait.
        assert not homes(live.engine).drain(timeout=0.3)
        assert len(live.standin.calls("views.publish")) == published
    finally:
        release.set()
        request.join(10)
    assert homes(live.engine).drain(timeout=30)
    fresh = live.standin.calls("views.publish")[published:]
    assert [c.args.get("user_id") for c in fresh] == [LEAD]  # once for the two edits
    assert "5%" in str(live.standin.home_view(LEAD))


def test_stopping_publishes_the_home_tabs_still_queued(database_url: str) -> None:
    stack = Live(database_url)
    try:
        start_project(stack)
        assert homes(stack.engine).drain(timeout=10)
        published = len(stack.standin.calls("views.publish"))
        release, request = hold(ACK_FIRST)  # the refresh gives way for up to a second
        try:
            view = stack.driver.slash("/mfi", "edit", user=LEAD, channel=CHANNEL).wait_view()
            stack.driver.submit_view(
                view["id"], {"project_aim": "Reduce PPH from 12% to 6% for all"}, user=LEAD
            )
            stack.standin.wait_for(lambda: stack.standin.calls("chat.update"))
            stack.runtime.stop()  # while the refresh is still queued
        finally:
            release.set()
            request.join(10)
        assert len(stack.standin.calls("views.publish")) == published + 1
    finally:
        stack.standin.stop()
