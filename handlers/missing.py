"""/mfi missing (and `/equity missing` below its report): the register of who the data do not show."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import missing as service
from bot.services import registers
from bot.services.engine import Engine
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.bias import project_of, say
from handlers.blocks import ids
from handlers.blocks import missing as mb

logger = logging.getLogger(__name__)


def handle_missing_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    assert context.team_id and context.channel_id and context.user_id
    engine: Engine = context["engine"]
    project = registers.project_here(
        engine, team_id=context.team_id, channel_id=context.channel_id, user_id=context.user_id
    )
    if project is None:
        respond(text=mb.NO_PROJECT, response_type="ephemeral")
        return
    if rest.strip().lower() in ("add", "new"):
        client.views_open(
            trigger_id=command["trigger_id"],
            view=mb.missing_modal(project_id=project.id, channel_id=project.channel_id, entry=None),
        )
        return
    page = service.missing_page(
        engine, team_id=context.team_id, project_id=project.id, user_id=context.user_id
    )
    if page is not None:
        message, text = mb.list_message(page)
        respond(blocks=message, text=text, response_type="ephemeral")


def register_under_report(
    engine: Engine, *, team_id: str, project_id: int, user_id: str
) -> list[blocks.Block]:
    """The register's first page, for `/equity missing` to show below the data-quality report."""
    page = service.missing_page(engine, team_id=team_id, project_id=project_id, user_id=user_id)
    if page is None:
        return []
    return [
        blocks.section("*Who is missing: the team's register*"),
        *mb.register_blocks(page, with_intro=False),
    ]


def handle_open_button(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    team_id = context.team_id or body["team"]["id"]
    project_id = project_of(body)
    action_id = str((body.get("actions") or [{}])[0].get("action_id") or "")
    entry = None
    if action_id == ids.A_MISSING_EDIT:
        number = claims.parse_int(claims.action_json(body).get("entry"), minimum=1)
        found = (
            service.missing_entry(context["engine"], team_id=team_id, project_id=project_id, number=number)
            if number is not None
            else None
        )
        if found is None:
            say(client, body, respond, service.NOT_IN_PROJECT)
            return
        project, entry = found
        channel_id = project.channel_id
    else:
        project_ref = registers.project_by_id(
            context["engine"], team_id=team_id, project_id=project_id, user_id=body["user"]["id"]
        )
        if project_ref is None:
            return
        channel_id = project_ref.channel_id
    client.views_open(
        trigger_id=body["trigger_id"],
        view=mb.missing_modal(project_id=project_id, channel_id=channel_id, entry=entry),
    )


def handle_page_button(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
    ack()
    team_id = context.team_id or body["team"]["id"]
    page_number = claims.parse_int(claims.action_json(body).get("page"), minimum=1, maximum=10_000) or 1
    page = service.missing_page(
        context["engine"],
        team_id=team_id,
        project_id=project_of(body),
        user_id=body["user"]["id"],
        page=page_number,
        refresh=False,
    )
    if page is not None:
        message, text = mb.list_message(page)
        respond(blocks=message, text=text, response_type="ephemeral", replace_original=True)


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
        ack(response_action="errors", errors={ids.B_MISSING_WHO: service.NOT_IN_PROJECT})
        return
    raw = {name: blocks.state_value(view, block_id) for name, block_id in mb.FIELD_BLOCKS.items()}
    saved = service.save_missing(
        engine, team_id=team_id, project_id=project_id, user_id=user_id, number=number, raw=raw
    )
    if saved.errors:
        ack(response_action="errors", errors={mb.FIELD_BLOCKS[k]: v for k, v in saved.errors.items()})
        return
    ack()
    assert saved.entry is not None and saved.project is not None
    if saved.changed:
        note, text = mb.saved_note(project_id, saved.entry, user_id=user_id, created=saved.created)
        try:
            client.chat_postMessage(channel=saved.project.channel_id, text=text, blocks=note)
        except SlackApiError as exc:
            logger.warning(
                "Who-is-missing entry saved; the channel note failed: %s", exc.response.get("error")
            )
        home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


def register(app: App) -> None:
    member = Rule(access.value_project, need="member")
    app.action(ids.A_MISSING_ADD)(guard(handle_open_button, member))
    app.action(ids.A_MISSING_EDIT)(guard(handle_open_button, member))
    app.action(ids.A_MISSING_PAGE)(guard(handle_page_button, member))
    app.view(ids.CB_MISSING_ENTRY)(
        guard(
            handle_submission,
            Rule(access.form, need="member", saved=("The who-is-missing entry was saved", "`/mfi missing`")),
        )
    )
