"""The driver diagram end to end through the stand-in: build, edit, move, retire with history kept, the picture in
the channel and on Home, export and delete, isolation between channels and workspaces, and Slack's limits."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from sqlmodel import Session, select

from bot.services import drivers as service
from bot.services import drivers_edit as edit
from handlers.blocks import ids
from storage import drivers_repo
from storage.models import ChangeIdea, Driver, DriverHistory, PdsaCycle
from tests.e2e.test_ownership_e2e import project_id_for
from tests.e2e.test_security_authz import submit
from tests.helpers import CHANNEL, LEAD, OTHER_CHANNEL, start_project

pytestmark = pytest.mark.e2e


# ---------------------------------------------------------------- helpers: a lead at the keyboard


def open_editor(live: Any, *, user: str = LEAD, channel: str = CHANNEL) -> str:
    view = live.driver.slash("/mfi", "drivers", user=user, channel=channel).wait_view()
    assert view["callback_id"] == ids.VIEW_DRIVERS
    return str(view["id"])


def push(live: Any, action_id: str, editor: str, *, user: str = LEAD, **kwargs: Any) -> dict[str, Any]:
    depth = len(live.standin.view_stack(user))
    live.driver.click(action_id, user=user, view_id=editor, **kwargs)
    stack = live.standin.wait_for(lambda: (s := live.standin.view_stack(user)) and len(s) > depth and s)
    return dict(live.standin.view(stack[-1]))


def editor_text(live: Any, editor: str) -> str:
    view = live.standin.view(editor)
    return "\n".join(
        str((b.get("text") or {}).get("text") or "")
        + " ".join(str(e.get("text") or "") for e in b.get("elements") or [] if isinstance(e, dict))
        for b in view.get("blocks") or []
    )


def wait_editor(live: Any, editor: str, containing: str) -> str:
    return str(live.standin.wait_for(lambda: containing in (t := editor_text(live, editor)) and t))


def add_driver(
    live: Any, editor: str, text: str, *, under: str | None = None, user: str = LEAD, **fields: Any
) -> Any:
    action = ids.A_DRIVERS_ADD_SECONDARY if under else ids.A_DRIVERS_ADD_PRIMARY
    form = push(live, action, editor, user=user)
    values = {ids.B_DRIVER_TEXT: text, **fields}
    if under:
        values[ids.B_DRIVER_PARENT] = under
    return form, live.driver.submit_view(form["id"], values, user=user)


def add_idea(live: Any, editor: str, text: str, driver: str, *, user: str = LEAD) -> Any:
    form = push(live, ids.A_DRIVERS_ADD_IDEA, editor, user=user)
    return form, live.driver.submit_view(
        form["id"], {ids.B_IDEA_TEXT: text, ids.B_IDEA_DRIVER: driver}, user=user
    )


def ids_of(live: Any, model: Any, project_id: int) -> dict[str, int]:
    with Session(live.engine) as session:
        return {r.text: int(r.id) for r in session.exec(select(model).where(model.project_id == project_id))}


def item_menu(live: Any, editor: str, kind: str, item_id: int, op: str, *, user: str = LEAD) -> None:
    live.driver.click(
        ids.A_DRIVERS_ITEM,
        user=user,
        view_id=editor,
        block_id=f"drivers_item_{kind}_{item_id}",
        selected_option=f"{op}:{kind}:{item_id}",
    )


def forged_submit(live: Any, form: dict[str, Any], state: dict[str, Any], *, user: str = LEAD) -> Any:
    """A submission as a forged or replayed request would carry it (not bound by the form's options or limits)."""
    return submit(live, {**form, "state": {"values": state}}, user=user)


def text_state(value: str) -> dict[str, Any]:
    return {ids.A_INPUT: {"type": "plain_text_input", "value": value}}


def select_state(value: str) -> dict[str, Any]:
    return {ids.A_INPUT: {"type": "static_select", "selected_option": {"value": value}}}


def radio_state(value: str) -> dict[str, Any]:
    return {ids.A_INPUT: {"type": "radio_buttons", "selected_option": {"value": value}}}


def build_pph_diagram(live: Any) -> tuple[str, int]:
    start_project(live)
    project_id = project_id_for(live, CHANNEL)
    editor = open_editor(live)
    empty = editor_text(live, editor)
    assert "No drivers yet. Drivers of racial inequity" in empty and ".." not in empty
    form, response = add_driver(
        live,
        editor,
        "Blood loss estimated by eye",
        **{ids.B_DRIVER_WHERE: ["staff_practice", "data"], ids.B_DRIVER_INFLUENCE: "yes"},
    )
    assert response.status == 200 and not response.body, response.body
    wait_editor(live, editor, "Blood loss estimated by eye")
    _, response = add_driver(
        live,
        editor,
        "Interpreters not booked by default",
        **{
            ids.B_DRIVER_WHERE: ["policy", "communication"],
            ids.B_DRIVER_INFLUENCE: "not_directly",
            ids.B_DRIVER_WHO: "Trust interpreting service",
        },
    )
    assert not response.body
    drivers = ids_of(live, Driver, project_id)
    _, response = add_driver(
        live,
        editor,
        "PPH signs taught on white skin",
        under=str(drivers["Blood loss estimated by eye"]),
        **{ids.B_DRIVER_INFLUENCE: "partly", ids.B_DRIVER_WHO: "the regional training team"},
    )
    assert not response.body
    _, response = add_idea(
        live, editor, "Book an interpreter at booking", str(drivers["Interpreters not booked by default"])
    )
    assert not response.body
    wait_editor(live, editor, "Book an interpreter at booking")
    return editor, project_id


# ---------------------------------------------------------------- building and editing


def test_a_lead_builds_edits_moves_and_retires_with_history_kept(live: Any) -> None:
    editor, project_id = build_pph_diagram(live)
    text = editor_text(live, editor)
    assert "3 drivers (2 the team can influence), 1 change idea" in text
    assert "Not directly: Trust interpreting service can" in text
    drivers = ids_of(live, Driver, project_id)
    with Session(live.engine) as session:
        assert drivers_repo.count_drivers(session, project_id=project_id) == (3, 2)
        secondary = session.get(Driver, drivers["PPH signs taught on white skin"])
        assert secondary is not None and secondary.parent_id == drivers["Blood loss estimated by eye"]

    # Bad input: inline errors, nothing saved.
    form, response = add_driver(live, editor, "   ")
    assert response.json["errors"] == {ids.B_DRIVER_TEXT: "Write the driver in a few words."}
    live.driver.submit_view(form["id"], {ids.B_DRIVER_TEXT: "Staff shortages on nights"}, user=LEAD)
    form = push(live, ids.A_DRIVERS_ADD_PRIMARY, editor)
    response = live.driver.submit_view(
        form["id"],
        {ids.B_DRIVER_TEXT: "Commissioning rules", ids.B_DRIVER_INFLUENCE: "not_directly"},
        user=LEAD,
    )
    assert ids.B_DRIVER_WHO in response.json["errors"]
    response = forged_submit(
        live, form, {ids.B_DRIVER_TEXT: text_state("x" * 301), ids.B_DRIVER_INFLUENCE: radio_state("yes")}
    )
    assert response.json["response_action"] == "errors" and ids.B_DRIVER_TEXT in response.json["errors"]
    assert "Commissioning rules" not in ids_of(live, Driver, project_id)
    live.driver.submit_view(
        form["id"],
        {
            ids.B_DRIVER_TEXT: "Commissioning rules",
            ids.B_DRIVER_INFLUENCE: "not_directly",
            ids.B_DRIVER_WHO: "the ICB",
        },
        user=LEAD,
    )
    # A replay of the saved submission changes nothing.
    replay = forged_submit(
        live,
        form,
        {
            ids.B_DRIVER_TEXT: text_state("Commissioning rules"),
            ids.B_DRIVER_INFLUENCE: radio_state("not_directly"),
            ids.B_DRIVER_WHO: text_state("the ICB"),
        },
    )
    assert "saved already" in next(iter(replay.json["errors"].values()))
    assert len([t for t in ids_of(live, Driver, project_id) if t == "Commissioning rules"]) == 1
    with Session(live.engine) as session:
        assert len(session.exec(select(Driver).where(Driver.text == "Commissioning rules")).all()) == 1

    # Edit: the old wording is kept in the history.
    blood = drivers["Blood loss estimated by eye"]
    item_menu(live, editor, "driver", blood, "edit")
    form = live.standin.view(
        live.standin.wait_for(lambda: (s := live.standin.view_stack(LEAD)) and len(s) == 2 and s)[-1]
    )
    assert form["callback_id"] == ids.CB_DRIVER
    live.driver.submit_view(
        form["id"], {ids.B_DRIVER_TEXT: "Blood loss estimated by eye, not measured"}, user=LEAD
    )
    wait_editor(live, editor, "Blood loss estimated by eye, not measured")

    # Move: the secondary goes under another primary through its edit form; order through the menu.
    signs = drivers["PPH signs taught on white skin"]
    interpreters = drivers["Interpreters not booked by default"]
    item_menu(live, editor, "driver", signs, "edit")
    form = live.standin.view(
        live.standin.wait_for(lambda: (s := live.standin.view_stack(LEAD)) and len(s) == 2 and s)[-1]
    )
    live.driver.submit_view(form["id"], {ids.B_DRIVER_PARENT: str(interpreters)}, user=LEAD)
    live.standin.wait_for(lambda: len(live.standin.view_stack(LEAD)) == 1 or None)
    item_menu(live, editor, "driver", interpreters, "up")
    wait_editor(live, editor, "Moved.")
    with Session(live.engine) as session:
        order = [d.text for d in drivers_repo.drivers(session, project_id=project_id) if d.parent_id is None]
        assert order[0] == "Interpreters not booked by default"
        moved = session.get(Driver, signs)
        assert moved is not None and moved.parent_id == interpreters

    # Retire: refused while something hangs off the driver; an idea retires and stays in the history.
    item_menu(live, editor, "driver", interpreters, "retire")
    form = live.standin.view(
        live.standin.wait_for(lambda: (s := live.standin.view_stack(LEAD)) and len(s) == 2 and s)[-1]
    )
    response = live.driver.submit_view(form["id"], {}, user=LEAD)
    assert "1 secondary driver and 1 change idea" in response.json["errors"][ids.B_RETIRE_WHY]
    live.standin.close_view(form["id"])
    idea = ids_of(live, ChangeIdea, project_id)["Book an interpreter at booking"]
    item_menu(live, editor, "idea", idea, "retire")
    form = live.standin.view(
        live.standin.wait_for(lambda: (s := live.standin.view_stack(LEAD)) and len(s) == 2 and s)[-1]
    )
    live.driver.submit_view(form["id"], {ids.B_RETIRE_WHY: "Merged with the booking-form idea"}, user=LEAD)
    wait_editor(live, editor, "Retired the change idea")
    assert "Book an interpreter at booking" not in editor_text(live, editor)
    with Session(live.engine) as session:
        history = drivers_repo.history(session, project_id=project_id)
        edits = [h for h in history if h.item == "driver" and h.item_id == blood and h.action == "edit"]
        assert edits[0].old["text"] == "Blood loss estimated by eye"
        assert edits[0].new["text"] == "Blood loss estimated by eye, not measured"
        assert any(h.action == "move" and h.item_id == signs for h in history)
        retired = [h for h in history if h.action == "retire"]
        assert (
            retired[0].new == {"why": "Merged with the booking-form idea"} and retired[0].changed_by == LEAD
        )
        gone = session.get(ChangeIdea, idea)
        assert gone is not None and gone.retired_at is not None  # kept, not deleted
    assert live.standin.violations == []


def test_the_picture_is_posted_in_the_channel_shown_on_home_and_exported_and_deleted(live: Any) -> None:
    editor, project_id = build_pph_diagram(live)
    live.driver.click(ids.A_DRIVERS_POST, user=LEAD, view_id=editor)
    wait_editor(live, editor, "Posted the picture in")
    posted = [f for f in live.standin.files() if f.channel == CHANNEL and f.filename == "driver-diagram.png"]
    assert len(posted) == 1
    picture = posted[0]
    assert Image.open(io.BytesIO(picture.bytes)).format == "PNG"
    assert (
        picture.alt_txt
        and "Primary driver 1: Blood loss estimated by eye. Team can influence: yes." in picture.alt_txt
    )
    assert "Change idea: Book an interpreter at booking. No PDSA cycles yet." in picture.alt_txt
    comment = str(picture.initial_comment)
    assert "3 drivers (2 the team can influence)" in comment
    # The message under the picture lists every item in words, in diagram order.
    assert comment.index("*1* Blood loss estimated by eye") < comment.index(
        "*1.1* PPH signs taught on white skin"
    )
    assert (
        "*2* Interpreters not booked by default _(Not directly: Trust interpreting service can)_" in comment
    )
    assert "◦ Book an interpreter at booking _(No PDSA cycles yet)_" in comment

    # A cycle linked to the idea shows on the picture's description with its outcome.
    idea = ids_of(live, ChangeIdea, project_id)["Book an interpreter at booking"]
    with Session(live.engine) as session:
        cycle = PdsaCycle.model_validate(
            {
                "project_id": project_id,
                "team_id": live.standin.team().id,
                "number": 1,
                "title": "Interpreter at booking",
                "change_idea": "Book an interpreter at booking",
                "change_idea_id": idea,
                "question": "Q",
                "start_date": "2026-03-01",
                "end_date": "2026-03-31",
                "channel_id": CHANNEL,
                "created_by": LEAD,
                "status": "acted",
                "decision": "adapt",
            }
        )
        session.add(cycle)
        session.commit()
    diagram = service.load(live.engine, team_id=live.standin.team().id, project_id=project_id)
    assert diagram is not None and diagram.ideas[0].cycles == (("1.1", "adapt"),)

    # `/mfi drivers` posts again only when the diagram changed since the last picture.
    live.driver.slash("/mfi", "drivers", user=LEAD, channel=CHANNEL).wait_view()
    live.standin.wait_for(
        lambda: len([f for f in live.standin.files() if f.filename == "driver-diagram.png"]) == 2 or None
    )
    newest = [f for f in live.standin.files() if f.filename == "driver-diagram.png"][-1]
    assert "PDSA 1.1 adapted." in str(newest.alt_txt)
    live.driver.slash("/mfi", "drivers", user=LEAD, channel=CHANNEL).wait_view()
    assert len([f for f in live.standin.files() if f.filename == "driver-diagram.png"]) == 2

    # Home: the counts, the button, and the picture as last posted.
    live.driver.open_home(LEAD)

    # Posting the picture refreshes Home too, so wait for the view that shows the newest picture.
    def latest_image(h: dict[str, Any] | None) -> str | None:
        images = [b for b in (h or {}).get("blocks", []) if b.get("type") == "image"]
        return images[-1]["slack_file"]["id"] if images else None

    home = live.standin.wait_for(
        lambda: (h := live.standin.home_view(LEAD)) and latest_image(h) == newest.id and h
    )
    assert latest_image(home) == newest.id
    assert any((b.get("accessory") or {}).get("action_id") == ids.A_DRIVERS_OPEN for b in home["blocks"])

    # Export: a sheet each, retired rows and history included.
    live.driver.slash("/mfi", "export", user=LEAD, channel=CHANNEL)
    xlsx = live.standin.wait_for(
        lambda: next((f for f in live.standin.files() if f.filename.endswith(".xlsx")), None)
    )
    sheets = pd.read_excel(io.BytesIO(xlsx.bytes), sheet_name=None)
    assert set(sheets["drivers"]["driver"]) == {
        "Blood loss estimated by eye",
        "Interpreters not booked by default",
        "PPH signs taught on white skin",
    }
    ideas = sheets["change_ideas"].set_index("change_idea")
    assert ideas.loc["Book an interpreter at booking", "pdsa_cycles"] == "#1 adapt"
    zipped = next(f for f in live.standin.files() if f.filename.endswith(".zip"))
    with zipfile.ZipFile(io.BytesIO(zipped.bytes)) as archive:
        assert {"export/drivers.csv", "export/change_ideas.csv"} <= set(archive.namelist())

    # Delete: every row of the diagram goes with the project.
    delete = live.driver.slash("/mfi", "delete", user=LEAD, channel=CHANNEL).wait_view()
    live.driver.submit_view(delete["id"], {ids.B_DELETE_NAME: "Reducing PPH inequity"}, user=LEAD)
    with Session(live.engine) as session:
        for model in (Driver, ChangeIdea, DriverHistory):
            assert session.exec(select(model).where(model.project_id == project_id)).first() is None


# ---------------------------------------------------------------- isolation and forged ids


def test_another_projects_driver_is_refused_inline_and_channels_do_not_see_each_other(live: Any) -> None:
    editor, project_id = build_pph_diagram(live)
    live.standin.add_channel(OTHER_CHANNEL, "other-team", members=[LEAD], bot_is_member=True)
    start_project(live, channel=OTHER_CHANNEL, project_name="Sepsis equity")
    other_editor = open_editor(live, channel=OTHER_CHANNEL)
    assert "Blood loss" not in editor_text(live, other_editor)
    _, response = add_driver(live, other_editor, "Sepsis screening tool validated on white adults")
    other = project_id_for(live, OTHER_CHANNEL)
    theirs = ids_of(live, Driver, other)["Sepsis screening tool validated on white adults"]
    mine = ids_of(live, Driver, project_id)["Blood loss estimated by eye"]
    live.standin.close_view(other_editor)
    editor = open_editor(live)
    # This project's change-idea form, submitted with the other project's driver: refused inline, nothing saved.
    form = push(live, ids.A_DRIVERS_ADD_IDEA, editor)
    response = forged_submit(
        live, form, {ids.B_IDEA_TEXT: text_state("Weigh swabs"), ids.B_IDEA_DRIVER: select_state(str(theirs))}
    )
    assert response.json["response_action"] == "errors"
    assert "isn't on this project's diagram" in response.json["errors"][ids.B_IDEA_DRIVER]
    # A secondary driver put under the other project's primary: refused the same way.
    form = push(live, ids.A_DRIVERS_ADD_SECONDARY, editor)
    response = forged_submit(
        live,
        form,
        {
            ids.B_DRIVER_TEXT: text_state("x"),
            ids.B_DRIVER_PARENT: select_state(str(theirs)),
            ids.B_DRIVER_INFLUENCE: radio_state("yes"),
        },
    )
    assert ids.B_DRIVER_PARENT in response.json["errors"]
    # An edit form whose metadata names the other project's driver: the grant refuses it.
    forged_edit = {
        **form,
        "private_metadata": json.dumps({"project_id": project_id, "driver_id": theirs, "level": "primary"}),
    }
    response = forged_submit(live, forged_edit, {ids.B_DRIVER_TEXT: text_state("Hijacked")})
    assert response.json["response_action"] == "errors"
    assert "nothing was changed" in next(iter(response.json["errors"].values()))
    # An item menu in one editor naming the other project's driver changes nothing.
    item_menu_forged = {"op": "up", "id": theirs}
    live.driver.click(
        ids.A_DRIVERS_ITEM,
        user=LEAD,
        view_id=editor,
        block_id=f"drivers_item_driver_{mine}",
        selected_option=f"{item_menu_forged['op']}:driver:{mine}",
    )
    # Another workspace's request naming these ids finds nothing: every lookup is scoped to its workspace.
    assert service.load(live.engine, team_id="T0ELSEWHERE", project_id=project_id) is None
    elsewhere = edit.save_idea(
        live.engine,
        team_id="T0ELSEWHERE",
        project_id=project_id,
        user_id=LEAD,
        idea_id=None,
        driver_id=mine,
        text="Weigh swabs",
        request_key=None,
    )
    assert not elsewhere.ok
    with Session(live.engine) as session:
        assert drivers_repo.get_driver(session, team_id="T0ELSEWHERE", driver_id=mine) is None
        assert session.exec(select(ChangeIdea).where(ChangeIdea.text == "Weigh swabs")).first() is None
        assert session.exec(select(Driver).where(Driver.text == "Hijacked")).first() is None
        their_driver = session.get(Driver, theirs)
        assert their_driver is not None and their_driver.project_id == other
    assert live.standin.violations == []


# ---------------------------------------------------------------- a large diagram within Slack's limits


def test_a_large_diagram_stays_within_slacks_limits(live: Any) -> None:
    start_project(live)
    project_id = project_id_for(live, CHANNEL)
    team = live.standin.team().id
    for i in range(6):
        primary = edit.save_driver(
            live.engine,
            team_id=team,
            project_id=project_id,
            user_id=LEAD,
            driver_id=None,
            parent_id=None,
            secondary=False,
            text=f"Primary driver number {i} about how the service treats women",
            where=["policy"],
            influence="yes",
            who_can="",
            request_key=None,
        )
        for j in range(3):
            secondary = edit.save_driver(
                live.engine,
                team_id=team,
                project_id=project_id,
                user_id=LEAD,
                driver_id=None,
                parent_id=primary.item_id,
                secondary=True,
                text=f"Secondary {i}.{j} staff practice",
                where=["staff_practice"],
                influence="partly",
                who_can="",
                request_key=None,
            )
            for k in range(2):
                edit.save_idea(
                    live.engine,
                    team_id=team,
                    project_id=project_id,
                    user_id=LEAD,
                    idea_id=None,
                    driver_id=secondary.item_id,
                    text=f"Idea {i}.{j}.{k}",
                    request_key=None,
                )
    editor = open_editor(live)
    seen: set[str] = set()
    page = 0
    while True:
        view = live.standin.view(editor)
        assert len(view["blocks"]) <= 100
        seen |= {
            b["block_id"] for b in view["blocks"] if str(b.get("block_id", "")).startswith("drivers_item_")
        }
        if not any(
            e.get("action_id") == ids.A_DRIVERS_PAGE_NEXT
            for b in view["blocks"]
            for e in b.get("elements") or []
        ):
            break
        page += 1
        live.driver.click(ids.A_DRIVERS_PAGE_NEXT, user=LEAD, view_id=editor)
        wait_editor(live, editor, f"Page {page + 1} of")
    assert len(seen) == 6 + 18 + 36 and page == 1  # two pages of 30
    form = push(live, ids.A_DRIVERS_ADD_IDEA, editor)
    options = next(b for b in form["blocks"] if b.get("block_id") == ids.B_IDEA_DRIVER)["element"]["options"]
    assert len(options) == 24 and all(len(o["text"]["text"]) <= 75 for o in options)
    live.standin.close_view(form["id"])
    live.driver.click(ids.A_DRIVERS_POST, user=LEAD, view_id=editor)
    picture = live.standin.wait_for(
        lambda: next((f for f in live.standin.files() if f.filename == "driver-diagram.png"), None),
        timeout=60,
    )
    assert len(str(picture.alt_txt)) <= 1000
    # The diagram holds at most 60 drivers: every list of them fits one select.
    for n in range(60 - 24):
        edit.save_driver(
            live.engine,
            team_id=team,
            project_id=project_id,
            user_id=LEAD,
            driver_id=None,
            parent_id=None,
            secondary=False,
            text=f"Extra {n}",
            where=[],
            influence="yes",
            who_can="",
            request_key=None,
        )
    _, response = add_driver(live, editor, "One too many")
    assert "60 drivers, the most it can hold" in response.json["errors"][ids.B_DRIVER_TEXT]
    assert live.standin.violations == []


# ---------------------------------------------------------------- PDSA cycles hang off change ideas


def test_pdsa_new_picks_its_change_idea_or_adds_one_and_refuses_another_projects(live: Any) -> None:
    from tests.e2e.test_pdsa_e2e import PLAN, plan, seed

    editor, project_id = build_pph_diagram(live)
    live.standin.close_view(editor)
    measures = seed(live.engine)
    idea = ids_of(live, ChangeIdea, project_id)["Book an interpreter at booking"]
    blood = ids_of(live, Driver, project_id)["Blood loss estimated by eye"]

    # From the diagram: the cycle hangs off the chosen idea, and the diagram shows it.
    view, response = plan(live, measures, **{ids.B_PDSA_IDEA: str(idea)})
    assert response.status == 200 and not response.body, response.body
    labels = [
        o["text"]["text"]
        for b in view["blocks"]
        if b.get("block_id") == ids.B_PDSA_IDEA
        for o in b["element"]["options"]
    ]
    assert labels == ["2.1 → Book an interpreter at booking"] or labels == [
        "2 → Book an interpreter at booking"
    ]
    with Session(live.engine) as session:
        first = session.exec(select(PdsaCycle).where(PdsaCycle.number == 1)).one()
        assert first.change_idea_id == idea
    diagram = service.load(live.engine, team_id=live.standin.team().id, project_id=project_id)
    assert diagram is not None and diagram.idea(idea) is not None
    assert diagram.idea(idea).cycles == (("1.1", "planned"),)  # type: ignore[union-attr]
    # The cycle's card names the driver its idea hangs under.
    with Session(live.engine) as session:
        under = session.get(Driver, session.get(ChangeIdea, idea).driver_id).text  # type: ignore[union-attr]
    card = live.standin.wait_for(
        lambda: next(
            (m for m in live.standin.messages(CHANNEL) if "On the driver diagram" in str(m.blocks)), None
        )
    )
    assert f"_On the driver diagram, under:_ {under}" in str(card.blocks)

    # Adding one: the cycle's change idea goes on the diagram under the chosen driver, linked.
    _, response = plan(
        live,
        measures,
        **{ids.B_PDSA_CHANGE: "Weigh every swab after birth", ids.B_PDSA_IDEA_DRIVER: str(blood)},
    )
    assert not response.body, response.body
    added = ids_of(live, ChangeIdea, project_id)["Weigh every swab after birth"]
    with Session(live.engine) as session:
        second = session.exec(select(PdsaCycle).where(PdsaCycle.number == 2)).one()
        assert second.change_idea_id == added
        assert session.get(ChangeIdea, added).driver_id == blood  # type: ignore[union-attr]

    # Both at once, or another project's idea: refused inline, nothing saved.
    view, response = plan(live, measures, **{ids.B_PDSA_IDEA: str(idea), ids.B_PDSA_IDEA_DRIVER: str(blood)})
    assert response.json["errors"] == {ids.B_PDSA_IDEA_DRIVER: edit.BOTH}
    live.standin.add_channel(OTHER_CHANNEL, "other-team", members=[LEAD], bot_is_member=True)
    start_project(live, channel=OTHER_CHANNEL, project_name="Sepsis equity")
    other = project_id_for(live, OTHER_CHANNEL)
    team = live.standin.team().id
    theirs = edit.save_driver(
        live.engine,
        team_id=team,
        project_id=other,
        user_id=LEAD,
        driver_id=None,
        parent_id=None,
        secondary=False,
        text="Screening tool",
        where=[],
        influence="yes",
        who_can="",
        request_key=None,
    )
    their_idea = edit.save_idea(
        live.engine,
        team_id=team,
        project_id=other,
        user_id=LEAD,
        idea_id=None,
        driver_id=theirs.item_id,
        text="Validate the tool",
        request_key=None,
    )
    live.standin.close_view(view["id"])
    view = live.driver.slash("/pdsa", "new", user=LEAD, channel=CHANNEL).wait_view()
    state = live.driver.build_state(
        view, {**PLAN, ids.B_PDSA_MEASURES: [str(measures["outcome"])], ids.B_PDSA_IDEA: str(idea)}, user=LEAD
    )
    state[ids.B_PDSA_IDEA] = select_state(str(their_idea.item_id))
    response = forged_submit(live, view, state)
    assert response.json["errors"] == {ids.B_PDSA_IDEA: edit.CYCLE_IDEA_GONE}
    state[ids.B_PDSA_IDEA] = {}
    state[ids.B_PDSA_IDEA_DRIVER] = select_state(str(theirs.item_id))
    response = forged_submit(live, view, state)
    assert "isn't on this project's diagram" in response.json["errors"][ids.B_PDSA_IDEA_DRIVER]
    with Session(live.engine) as session:
        assert len(session.exec(select(PdsaCycle).where(PdsaCycle.project_id == project_id)).all()) == 2
        assert (
            session.exec(select(ChangeIdea).where(ChangeIdea.project_id == project_id)).all().__len__() == 2
        )
    assert live.standin.violations == []


def test_a_secondary_becomes_a_primary_and_back_and_a_primary_with_secondaries_cannot_move_under(
    live: Any,
) -> None:
    editor, project_id = build_pph_diagram(live)
    drivers = ids_of(live, Driver, project_id)
    blood = drivers["Blood loss estimated by eye"]
    signs = drivers["PPH signs taught on white skin"]
    interpreters = drivers["Interpreters not booked by default"]

    def edit_form(driver_id: int) -> dict[str, Any]:
        item_menu(live, editor, "driver", driver_id, "edit")
        return dict(
            live.standin.view(
                live.standin.wait_for(lambda: (s := live.standin.view_stack(LEAD)) and len(s) == 2 and s)[-1]
            )
        )

    # The edit form offers "a primary driver" and every other primary, never the driver itself.
    form = edit_form(signs)
    place = next(b for b in form["blocks"] if b.get("block_id") == ids.B_DRIVER_PARENT)
    values = [o["value"] for o in place["element"]["options"]]
    assert values[0] == "primary" and str(blood) in values and str(signs) not in values
    assert place["element"]["initial_option"]["value"] == str(blood)

    live.standin.close_view(form["id"])

    # A primary with a secondary under it cannot become a secondary: refused inline, nothing changed.
    form = edit_form(blood)
    response = live.driver.submit_view(form["id"], {ids.B_DRIVER_PARENT: str(interpreters)}, user=LEAD)
    assert response.json["response_action"] == "errors"
    assert "can't have its own" in response.json["errors"][ids.B_DRIVER_PARENT]
    live.standin.close_view(form["id"])
    with Session(live.engine) as session:
        assert session.get(Driver, blood).parent_id is None  # type: ignore[union-attr]

    # The secondary becomes a primary; then the first primary, with nothing under it now, goes under another
    # (its change ideas go with it). Both moves are in the history.
    form = edit_form(signs)
    response = live.driver.submit_view(form["id"], {ids.B_DRIVER_PARENT: "primary"}, user=LEAD)
    assert response.status == 200 and not response.body, response.body
    live.standin.wait_for(lambda: len(live.standin.view_stack(LEAD)) == 1 or None)
    form = edit_form(blood)
    response = live.driver.submit_view(form["id"], {ids.B_DRIVER_PARENT: str(interpreters)}, user=LEAD)
    assert not response.body, response.body
    live.standin.wait_for(lambda: len(live.standin.view_stack(LEAD)) == 1 or None)
    with Session(live.engine) as session:
        assert session.get(Driver, signs).parent_id is None  # type: ignore[union-attr]
        assert session.get(Driver, blood).parent_id == interpreters  # type: ignore[union-attr]
        history = drivers_repo.history(session, project_id=project_id)
        promoted = [h for h in history if h.item_id == signs and h.action == "move"]
        demoted = [h for h in history if h.item_id == blood and h.action == "move"]
        assert promoted[-1].old["parent_id"] == blood and promoted[-1].new["parent_id"] is None
        assert demoted[-1].old["parent_id"] is None and demoted[-1].new["parent_id"] == interpreters
    diagram = service.load(live.engine, team_id=live.standin.team().id, project_id=project_id)
    assert diagram is not None
    labels = {d.text: d.label for d in diagram.drivers}
    assert "." not in labels["PPH signs taught on white skin"]  # a primary now: "3", not "1.1"
    assert "." in labels["Blood loss estimated by eye"]
