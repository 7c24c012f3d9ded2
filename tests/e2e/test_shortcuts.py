"""The message shortcut "Add to a PDSA cycle": a message in the channel becomes an observation in a cycle's Do log."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

import pytest
import yaml
from slack_bolt import App
from sqlmodel import Session, select

from handlers.blocks import ids
from storage.models import PdsaCycle, PdsaEntry, Project
from tests.e2e.test_measures_e2e import last_month, points
from tests.e2e.test_pdsa_e2e import entries, plan, seed, thread
from tests.handlers.test_manifest import ROOT, _matched, offline_app
from tests.helpers import ANALYST, CHANNEL, LEAD, MIDWIFE, OTHER_CHANNEL, start_project

__all__ = ["offline_app"]  # a fixture, found by name

pytestmark = pytest.mark.e2e

WORDS = "Interpreters came late on Tuesday, so women waited and some left before booking"


def shortcut_on(live: Any, text: str, *, user: str = LEAD, channel: str = CHANNEL) -> Any:
    message = live.standin.add_user_message(channel, MIDWIFE, text)
    response = live.driver.message_shortcut(ids.SC_ADD_TO_PDSA, message=message, user=user)
    assert response.status == 200
    return message


def the_form(live: Any) -> dict[str, Any]:
    return live.standin.wait_for(
        lambda: next(
            (v for v in live.standin.views() if v.get("callback_id") == ids.CB_PDSA_OBSERVATION), None
        )
    )


def test_manifest_declares_the_shortcut_and_it_has_a_listener(offline_app: App) -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    declared = {s["callback_id"]: s for s in manifest["features"]["shortcuts"]}
    assert set(declared) == set(ids.SHORTCUTS)
    assert (
        declared[ids.SC_ADD_TO_PDSA]["type"] == "message" and len(declared[ids.SC_ADD_TO_PDSA]["name"]) <= 24
    )
    body = {
        "type": "message_action",
        "callback_id": ids.SC_ADD_TO_PDSA,
        "team": {"id": "T1"},
        "user": {"id": "U1"},
        "channel": {"id": "C1"},
        "message": {"type": "message", "text": "x", "ts": "1.2"},
        "trigger_id": "1.2",
        "response_url": "http://127.0.0.1:9/r",
    }
    assert _matched(offline_app, body, "application/x-www-form-urlencoded")


def test_a_message_becomes_an_observation_in_the_do_log(live: Any) -> None:
    start_project(live)
    plan(live, seed(live.engine))
    shortcut_on(live, WORDS)
    form = the_form(live)
    text = json.dumps(form)
    assert "PDSA 1.1: Interpreter at booking" in text and WORDS in text and "identify a patient" in text
    edited = WORDS.replace("some left", "a few left")
    response = live.driver.submit_view(form["id"], {ids.B_PDSA_OBS_TEXT: edited}, user=LEAD)
    assert response.status == 200 and not response.body
    [entry] = entries(live.engine, "do")
    assert entry.data == {"observations": edited, "from_message": True} and entry.user_id == LEAD
    assert MIDWIFE not in json.dumps(entry.data)  # who wrote the message is not saved
    note = live.standin.wait_for(
        lambda: next((m for m in thread(live) if "added an observation" in m.text), None)
    )
    assert edited not in note.text and "/pdsa show 1.1" in note.text
    live.driver.slash("/pdsa", "show 1", user=MIDWIFE, channel=CHANNEL)
    shown = live.standin.wait_for(
        lambda: next((r for r in live.standin.responses() if "Do observation" in json.dumps(r.body)), None)
    )
    assert "Interpreters came late on Tuesday" in json.dumps(shown.body)
    assert live.standin.violations == []


def test_a_channel_without_a_project_or_an_open_cycle_is_told_what_to_do(live: Any) -> None:
    shortcut_on(live, WORDS, channel=OTHER_CHANNEL)
    reply = live.standin.wait_for(lambda: live.standin.ephemerals(LEAD) or None)[-1]
    assert "/mfi new" in reply.text
    start_project(live)
    shortcut_on(live, WORDS)
    reply = live.standin.wait_for(lambda: live.standin.ephemerals(LEAD)[1:] or None)[-1]
    assert "/pdsa new" in reply.text
    assert not [v for v in live.standin.views() if v.get("callback_id") == ids.CB_PDSA_OBSERVATION]
    with Session(live.engine) as session:
        assert session.exec(select(PdsaEntry)).all() == []


def _forged_submission(live: Any, form: dict[str, Any], cycle_id: int) -> Any:
    state = live.driver.build_state(form, {ids.B_PDSA_OBS_TEXT: WORDS}, user=LEAD)
    state[ids.B_PDSA_OBS_CYCLE][ids.A_INPUT]["selected_option"]["value"] = str(cycle_id)
    live.standin.set_view_state(form["id"], state)
    payload = {
        "type": "view_submission",
        "team": {"id": live.driver.team_id},
        "user": {"id": LEAD},
        "api_app_id": "A0MFIAR01",
        "trigger_id": live.standin.new_trigger_id(user=LEAD),
        "view": {**live.standin.view(form["id"]), "state": {"values": state}},
    }
    return live.driver._send_payload(payload)


def test_a_forged_or_closed_cycle_is_refused_inline_and_nothing_is_saved(live: Any) -> None:
    other = "C0SECONDQI"
    live.standin.add_channel(other, "second-qi", members=[LEAD, MIDWIFE])
    start_project(live, channel=other)
    with Session(live.engine) as session, session.begin():
        [project] = session.exec(select(Project).where(Project.channel_id == other)).all()
        foreign = PdsaCycle(
            project_id=project.id or 0,
            team_id=project.team_id,
            number=1,
            title="Other team's test",
            change_idea="x",
            question="y",
            start_date=date(2026, 3, 1),
            end_date=date(2026, 4, 1),
            channel_id=other,
            created_by=LEAD,
        )
        session.add(foreign)
        session.flush()
        foreign_id = foreign.id or 0
    start_project(live)
    plan(live, seed(live.engine))
    shortcut_on(live, WORDS)
    form = the_form(live)
    refused = _forged_submission(live, form, foreign_id)  # another channel's cycle in this channel's form
    assert ids.B_PDSA_OBS_CYCLE in refused.json["errors"]
    with Session(live.engine) as session, session.begin():
        mine = session.exec(select(PdsaCycle).where(PdsaCycle.channel_id == CHANNEL)).one()
        mine.status = "acted"
        session.add(mine)
        mine_id = mine.id or 0
    closed = _forged_submission(live, form, mine_id)  # the form was opened before the cycle closed
    assert "planned or running" in closed.json["errors"][ids.B_PDSA_OBS_CYCLE]
    assert entries(live.engine, "do") == []
    shortcut_on(live, WORDS)
    again = live.standin.wait_for(lambda: live.standin.ephemerals(LEAD) or None)[-1]
    assert "/pdsa new" in again.text  # a done cycle is no longer offered


# --- the global shortcut "Log a measure" -------------------------------------------------------------------------------


def opened(live: Any, callback_id: str, after: set[str]) -> dict[str, Any]:
    return live.standin.wait_for(
        lambda: next(
            (
                v
                for v in reversed(live.standin.views())
                if v.get("callback_id") == callback_id and v["id"] not in after
            ),
            None,
        )
    )


def test_log_a_measure_opens_the_log_form_of_the_persons_only_project(live: Any) -> None:
    start_project(live)
    seed(live.engine, with_data=False)
    live.driver.global_shortcut(ids.SC_LOG_MEASURE, user=LEAD)
    form = opened(live, ids.CB_MEASURE_LOG, set())
    assert "PPH 1,000 ml or more" in json.dumps(form)
    assert json.loads(form["private_metadata"])["channel_id"] == CHANNEL
    saved = live.driver.submit_view(
        form["id"], {ids.B_LOG_PERIOD: last_month(), ids.B_LOG_ROW_PREFIX + "N": "20/160"}, user=LEAD
    )
    assert saved.status == 200 and not saved.body.strip()
    live.standin.wait_for(lambda: points(live.engine) or None)
    assert points(live.engine) == {(last_month(), "N"): (20, 160, None)}
    assert live.standin.violations == []


def test_log_a_measure_asks_which_project_and_refuses_someone_elses(live: Any) -> None:
    other = "C0SECONDQI"
    live.standin.add_channel(other, "second-qi", members=[LEAD, MIDWIFE])
    start_project(live)
    seed(live.engine, with_data=False)
    start_project(live, channel=other, **{ids.B_PROJECT_NAME: "Second project"})
    live.driver.global_shortcut(ids.SC_LOG_MEASURE, user=LEAD)
    picker = opened(live, ids.VIEW_LOG_PICK_PROJECT, set())
    assert "Second project" in json.dumps(picker)
    with Session(live.engine) as session:
        second = session.exec(select(Project).where(Project.channel_id == other)).one()
        first = session.exec(select(Project).where(Project.channel_id == CHANNEL)).one()
    third = "C0THIRDQI1"
    live.standin.add_channel(third, "third-qi", members=[MIDWIFE])
    start_project(
        live, channel=third, lead=MIDWIFE, **{ids.B_PROJECT_NAME: "Not yours", ids.B_PROJECT_LEADS: [MIDWIFE]}
    )
    with Session(live.engine) as session:
        theirs = session.exec(select(Project).where(Project.channel_id == third)).one()
    before = live.standin.view(picker["id"])
    forged = {
        "type": "block_actions",
        "team": {"id": live.driver.team_id},
        "user": {"id": LEAD},
        "api_app_id": "A0MFIAR01",
        "trigger_id": live.standin.new_trigger_id(user=LEAD),
        "container": {"type": "view", "view_id": picker["id"]},
        "view": before,
        "actions": [
            {
                "action_id": ids.A_LOG_PICK_PROJECT,
                "block_id": before["blocks"][0].get("block_id", "b"),
                "type": "static_select",
                "action_ts": live.standin.new_ts(),
                "selected_option": {
                    "text": {"type": "plain_text", "text": "Not yours"},
                    "value": str(theirs.id),
                },
            }
        ],
    }
    assert live.driver._send_payload(forged).status == 200
    live.driver.click(
        ids.A_LOG_PICK_PROJECT,
        user=LEAD,
        view_id=picker["id"],
        selected_option={"text": {"type": "plain_text", "text": "Second project"}, "value": str(second.id)},
    )
    notice = live.standin.wait_for(
        lambda: (v := live.standin.view(picker["id"])) and "no measures yet" in json.dumps(v) and v or None
    )
    assert "/measure new" in json.dumps(notice) and "Not yours" not in json.dumps(notice)
    time.sleep(0.3)  # the forged choice was sent first; its listener has long finished
    assert len(live.standin.calls("views.update")) == 1  # a project not theirs opened nothing
    # Someone on no project gets the How to start guide, never another team's form.
    live.driver.global_shortcut(ids.SC_LOG_MEASURE, user=ANALYST)
    guide = opened(live, ids.VIEW_HOW_TO_START, set())
    assert "/mfi new" in json.dumps(guide) and str(first.id) not in json.dumps(guide.get("private_metadata"))


def test_a_project_chosen_in_the_picker_gets_a_log_form_that_saves(live: Any) -> None:
    other = "C0SECONDQI"
    live.standin.add_channel(other, "second-qi", members=[LEAD])
    start_project(live)
    seed(live.engine, with_data=False)
    start_project(live, channel=other, **{ids.B_PROJECT_NAME: "Second project"})
    live.driver.global_shortcut(ids.SC_LOG_MEASURE, user=LEAD)
    picker = opened(live, ids.VIEW_LOG_PICK_PROJECT, set())
    with Session(live.engine) as session:
        first = session.exec(select(Project).where(Project.channel_id == CHANNEL)).one()
    live.driver.click(
        ids.A_LOG_PICK_PROJECT,
        user=LEAD,
        view_id=picker["id"],
        selected_option={"text": {"type": "plain_text", "text": first.name}, "value": str(first.id)},
    )
    form = live.standin.wait_for(
        lambda: (v := live.standin.view(picker["id"])).get("callback_id") == ids.CB_MEASURE_LOG and v or None
    )
    saved = live.driver.submit_view(
        form["id"], {ids.B_LOG_PERIOD: last_month(), ids.B_LOG_ROW_PREFIX + "N": "20/160"}, user=LEAD
    )
    assert saved.status == 200 and not saved.body.strip(), saved.body
    live.standin.wait_for(lambda: points(live.engine) or None)
    assert points(live.engine) == {(last_month(), "N"): (20, 160, None)}
