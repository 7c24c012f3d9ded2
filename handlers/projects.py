"""The project modal and card: start, show and edit a channel's improvement project (`/mfi new|status|edit`)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.core import ethnicity
from bot.services import projects as service
from bot.services.engine import Engine
from bot.services.projects import ProjectCard
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.blocks.checklist import checklist_blocks

logger = logging.getLogger(__name__)


def open_new_project(client: WebClient, context: BoltContext, *, trigger_id: str, respond: Respond) -> None:
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id and context.user_id
    name = service.channel_project_name(engine, team_id=context.team_id, channel_id=context.channel_id)
    if name is not None:
        respond(
            text=f"This channel already has a project, *{blocks.typed(name)}*. Use `/mfi status` to see it or `/mfi edit` to change it. "
            "Each project has its own channel, so start a new channel for a second project.",
            response_type="ephemeral",
        )
        return
    client.views_open(
        trigger_id=trigger_id,
        view=blocks.project_modal(
            callback_id=ids.CB_PROJECT_NEW, channel_id=context.channel_id, user_id=context.user_id
        ),
    )


def open_edit_project(
    client: WebClient,
    context: BoltContext,
    *,
    trigger_id: str,
    respond: Respond | None = None,
    channel_id: str | None = None,
) -> None:
    engine: Engine = context["engine"]
    channel = channel_id or context.channel_id
    assert context.team_id and channel and context.user_id
    form = service.edit_form(engine, team_id=context.team_id, channel_id=channel, user_id=context.user_id)
    if form.status == "no_project":
        if respond:
            respond(
                text="There is no project in this channel yet. Start one with `/mfi new`.",
                response_type="ephemeral",
            )
        return
    if form.status == "not_lead":
        if respond:
            respond(
                text="Only the project's leads can edit it. Ask one of them, or `/mfi status` to see it.",
                response_type="ephemeral",
            )
        return
    view = blocks.project_modal(
        callback_id=ids.CB_PROJECT_EDIT,
        channel_id=channel,
        user_id=context.user_id,
        project=form.fields,
        leads=list(form.leads),
        partners=list(form.partners),
    )
    client.views_open(trigger_id=trigger_id, view=view)


def show_status(respond: Respond, context: BoltContext) -> None:
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id
    found = service.channel_card(engine, team_id=context.team_id, channel_id=context.channel_id)
    if found is None:
        respond(
            text="There is no project in this channel yet. Start one with `/mfi new`.",
            response_type="ephemeral",
        )
        return
    card, text = card_for(found)
    respond(
        blocks=[*card, blocks.actions(blocks.button("Post to the channel", ids.A_POST_STATUS))],
        text=text,
        response_type="ephemeral",
    )


def card_for(card: ProjectCard) -> tuple[list[blocks.Block], str]:
    """The project card's blocks and text from its values (bot.services.projects.card_data and friends)."""
    built = blocks.project_card(
        card.fields,
        leads=list(card.leads),
        partner_count=card.partner_count,  # taking part means they said yes
        partners_waiting=card.partners_waiting,
        stages_done=card.stages_done,
        measure_count=card.measure_count,
        open_cycles=card.open_cycles,
        checklist=checklist_blocks(list(card.checks), card.project_id, racism_context=card.racism_context),
    )
    return built, blocks.project_card_text(card.fields)


