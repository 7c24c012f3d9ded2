"""/mfi team: the team's reflection on its make-up, and invitations (staff by DM, partners by the consent flow)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import registers
from bot.services import team as service
from bot.services.engine import Engine
from handlers import access, blocks, claims, home, partners
from handlers.access import Rule, guard
from handlers.bias import project_of
from handlers.blocks import ids
from handlers.blocks import team as tb

logger = logging.getLogger(__name__)


def handle_team_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    assert context.team_id and context.channel_id and context.user_id
    engine: Engine = context["engine"]
    project = registers.project_here(
        engine, team_id=context.team_id, channel_id=context.channel_id, user_id=context.user_id
    )
    if project is None:
        respond(text=tb.NO_PROJECT, response_type="ephemeral")
        return
    view = service.team_view(engine, team_id=context.team_id, project_id=project.id, user_id=context.user_id)
    if view is None:
        return
    if rest.strip().lower() in ("edit", "invite", "reflect"):
        client.views_open(trigger_id=command["trigger_id"], view=tb.team_modal(view))
        return
    message, text = tb.reflection_message(view)
    respond(blocks=message, text=text, response_type="ephemeral")


def handle_open_button(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    team_id = context.team_id or body["team"]["id"]
    view = service.team_view(
        context["engine"], team_id=team_id, project_id=project_of(body), user_id=body["user"]["id"]
    )
    if view is not None:
        client.views_open(trigger_id=body["trigger_id"], view=tb.team_modal(view))


def handle_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    user_id = body["user"]["id"]
    project_id = claims.metadata_id(view, "project_id") or 0
    raw = {name: blocks.state_value(view, block_id) for name, block_id in tb.FIELD_BLOCKS.items()}
    saved = service.save_team(engine, team_id=team_id, project_id=project_id, user_id=user_id, raw=raw)
    if saved.errors:
        present = {b.get("block_id") for b in view.get("blocks") or []}
        errors = {tb.FIELD_BLOCKS[k]: v for k, v in saved.errors.items()}
        ack(
            response_action="errors",
            errors={(k if k in present else ids.B_TEAM_ROLES): v for k, v in errors.items()},
        )
        return
    ack()
    assert saved.view is not None
    project = saved.view.project
    for staff_id in saved.staff_added:
        message, text = tb.staff_invite(
            lead_id=user_id, project_name=project.name, channel_id=project.channel_id
        )
        try:
            client.chat_postMessage(channel=staff_id, text=text, blocks=message)
        except SlackApiError as exc:
            logger.warning(
                "Could not send the team invitation to %s: %s", staff_id, exc.response.get("error")
            )
    if saved.partners_added:
        # The one consent flow: the same message, claimed in the same ledger, as /mfi partners sends.
        partners.invite_pending_partners(client, engine, team_id=team_id, project_id=project_id)
    text = tb.saved_note(
        user_id=user_id,
        staff=saved.staff_added,
        partners=saved.partners_added,
        partners_waiting=not saved.view.partner_description,
    )
    try:
        client.chat_postMessage(channel=project.channel_id, text=text)
    except SlackApiError as exc:
        logger.warning("Team reflection saved; the channel note failed: %s", exc.response.get("error"))
    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


def register(app: App) -> None:
    app.action(ids.A_TEAM_OPEN)(guard(handle_open_button, Rule(access.value_project, need="member")))
    app.view(ids.CB_TEAM_REFLECTION)(
        guard(
            handle_submission,
            Rule(access.form, need="member", saved=("The team reflection was saved", "`/mfi team`")),
        )
    )
