"""Service-user partners: /mfi partners, the consent DM, and Pause / Resume / Stop / sharing from any partner DM."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from bot.core.readability import reading_age, too_hard_for_partners
from bot.services.delivery import CONSENT_KIND, CONSENT_OCCURRENCE
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.blocks import prompts as pb
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
    now = utcnow()
    claimed: list[tuple[int, str]] = []
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not project.partner_description.strip():
            return 0  # partners are told what the project is about in plain words first
        schedule = next(
            s for s in sched.ensure_default_schedules(session, project=project) if s.kind == "partner_prompt"
        )
        asked = {d.recipient for d in sched.deliveries(session, project_id=project_id, kind=CONSENT_KIND)}
        for partner in sched.partners_awaiting_consent(session, project_id=project_id):
            if partner.user_id in asked:
                continue
            delivery = sched.claim_delivery(
                session,
                schedule=schedule,
                occurrence=CONSENT_OCCURRENCE,
                recipient=partner.user_id,
                kind=CONSENT_KIND,
                claimed_by="handlers.partners",
                now=now,
            )
            if delivery is not None and delivery.id is not None:
                claimed.append((delivery.id, partner.user_id))
        consent_blocks, text = pb.partner_consent_message(
            about=project.partner_description,
            lead_names=_lead_mentions(session, project_id),
            project_id=project_id,
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
            sched.mark_sent(
                session,
                delivery_id=delivery_id,
                channel_id=str(result.get("channel") or ""),
                message_ts=str(result.get("ts") or ""),
                now=utcnow(),
            )
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
            state = (
                "taking part"
                + (", paused" if m.paused else "")
                + (", happy for answers to reach the channel" if m.share_in_channel else "")
            )
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
            respond(
                text="There is no project in this channel yet. Start one with `/mfi new`.",
                response_type="ephemeral",
            )
            return
        if not repo.is_lead(session, project_id=project.id, user_id=context.user_id):
            leads = ", ".join(_lead_mentions(session, project.id)) or "the project's leads"
            respond(
                text=f"Only the project's leads can add or remove service-user partners. Ask {leads}.",
                response_type="ephemeral",
            )
            return
        partners = [m.user_id for m in repo.members(session, project_id=project.id, role="partner")]
        view = pb.partners_modal(
            project_id=project.id,
            project_name=project.name,
            partners=partners,
            status_lines=_status_line(session, project.id),
            about=project.partner_description,
            anonymity_threshold=max(3, project.anonymity_threshold),
            retention_days=project.retention_days,
        )
    client.views_open(trigger_id=command["trigger_id"], view=view)


def read_partners_form(
    view: dict[str, Any], *, current_threshold: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted partners and privacy form as clean settings, and inline errors keyed by block_id."""
    errors: dict[str, str] = {}
    chosen = list(dict.fromkeys(blocks.state_value(view, ids.B_PARTNERS_USERS) or []))
    about = " ".join((blocks.state_value(view, ids.B_PARTNERS_ABOUT) or "").split())
    keep_hard = "ok" in (blocks.state_value(view, ids.B_PARTNERS_ABOUT_OK) or [])
    if chosen and len(about) < 20:
        errors[ids.B_PARTNERS_ABOUT] = (
            "Say in a sentence or two what the project is about, in everyday words. "
            "Partners see this instead of the project's name."
        )
    elif about and not keep_hard and too_hard_for_partners(about):
        errors[ids.B_PARTNERS_ABOUT] = (
            f"This reads at about age {reading_age(about)}. Partners should be able to read it at age 9 to 11: "
            "use shorter sentences and everyday words. Or tick the box below to use it as written."
        )
    threshold_text = (blocks.state_value(view, ids.B_PRIVACY_ANONYMITY) or "").strip()
    threshold = current_threshold
    if threshold_text:
        try:
            threshold = int(threshold_text)
        except ValueError:
            errors[ids.B_PRIVACY_ANONYMITY] = "Write a whole number, such as 3 or 5."
        else:
            if threshold < current_threshold:
                errors[ids.B_PRIVACY_ANONYMITY] = (
                    f"It can be raised but not lowered below {current_threshold}: answers people gave when it "
                    "was higher would become easier to trace."
                )
            elif threshold > 50:
                errors[ids.B_PRIVACY_ANONYMITY] = "Choose a number up to 50."
    retention_key = blocks.state_value(view, ids.B_PRIVACY_RETENTION)
    settings = {
        "partners": chosen,
        "about": about,
        "invite": "now" in (blocks.state_value(view, ids.B_PARTNERS_INVITE) or []),
        "threshold": threshold,
        "retention": pb.RETENTION_CHOICES[retention_key][1]
        if retention_key in pb.RETENTION_CHOICES
        else "keep",
    }
    return settings, errors


