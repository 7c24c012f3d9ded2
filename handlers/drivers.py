"""The driver diagram surface: `/mfi drivers`, the editor modal and its forms, and the picture in the channel.

Thin listeners: parse the payload, call bot.services.drivers, build blocks with handlers.blocks.drivers, call Slack.
Every listener goes through handlers.access (the editor and its forms are checked against their grants); every id
a form or button carries is checked again by the service against the project.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.charts.driver_diagram import driver_diagram
from bot.services import drivers as service
from bot.services import drivers_edit as edit
from bot.services.engine import Engine
from handlers import access, claims, home
from handlers.access import Rule, guard
from handlers.blocks import drivers as db
from handlers.blocks import ids
from handlers.blocks.common import state_value

logger = logging.getLogger(__name__)

NO_PROJECT = "There's no improvement project in this channel yet. Start one with `/mfi new`."
GONE = "That project's driver diagram isn't available any more. Use `/mfi drivers` in the project's channel."
SAVED = ("Your change to the driver diagram was saved", "`/mfi drivers`")


def _team(context: BoltContext, body: Mapping[str, Any]) -> str:
    return str(context.team_id or (body.get("team") or {}).get("id") or "")


def _page_of(diagram: service.Diagram, kind: str, item_id: int | None) -> int:
    for index, (k, item) in enumerate(diagram.outline()):
        if k == kind and item.id == item_id:
            return index // db.PAGE_SIZE
    return 0


# ---------------------------------------------------------------- the picture


def post_picture(client: WebClient, engine: Engine, *, team_id: str, user_id: str, project_id: int) -> str:
    """Render the diagram and upload it to the project's channel; returns what to tell the person."""
    diagram = service.load(engine, team_id=team_id, project_id=project_id)
    if diagram is None:
        return GONE
    chart = driver_diagram(diagram.tree())
    response = client.files_upload_v2(
        channel=diagram.channel_id,
        file=chart.png,
        filename="driver-diagram.png",
        title=chart.title,
        alt_txt=chart.alt_text,
        initial_comment=db.posted_comment(diagram, user_id),
    )
    files = response.get("files") or [response.get("file") or {}]
    file_id = str((files[0] or {}).get("id") or "")
    if file_id:
        service.record_post(
            engine,
            team_id=team_id,
            project_id=project_id,
            user_id=user_id,
            file_id=file_id,
            alt_text=chart.alt_text,
            tree_key=diagram.tree_key(),
        )
        home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)  # the new picture
    return f"Posted the picture in <#{diagram.channel_id}>."


# ---------------------------------------------------------------- opening the editor


def _open_editor(
    client: WebClient, engine: Engine, *, trigger_id: str, team_id: str, project_id: int
) -> bool:
    diagram = service.load(engine, team_id=team_id, project_id=project_id)
    if diagram is None:
        return False
    client.views_open(trigger_id=trigger_id, view=db.editor_view(diagram))
    return True


def handle_drivers_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    """`/mfi drivers` opens the editor; a diagram changed since its last picture is posted in the channel again."""
    ack()
    engine: Engine = context["engine"]
    team_id, user_id = _team(context, command), str(command.get("user_id") or "")
    diagram = service.for_channel(engine, team_id=team_id, channel_id=str(command.get("channel_id") or ""))
    if diagram is None:
        respond(text=NO_PROJECT, response_type="ephemeral")
        return
    client.views_open(trigger_id=command["trigger_id"], view=db.editor_view(diagram))
    stale = diagram.last_post is None or diagram.last_post[3] != diagram.tree_key()
    if diagram.drivers and (stale or rest.strip().lower() == "post"):
        post_picture(client, engine, team_id=team_id, user_id=user_id, project_id=diagram.project_id)


