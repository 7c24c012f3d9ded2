"""The project modal and card: start, show and edit a channel's improvement project (`/mfi new|status|edit`)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core import ethnicity
from bot.core.checklist import done_map
from bot.services import checklist as checklist_service
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.blocks.checklist import checklist_blocks
from storage import repositories as repo
from storage import schedule_repo
from storage.db import unit_of_work
from storage.models import Project

logger = logging.getLogger(__name__)


def open_new_project(client: WebClient, context: BoltContext, *, trigger_id: str, respond: Respond) -> None:
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id and context.user_id
    with unit_of_work(engine) as session:
        existing = repo.project_for_channel(session, team_id=context.team_id, channel_id=context.channel_id)
        name = existing.name if existing else None
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
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=context.team_id, channel_id=channel)
        if project is None:
            if respond:
                respond(
                    text="There is no project in this channel yet. Start one with `/mfi new`.",
                    response_type="ephemeral",
                )
            return
        assert project.id is not None
        if not repo.is_lead(session, project_id=project.id, user_id=context.user_id):
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
            project=project.model_dump(),
            leads=[m.user_id for m in repo.members(session, project_id=project.id, role="lead")],
            partners=[m.user_id for m in repo.members(session, project_id=project.id, role="partner")],
        )
    client.views_open(trigger_id=trigger_id, view=view)


def show_status(respond: Respond, context: BoltContext) -> None:
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=context.team_id, channel_id=context.channel_id)
        if project is None:
            respond(
                text="There is no project in this channel yet. Start one with `/mfi new`.",
                response_type="ephemeral",
            )
            return
        card, text = card_for(session, project)
    respond(
        blocks=[*card, blocks.actions(blocks.button("Post to the channel", ids.A_POST_STATUS))],
        text=text,
        response_type="ephemeral",
    )


def card_for(session: Session, project: Project) -> tuple[list[blocks.Block], str]:
    assert project.id is not None
    progress = repo.project_progress(session, project=project)
    leads = [m.user_id for m in repo.members(session, project_id=project.id, role="lead")]
    checks = checklist_service.checklist_for(
        session, project, progress=progress
    )  # the stages from evidence (issue 14)
    card = blocks.project_card(
        project.model_dump(),
        leads=leads,
        partner_count=progress["partners_consented"],  # taking part means they said yes
        stages_done=done_map(checks),
        measure_count=progress["measure_count"],
        open_cycles=progress["open_cycles"],
        checklist=checklist_blocks(checks, project.id, racism_context=project.racism_context),
    )
    return card, blocks.project_card_text(project.model_dump())


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
    try:
        # Saved before the modal closes: if the database fails, the form stays open with everything typed in it.
        with unit_of_work(engine) as session:
            if is_new:
                if repo.project_for_channel(session, team_id=team_id, channel_id=channel_id) is not None:
                    ack(
                        response_action="errors",
                        errors={
                            ids.B_PROJECT_NAME: "This channel already has a project. Close this and use /mfi edit."
                        },
                    )
                    return
                project = repo.create_project(
                    session,
                    team_id=team_id,
                    enterprise_id=context.enterprise_id,
                    channel_id=channel_id,
                    created_by=user_id,
                    leads=fields.pop("leads"),
                    partners=fields.pop("partners"),
                    timezone=context["settings"].mfi_timezone,
                    **fields,
                )
            else:
                found = repo.get_project(
                    session, team_id=team_id, project_id=claims.metadata_id(view, "project_id") or 0
                )
                if (
                    found is None
                    or found.id is None
                    or not repo.is_lead(session, project_id=found.id, user_id=user_id)
                ):
                    ack(
                        response_action="errors",
                        errors={ids.B_PROJECT_NAME: "Only the project's leads can edit it."},
                    )
                    return
                project = found
                leads, partners = fields.pop("leads"), fields.pop("partners")
                repo.update_project(session, project=project, changed_by=user_id, **fields)
                repo.set_members(session, project=project, role="lead", user_ids=leads, added_by=user_id)
                repo.set_members(
                    session, project=project, role="partner", user_ids=partners, added_by=user_id
                )
            project_id = project.id
    except SQLAlchemyError:
        logger.exception("Saving the project failed")
        ack(
            response_action="errors",
            errors={
                ids.B_PROJECT_NAME: "We couldn't save this just now (a database problem). "
                "Everything you typed is still here: press the button again in a moment."
            },
        )
        return
    ack()
    assert project_id is not None
    post_project_card(client, engine, team_id=team_id, project_id=project_id, announce_new=is_new, by=user_id)
    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)
    # The default schedules exist from the start. Partners named here are asked for consent later: when a lead
    # chooses to (`/mfi partners`, which also asks for the plain-language description they will see) or turns
    # partner questions on in `/mfi schedule`.
    with unit_of_work(engine) as session:
        saved = repo.get_project(session, team_id=team_id, project_id=project_id)
        if saved is not None:
            schedule_repo.ensure_default_schedules(session, project=saved)


def post_project_card(
    client: WebClient, engine: Engine, *, team_id: str, project_id: int, announce_new: bool, by: str
) -> None:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        assert project is not None
        card, text = card_for(session, project)
        channel_id, card_ts = project.channel_id, project.card_ts
    if announce_new or card_ts is None:
        intro = (
            f"<@{by}> started a new improvement project."
            if announce_new
            else f"<@{by}> shared the project card."
        )
        result = client.chat_postMessage(
            channel=channel_id, text=f"{intro} {text}", blocks=[blocks.section(intro), *card]
        )
        with unit_of_work(engine) as session:
            found = repo.get_project(session, team_id=team_id, project_id=project_id)
            if found is not None:
                repo.set_card_ts(session, project=found, ts=str(result["ts"]))
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
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=context.team_id, channel_id=context.channel_id)
        if project is None:
            return
        card, text = card_for(session, project)
    client.chat_postMessage(channel=context.channel_id, text=text, blocks=card)
    respond(delete_original=True)


def handle_open_edit(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    channel_id = (body.get("channel") or {}).get("id")
    if channel_id is None:
        engine: Engine = context["engine"]
        with unit_of_work(engine) as session:
            project = repo.get_project(
                session, team_id=context.team_id or "", project_id=claims.action_id_value(body) or 0
            )
            channel_id = project.channel_id if project else None
    if channel_id:
        open_edit_project(client, context, trigger_id=body["trigger_id"], channel_id=channel_id)


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
