"""/mfi bias: the bias review register (list, add, edit, change status; earlier versions kept)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import bias as service
from bot.services import registers
from bot.services.engine import Engine
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.blocks import bias as bb
from handlers.blocks import ids

logger = logging.getLogger(__name__)


def _page_of(body: dict[str, Any]) -> int:
    return claims.parse_int(claims.action_json(body).get("page"), minimum=1, maximum=10_000) or 1


def _entry_of(body: dict[str, Any]) -> int | None:
    return claims.parse_int(claims.action_json(body).get("entry"), minimum=1)


def handle_bias_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    assert context.team_id and context.channel_id and context.user_id
    engine: Engine = context["engine"]
    project = registers.project_here(
        engine, team_id=context.team_id, channel_id=context.channel_id, user_id=context.user_id
    )
    if project is None:
        respond(text=bb.NO_PROJECT, response_type="ephemeral")
        return
    if rest.strip().lower() in ("add", "new"):
        open_form(
            client,
            engine,
            team_id=context.team_id,
            user_id=context.user_id,
            project_id=project.id,
            number=None,
            trigger_id=command["trigger_id"],
        )
        return
    page = service.bias_page(engine, team_id=context.team_id, project_id=project.id, user_id=context.user_id)
    if page is not None:
        message, text = bb.list_message(page)
        respond(blocks=message, text=text, response_type="ephemeral")


def open_form(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str,
    user_id: str,
    project_id: int,
    number: int | None,
    trigger_id: str,
) -> bool:
    form = service.bias_form(engine, team_id=team_id, project_id=project_id, user_id=user_id, number=number)
    if form is None:
        return False
    client.views_open(trigger_id=trigger_id, view=bb.bias_modal(form))
    return True


def project_of(body: dict[str, Any]) -> int:
    """The project a button names (the guard has already checked the person may use it from here)."""
    return claims.parse_id(claims.action_json(body).get("project_id")) or 0


def say(client: WebClient, body: dict[str, Any], respond: Respond, text: str) -> None:
    """Only to the person: ephemeral where the click came from a message, otherwise in their DM with the bot."""
    if body.get("response_url"):
        respond(text=text, response_type="ephemeral", replace_original=False)
    else:
        client.chat_postMessage(channel=body["user"]["id"], text=text)


def handle_open_button(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    """Add (no entry in the value) or Edit (the entry's number)."""
    ack()
    team_id = context.team_id or body["team"]["id"]
    action_id = str((body.get("actions") or [{}])[0].get("action_id") or "")
    number = _entry_of(body) if action_id == ids.A_BIAS_EDIT else None
    opened = not (action_id == ids.A_BIAS_EDIT and number is None) and open_form(
        client,
        context["engine"],
        team_id=team_id,
        user_id=body["user"]["id"],
        project_id=project_of(body),
        number=number,
        trigger_id=body["trigger_id"],
    )
    if not opened:
        say(client, body, respond, service.NOT_IN_PROJECT)


def handle_page_button(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
    ack()
    team_id = context.team_id or body["team"]["id"]
    project_id = project_of(body)
    page = service.bias_page(
        context["engine"],
        team_id=team_id,
        project_id=project_id,
        user_id=body["user"]["id"],
        page=_page_of(body),
    )
    if page is not None:
        message, text = bb.list_message(page)
        respond(blocks=message, text=text, response_type="ephemeral", replace_original=True)


def read_form(view: dict[str, Any]) -> dict[str, Any]:
    raw = {name: blocks.state_value(view, block_id) for name, block_id in bb.FIELD_BLOCKS.items()}
    present = {blk.get("block_id") for blk in view.get("blocks") or []}
    if ids.B_BIAS_DRIVER not in present:  # no drivers were offered: leave the entry's link as it is
        raw.pop("driver_id")
    return raw


def handle_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    user_id = body["user"]["id"]
    project_id = claims.metadata_id(view, "project_id") or 0
    raw_entry = claims.parse_metadata(view).get("entry")
    number = claims.parse_int(raw_entry, minimum=1) if raw_entry is not None else None
    if raw_entry is not None and number is None:
        ack(response_action="errors", errors={ids.B_BIAS_KIND: service.NOT_IN_PROJECT})
        return
    saved = service.save_bias(
        engine, team_id=team_id, project_id=project_id, user_id=user_id, number=number, raw=read_form(view)
    )
    if saved.errors:
        errors = {bb.FIELD_BLOCKS[name]: text for name, text in saved.errors.items()}
        present = {blk.get("block_id") for blk in view.get("blocks") or []}
        # An error for a field the form does not show (no cycles to link) goes on the first field.
        errors = {(k if k in present else ids.B_BIAS_KIND): v for k, v in errors.items()}
        ack(response_action="errors", errors=errors)
        return
    ack()
    assert saved.entry is not None and saved.project is not None
    if saved.created or saved.changed:
        note, text = bb.saved_note(project_id, saved.entry, user_id=user_id, created=saved.created)
        try:
            client.chat_postMessage(channel=saved.project.channel_id, text=text, blocks=note)
        except SlackApiError as exc:
            logger.warning("Bias review saved; the channel note failed: %s", exc.response.get("error"))
        home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


def register(app: App) -> None:
    member = Rule(access.value_project, need="member")
    app.action(ids.A_BIAS_ADD)(guard(handle_open_button, member))
    app.action(ids.A_BIAS_EDIT)(guard(handle_open_button, member))
    app.action(ids.A_BIAS_PAGE)(guard(handle_page_button, member))
    app.view(ids.CB_BIAS_ENTRY)(
        guard(
            handle_submission,
            Rule(access.form, need="member", saved=("The bias review entry was saved", "`/mfi bias`")),
        )
    )