def handle_partners_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    project_id = claims.metadata_id(view, "project_id") or 0
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not repo.is_lead(session, project_id=project_id, user_id=user_id):
            ack(
                response_action="errors",
                errors={ids.B_PARTNERS_USERS: "Only the project's leads can change partners."},
            )
            return
        settings, errors = read_partners_form(view, current_threshold=max(3, project.anonymity_threshold))
        leads = {m.user_id for m in repo.members(session, project_id=project_id, role="lead")}
        overlap = leads & set(settings["partners"])
        if overlap:
            errors[ids.B_PARTNERS_USERS] = (
                "A person can be a lead or a service-user partner, not both: "
                + ", ".join(f"<@{u}>" for u in sorted(overlap))
            )
        if errors:
            ack(response_action="errors", errors=errors)
            return
        answers_repo.set_partners(session, project=project, user_ids=settings["partners"], added_by=user_id)
        answers_repo.set_privacy(
            session,
            project=project,
            about=settings["about"],
            threshold=settings["threshold"],
            retention_days=settings["retention"],
            changed_by=user_id,
        )
    ack()
    after_partners_changed(client, engine, team_id=team_id, project_id=project_id, invite=settings["invite"])


def after_partners_changed(
    client: WebClient, engine: Engine, *, team_id: str, project_id: int, invite: bool = True
) -> None:
    if invite:
        invite_pending_partners(client, engine, team_id=team_id, project_id=project_id)
    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


# --- buttons in partners' DMs ----------------------------------------------------------------------------------


def _project_id_from(session: Session, body: dict[str, Any], team_id: str) -> int | None:
    """Partner buttons carry a project id, or (on prompts) a delivery id that leads to one."""
    value = claims.action_json(body)
    if "project_id" in value:
        return claims.parse_id(value["project_id"])
    if "delivery_id" in value:
        delivery = answers_repo.get_delivery(
            session, team_id=team_id, delivery_id=claims.parse_id(value["delivery_id"]) or 0
        )
        return delivery.project_id if delivery else None
    return None


def _reply(
    client: WebClient, body: dict[str, Any], user_id: str, message: tuple[list[blocks.Block], str]
) -> None:
    channel = (body.get("channel") or {}).get("id") or user_id
    reply_blocks, text = message
    client.chat_postMessage(channel=channel, blocks=reply_blocks, text=text)


def handle_consent(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
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
            respond(
                text="Thank you. You're no longer listed as a partner on this project, so there is nothing to do.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        answers_repo.set_partner_state(
            session,
            partner=partner,
            consent="given" if said_yes else "declined",
            stopped=False if said_yes else None,
        )
        name, share = project.partner_description, partner.share_in_channel
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id")
    if channel and message.get("ts"):
        client.chat_update(
            channel=channel,
            ts=message["ts"],
            text="You were asked to help with a project.",
            blocks=pb.consent_recorded_blocks(about=name, said_yes=said_yes),
        )
    if said_yes:
        _reply(
            client,
            body,
            user_id,
            pb.consent_thanks_message(about=name, project_id=project.id or 0, share_in_channel=share),
        )
    else:
        _reply(client, body, user_id, pb.declined_message(about=name))
    home.publish_for_project(client, engine, team_id=team_id, project_id=project.id or 0)


def handle_partner_state(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
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
            respond(
                text="You're not listed as a partner on this project any more, so you won't get its questions.",
                response_type="ephemeral",
                replace_original=False,
            )
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
        name, pid = project.partner_description, project.id
    _reply(
        client,
        body,
        user_id,
        pb.partner_state_message(about=name, project_id=pid, state=state, lead_mentions=leads),
    )


def handle_partner_share(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    share = claims.action_json(body).get("share") is True
    with unit_of_work(engine) as session:
        project_id = _project_id_from(session, body, team_id)
        partner = sched.member(session, project_id=project_id or 0, user_id=user_id, role="partner")
        if partner is None or partner.consent != "given":
            respond(
                text="You're not taking part in this project at the moment, so there is nothing to change.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        answers_repo.set_partner_state(session, partner=partner, share_in_channel=share)
    _reply(client, body, user_id, pb.share_setting_message(share=share))


def register(app: App) -> None:
    app.view(ids.CB_PARTNERS)(
        guard(
            handle_partners_submission,
            Rule(access.form, need="lead", saved=("The partner list was saved", "`/mfi partners`")),
        )
    )
    app.action(ids.A_PARTNER_CONSENT_YES)(guard(handle_consent, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_CONSENT_NO)(guard(handle_consent, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_PAUSE)(guard(handle_partner_state, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_RESUME)(guard(handle_partner_state, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_STOP)(guard(handle_partner_state, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PARTNER_SHARE)(guard(handle_partner_share, Rule(access.value_delivery, need="partner")))
