"""Service-user partners: /mfi partners, the consent DM, and Pause / Resume / Stop / sharing from any partner DM."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from handlers import access, blocks, ids, projects
from handlers import prompts_blocks as pb
from handlers.access import Rule, guard
from storage import answers_repo
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project, utcnow

logger = logging.getLogger(__name__)


def _lead_mentions(session: Session, project_id: int) -> list[str]:
    return [f"<@{m.user_id}>" for m in repo.members(session, project_id=project_id, role="lead")]


def invite_pending_partners(client: WebClient, engine: Engine, *, team_id: str, project_id: int) -> int:
    """Send the consent DM to every partner not yet asked; returns how many were sent.

    Each request is claimed in the scheduler's delivery ledger first (the same row the scheduler would
    write), so a partner is asked once even if the scheduler notices them at the same moment.
    """
    from bot.jobs import CONSENT_KIND, CONSENT_OCCURRENCE

    now = utcnow()
    claimed: list[tuple[int, str]] = []
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return 0
        schedule = next(s for s in sched.ensure_default_schedules(session, project=project) if s.kind == "partner_prompt")
        asked = {d.recipient for d in sched.deliveries(session, project_id=project_id, kind=CONSENT_KIND)}
        for partner in sched.partners_awaiting_consent(session, project_id=project_id):
            if partner.user_id in asked:
                continue
            delivery = sched.claim_delivery(
                session, schedule=schedule, occurrence=CONSENT_OCCURRENCE, recipient=partner.user_id,
                kind=CONSENT_KIND, claimed_by="handlers.partners", now=now,
            )
            if delivery is not None and delivery.id is not None:
                claimed.append((delivery.id, partner.user_id))
        consent_blocks, text = pb.partner_consent_message(
            project_name=project.name, lead_names=_lead_mentions(session, project_id), project_id=project_id
        )
    sent = 0
    for delivery_id, user_id in claimed:
        try:
            result = client.chat_postMessage(channel=user_id, blocks=consent_blocks, text=text)
        except SlackApiError as exc:
            logger.warning("Could not send the consent message to %s: %s", user_id, exc.response.get("error"))
            with unit_of_work(engine) as session:
                sched.mark_failed(session, delivery_id=delivery_id, error=str(exc.response.get("error")))
            continue
        with unit_of_work(engine) as session:
            sched.mark_sent(session, delivery_id=delivery_id, channel_id=str(result.get("channel") or ""),
                            message_ts=str(result.get("ts") or ""), now=utcnow())
        sent += 1
    return sent


# --- /mfi partners ---------------------------------------------------------------------------------------------


def _status_line(session: Session, project_id: int) -> list[str]:
    lines = []
    for m in repo.members(session, project_id=project_id, role="partner"):
        if m.stopped:
            state = "stopped"
        elif m.consent == "declined":
            state = "said no thanks"
        elif m.consent == "pending":
            state = "asked, no reply yet"
        else:
            state = "taking part" + (", paused" if m.paused else "") + (
                ", happy for answers to reach the channel" if m.share_in_channel else "")
        lines.append(f"<@{m.user_id}>: {state}")
    return lines


def handle_partners_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id and context.user_id
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=context.team_id, channel_id=context.channel_id)
        if project is None or project.id is None:
            respond(text="There is no project in this channel yet. Start one with `/mfi new`.", response_type="ephemeral")
            return
        if not repo.is_lead(session, project_id=project.id, user_id=context.user_id):
            leads = ", ".join(_lead_mentions(session, project.id)) or "the project's leads"
            respond(text=f"Only the project's leads can add or remove service-user partners. Ask {leads}.",
                    response_type="ephemeral")
            return
        partners = [m.user_id for m in repo.members(session, project_id=project.id, role="partner")]
        view = pb.partners_modal(project_id=project.id, project_name=project.name, partners=partners,
                                 status_lines=_status_line(session, project.id))
    client.views_open(trigger_id=command["trigger_id"], view=view)


def handle_partners_submission(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient,
                               context: BoltContext) -> None:
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    chosen = list(dict.fromkeys(blocks.state_value(view, ids.B_PARTNERS_USERS) or []))
    project_id = int(blocks.metadata_of(view).get("project_id") or 0)
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not repo.is_lead(session, project_id=project_id, user_id=user_id):
            ack(response_action="errors", errors={ids.B_PARTNERS_USERS: "Only the project's leads can change partners."})
            return
        leads = {m.user_id for m in repo.members(session, project_id=project_id, role="lead")}
        overlap = leads & set(chosen)
        if overlap:
            ack(response_action="errors", errors={
                ids.B_PARTNERS_USERS: "A person can be a lead or a service-user partner, not both: "
                + ", ".join(sorted(overlap))})
            return
        answers_repo.set_partners(session, project=project, user_ids=chosen, added_by=user_id)
    ack()
    after_partners_changed(client, engine, team_id=team_id, project_id=project_id)


def after_partners_changed(client: WebClient, engine: Engine, *, team_id: str, project_id: int) -> None:
    invite_pending_partners(client, engine, team_id=team_id, project_id=project_id)
    from handlers import home

    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


# --- buttons in partners' DMs ----------------------------------------------------------------------------------


def _project_id_from(session: Session, body: dict[str, Any], team_id: str) -> int | None:
    """Partner buttons carry a project id, or (on prompts) a delivery id that leads to one."""
    try:
        value = json.loads(body["actions"][0].get("value") or "{}")
    except ValueError:
        return None
    if "project_id" in value:
        return int(value["project_id"])
    if "delivery_id" in value:
        delivery = answers_repo.get_delivery(session, team_id=team_id, delivery_id=int(value["delivery_id"]))
        return delivery.project_id if delivery else None
    return None


def _reply(client: WebClient, body: dict[str, Any], user_id: str, message: tuple[list[blocks.Block], str]) -> None:
    channel = (body.get("channel") or {}).get("id") or user_id
    reply_blocks, text = message
    client.chat_postMessage(channel=channel, blocks=reply_blocks, text=text)


def handle_consent(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    said_yes = body["actions"][0]["action_id"] == ids.A_PARTNER_CONSENT_YES
    with unit_of_work(engine) as session:
        project_id = _project_id_from(session, body, team_id)
        project = repo.get_project(session, team_id=team_id, project_id=project_id or 0)
        partner = sched.member(session, project_id=project_id or 0, user_id=user_id, role="partner")
        if project is None or partner is None:
            respond(text="Thank you. You're no longer listed as a partner on this project, so there is nothing to do.",
                    response_type="ephemeral", replace_original=False)
            return
        answers_repo.set_partner_state(session, partner=partner, consent="given" if said_yes else "declined",
                                       stopped=False if said_yes else None)
        name, share = project.name, partner.share_in_channel
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id")
    if channel and message.get("ts"):
        client.chat_update(channel=channel, ts=message["ts"], text=f"You were asked to help with {name}.",
                           blocks=pb.consent_recorded_blocks(project_name=name, said_yes=said_yes))
    if said_yes:
        _reply(client, body, user_id, pb.consent_thanks_message(project_name=name, project_id=project.id or 0,
                                                                share_in_channel=share))
    else:
        _reply(client, body, user_id, pb.declined_message(project_name=name))
    from handlers import home

    home.publish_for_project(client, engine, team_id=team_id, project_id=project.id or 0)


def handle_partner_state(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext,
                         respond: Respond) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    action_id = body["actions"][0]["action_id"]
    with unit_of_work(engine) as session:
        project_id = _project_id_from(session, body, team_id)
        project = session.get(Project, project_id) if project_id else None
        partner = sched.member(session, project_id=project_id or 0, user_id=user_id, role="partner")
        if project is None or project.id is None or partner is None:
            respond(text="You're not listed as a partner on this project any more, so you won't get its questions.",
                    response_type="ephemeral", replace_original=False)
            return
        leads = _lead_mentions(session, project.id)
        if partner.stopped or action_id == ids.A_PARTNER_STOP:
            # Stopping is final from the partner's side: a lead can add them again if they ask.
            answers_repo.set_partner_state(session, partner=partner, stopped=True)
            state = "stopped"
        elif action_id == ids.A_PARTNER_PAUSE:
            answers_repo.set_partner_state(session, partner=partner, paused=True)
            state = "paused"
        else:
            answers_repo.set_partner_state(session, partner=partner, paused=False)
            state = "resumed"
        name, pid = project.name, project.id
    _reply(client, body, user_id, pb.partner_state_message(project_name=name, project_id=pid, state=state,
                                                           lead_mentions=leads))


def handle_partner_share(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext,
                         respond: Respond) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    try:
        share = bool(json.loads(body["actions"][0].get("value") or "{}").get("share"))
    except ValueError:
        return
    with unit_of_work(engine) as session:
        project_id = _project_id_from(session, body, team_id)
        partner = sched.member(session, project_id=project_id or 0, user_id=user_id, role="partner")
        if partner is None or partner.consent != "given":
            respond(text="You're not taking part in this project at the moment, so there is nothing to change.",
                    response_type="ephemeral", replace_original=False)
            return
        answers_repo.set_partner_state(session, partner=partner, share_in_channel=share)
    _reply(client, body, user_id, pb.share_setting_message(share=share))


def register(app: App) -> None:
    projects.SUBCOMMANDS["partners"] = handle_partners_command
    app.view(ids.CB_PARTNERS)(guard(handle_partners_submission, Rule(
        access.form, need="lead", saved=("The partner list was saved", "`/mfi partners`"))))
    app.action(ids.A_PARTNER_CONSENT_YES)(guard(handle_consent, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_CONSENT_NO)(guard(handle_consent, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_PAUSE)(guard(handle_partner_state, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_RESUME)(guard(handle_partner_state, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_STOP)(guard(handle_partner_state, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_SHARE)(guard(handle_partner_share, Rule(access.value_delivery, need="partner")))
