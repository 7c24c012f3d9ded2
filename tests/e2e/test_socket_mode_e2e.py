"""The real bot in Socket Mode end to end: commands, modals, buttons, events and scheduled posts over the stand-in's
WebSocket side; /healthz that tells the truth; reconnection after `disconnect` and a dropped connection, with no
command lost."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.offline.standin import Response
from bot.scheduler import BotScheduler
from bot.services.delivery import DeliveryConfig
from bot.slack_client import ClientFactory
from handlers.blocks import ids
from storage.models import Project
from tests.conftest import SocketLive
from tests.helpers import ANALYST, CHANNEL, LEAD, PROJECT_FORM, start_project

pytestmark = pytest.mark.e2e

TUESDAY = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
MONDAY_TEAM_PROMPT = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)  # Monday 10:00 London (GMT until 29 March)


def health(stack: SocketLive) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(stack.health_url, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def envelopes(stack: SocketLive, kind: str) -> list[dict[str, Any]]:
    return [m for m in stack.standin.socket.delivered if m["type"] == kind]


def projects(stack: SocketLive) -> list[Project]:
    with Session(stack.engine) as session:
        return list(session.exec(select(Project)).all())


def test_a_slash_command_opens_a_modal_errors_show_inline_then_it_saves(socket_live: SocketLive) -> None:
    opened = socket_live.driver.slash("/mfi", "new", user=LEAD, channel=CHANNEL)
    assert opened.response.status == 200
    view = opened.wait_view()
    [command] = envelopes(socket_live, "slash_commands")
    assert command["accepts_response_payload"] is True and command["payload"]["command"] == "/mfi"
    assert command["payload"]["text"] == "new" and command["payload"]["trigger_id"] == opened.trigger_id

    bad = socket_live.driver.submit_view(
        view["id"],
        {"project_name": "P", "project_aim": "short", "project_focus_groups": ["A", "N"]},
        user=LEAD,
    )
    # The acknowledgement's payload plays the HTTP body's part: the errors show in the modal, which stays open.
    assert bad.json["response_action"] == "errors"
    assert set(bad.json["errors"]) == {"project_name", "project_aim", "project_focus_groups"}
    assert socket_live.standin.is_open(view["id"]) and projects(socket_live) == []
    assert socket_live.standin.messages(CHANNEL) == []

    good = socket_live.driver.submit_view(view["id"], PROJECT_FORM, user=LEAD)
    assert (good.status, good.body) == (200, "")
    assert not socket_live.standin.is_open(view["id"])
    card = socket_live.standin.wait_for(lambda: socket_live.standin.last_message(CHANNEL))
    assert "Reducing PPH inequity" in json.dumps(card.blocks)
    # the card's ts is saved just after it is posted
    project = socket_live.standin.wait_for(
        lambda: next((p for p in projects(socket_live) if p.card_ts), None)
    )
    assert (project.channel_id, project.card_ts, len(projects(socket_live))) == (CHANNEL, card.ts, 1)
    submissions = [
        e for e in envelopes(socket_live, "interactive") if e["payload"]["type"] == "view_submission"
    ]
    assert len(submissions) == 2 and all(e["accepts_response_payload"] for e in submissions)
    assert socket_live.standin.socket.unacknowledged() == []
    assert socket_live.standin.violations == []


def test_a_command_answered_in_its_acknowledgement(socket_live: SocketLive) -> None:
    helped = socket_live.driver.slash("/mfi", "help", user=LEAD, channel=CHANNEL).response
    assert helped.json["response_type"] == "ephemeral" and "/mfi new" in helped.body
    [shown] = socket_live.standin.ephemerals(LEAD)
    assert "/mfi new" in json.dumps(
        shown.blocks
    )  # shown to the person who typed it, as Slack shows an ack body
    assert socket_live.standin.messages(CHANNEL) == []


def test_an_event_and_a_button(socket_live: SocketLive) -> None:
    opened = socket_live.driver.open_home(ANALYST)
    assert (opened.status, opened.body) == (200, "")
    home = socket_live.standin.wait_for(lambda: socket_live.standin.home_view(ANALYST))
    [event] = envelopes(socket_live, "events_api")
    assert event["payload"]["event"]["type"] == "app_home_opened"
    assert (event["retry_attempt"], event["retry_reason"], event["accepts_response_payload"]) == (
        0,
        "",
        False,
    )

    clicked = socket_live.driver.click(ids.A_HOME_HOW_TO_START, user=ANALYST, view_id=home["id"])
    assert (clicked.status, clicked.body) == (200, "")
    guide = socket_live.standin.wait_for(
        lambda: next(
            (v for v in socket_live.standin.views() if v.get("callback_id") == ids.VIEW_HOW_TO_START), None
        )
    )
    assert "/mfi new" in json.dumps(guide["blocks"])
    [click] = [e for e in envelopes(socket_live, "interactive") if e["payload"]["type"] == "block_actions"]
    assert click["accepts_response_payload"] is False
    assert socket_live.standin.violations == []


def test_a_global_shortcut(socket_live: SocketLive) -> None:
    used = socket_live.driver.global_shortcut(ids.SC_LOG_MEASURE, user=ANALYST)
    assert (used.status, used.body) == (200, "")
    # Someone on no project gets the How to start guide (as over HTTP), never another team's form.
    guide = socket_live.standin.wait_for(
        lambda: next(
            (v for v in socket_live.standin.views() if v.get("callback_id") == ids.VIEW_HOW_TO_START), None
        )
    )
    assert "/mfi new" in json.dumps(guide["blocks"])
    [shortcut] = [e for e in envelopes(socket_live, "interactive") if e["payload"]["type"] == "shortcut"]
    assert shortcut["payload"]["callback_id"] == ids.SC_LOG_MEASURE
    assert socket_live.standin.violations == []


@pytest.mark.clock(TUESDAY)
def test_a_scheduled_post_and_its_button(socket_live: SocketLive) -> None:
    start_project(socket_live)
    scheduler = BotScheduler(
        socket_live.engine,
        ClientFactory(socket_live.standin.api_url, bot_token="xoxb-standin"),
        clock=lambda: TUESDAY,
        config=DeliveryConfig(per_channel_interval=0.0, workers=2),
        instance_id="socket-e2e",
    )
    scheduler.run_due(TUESDAY)  # the scan gives the new project its default schedules
    assert scheduler.run_due(MONDAY_TEAM_PROMPT).posted == 1
    prompt = socket_live.standin.wait_for(
        lambda: next(
            (
                m
                for m in socket_live.standin.messages(CHANNEL)
                if ids.A_ANSWER in json.dumps(m.blocks) and m.thread_ts is None
            ),
            None,
        )
    )
    answered = socket_live.driver.click(ids.A_ANSWER, user=LEAD, message=prompt)
    assert answered.status == 200
    form = socket_live.standin.wait_for(
        lambda: next((v for v in socket_live.standin.views() if v.get("type") == "modal"), None)
    )
    assert socket_live.standin.is_open(form["id"])
    assert socket_live.standin.violations == []


def test_health_tells_the_truth_while_the_connection_is_refused(socket_live: SocketLive) -> None:
    status, report = health(socket_live)
    assert (status, report["socket"], report["transport"], report["database"]) == (
        200,
        "connected",
        "socket_mode",
        "ok",
    )
    socket_live.standin.socket.refusing = True
    socket_live.standin.socket.drop()
    socket_live.standin.wait_for(lambda: health(socket_live)[0] == 503 or None, timeout=15)
    # The bot keeps trying; each try is refused, and the health check keeps saying so.
    socket_live.standin.wait_for(
        lambda: [s for _, s in socket_live.standin.socket.handshakes if s == 503], timeout=30
    )
    status, report = health(socket_live)
    assert (status, report["status"], report["socket"]) == (503, "unhealthy", "disconnected")

    socket_live.standin.socket.refusing = False
    socket_live.standin.socket.wait_connected(timeout=30)
    socket_live.standin.wait_for(lambda: health(socket_live)[0] == 200 or None, timeout=15)
    assert health(socket_live)[1]["socket"] == "connected"
    # it kept asking for fresh URLs while refused, each one used once
    tickets = [t for t, _ in socket_live.standin.socket.handshakes]
    assert len(tickets) == len(set(tickets))


def test_after_a_refresh_and_a_drop_no_command_is_lost(socket_live: SocketLive) -> None:
    socket_ = socket_live.standin.socket
    first = len(socket_.handshakes)
    socket_.disconnect("refresh_requested")
    socket_live.standin.wait_for(lambda: len(socket_.handshakes) > first or None, timeout=15)
    # slack_sdk opens the new connection, then closes the old one (its reader lets go within a few seconds)
    socket_live.standin.wait_for(lambda: socket_.connected == 1 or None, timeout=15)
    helped = socket_live.driver.slash("/mfi", "help", user=LEAD, channel=CHANNEL).response
    assert "/mfi new" in helped.body  # answered on the new connection

    socket_.refusing = True
    socket_.drop()
    socket_live.standin.wait_for(lambda: socket_.connected == 0 or None, timeout=15)
    sent: list[Response] = []
    typed = threading.Thread(
        target=lambda: sent.append(
            socket_live.driver.slash("/mfi", "help", user=LEAD, channel=CHANNEL).response
        )
    )
    socket_live.driver.timeout = 60
    typed.start()  # typed while the app is away: the envelope waits for the next connection
    [waiting] = socket_live.standin.wait_for(lambda: socket_.unacknowledged() or None)
    assert health(socket_live)[1]["socket"] == "disconnected"
    socket_.refusing = False
    typed.join(60)
    assert [r.status for r in sent] == [200] and "/mfi new" in sent[0].body
    # Delivered once on the new connection, answered once.
    assert (waiting.attempts, waiting.acks) == (1, 1)
    assert [e.acks for e in socket_.envelopes()] == [1, 1]
    assert len(socket_live.standin.ephemerals(LEAD)) == 2
    assert socket_.unacknowledged() == [] and socket_live.standin.violations == []


def test_an_envelope_unacknowledged_when_its_connection_went_is_sent_again(socket_live: SocketLive) -> None:
    """A retried event (retry_attempt 1, as Slack sends after a dropped connection) is handled once."""
    socket_live.driver.open_home(ANALYST)
    socket_live.standin.wait_for(lambda: socket_live.standin.home_view(ANALYST))
    event_id = socket_live.driver.last_event_id
    again = socket_live.driver.event(
        {
            "type": "app_home_opened",
            "user": ANALYST,
            "channel": socket_live.standin.dm_channel(ANALYST),
            "tab": "home",
        },
        retry_num=1,
        event_id=event_id,
    )
    assert again.status == 200
    retried = envelopes(socket_live, "events_api")[-1]
    assert (retried["retry_attempt"], retried["retry_reason"]) == (1, "timeout")
    assert len(socket_live.standin.calls("views.publish")) == 1  # de-duplicated by event_id