def _read_project_form(view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted project form as clean fields, and inline errors keyed by input block_id."""
    errors: dict[str, str] = {}
    name = blocks.state_value(view, ids.B_PROJECT_NAME) or ""
    aim = blocks.state_value(view, ids.B_PROJECT_AIM) or ""
    focus = blocks.state_value(view, ids.B_PROJECT_FOCUS) or []
    reference = blocks.state_value(view, ids.B_PROJECT_REFERENCE) or "A"
    leads = blocks.state_value(view, ids.B_PROJECT_LEADS) or []
    partners = blocks.state_value(view, ids.B_PROJECT_PARTNERS) or []
    target_date_text = blocks.state_value(view, ids.B_PROJECT_TARGET_DATE)
    if len(name) < 3:
        errors[ids.B_PROJECT_NAME] = "Give the project a name of at least 3 characters."
    if len(aim) < 15:
        errors[ids.B_PROJECT_AIM] = "Write the aim as a sentence: what will improve, by how much, by when."
    if not focus:
        errors[ids.B_PROJECT_FOCUS] = (
            "Name at least one ethnic group: the framework asks every aim to say who it is for."
        )
    elif reference in focus or any(reference in ethnicity.members(g) for g in focus):
        errors[ids.B_PROJECT_FOCUS] = (
            f"{ethnicity.display(reference)} is the comparison group, so it can't also be a focus group. "
            "Choose a different reference group or remove it here."
        )
    if not leads:
        errors[ids.B_PROJECT_LEADS] = "Choose at least one project lead."
    overlap = set(leads) & set(partners)
    if overlap:
        errors[ids.B_PROJECT_PARTNERS] = "A person can be a lead or a service-user partner, not both."
    threshold_text = blocks.state_value(view, ids.B_PROJECT_THRESHOLD)
    threshold = 8
    if threshold_text:
        try:
            threshold = int(threshold_text)
        except ValueError:
            threshold = 0
        if not 8 <= threshold <= 100:
            errors[ids.B_PROJECT_THRESHOLD] = (
                "Use a whole number from 8 to 100: counts below 8 are never shown in Slack."
            )
    target_date = date.fromisoformat(target_date_text) if target_date_text else None
    if target_date is not None and target_date < date.today():
        errors[ids.B_PROJECT_TARGET_DATE] = "The target date has passed. Choose a date in the future."
    fields = {
        "name": name,
        "aim": aim,
        "focus_groups": _canonical_order(focus),
        "reference_group": reference,
        "baseline": blocks.state_value(view, ids.B_PROJECT_BASELINE) or "",
        "target": blocks.state_value(view, ids.B_PROJECT_TARGET) or "",
        "target_date": target_date,
        "racism_context": blocks.state_value(view, ids.B_PROJECT_RACISM) or "",
        "suppression_threshold": threshold,
        "leads": list(leads),
        "partners": list(partners),
    }
    return fields, errors


def _canonical_order(codes: list[str]) -> list[str]:
    """High-level groups first, then NHS code order, so re-saving an unchanged form changes nothing."""
    order = [*ethnicity.HIGH_LEVEL_GROUPS, *ethnicity.CODES]
    return sorted(set(codes), key=lambda code: order.index(code) if code in order else len(order))


def handle_project_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    fields, errors = _read_project_form(view)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    engine: Engine = context["engine"]
    meta = blocks.metadata_of(view)
    channel_id = meta["channel_id"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    is_new = view["callback_id"] == ids.CB_PROJECT_NEW
    # Saved before the modal closes: if the database fails, the form stays open with everything typed in it.
    saved = service.save_project(
        engine,
        team_id=team_id,
        enterprise_id=context.enterprise_id,
        channel_id=channel_id,
        user_id=user_id,
        is_new=is_new,
        project_id=None if is_new else claims.metadata_id(view, "project_id"),
        fields=fields,
        timezone=context["settings"].mfi_timezone,
    )
    if saved.status != "saved":
        ack(response_action="errors", errors={ids.B_PROJECT_NAME: SAVE_REFUSALS[saved.status]})
        return
    project_id = saved.project_id
    ack()
    assert project_id is not None
    post_project_card(client, engine, team_id=team_id, project_id=project_id, announce_new=is_new, by=user_id)
    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)
    # The default schedules exist from the start. Partners named here are asked for consent later: when a lead
    # chooses to (`/mfi partners`, which also asks for the plain-language description they will see) or turns
    # partner questions on in `/mfi schedule`.
    service.ensure_schedules(engine, team_id=team_id, project_id=project_id)


def post_project_card(
    client: WebClient, engine: Engine, *, team_id: str, project_id: int, announce_new: bool, by: str
) -> None:
    found = service.project_card(engine, team_id=team_id, project_id=project_id)
    assert found is not None
    card, text = card_for(found)
    channel_id, card_ts = found.channel_id, found.card_ts
    if announce_new or card_ts is None:
        intro = (
            f"<@{by}> started a new improvement project."
            if announce_new
            else f"<@{by}> shared the project card."
        )
        result = client.chat_postMessage(
            channel=channel_id, text=f"{intro} {text}", blocks=[blocks.section(intro), *card]
        )
        service.record_card(engine, team_id=team_id, project_id=project_id, ts=str(result["ts"]))
    else:
        client.chat_update(channel=channel_id, ts=card_ts, text=text, blocks=card)
        client.chat_postMessage(
            channel=channel_id, text=f"<@{by}> updated the project: {text}", thread_ts=card_ts
        )


def handle_post_status(ack: Ack, client: WebClient, context: BoltContext, respond: Respond) -> None:
    ack()
    engine: Engine = context["engine"]
    if not (context.team_id and context.channel_id):
        return  # the button lives in a channel's ephemeral message; from anywhere else it is not one the bot sent
    found = service.channel_card(engine, team_id=context.team_id, channel_id=context.channel_id)
    if found is None:
        return
    card, text = card_for(found)
    client.chat_postMessage(channel=context.channel_id, text=text, blocks=card)
    respond(delete_original=True)


def handle_open_edit(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    channel_id = (body.get("channel") or {}).get("id")
    if channel_id is None:
        channel_id = service.project_channel(
            context["engine"], team_id=context.team_id or "", project_id=claims.action_id_value(body) or 0
        )
    if channel_id:
        open_edit_project(client, context, trigger_id=body["trigger_id"], channel_id=channel_id)


SAVE_REFUSALS = {
    "exists": "This channel already has a project. Close this and use /mfi edit.",
    "not_lead": "Only the project's leads can edit it.",
    "failed": "We couldn't save this just now (a database problem). "
    "Everything you typed is still here: press the button again in a moment.",
}

PROJECT_SAVED = ("Your project was saved", "`/mfi status` (it has a button to post the card)")


def register(app: App) -> None:
    app.view(ids.CB_PROJECT_NEW)(guard(handle_project_submission, Rule(access.form, saved=PROJECT_SAVED)))
    app.view(ids.CB_PROJECT_EDIT)(
        guard(
            handle_project_submission,
            Rule(
                access.form, need="lead", saved=("Your changes to the project were saved", PROJECT_SAVED[1])
            ),
        )
    )
    app.action(ids.A_POST_STATUS)(guard(handle_post_status, Rule(access.channel_project)))
    app.action(ids.A_OPEN_PROJECT_EDIT)(
        guard(handle_open_edit, Rule(access.value_project, need="lead", posts=True))
    )