def handle_open(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """The "Driver diagram" button on the project card and the Home tab."""
    ack()
    project_id = claims.action_id_value(body) or 0
    if not _open_editor(
        client,
        context["engine"],
        trigger_id=body["trigger_id"],
        team_id=_team(context, body),
        project_id=project_id,
    ):
        logger.info("Driver diagram button for a project that is gone")


# ---------------------------------------------------------------- inside the editor


def _editor_project(body: Mapping[str, Any]) -> int:
    return claims.metadata_id(body.get("view"), "project_id") or 0


def _refresh(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    view_id: str,
    page: int = 0,
    note: str = "",
) -> None:
    diagram = service.load(engine, team_id=team_id, project_id=project_id)
    if diagram is None or not view_id:
        return
    try:
        client.views_update(view_id=view_id, view=db.editor_view(diagram, page=page, note=note or None))
    except SlackApiError as exc:  # the editor was closed meanwhile: the change itself stands
        logger.info("Could not refresh the driver editor: %s", exc.response.get("error"))


def handle_add(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    diagram = service.load(context["engine"], team_id=_team(context, body), project_id=_editor_project(body))
    if diagram is None:
        return
    kind = str(((body.get("actions") or [{}])[0]).get("action_id") or "")
    if kind == ids.A_DRIVERS_ADD_IDEA:
        view = db.idea_form(diagram)
    else:
        view = db.driver_form(diagram, secondary=kind == ids.A_DRIVERS_ADD_SECONDARY)
    client.views_push(trigger_id=body["trigger_id"], view=view)


def handle_post(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    engine: Engine = context["engine"]
    team_id, project_id = _team(context, body), _editor_project(body)
    note = post_picture(client, engine, team_id=team_id, user_id=body["user"]["id"], project_id=project_id)
    view = body.get("view") or {}
    page = claims.parse_int(claims.parse_metadata(view).get("page"), minimum=0) or 0
    _refresh(
        client,
        engine,
        team_id=team_id,
        project_id=project_id,
        view_id=str(view.get("id") or ""),
        page=page,
        note=note,
    )


def handle_page(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    page = claims.parse_int(claims.action_value(body), minimum=0) or 0
    _refresh(
        client,
        context["engine"],
        team_id=_team(context, body),
        project_id=_editor_project(body),
        view_id=str((body.get("view") or {}).get("id") or ""),
        page=page,
    )


def handle_item(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """An item's menu: edit (or move under another driver), move up or down, retire."""
    ack()
    engine: Engine = context["engine"]
    team_id, project_id = _team(context, body), _editor_project(body)
    action = (body.get("actions") or [{}])[0]
    op, _, rest = str((action.get("selected_option") or {}).get("value") or "").partition(":")
    kind, _, raw_id = rest.partition(":")
    item_id = claims.parse_id(raw_id)
    view_id = str((body.get("view") or {}).get("id") or "")
    diagram = service.load(engine, team_id=team_id, project_id=project_id)
    if diagram is None:
        return
    driver = diagram.driver(item_id) if kind == "driver" and item_id else None
    idea = diagram.idea(item_id) if kind == "idea" and item_id else None
    if driver is None and idea is None:
        _refresh(
            client,
            engine,
            team_id=team_id,
            project_id=project_id,
            view_id=view_id,
            note=service.NOT_ON_DIAGRAM,
        )
        return
    assert item_id is not None
    if op == "edit":
        view = (
            db.driver_form(diagram, secondary=driver.parent_id is not None, driver=driver)
            if driver is not None
            else db.idea_form(diagram, idea=idea)
        )
        client.views_push(trigger_id=body["trigger_id"], view=view)
    elif op == "retire":
        text = driver.text if driver is not None else idea.text if idea is not None else ""
        client.views_push(
            trigger_id=body["trigger_id"], view=db.retire_form(diagram, kind=kind, item_id=item_id, text=text)
        )
    elif op in ("up", "down"):
        outcome = edit.move(
            engine,
            team_id=team_id,
            project_id=project_id,
            user_id=body["user"]["id"],
            item=kind,
            item_id=item_id,
            direction=op,
            request_key=f"{view_id}:{action.get('action_ts') or ''}",
        )
        after = service.load(engine, team_id=team_id, project_id=project_id) or diagram
        _refresh(
            client,
            engine,
            team_id=team_id,
            project_id=project_id,
            view_id=view_id,
            page=_page_of(after, kind, item_id),
            note=outcome.saved or " ".join(outcome.problems.values()),
        )


# ---------------------------------------------------------------- the forms


def _present(view: Mapping[str, Any], mapping: list[tuple[str, str]]) -> list[tuple[str, str]]:
    blocks = {b.get("block_id") for b in view.get("blocks") or [] if isinstance(b, Mapping)}
    kept = [(field, block) for field, block in mapping if block in blocks]
    return kept or mapping


def _after_save(
    ack: Ack,
    client: WebClient,
    engine: Engine,
    view: Mapping[str, Any],
    *,
    team_id: str,
    project_id: int,
    outcome: service.Outcome,
    mapping: list[tuple[str, str]],
    kind: str,
) -> None:
    if not outcome.ok:
        ack(response_action="errors", errors=db.errors_for(outcome.problems, _present(view, mapping)))
        return
    ack()
    diagram = service.load(engine, team_id=team_id, project_id=project_id)
    page = _page_of(diagram, kind, outcome.item_id) if diagram is not None else 0
    _refresh(
        client,
        engine,
        team_id=team_id,
        project_id=project_id,
        view_id=str(view.get("previous_view_id") or ""),  # set by Slack: the editor this form was pushed from
        page=page,
        note=outcome.saved,
    )


DRIVER_FIELDS = [
    (service.TEXT, ids.B_DRIVER_TEXT),
    (service.PARENT, ids.B_DRIVER_PARENT),
    (service.WHERE_FIELD, ids.B_DRIVER_WHERE),
    (service.INFLUENCE_FIELD, ids.B_DRIVER_INFLUENCE),
    (service.WHO, ids.B_DRIVER_WHO),
]
IDEA_FIELDS = [(service.TEXT, ids.B_IDEA_TEXT), (service.DRIVER, ids.B_IDEA_DRIVER)]


def handle_driver_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id, project_id = _team(context, body), claims.metadata_id(view, "project_id") or 0
    metadata = claims.parse_metadata(view)
    place = state_value(view, ids.B_DRIVER_PARENT)
    level = metadata.get("level")
    movable = level == "any"  # an edit form: primary or secondary as chosen (the service checks the move)
    outcome = edit.save_driver(
        engine,
        team_id=team_id,
        project_id=project_id,
        user_id=body["user"]["id"],
        driver_id=claims.metadata_id(view, "driver_id"),
        parent_id=None if place == db.TOP_LEVEL else claims.parse_id(place),
        secondary=(place != db.TOP_LEVEL) if movable else level == "secondary",
        movable=movable,
        text=str(state_value(view, ids.B_DRIVER_TEXT) or ""),
        where=[str(w) for w in state_value(view, ids.B_DRIVER_WHERE) or []],
        influence=str(state_value(view, ids.B_DRIVER_INFLUENCE) or ""),
        who_can=str(state_value(view, ids.B_DRIVER_WHO) or ""),
        request_key=str(view.get("id") or ""),
    )
    _after_save(
        ack,
        client,
        engine,
        view,
        team_id=team_id,
        project_id=project_id,
        outcome=outcome,
        mapping=DRIVER_FIELDS,
        kind="driver",
    )


def handle_idea_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id, project_id = _team(context, body), claims.metadata_id(view, "project_id") or 0
    outcome = edit.save_idea(
        engine,
        team_id=team_id,
        project_id=project_id,
        user_id=body["user"]["id"],
        idea_id=claims.metadata_id(view, "idea_id"),
        driver_id=claims.parse_id(state_value(view, ids.B_IDEA_DRIVER)),
        text=str(state_value(view, ids.B_IDEA_TEXT) or ""),
        request_key=str(view.get("id") or ""),
    )
    _after_save(
        ack,
        client,
        engine,
        view,
        team_id=team_id,
        project_id=project_id,
        outcome=outcome,
        mapping=IDEA_FIELDS,
        kind="idea",
    )


def handle_retire_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id, project_id = _team(context, body), claims.metadata_id(view, "project_id") or 0
    driver_id, idea_id = claims.metadata_id(view, "driver_id"), claims.metadata_id(view, "idea_id")
    outcome = edit.retire(
        engine,
        team_id=team_id,
        project_id=project_id,
        user_id=body["user"]["id"],
        item="driver" if driver_id else "idea",
        item_id=driver_id or idea_id or 0,
        why=str(state_value(view, ids.B_RETIRE_WHY) or ""),
        request_key=str(view.get("id") or ""),
    )
    _after_save(
        ack,
        client,
        engine,
        view,
        team_id=team_id,
        project_id=project_id,
        outcome=outcome,
        mapping=[(service.WHY, ids.B_RETIRE_WHY)],
        kind="none",
    )


def register(app: App) -> None:
    app.action(ids.A_DRIVERS_OPEN)(guard(handle_open, Rule(access.value_project)))
    for add in (ids.A_DRIVERS_ADD_PRIMARY, ids.A_DRIVERS_ADD_SECONDARY, ids.A_DRIVERS_ADD_IDEA):
        app.action(add)(guard(handle_add, Rule(access.form)))
    app.action(ids.A_DRIVERS_POST)(guard(handle_post, Rule(access.form, saved=SAVED)))
    app.action(ids.A_DRIVERS_ITEM)(guard(handle_item, Rule(access.form, saved=SAVED)))
    for page in (ids.A_DRIVERS_PAGE_PREV, ids.A_DRIVERS_PAGE_NEXT):
        app.action(page)(guard(handle_page, Rule(access.form)))
    app.view(ids.CB_DRIVER)(guard(handle_driver_submission, Rule(access.form, saved=SAVED)))
    app.view(ids.CB_CHANGE_IDEA)(guard(handle_idea_submission, Rule(access.form, saved=SAVED)))
    app.view(ids.CB_DRIVERS_RETIRE)(guard(handle_retire_submission, Rule(access.form, saved=SAVED)))
