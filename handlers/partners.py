"""Service-user partners: /mfi partners, the consent DM, and Pause / Resume / Stop / sharing from any partner DM."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.readability import reading_age, too_hard_for_partners
from bot.services import partners as service
from bot.services.engine import Engine
from bot.services.partners import PartnerStatus
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.blocks import prompts as pb

logger = logging.getLogger(__name__)


def _mentions(user_ids: tuple[str, ...]) -> list[str]:
    return [f"<@{u}>" for u in user_ids]


def invite_pending_partners(client: WebClient, engine: Engine, *, team_id: str, project_id: int) -> int:
    """Send the consent DM to every partner not yet asked; returns how many were sent.

    Each request is claimed in the scheduler's delivery ledger first (the same row the scheduler would
    write), so a partner is asked once even if the scheduler notices them at the same moment.
    """
    requests = service.claim_consent_requests(engine, team_id=team_id, project_id=project_id)
    if requests is None:
        return 0  # partners are told what the project is about in plain words first
    consent_blocks, text = pb.partner_consent_message(
        about=requests.about, lead_names=_mentions(requests.leads), project_id=project_id
    )
    sent = 0
    for delivery_id, user_id in requests.claimed:
        try:
            result = client.chat_postMessage(channel=user_id, blocks=consent_blocks, text=text)
        except SlackApiError as exc:
            logger.warning("Could not send the consent message to %s: %s", user_id, exc.response.get("error"))
            service.consent_failed(engine, delivery_id=delivery_id, error=str(exc.response.get("error")))
            continue
        service.consent_sent(
            engine,
            delivery_id=delivery_id,
            channel_id=str(result.get("channel") or ""),
            message_ts=str(result.get("ts") or ""),
        )
        sent += 1
    return sent


# --- /mfi partners ---------------------------------------------------------------------------------------------


def _status_line(statuses: tuple[PartnerStatus, ...]) -> list[str]:
    lines = []
    for m in statuses:
        if m.stopped:
            state = "stopped"
        elif m.consent == "declined":
            state = "said no thanks"
        elif m.consent == "pending":
            state = {
                "sent": "asked, no reply yet",
                "claimed": "being asked now",
                "failed": "the message asking them could not be sent",
            }.get(m.asked, "not asked yet")
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
    form = service.partners_form(
        engine, team_id=context.team_id, channel_id=context.channel_id, user_id=context.user_id
    )
    if form.status == "no_project":
        respond(
            text="There is no project in this channel yet. Start one with `/mfi new`.",
            response_type="ephemeral",
        )
        return
    if form.status == "not_lead":
        leads = ", ".join(_mentions(form.leads)) or "the project's leads"
        respond(
            text=f"Only the project's leads can add or remove service-user partners. Ask {leads}.",
            response_type="ephemeral",
        )
        return
    view = pb.partners_modal(
        project_id=form.project_id,
        project_name=form.project_name,
        partners=list(form.partners),
        status_lines=_status_line(form.statuses),
        about=form.about,
        anonymity_threshold=form.anonymity_threshold,
        retention_days=form.retention_days,
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
    not_lead = {ids.B_PARTNERS_USERS: "Only the project's leads can change partners."}
    edit = service.partners_edit(engine, team_id=team_id, project_id=project_id, user_id=user_id)
    if edit is None:
        ack(response_action="errors", errors=not_lead)
        return
    settings, errors = read_partners_form(view, current_threshold=edit.current_threshold)
    overlap = edit.leads & set(settings["partners"])
    if overlap:
        errors[ids.B_PARTNERS_USERS] = (
            "A person can be a lead or a service-user partner, not both: "
            + ", ".join(f"<@{u}>" for u in sorted(overlap))
        )
    if errors:
        ack(response_action="errors", errors=errors)
        return
    saved = service.save_partners(
        engine,
        team_id=team_id,
        project_id=project_id,
        user_id=user_id,
        partners=settings["partners"],
        about=settings["about"],
        threshold=settings["threshold"],
        retention_days=settings["retention"],
    )
    if not saved:  # no longer a lead between the check and the save
        ack(response_action="errors", errors=not_lead)
        return
    ack()
    after_partners_changed(client, engine, team_id=team_id, project_id=project_id, invite=settings["invite"])


def after_partners_changed(
    client: WebClient, engine: Engine, *, team_id: str, project_id: int, invite: bool = True
) -> None:
    if invite:
        invite_pending_partners(client, engine, team_id=team_id, project_id=project_id)
    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


# --- buttons in partners' DMs ----------------------------------------------------------------------------------


def _claimed_ids(body: dict[str, Any]) -> dict[str, int | None]:
    """Partner buttons carry a project id, or (on prompts) a delivery id that leads to one: both are claims."""
    value = claims.action_json(body)
    if "project_id" in value:
        return {"project_id": claims.parse_id(value["project_id"]), "delivery_id": None}
    if "delivery_id" in value:
        return {"project_id": None, "delivery_id": claims.parse_id(value["delivery_id"]) or 0}
    return {"project_id": None, "delivery_id": None}


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
    choice = service.record_consent(
        engine, team_id=team_id, user_id=user_id, said_yes=said_yes, **_claimed_ids(body)
    )
    if choice is None:
        respond(
            text="Thank you. You're no longer listed as a partner on this project, so there is nothing to do.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    name, share = choice.about, choice.share_in_channel
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
            pb.consent_thanks_message(about=name, project_id=choice.project_id, share_in_channel=share),
        )
    else:
        _reply(client, body, user_id, pb.declined_message(about=name))
    home.publish_for_project(client, engine, team_id=team_id, project_id=choice.project_id)


def handle_partner_state(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    action_id = body["actions"][0]["action_id"]
    wanted = {ids.A_PARTNER_STOP: "stop", ids.A_PARTNER_PAUSE: "pause"}.get(action_id, "resume")
    choice = service.change_partner_state(
        engine, team_id=team_id, user_id=user_id, wanted=wanted, **_claimed_ids(body)
    )
    if choice is None:
        respond(
            text="You're not listed as a partner on this project any more, so you won't get its questions.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    _reply(
        client,
        body,
        user_id,
        pb.partner_state_message(
            about=choice.about,
            project_id=choice.project_id,
            state=choice.state,
            lead_mentions=_mentions(choice.leads),
        ),
    )


def handle_partner_share(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    share = claims.action_json(body).get("share") is True
    if not service.set_sharing(engine, team_id=team_id, user_id=user_id, share=share, **_claimed_ids(body)):
        respond(
            text="You're not taking part in this project at the moment, so there is nothing to change.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
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
