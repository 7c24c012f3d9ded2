"""Authorisation on every action, form and event; forms applied once; not in the channel; honest apologies.

The forged requests are generated from handlers/blocks/ids.py and manifest.yml: a new action or callback without a forged
case here, or registered without going through handlers.access, fails this module.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from slack_bolt import App, BoltRequest
from sqlmodel import Session, func, select

from bot.offline.standin.driver import APP_ID, Response
from handlers import access
from handlers.blocks import ids
from storage.db import unit_of_work
from storage.models import ChangeIdea, DataBatch, Delivery, Driver, Measure, PdsaCycle, Project, ViewGrant
from tests.e2e.test_measures_e2e import add_measure, last_month, measure_form
from tests.e2e.test_ownership_e2e import fill_project, project_id_for, wait_for_schedules
from tests.handlers.test_manifest import MANIFEST
from tests.helpers import CHANNEL, LEAD, MIDWIFE, OTHER_CHANNEL, start_project

pytestmark = pytest.mark.e2e

ATTACKER = "U0ATTACKER"
ATTACK_CHANNEL = "C0ATTACKQI"
INVITE = "/invite @MFI-AR"

# Which actions and forms only a project's leads may use. Checked against what the handlers register, so a change
# on either side is deliberate.
LEAD_ONLY_ACTIONS = {
    ids.A_OPEN_PROJECT_EDIT,
    ids.A_EXPORT,
    ids.A_DELETE,
    ids.A_EXPORT_ANSWERS,
    ids.A_PROMPT_PIN,
    ids.A_PROMPT_SKIP,
    ids.A_PROMPT_CLEAR,
}
LEAD_ONLY_FORMS = {ids.CB_PROJECT_EDIT, ids.CB_SCHEDULE, ids.CB_PARTNERS, ids.CB_DELETE_CONFIRM}
# What service-user partners may use from their DM (everything else from Home or a DM needs a lead or team member).
PARTNER_IDS = {
    ids.A_PARTNER_CONSENT_YES,
    ids.A_PARTNER_CONSENT_NO,
    ids.A_PARTNER_PAUSE,
    ids.A_PARTNER_RESUME,
    ids.A_PARTNER_STOP,
    ids.A_PARTNER_SHARE,
    ids.A_ANSWER,
    ids.CB_ANSWER,
}


@dataclass
class Victim:
    project: int
    measure: int
    batch: int
    cycle: int
    delivery: int
    own_project: int  # the attacker's own project, in their own channel
    driver: int = 0  # a driver and a change idea on the victim's driver diagram
    idea: int = 0


def _one(session: Session, model: Any, project_id: int) -> int:
    if model is DataBatch:
        row = session.exec(
            select(DataBatch)
            .join(Measure, Measure.id == DataBatch.measure_id)  # type: ignore[arg-type]
            .where(Measure.project_id == project_id)
        ).first()
    else:
        row = session.exec(select(model).where(model.project_id == project_id)).first()
    assert row is not None and row.id is not None
    return int(row.id)


def set_up(live: Any) -> Victim:
    live.standin.add_user(ATTACKER, "e.vil", "Eve Vil")
    live.standin.add_channel(ATTACK_CHANNEL, "attack-qi", members=[ATTACKER], bot_is_member=True)
    start_project(live)
    victim = project_id_for(live, CHANNEL)
    fill_project(live, victim)
    add_register_entries(live, victim)  # so a forged Edit names an entry that exists
    start_project(live, channel=ATTACK_CHANNEL, lead=ATTACKER, project_name="My own project")
    own = project_id_for(live, ATTACK_CHANNEL)
    wait_for_schedules(live, own)
    wait_for_settled_forms(live)  # the two project forms finish saving before anything is snapshot
    with unit_of_work(live.engine) as session:
        team = live_team()
        driver = Driver(project_id=victim, team_id=team, text="Blood loss estimated by eye", created_by=LEAD)
        session.add(driver)
        session.flush()
        assert driver.id is not None
        session.add(
            ChangeIdea(project_id=victim, team_id=team, driver_id=driver.id, text="Weigh", created_by=LEAD)
        )
    with Session(live.engine) as session:
        return Victim(
            project=victim,
            measure=_one(session, Measure, victim),
            batch=_one(session, DataBatch, victim),
            cycle=_one(session, PdsaCycle, victim),
            delivery=_one(session, Delivery, victim),
            own_project=own,
            driver=_one(session, Driver, victim),
            idea=_one(session, ChangeIdea, victim),
        )


def add_register_entries(live: Any, project_id: int) -> None:
    from storage import registers_repo
    from storage.db import unit_of_work

    with unit_of_work(live.engine) as session:
        project = session.get(Project, project_id)
        assert project is not None
        registers_repo.add_bias(
            session,
            project=project,
            created_by=LEAD,
            fields={"reviewed_kind": "policy", "subject": "Victim policy", "where_bias": "x", "action": "y"},
        )
        registers_repo.add_missing(
            session, project=project, source="team", who="Victim group", created_by=LEAD
        )


def wait_for_settled_forms(live: Any) -> None:
    def settled() -> bool:
        with Session(live.engine) as session:
            return all(g.status != "applying" for g in session.exec(select(ViewGrant)))

    live.standin.wait_for(settled)


def table_counts(live: Any) -> dict[str, int]:
    names = [n for n in sa.inspect(live.engine).get_table_names() if n != "alembic_version"]
    with live.engine.connect() as connection:
        return {
            n: int(connection.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one()) for n in names
        }


def snapshot(live: Any) -> tuple[Any, ...]:
    """Everything a refused request must leave alone: every table's rows, the victim's channel, forms, files."""
    with Session(live.engine) as session:
        project = session.get(Project, live_victim_id(live))
        project_state = project.model_dump_json() if project else None
        grants = sorted((g.view_id, g.status) for g in session.exec(select(ViewGrant)))
    channel = [
        (m.ts, m.text, json.dumps(m.blocks, sort_keys=True), m.deleted)
        for m in live.standin.messages(CHANNEL)
    ]
    modals = [v["id"] for v in live.standin.views() if v.get("type") == "modal"]
    return table_counts(live), project_state, grants, channel, modals, len(live.standin.files())


def modal_views(live: Any) -> list[dict[str, Any]]:
    return [v for v in live.standin.views() if v.get("type") == "modal"]


def live_victim_id(live: Any) -> int:
    return project_id_for(live, CHANNEL)


# ---------------------------------------------------------------- forged requests


def _value(action_id: str, v: Victim) -> tuple[str, dict[str, Any]]:
    """A forged action's value (and any extra action fields) pointing at the victim's project."""
    project_json = json.dumps({"project_id": v.project})
    values: dict[str, tuple[str, dict[str, Any]]] = {
        ids.A_OPEN_PROJECT_EDIT: (str(v.project), {}),
        ids.A_OPEN_MEASURE_NEW: (str(v.project), {}),
        ids.A_OPEN_PDSA_NEW: (str(v.project), {}),
        ids.A_POST_STATUS: ("", {}),
        ids.A_LOG_FULL_LIST: ("full", {}),
        ids.A_LOG_MEASURE_PICKED: (
            "",
            {"type": "static_select", "selected_option": {"value": str(v.measure)}},
        ),
        ids.A_UNDO_BATCH: (str(v.batch), {}),
        ids.A_EQUITY_VIEW: (json.dumps({"measure": v.measure, "view": "gaps", "window": 3}), {}),
        ids.A_EQUITY_WINDOW: (json.dumps({"measure": v.measure, "view": "groups", "window": 6}), {}),
        ids.A_EQUITY_DETAILS: (json.dumps({"measure": v.measure, "view": "groups", "window": 3}), {}),
        ids.A_EQUITY_METHODS: (json.dumps({"measure": v.measure, "view": "groups", "window": 3}), {}),
        ids.A_PDSA_DO: (str(v.cycle), {}),
        ids.A_PDSA_STUDY: (str(v.cycle), {}),
        ids.A_PDSA_ACT: (str(v.cycle), {}),
        ids.A_PDSA_EDIT: (str(v.cycle), {}),
        ids.A_PDSA_NEXT: (str(v.cycle), {}),
        ids.A_ANSWER: (json.dumps({"delivery_id": v.delivery}), {}),
        ids.A_PARTNER_CONSENT_YES: (project_json, {}),
        ids.A_PARTNER_CONSENT_NO: (project_json, {}),
        ids.A_PARTNER_PAUSE: (project_json, {}),
        ids.A_PARTNER_RESUME: (project_json, {}),
        ids.A_PARTNER_STOP: (project_json, {}),
        ids.A_PARTNER_SHARE: (json.dumps({"project_id": v.project, "share": True}), {}),
        ids.A_PROMPT_PIN: (json.dumps({"project_id": v.project, "prompt_id": "naming-1"}), {}),
        ids.A_PROMPT_SKIP: (json.dumps({"project_id": v.project, "prompt_id": "naming-1"}), {}),
        ids.A_PROMPT_CLEAR: (json.dumps({"project_id": v.project, "prompt_id": "naming-1"}), {}),
        ids.A_EXPORT_ANSWERS: (project_json, {}),
        ids.A_EXPORT: (str(v.project), {}),
        ids.A_DELETE: (str(v.project), {}),
        ids.A_HOME_HOW_TO_START: ("", {}),
        ids.A_HOME_TOUR: (json.dumps({"project_id": v.project}), {}),
        ids.A_LOG_PICK_PROJECT: ("", {"type": "static_select", "selected_option": {"value": str(v.project)}}),
        ids.A_BIAS_ADD: (project_json, {}),
        ids.A_BIAS_EDIT: (json.dumps({"project_id": v.project, "entry": 1}), {}),
        ids.A_BIAS_PAGE: (json.dumps({"project_id": v.project, "page": 2}), {}),
        ids.A_MISSING_ADD: (project_json, {}),
        ids.A_MISSING_EDIT: (json.dumps({"project_id": v.project, "entry": 1}), {}),
        ids.A_MISSING_PAGE: (json.dumps({"project_id": v.project, "page": 2}), {}),
        ids.A_TEAM_OPEN: (project_json, {}),
        ids.A_DRIVERS_OPEN: (str(v.project), {}),
        ids.A_DRIVERS_ADD_PRIMARY: ("primary", {}),
        ids.A_DRIVERS_ADD_SECONDARY: ("secondary", {}),
        ids.A_DRIVERS_ADD_IDEA: ("idea", {}),
        ids.A_DRIVERS_POST: ("post", {}),
        ids.A_DRIVERS_PAGE_PREV: ("0", {}),
        ids.A_DRIVERS_PAGE_NEXT: ("1", {}),
        ids.A_DRIVERS_ITEM: (
            "",
            {"type": "overflow", "selected_option": {"value": f"retire:driver:{v.driver}"}},
        ),
    }
    return values[action_id]


def _metadata(callback_id: str, v: Victim) -> dict[str, Any]:
    """A forged form's private_metadata pointing at the victim's project."""
    base = {"project_id": v.project, "channel_id": CHANNEL}
    return {
        ids.CB_PROJECT_NEW: {"channel_id": CHANNEL, "user_id": ATTACKER},
        ids.CB_PROJECT_EDIT: base,
        ids.CB_MEASURE_NEW: base,
        ids.CB_MEASURE_LOG: {**base, "measure_id": v.measure},
        ids.CB_MEASURE_IMPORT: base,
        ids.CB_PDSA_NEW: base,
        ids.CB_PDSA_EDIT: {**base, "cycle_id": v.cycle},
        ids.CB_PDSA_DO: {"cycle_id": v.cycle},
        ids.CB_PDSA_STUDY: {"cycle_id": v.cycle},
        ids.CB_PDSA_ACT: {"cycle_id": v.cycle},
        ids.CB_SCHEDULE: base,
        ids.CB_ANSWER: {"delivery_id": v.delivery},
        ids.CB_PARTNERS: {"project_id": v.project},
        ids.CB_DELETE_CONFIRM: base,
        ids.CB_PDSA_OBSERVATION: {"project_id": v.project},
        ids.CB_BIAS_ENTRY: {**base, "entry": 1},
        ids.CB_MISSING_ENTRY: {**base, "entry": 1},
        ids.CB_TEAM_REFLECTION: base,
        ids.CB_DRIVER: {**base, "driver_id": v.driver, "level": "primary"},
        ids.CB_CHANGE_IDEA: {**base, "idea_id": v.idea},
        ids.CB_DRIVERS_RETIRE: {**base, "driver_id": v.driver},
    }[callback_id]


IN_FORM_ACTIONS = {
    ids.A_LOG_FULL_LIST: ids.CB_MEASURE_LOG,
    ids.A_LOG_MEASURE_PICKED: ids.CB_MEASURE_LOG,
    ids.A_LOG_PICK_PROJECT: ids.VIEW_LOG_PICK_PROJECT,
    ids.A_DRIVERS_ADD_PRIMARY: ids.VIEW_DRIVERS,
    ids.A_DRIVERS_ADD_SECONDARY: ids.VIEW_DRIVERS,
    ids.A_DRIVERS_ADD_IDEA: ids.VIEW_DRIVERS,
    ids.A_DRIVERS_POST: ids.VIEW_DRIVERS,
    ids.A_DRIVERS_PAGE_PREV: ids.VIEW_DRIVERS,
    ids.A_DRIVERS_PAGE_NEXT: ids.VIEW_DRIVERS,
    ids.A_DRIVERS_ITEM: ids.VIEW_DRIVERS,
}
# About no project: the guides anyone may open (registered with access.unscoped), and the view each opens.
NO_PROJECT_ACTIONS = {ids.A_HOME_HOW_TO_START: ids.VIEW_HOW_TO_START, ids.A_HOME_TOUR: ids.VIEW_TOUR}


def _send(live: Any, payload: dict[str, Any]) -> Any:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return live.driver.send_raw(body, content_type="application/x-www-form-urlencoded")


def _form(view_id: str, callback_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
    block = {
        "type": "input",
        "block_id": "first",
        "label": {"type": "plain_text", "text": "Name"},
        "element": {"type": "plain_text_input", "action_id": ids.A_INPUT},
    }
    return {
        "id": view_id,
        "type": "modal",
        "callback_id": callback_id,
        "hash": "1.x",
        "team_id": live_team(),
        "private_metadata": json.dumps(metadata),
        "blocks": [block],
        "state": {"values": {}},
        "title": {"type": "plain_text", "text": "Form"},
    }


def live_team() -> str:
    from bot.offline.standin import DEFAULT_TEAM_ID

    return str(DEFAULT_TEAM_ID)


def click(
    live: Any,
    action_id: str,
    v: Victim,
    *,
    user: str,
    channel: str | None,
    view: dict[str, Any] | None = None,
) -> Any:
    value, extra = _value(action_id, v)
    action = {
        "action_id": action_id,
        "block_id": "forged",
        "type": "button",
        "value": value,
        "action_ts": "1.2",
        **extra,
    }
    if action_id in (ids.A_PROMPT_PIN, ids.A_PROMPT_SKIP) and channel is None:
        # The Home tab's pin/skip select carries the project id in its block_id.
        action = {
            "action_id": action_id,
            "block_id": f"{ids.B_PROMPT_CHOICE_PREFIX}{v.project}",
            "type": "static_select",
            "selected_option": {"value": "naming-1"},
            "action_ts": "1.2",
        }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "team_id": live_team()},
        "api_app_id": APP_ID,
        "team": {"id": live_team()},
        "enterprise": None,
        "is_enterprise_install": False,
        "trigger_id": live.standin.new_trigger_id(user=user),
        "actions": [action],
    }
    if view is not None:
        payload["view"] = view
        payload["container"] = {"type": "view", "view_id": view["id"]}
    elif channel is not None:
        payload["channel"] = {"id": channel, "name": "somewhere"}
        payload["container"] = {
            "type": "message",
            "message_ts": "1700000000.000100",
            "channel_id": channel,
            "is_ephemeral": False,
        }
        payload["message"] = {
            "type": "message",
            "ts": "1700000000.000100",
            "text": "a copied card",
            "blocks": [],
        }
        payload["response_url"] = live.standin.new_response_url(channel=channel, user=user)
    else:
        payload["view"] = {
            "id": "VHOMEFORGED",
            "type": "home",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "state": {"values": {}},
            "hash": "1.x",
        }
        payload["container"] = {"type": "view", "view_id": "VHOMEFORGED"}
    return _send(live, payload)


def submit(live: Any, view: dict[str, Any], *, user: str) -> Any:
    return _send(
        live,
        {
            "type": "view_submission",
            "user": {"id": user, "team_id": live_team()},
            "api_app_id": APP_ID,
            "team": {"id": live_team()},
            "enterprise": None,
            "is_enterprise_install": False,
            "trigger_id": live.standin.new_trigger_id(user=user),
            "view": view,
            "response_urls": [],
        },
    )


def refusals_for(live: Any, user: str) -> list[str]:
    """Everything the bot told `user` privately, oldest first (response_url replies, DMs, ephemerals)."""
    dm = live.standin.dm_channel(user)
    told = [(r.time, r.text) for r in live.standin.responses() if r.user == user]
    told += [(float(m.ts), m.text) for m in live.standin.messages(dm)]
    told += [(float(e.ts), e.text) for e in live.standin.ephemerals(user)]
    return [text for _, text in sorted(told, key=lambda item: item[0])]


def wait_refused(live: Any, user: str, seen: int, containing: str) -> str:
    def found() -> str | None:
        texts = refusals_for(live, user)[seen:]
        return next((t for t in texts if containing in t), None)

    return str(live.standin.wait_for(found))


def grant(
    live: Any, view_id: str, *, user: str, project_id: int | None, channel: str | None, callback_id: str
) -> None:
    with unit_of_work(live.engine) as session:
        session.add(
            ViewGrant(
                team_id=live_team(),
                view_id=view_id,
                user_id=user,
                project_id=project_id,
                channel_id=channel,
                callback_id=callback_id,
            )
        )


def registered_rules(app: App) -> dict[str, access.Rule]:
    """The rule of the listener Bolt would run for each action id and callback id."""
    rules: dict[str, access.Rule] = {}
    for action_id in ids.ACTION_IDS:
        rules[action_id] = _rule_for(
            app,
            {
                "type": "block_actions",
                "team": {"id": "T1"},
                "user": {"id": "U1"},
                "actions": [{"action_id": action_id, "block_id": "b", "value": "1"}],
            },
        )
    for callback_id in ids.CALLBACK_IDS:
        rules[callback_id] = _rule_for(
            app,
            {
                "type": "view_submission",
                "team": {"id": "T1"},
                "user": {"id": "U1"},
                "view": {
                    "id": "V1",
                    "type": "modal",
                    "callback_id": callback_id,
                    "state": {"values": {}},
                    "private_metadata": "{}",
                },
            },
        )
    return rules


def _rule_for(
    app: App, body: dict[str, Any] | str, content_type: str = "application/x-www-form-urlencoded"
) -> Any:
    raw = body if isinstance(body, str) else "payload=" + json.dumps(body)
    request = BoltRequest(body=raw, headers={"content-type": [content_type]})
    matching = [listener for listener in app._listeners if listener.matches(req=request, resp=None)]  # type: ignore[arg-type]
    assert matching, f"nothing listens for {body}"
    # Bolt runs the first listener that matches: that one must go through the check.
    return getattr(matching[0].ack_function, access.MARK, None)


# ---------------------------------------------------------------- every listener goes through the check


def test_every_registered_listener_goes_through_the_check(live: Any) -> None:
    app: App = live.runtime.app
    unmarked = [
        getattr(x.ack_function, "__name__", x)
        for x in app._listeners
        if getattr(x.ack_function, access.MARK, None) is None
    ]
    assert unmarked == []
    rules = registered_rules(app)
    assert all(
        rule is not None and rule.claim is not None
        for i, rule in rules.items()
        if i not in NO_PROJECT_ACTIONS
    )
    assert all(rules[a] is not None and rules[a].claim is None for a in NO_PROJECT_ACTIONS)
    # Forms are checked against the grant the bot recorded when it opened them.
    assert all(rules[c].claim is access.form for c in ids.CALLBACK_IDS)
    assert {a for a in ids.ACTION_IDS if rules[a].need == "lead"} == LEAD_ONLY_ACTIONS
    assert {c for c in ids.CALLBACK_IDS if rules[c].need == "lead"} == LEAD_ONLY_FORMS
    assert {i for i, rule in rules.items() if rule.need == "partner"} == PARTNER_IDS
    for command in (c["command"] for c in MANIFEST["features"]["slash_commands"]):
        body = urlencode(
            {"command": command, "text": "", "team_id": "T1", "user_id": "U1", "channel_id": "C1"}
        )
        rule = _rule_for(app, body)
        assert rule is not None, command
        # /mfi looks the project up only for the words about it (access.only_for): help needs none.
        assert getattr(rule.claim, "__wrapped__", rule.claim) is access.channel_project, command
    for event_type in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": "T1",
                "event_id": "Ev1",
                "event": {"type": event_type, "user": "U1", "tab": "home"},
            }
        )
        assert _rule_for(app, body, "application/json") is not None, event_type


def test_every_action_and_callback_has_a_forged_case() -> None:
    v = Victim(1, 2, 3, 4, 5, 6)
    assert all(_value(a, v) for a in ids.ACTION_IDS)
    assert all(_metadata(c, v) for c in ids.CALLBACK_IDS)


# ---------------------------------------------------------------- forged actions and forms


def test_forged_actions_from_another_channel_and_from_home_are_refused_with_nothing_changed(
    live: Any,
) -> None:
    v = set_up(live)
    before = snapshot(live)
    for action_id in ids.ACTION_IDS:
        for channel in (ATTACK_CHANNEL, None):
            seen = len(refusals_for(live, ATTACKER))
            if action_id == ids.A_POST_STATUS and channel is not None:
                # It names no project: clicked in the attacker's own channel, it posts the attacker's own card there.
                mine = len(live.standin.messages(ATTACK_CHANNEL))
                click(live, action_id, v, user=ATTACKER, channel=channel)
                live.standin.wait_for(
                    lambda mine=mine: len(live.standin.messages(ATTACK_CHANNEL)) > mine or None
                )
                assert "My own project" in live.standin.messages(ATTACK_CHANNEL)[-1].text
                assert snapshot(live) == before
                continue
            if action_id in NO_PROJECT_ACTIONS:
                guide = NO_PROJECT_ACTIONS[action_id]
                opened_before = len(live.standin.calls("views.open"))
                click(live, action_id, v, user=ATTACKER, channel=channel)  # opens the guide; names no project
                live.standin.wait_for(
                    lambda guide=guide, n=opened_before: (
                        (
                            len(live.standin.calls("views.open")) > n
                            and any(g.get("callback_id") == guide for g in live.standin.views())
                        )
                        or None
                    )
                )
                now = snapshot(live)  # only the guide the bot opened is new (a modal; it needs no grant)
                guides = {g["id"] for g in live.standin.views() if g.get("callback_id") == guide}
                assert {k: n for k, n in now[0].items() if k != "view_grant"} == {
                    k: n for k, n in before[0].items() if k != "view_grant"
                }
                assert (now[1], now[3], now[5]) == (before[1], before[3], before[5])
                assert {g for g, _ in now[2]} - {g for g, _ in before[2]} <= guides
                assert set(now[4]) - set(before[4]) <= guides
                before = now
                continue
            if action_id in IN_FORM_ACTIONS:
                form = _form(
                    f"VFORGED{action_id}{channel}",
                    IN_FORM_ACTIONS[action_id],
                    _metadata(ids.CB_MEASURE_LOG, v),
                )
                response = click(live, action_id, v, user=ATTACKER, channel=None, view=form)
                expected = "wasn't opened for you"
            else:
                response = click(live, action_id, v, user=ATTACKER, channel=channel)
                expected = "nothing was changed"
            assert response.status == 200, (action_id, response.body)
            text = wait_refused(live, ATTACKER, seen, expected)
            assert "Reducing PPH inequity" not in text and CHANNEL not in text, (
                text
            )  # reveals nothing about it
            assert snapshot(live) == before, (action_id, channel)
    assert live.standin.violations == []


def test_forged_forms_are_refused_inline_with_nothing_changed(live: Any) -> None:
    v = set_up(live)
    for callback_id in ids.CALLBACK_IDS:
        # The attacker's own legitimately opened form, and the victim lead's, each carrying the victim's ids.
        grant(
            live,
            f"VOWN{callback_id}",
            user=ATTACKER,
            callback_id=callback_id,
            channel=ATTACK_CHANNEL,
            project_id=None if callback_id == ids.CB_PROJECT_NEW else v.own_project,
        )
        grant(
            live,
            f"VLEAD{callback_id}",
            user=LEAD,
            callback_id=callback_id,
            channel=CHANNEL,
            project_id=None if callback_id == ids.CB_PROJECT_NEW else v.project,
        )
    before = snapshot(live)
    for callback_id in ids.CALLBACK_IDS:
        for view_id in (f"VNEVER{callback_id}", f"VOWN{callback_id}", f"VLEAD{callback_id}"):
            response = submit(live, _form(view_id, callback_id, _metadata(callback_id, v)), user=ATTACKER)
            assert response.status == 200 and response.json["response_action"] == "errors", (
                callback_id,
                view_id,
            )
            text = response.json["errors"]["first"]
            assert "nothing was changed" in text and "Reducing PPH inequity" not in text, text
            assert snapshot(live) == before, (callback_id, view_id)


def test_people_who_are_not_leads_cannot_use_lead_only_actions_or_forms(live: Any) -> None:
    v = set_up(live)
    for callback_id in LEAD_ONLY_FORMS:
        # As if the midwife had opened it while she was a lead (or forged it): she is not one now.
        grant(
            live,
            f"VMID{callback_id}",
            user=MIDWIFE,
            callback_id=callback_id,
            channel=CHANNEL,
            project_id=v.project,
        )
    before = snapshot(live)
    for action_id in sorted(LEAD_ONLY_ACTIONS):
        seen = len(refusals_for(live, MIDWIFE))
        click(live, action_id, v, user=MIDWIFE, channel=CHANNEL)
        text = wait_refused(live, MIDWIFE, seen, "Only the project's leads")
        assert f"<@{LEAD}>" in text and "nothing was changed" in text
        assert snapshot(live) == before, action_id
    for callback_id in sorted(LEAD_ONLY_FORMS):
        response = submit(
            live, _form(f"VMID{callback_id}", callback_id, _metadata(callback_id, v)), user=MIDWIFE
        )
        assert "Only the project's leads" in response.json["errors"]["first"], callback_id
        assert snapshot(live) == before, callback_id


def test_a_partner_uses_their_dm_buttons_but_not_another_projects(live: Any) -> None:
    v = set_up(live)
    partner = "U0PARTNER1"
    live.standin.add_user(partner, "p.artner", "Pat Partner")
    with unit_of_work(live.engine) as session:
        from storage import repositories as repo

        project = session.get(Project, v.project)
        assert project is not None
        repo.set_members(session, project=project, role="partner", user_ids=[partner], added_by=LEAD)
    dm = live.standin.dm_channel(partner)
    seen = len(refusals_for(live, partner))
    click(live, ids.A_PARTNER_PAUSE, v, user=partner, channel=dm)
    live.standin.wait_for(lambda: len(refusals_for(live, partner)) > seen or None)
    assert "nothing was changed" not in refusals_for(live, partner)[-1]
    # The team's own tools are not theirs, even for their project (a forged Home button).
    before = snapshot(live)
    seen = len(refusals_for(live, partner))
    click(live, ids.A_OPEN_MEASURE_NEW, v, user=partner, channel=None)
    wait_refused(live, partner, seen, "nothing was changed")
    assert snapshot(live) == before
    # The same button naming the attacker's project, where the partner is nobody: refused.
    other = Victim(v.own_project, v.measure, v.batch, v.cycle, v.delivery, v.own_project)
    before = snapshot(live)
    seen = len(refusals_for(live, partner))
    click(live, ids.A_PARTNER_STOP, other, user=partner, channel=dm)
    wait_refused(live, partner, seen, "nothing was changed")
    assert snapshot(live) == before


# ---------------------------------------------------------------- a form is applied once


def _recording_driver(live: Any, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    sent: list[bytes] = []
    real = live.driver.send_raw

    def send_raw(body: bytes, *args: Any, **kwargs: Any) -> Any:
        sent.append(body)
        return real(body, *args, **kwargs)

    monkeypatch.setattr(live.driver, "send_raw", send_raw)
    return sent


def test_a_replayed_log_submission_changes_nothing_the_second_time_and_says_so(
    live: Any, monkeypatch: Any
) -> None:
    start_project(live)
    add_measure(live)
    view = live.driver.slash("/measure", "log", user=LEAD, channel=CHANNEL).wait_view()
    sent = _recording_driver(live, monkeypatch)
    row = ids.B_LOG_ROW_PREFIX
    first = live.driver.submit_view(
        view["id"], {ids.B_LOG_PERIOD: last_month(), row + "N": "14/230", row + "A": "12/300"}, user=LEAD
    )
    assert first.status == 200 and not first.body
    posted = live.standin.wait_for(
        lambda: [m for m in live.standin.messages(CHANNEL) if ids.A_UNDO_BATCH in str(m.blocks)]
    )
    before = table_counts(live), len(live.standin.messages(CHANNEL))
    # The same signed body again (a replay, or a retry): nothing is written or posted, and the reply says so.
    again = live.driver.send_raw(sent[-1], content_type="application/x-www-form-urlencoded")
    assert again.status == 200 and again.json["response_action"] == "errors"
    assert "saved already, so nothing was changed" in next(iter(again.json["errors"].values()))
    assert (table_counts(live), len(live.standin.messages(CHANNEL))) == before
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(DataBatch)).one() == 1
    assert len(posted) == 1


def test_the_same_submission_sent_twice_at_once_is_applied_once(live: Any, monkeypatch: Any) -> None:
    start_project(live)
    add_measure(live)
    view = live.driver.slash("/measure", "log", user=LEAD, channel=CHANNEL).wait_view()
    held: list[bytes] = []
    real = live.driver.send_raw

    def hold(body: bytes, *args: Any, **kwargs: Any) -> Response:
        held.append(body)  # built and signed as Slack would, but not sent yet
        return Response(200, "", None)

    monkeypatch.setattr(live.driver, "send_raw", hold)
    live.driver.submit_view(
        view["id"], {ids.B_LOG_PERIOD: last_month(), ids.B_LOG_ROW_PREFIX + "N": "14/230"}, user=LEAD
    )
    monkeypatch.setattr(live.driver, "send_raw", real)
    with ThreadPoolExecutor(2) as pool:
        replies = list(
            pool.map(lambda _: real(held[0], content_type="application/x-www-form-urlencoded"), range(2))
        )
    assert sorted(bool(r.body) for r in replies) == [False, True]
    refused = next(r for r in replies if r.body)
    assert "nothing" in next(iter(refused.json["errors"].values()))
    live.standin.wait_for(
        lambda: [m for m in live.standin.messages(CHANNEL) if ids.A_UNDO_BATCH in str(m.blocks)]
    )
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(DataBatch)).one() == 1
    assert len([m for m in live.standin.messages(CHANNEL) if ids.A_UNDO_BATCH in str(m.blocks)]) == 1


def test_a_form_submitted_the_instant_it_opens_waits_for_its_record(live: Any, monkeypatch: Any) -> None:
    start_project(live)
    real = access.record_grant

    def slow_record(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.5)  # the database is slow to record the opening: the person is quicker
        real(*args, **kwargs)

    monkeypatch.setattr(access, "record_grant", slow_record)
    view = live.driver.slash("/measure", "new", user=LEAD, channel=CHANNEL).wait_view()
    response = live.driver.submit_view(view["id"], measure_form(), user=LEAD)
    assert response.status == 200 and not response.body, response.body
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(Measure)).one() == 1


def test_a_form_with_errors_can_be_corrected_and_is_then_saved_once(live: Any, monkeypatch: Any) -> None:
    start_project(live)
    view = live.driver.slash("/measure", "new", user=LEAD, channel=CHANNEL).wait_view()
    wrong = live.driver.submit_view(view["id"], measure_form(**{ids.B_MEASURE_NAME: "P"}), user=LEAD)
    assert ids.B_MEASURE_NAME in wrong.json["errors"]
    sent = _recording_driver(live, monkeypatch)
    right = live.driver.submit_view(view["id"], measure_form(), user=LEAD)
    assert right.status == 200 and not right.body
    again = live.driver.send_raw(sent[-1], content_type="application/x-www-form-urlencoded")
    assert "saved already" in next(iter(again.json["errors"].values()))
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(Measure)).one() == 1


# ---------------------------------------------------------------- the bot is not in the channel


def test_new_project_where_the_bot_is_not_a_member_says_how_to_invite_it_and_opens_nothing(live: Any) -> None:
    modals = len(modal_views(live))
    result = live.driver.slash("/mfi", "new", user=LEAD, channel=OTHER_CHANNEL)
    reply = live.standin.wait_for(
        lambda: [r for r in live.standin.responses() if r.url == result.response_url]
    )
    assert (
        INVITE in reply[0].text and "#other-team" in reply[0].text and reply[0].response_type == "ephemeral"
    )
    assert len(modal_views(live)) == modals
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(Project)).one() == 0
    # Invited: the same command opens the form.
    live.standin.channel(OTHER_CHANNEL).members.append(live.standin.team().bot_user_id)
    assert (
        live.driver.slash("/mfi", "new", user=LEAD, channel=OTHER_CHANNEL).wait_view()["callback_id"]
        == ids.CB_PROJECT_NEW
    )


def test_a_private_channel_without_the_bot_gets_the_private_channel_advice(live: Any) -> None:
    live.standin.add_channel("G0PRIVATEQ", "private-qi", members=[LEAD], is_private=True, bot_is_member=False)
    result = live.driver.slash("/mfi", "new", user=LEAD, channel="G0PRIVATEQ")
    reply = live.standin.wait_for(
        lambda: [r for r in live.standin.responses() if r.url == result.response_url]
    )
    assert "private channel" in reply[0].text and INVITE in reply[0].text
    assert modal_views(live) == []


@pytest.mark.parametrize(
    "typed", [("/measure", "new"), ("/measure", "log"), ("/pdsa", "new"), ("/mfi", "edit")]
)
def test_forms_that_post_in_the_channel_are_not_opened_once_the_bot_was_removed(
    live: Any, typed: Any
) -> None:
    start_project(live)
    add_measure(live)
    live.standin.channel(CHANNEL).members.remove(live.standin.team().bot_user_id)
    modals = len(modal_views(live))
    result = live.driver.slash(typed[0], typed[1], user=LEAD, channel=CHANNEL)
    reply = live.standin.wait_for(
        lambda: [r for r in live.standin.responses() if r.url == result.response_url]
    )
    assert INVITE in reply[0].text
    assert len(modal_views(live)) == modals


def test_a_home_button_for_a_channel_without_the_bot_answers_in_a_dm(live: Any) -> None:
    start_project(live)
    project_id = project_id_for(live, CHANNEL)
    live.standin.channel(CHANNEL).members.remove(live.standin.team().bot_user_id)
    v = Victim(project_id, 0, 0, 0, 0, 0)
    modals = len(modal_views(live))
    seen = len(refusals_for(live, LEAD))
    click(live, ids.A_OPEN_MEASURE_NEW, v, user=LEAD, channel=None)
    assert INVITE in wait_refused(live, LEAD, seen, INVITE)
    assert len(modal_views(live)) == modals


# ---------------------------------------------------------------- apologies say what was saved


def test_a_project_saved_but_not_announced_says_so(live: Any) -> None:
    view = live.driver.slash("/mfi", "new", user=LEAD, channel=CHANNEL).wait_view()
    live.standin.inject("chat.postMessage", error="not_in_channel")  # removed between opening and saving
    from tests.helpers import PROJECT_FORM

    response = live.driver.submit_view(view["id"], PROJECT_FORM, user=LEAD)
    assert response.status == 200 and not response.body
    told = wait_refused(live, LEAD, 0, "was saved")
    assert told.startswith("Your project was saved, but I couldn't post it in <#C0MATERNITY>")
    assert INVITE in told and "/mfi status" in told
    assert project_id_for(live, CHANNEL)
    assert not any("nothing was changed" in t for t in refusals_for(live, LEAD))


def test_a_measure_saved_after_the_bot_was_removed_says_so(live: Any) -> None:
    start_project(live)
    view = live.driver.slash("/measure", "new", user=LEAD, channel=CHANNEL).wait_view()
    live.standin.channel(CHANNEL).members.remove(live.standin.team().bot_user_id)
    seen = len(refusals_for(live, LEAD))
    response = live.driver.submit_view(view["id"], measure_form(), user=LEAD)
    assert response.status == 200 and not response.body
    told = wait_refused(live, LEAD, seen, "was saved")
    assert told == (
        "The measure was saved, but I couldn't post it in <#C0MATERNITY>: I'm not a member there. "
        "Invite me with `/invite @MFI-AR`, then use `/measure list` to see it."
    )
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(Measure)).one() == 1


def test_figures_saved_during_a_slack_outage_are_reported_as_saved(live: Any) -> None:
    start_project(live)
    add_measure(live)
    view = live.driver.slash("/measure", "log", user=LEAD, channel=CHANNEL).wait_view()
    live.standin.inject("chat.postMessage", error="internal_error")
    seen = len(refusals_for(live, LEAD))
    live.driver.submit_view(
        view["id"], {ids.B_LOG_PERIOD: last_month(), ids.B_LOG_ROW_PREFIX + "N": "14/230"}, user=LEAD
    )
    told = wait_refused(live, LEAD, seen, "were saved")
    assert told.startswith("Your figures were saved, but something went wrong afterwards")
    assert re.search(r"reference [0-9a-f]{8}", told) and "/measure list" in told
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(DataBatch)).one() == 1
    assert not any("nothing was changed" in t for t in refusals_for(live, LEAD)[seen:])


def test_a_failure_before_anything_is_saved_says_nothing_was_changed(live: Any) -> None:
    start_project(live)
    live.standin.inject("views.open", error="internal_error")
    seen = len(refusals_for(live, LEAD))
    live.driver.slash("/measure", "new", user=LEAD, channel=CHANNEL)
    told = wait_refused(live, LEAD, seen, "Sorry")
    assert "nothing was changed" in told
    with Session(live.engine) as session:
        assert session.exec(select(func.count()).select_from(Measure)).one() == 0


def test_forms_older_than_a_week_must_be_opened_again(live: Any) -> None:
    start_project(live)
    view = live.driver.slash("/measure", "new", user=LEAD, channel=CHANNEL).wait_view()

    def recorded() -> bool:
        with Session(live.engine) as session:
            return session.get(ViewGrant, (live_team(), view["id"])) is not None

    live.standin.wait_for(recorded)
    with unit_of_work(live.engine) as session:
        row = session.get(ViewGrant, (live_team(), view["id"]))
        assert row is not None
        row.opened_at = row.opened_at - timedelta(days=access.GRANT_DAYS + 1)
    response = live.driver.submit_view(view["id"], measure_form(), user=LEAD)
    assert "open it again" in next(iter(response.json["errors"].values()))


# ---------------------------------------------------------------- the check itself


def test_authorise_decides_by_channel_membership_and_role(database_url: str) -> None:
    from storage.db import make_engine
    from storage.models import ProjectMember

    engine = make_engine(database_url)
    with unit_of_work(engine) as session:
        project = Project(
            team_id="T1",
            channel_id="C1",
            name="Fewer PPHs",
            aim="Reduce PPH for Black women by 2027",
            focus_groups=["N"],
            created_by="ULEAD",
        )
        session.add(project)
        session.flush()
        assert project.id is not None
        pid = project.id
        session.add(ProjectMember(project_id=pid, team_id="T1", user_id="ULEAD", role="lead"))
        session.add(ProjectMember(project_id=pid, team_id="T1", user_id="UPARTNER", role="partner"))
    cases = [
        # (team, claimed project, where the request came from, user, need) -> allowed?
        (("T1", pid, "C1", "UANYONE", "member"), True),  # anyone in the project's channel
        (("T1", pid, "C1", "UANYONE", "lead"), False),
        (("T1", pid, "C1", "ULEAD", "lead"), True),
        (("T1", pid, "C2", "ULEAD", "member"), False),  # another channel, even for its lead
        (("T1", pid, None, "ULEAD", "lead"), True),  # the lead's Home tab
        (("T1", pid, None, "UANYONE", "member"), False),  # someone else's Home
        (("T1", pid, "DPARTNER", "UPARTNER", "partner"), True),  # the partner's DM with the bot
        (("T1", pid, "DPARTNER", "UPARTNER", "member"), False),  # ... but not the team's own tools
        (("T1", pid, None, "UPARTNER", "member"), False),
        (("T1", pid, "DOTHER", "UANYONE", "member"), False),
        (("T2", pid, "C1", "ULEAD", "member"), False),  # another workspace
        (("T1", pid + 1000, "C1", "ULEAD", "member"), False),  # no such project
        (("T1", None, "C1", "ULEAD", "member"), False),
    ]
    with Session(engine) as session:
        for (team, claimed, channel, user, need), allowed in cases:
            outcome = access.authorise(session, team, claimed, channel, user, need)
            assert isinstance(outcome, Project) is allowed, (team, claimed, channel, user, need)
            if not allowed and need == "member":
                assert outcome == access.Refusal(access.NOT_YOURS)  # the same words whether or not it exists
    engine.dispose()
