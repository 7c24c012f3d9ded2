"""Reflective prompts: /mfi schedule and /mfi prompts, the Answer modal, pins and skips, the leads' Home section and CSV export."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.prompts import STAGE_IDS, ProjectState, load_catalogue, stages_for
from bot.core.schedule_rules import REGIONS, ScheduleSpec, describe, next_occurrence
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.blocks import prompts as pb
from handlers.partners import invite_pending_partners
from storage import answers_repo
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project, Schedule

logger = logging.getLogger(__name__)

KIND_WORDS = {
    "team": "team_prompt",
    "partners": "partner_prompt",
    "partner": "partner_prompt",
    "nudge": "lead_nudge",
}
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _not_a_lead_text(session: Session, project: Project) -> str:
    assert project.id is not None
    leads = [f"<@{m.user_id}>" for m in repo.members(session, project_id=project.id, role="lead")]
    who = ", ".join(leads) if leads else "the project's leads"
    return (
        f"Only the project's leads can change this, so that prompts stay predictable for everyone. "
        f"The leads of *{blocks.typed(project.name)}* are {who}: ask one of them."
    )


def project_state(session: Session, project: Project) -> ProjectState:
    """What the prompt chooser knows about the project (the same view the scheduler takes)."""
    return sched.project_state(session, project)


def schedules_by_kind(session: Session, project: Project) -> dict[str, Schedule]:
    """The project's three schedules, created with the defaults if missing."""
    found = {s.kind: s for s in sched.ensure_default_schedules(session, project=project)}
    for kind in answers_repo.SCHEDULE_KINDS:
        if kind not in found:
            # Another listener (or the scheduler) created it a moment ago; its row is committed by now.
            row = sched.get_schedule(session, project_id=project.id or 0, kind=kind)
            assert row is not None
            found[kind] = row
    return {kind: found[kind] for kind in answers_repo.SCHEDULE_KINDS}


def _set_paused(session: Session, schedule: Schedule, paused: bool, by: str) -> None:
    if schedule.paused != paused:
        (sched.pause if paused else sched.resume)(session, schedule=schedule, by=by)


# --- /mfi schedule ---------------------------------------------------------------------------------------------


def _upcoming(spec: ScheduleSpec, now: datetime, count: int = 3) -> list[str]:
    found: list[str] = []
    after = now
    for _ in range(count):
        after = next_occurrence(spec, after)
        found.append(pb.when_text(after, spec.timezone))
    return found


def schedule_lines(
    session: Session, project: Project, now: datetime
) -> list[tuple[str, str, list[str], bool]]:
    """(label, description, next three occurrences, paused) for each of the project's schedules."""
    lines = []
    for kind, schedule in schedules_by_kind(session, project).items():
        spec = sched.spec_for(schedule, region=project.region)
        description = describe(spec)
        if kind != "team_prompt" and schedule.use_recipient_tz:
            description += "; direct messages arrive at this time in each person's own Slack time zone"
        lines.append((pb.KIND_LABELS[kind], description, _upcoming(spec, now), schedule.paused))
    return lines


def handle_schedule_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id and context.user_id
    words = rest.lower().split()
    shortcut = words[0] if words and words[0] in ("pause", "resume") else None
    target = words[1] if shortcut and len(words) > 1 else "all"
    if target != "all" and target not in KIND_WORDS:
        respond(
            text="Say which: `/mfi schedule pause` (everything), or `team`, `partners` or `nudge` after it.",
            response_type="ephemeral",
        )
        return
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=context.team_id, channel_id=context.channel_id)
        if project is None or project.id is None:
            respond(
                text="There is no project in this channel yet. Start one with `/mfi new`.",
                response_type="ephemeral",
            )
            return
        if not repo.is_lead(session, project_id=project.id, user_id=context.user_id):
            respond(text=_not_a_lead_text(session, project), response_type="ephemeral")
            return
        schedules = schedules_by_kind(session, project)
        if shortcut:
            for kind in list(schedules) if target == "all" else [KIND_WORDS[target]]:
                _set_paused(session, schedules[kind], shortcut == "pause", context.user_id)
            session.flush()
            summary = pb.schedule_summary_text(
                project.name, schedule_lines(session, project, datetime.now(UTC))
            )
        else:
            view = pb.schedule_modal(
                project_id=project.id,
                channel_id=project.channel_id,
                project_name=project.name,
                forms=[
                    pb.ScheduleForm(
                        kind=k,
                        weekdays=tuple(s.weekdays),
                        hour=s.hour,
                        minute=s.minute,
                        every_weeks=s.every_weeks,
                        paused=s.paused,
                    )
                    for k, s in schedules.items()
                ],
                timezone=project.timezone,
                use_recipient_tz=schedules["partner_prompt"].use_recipient_tz,
                skip_weekends=schedules["team_prompt"].skip_weekends,
                skip_bank_holidays=schedules["team_prompt"].skip_bank_holidays,
                region=project.region,
            )
    if shortcut:
        # Told after the commit, so what the lead reads is what the scheduler will see.
        respond(
            text=f"{'Paused' if shortcut == 'pause' else 'Resumed'}. {summary}", response_type="ephemeral"
        )
        return
    client.views_open(trigger_id=command["trigger_id"], view=view)


def _selected_time(view: dict[str, Any], block_id: str) -> str | None:
    item = (view.get("state", {}).get("values", {}).get(block_id) or {}).get(ids.A_INPUT) or {}
    value = item.get("selected_time")
    return str(value) if value else None


def read_schedule_form(view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted schedule form as clean settings, and inline errors keyed by block_id."""
    errors: dict[str, str] = {}
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in answers_repo.SCHEDULE_KINDS:
        chosen_days = [
            claims.parse_int(d) for d in blocks.state_value(view, ids.B_SCHEDULE_DAYS + kind) or []
        ]
        days = sorted({d for d in chosen_days if d is not None and d <= 6})
        paused = "paused" in (blocks.state_value(view, ids.B_SCHEDULE_PAUSED + kind) or [])
        time_text = _selected_time(view, ids.B_SCHEDULE_TIME + kind) or ""
        match = _TIME.match(time_text)
        if not days and not paused:
            errors[ids.B_SCHEDULE_DAYS + kind] = "Choose at least one day, or tick Paused below."
        if match is None:
            errors[ids.B_SCHEDULE_TIME + kind] = "Choose a time of day, such as 10:00."
        every = claims.parse_int(blocks.state_value(view, ids.B_SCHEDULE_EVERY + kind) or "1")
        if every not in (1, 2):
            errors[ids.B_SCHEDULE_EVERY + kind] = "Choose every week or every two weeks."
        per_kind[kind] = {
            "weekdays": days,
            "hour": int(match.group(1)) if match else 0,
            "minute": int(match.group(2)) if match else 0,
            "every_weeks": every if every in (1, 2) else 1,
            "paused": paused,
        }
    timezone = (blocks.state_value(view, ids.B_SCHEDULE_TIMEZONE) or "").strip()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors[ids.B_SCHEDULE_TIMEZONE] = (
            f"I don't know the time zone “{timezone[:40]}”. Use a name like Europe/London or Europe/Dublin."
        )
    if "/" not in timezone and ids.B_SCHEDULE_TIMEZONE not in errors and timezone != "UTC":
        errors[ids.B_SCHEDULE_TIMEZONE] = (
            "Use a place-based name like Europe/London, so clocks change with the seasons."
        )
    options = blocks.state_value(view, ids.B_SCHEDULE_OPTIONS) or []
    region = blocks.state_value(view, ids.B_SCHEDULE_REGION) or "ENG"
    if region not in REGIONS:
        errors[ids.B_SCHEDULE_REGION] = "Choose England, Wales, Scotland or Northern Ireland."
    settings = {
        "kinds": per_kind,
        "timezone": timezone,
        "use_recipient_tz": "recipient_tz" in options,
        "skip_weekends": "skip_weekends" in options,
        "skip_bank_holidays": "skip_bank_holidays" in options,
        "region": region,
    }
    return settings, errors


def handle_schedule_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    settings, errors = read_schedule_form(view)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    now = datetime.now(UTC)
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(
                session, team_id=team_id, project_id=claims.metadata_id(view, "project_id") or 0
            )
            if (
                project is None
                or project.id is None
                or not repo.is_lead(session, project_id=project.id, user_id=user_id)
            ):
                ack(
                    response_action="errors",
                    errors={ids.B_SCHEDULE_TIMEZONE: "Only the project's leads can change the schedule."},
                )
                return
            answers_repo.set_project_zone(
                session,
                project=project,
                timezone=settings["timezone"],
                region=settings["region"],
                changed_by=user_id,
            )
            for kind, schedule in schedules_by_kind(session, project).items():
                form = settings["kinds"][kind]
                fields: dict[str, Any] = {
                    # A paused schedule may have no days ticked; it keeps its old days for when it resumes.
                    "weekdays": form["weekdays"] or list(schedule.weekdays),
                    "hour": form["hour"],
                    "minute": form["minute"],
                    "every_weeks": form["every_weeks"],
                    "timezone": settings["timezone"],
                    "skip_weekends": settings["skip_weekends"],
                    "skip_bank_holidays": settings["skip_bank_holidays"],
                }
                if kind != "team_prompt":
                    fields["use_recipient_tz"] = settings["use_recipient_tz"]
                if form["every_weeks"] > 1 and form["every_weeks"] != schedule.every_weeks:
                    # A new fortnightly rhythm starts this week rather than on an arbitrary fixed week.
                    fields["anchor"] = now.astimezone(ZoneInfo(settings["timezone"])).date()
                sched.update_schedule(session, schedule=schedule, updated_by=user_id, now=now, **fields)
                _set_paused(session, schedule, form["paused"], user_id)
            repo.audit(
                session, team_id=team_id, project_id=project.id, user_id=user_id, action="schedule.edit"
            )
            session.flush()
            lines = schedule_lines(session, project, now)
            name, project_id = project.name, project.id
            # Turning partner questions on is when partners not yet asked get the consent message.
            waiting = bool(sched.partners_awaiting_consent(session, project_id=project.id))
            partners_on = not settings["kinds"]["partner_prompt"]["paused"]
            can_invite = bool(project.partner_description.strip())
    except SQLAlchemyError:
        logger.exception("Saving the schedule failed")
        ack(
            response_action="errors",
            errors={
                ids.B_SCHEDULE_TIMEZONE: "We couldn't save this just now (a database "
                "problem). Everything you chose is still here: press Save again in a moment."
            },
        )
        return
    note = None
    if waiting and partners_on:
        note = (
            "Partners not asked yet get a message now, asking for their consent."
            if can_invite
            else "Partners have not been asked yet: describe the project for them in plain words in "
            "`/mfi partners`, and they will be asked."
        )
    ack(response_action="update", view=pb.schedule_saved_view(project_name=name, lines=lines, note=note))
    if waiting and partners_on and can_invite:
        invite_pending_partners(client, engine, team_id=team_id, project_id=project_id)


# --- answering -------------------------------------------------------------------------------------------------


def _delivery_id(body: dict[str, Any]) -> int | None:
    return claims.parse_id(claims.action_json(body).get("delivery_id"))


def _channel_crowd(client: WebClient, channel_id: str, bot_user_id: str | None) -> int | None:
    """How many people (other than the bot) are in the channel: who could have answered its prompt."""
    people, cursor = 0, None
    try:
        for _ in range(50):
            page = client.conversations_members(channel=channel_id, limit=200, cursor=cursor)
            people += sum(1 for m in page.get("members") or [] if m != bot_user_id)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
    except SlackApiError as exc:
        logger.warning("Could not count the people in %s: %s", channel_id, exc.response.get("error"))
        return None
    return people


@dataclass(frozen=True)
class _Asked:
    """An answerable delivery as the answer form needs it."""

    delivery_id: int
    prompt_id: str
    project_name: str
    partner: bool
    can_share: bool
    crowd: int
    threshold: int

    @property
    def too_few(self) -> bool:
        return self.crowd < self.threshold


def _asked(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str,
    delivery_id: int,
    user_id: str,
    bot_user_id: str | None,
) -> _Asked | None:
    """The delivery, whether this person is a partner on it, and how many people could have given its answer."""
    with unit_of_work(engine) as session:
        delivery = answers_repo.get_delivery(session, team_id=team_id, delivery_id=delivery_id)
        if delivery is None or not delivery.prompt_id:
            return None
        channel = delivery.channel_id if delivery.kind == "team_prompt" else None
    crowd_now = _channel_crowd(client, channel, bot_user_id) if channel else None
    with unit_of_work(engine) as session:
        delivery = answers_repo.get_delivery(session, team_id=team_id, delivery_id=delivery_id)
        project = session.get(Project, delivery.project_id) if delivery else None
        if delivery is None or project is None or project.id is None or not delivery.prompt_id:
            return None
        if crowd_now is not None:
            answers_repo.record_crowd(session, delivery=delivery, crowd=crowd_now)
        partner = sched.member(session, project_id=project.id, user_id=user_id, role="partner")
        pool = answers_repo.pooling(session, project=project)
        found = answers_repo.round_for(session, project=project, delivery=delivery)
        crowd = pool.crowd_if_answered(found) if found is not None else 0
        return _Asked(
            delivery_id=delivery.id or 0,
            prompt_id=delivery.prompt_id,
            project_name=project.name,
            partner=partner is not None,
            can_share=partner is None or partner.consent == "given",
            crowd=crowd,
            threshold=pool.threshold,
        )


def handle_answer_open(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    asked = _asked(
        client,
        engine,
        team_id=team_id,
        delivery_id=_delivery_id(body) or 0,
        user_id=user_id,
        bot_user_id=context.bot_user_id,
    )
    if asked is None:
        respond(
            text="Sorry, I can't find that question any more. The next one will come as usual.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    try:
        prompt = load_catalogue().get(asked.prompt_id)
    except KeyError:
        respond(
            text="Sorry, that question has been retired, so it can't be answered any more.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    question = prompt.plain if asked.partner and prompt.plain else prompt.text
    view = pb.answer_modal(
        delivery_id=asked.delivery_id,
        project_name=asked.project_name,
        question=question,
        follow_up=prompt.follow_up,
        partner=asked.partner,
        can_share=asked.can_share,
        too_few=asked.too_few,
        crowd=asked.crowd,
    )
    client.views_open(trigger_id=body["trigger_id"], view=view)


def handle_answer_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    text = (blocks.state_value(view, ids.B_ANSWER_TEXT) or "").strip()
    choices = blocks.state_value(view, ids.B_ANSWER_OPTIONS) or []
    mode = blocks.state_value(view, ids.B_ANSWER_MODE)  # only on a form that warned about too few people
    if len(text) < 2:
        ack(
            response_action="errors",
            errors={ids.B_ANSWER_TEXT: "Write a few words, or close this form to skip the question."},
        )
        return
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    delivery_id = claims.metadata_id(view, "delivery_id") or 0
    anonymous = mode == "wait" if mode else "anonymous" in choices
    try:
        with unit_of_work(engine) as session:
            delivery = answers_repo.get_delivery(session, team_id=team_id, delivery_id=delivery_id)
            project = session.get(Project, delivery.project_id) if delivery else None
            if delivery is None or project is None or project.id is None or not delivery.prompt_id:
                ack(
                    response_action="errors",
                    errors={ids.B_ANSWER_TEXT: "Sorry, this question no longer exists."},
                )
                return
            partner = sched.member(session, project_id=project.id, user_id=user_id, role="partner")
            stored = answers_repo.add_answer(
                session,
                project=project,
                delivery=delivery,
                user_id=user_id,
                text=text,
                anonymous=anonymous,
                # A partner's answer reaches the channel only with their consent and their tick on this answer.
                shared="share" in choices and (partner is None or partner.consent == "given"),
                from_partner=partner is not None,
            )
            shared = stored.shared
            # An anonymous answer is shown only once enough people could have given it.
            held = anonymous and not any(
                s.answer.id == stored.id for s in answers_repo.visible_answers(session, project=project)
            )
            where = (
                (delivery.channel_id, delivery.message_ts) if partner is None else (project.channel_id, None)
            )
            channel_for_thanks = delivery.channel_id or project.channel_id
            project_id = project.id
    except SQLAlchemyError:
        logger.exception("Saving an answer failed")
        ack(
            response_action="errors",
            errors={
                ids.B_ANSWER_TEXT: "We couldn't save your answer just now. "
                "It is still here: press Send again in a moment."
            },
        )
        return
    ack()
    posted = shared and not held
    if posted:
        channel, thread_ts = where
        client.chat_postMessage(
            channel=channel or channel_for_thanks,
            thread_ts=thread_ts,
            text=pb.answer_thread_text(
                text=text, user_id=None if anonymous else user_id, partner=partner is not None
            ),
        )
    client_thanks(
        client,
        user_id=user_id,
        partner=partner is not None,
        anonymous=anonymous,
        posted=posted,
        held=held,
        channel=channel_for_thanks,
    )
    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


def client_thanks(
    client: WebClient, *, user_id: str, partner: bool, anonymous: bool, posted: bool, held: bool, channel: str
) -> None:
    """Tell the person exactly what happened to their answer (privately)."""
    privacy = "anonymously (nothing that leads to you is stored with it)" if anonymous else "with your name"
    if held:
        after = (
            "The project leads will read it once more people have been asked, together with their answers. "
            "It will not be posted in the channel."
        )
    elif posted:
        after = "The team can see it in their channel." if partner else "It is posted in the thread."
    else:
        after = "Only the project leads will read it." if partner else "Only the project leads will see it."
    thanks = f"Thank you. Your answer is saved {privacy}. {after}"
    if partner:
        client.chat_postMessage(channel=user_id, text=thanks)
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user_id, text=thanks)
    except SlackApiError as exc:
        # No user id here: a log line must never tie an answer to a person.
        logger.warning("Could not send the thank-you after an answer: %s", exc.response.get("error"))


# --- pins and skips --------------------------------------------------------------------------------------------


def _choice_target(action: dict[str, Any]) -> tuple[int, str] | None:
    """(project id, prompt id) from a Pin/Skip button's value or a Home select."""
    if isinstance(action.get("selected_option"), dict):
        block_id = str(action.get("block_id") or "")
        project_id = claims.parse_id(block_id.removeprefix(ids.B_PROMPT_CHOICE_PREFIX))
        prompt_id = action["selected_option"].get("value")
    else:
        value = claims.parse_json_object(action.get("value")) or {}
        project_id, prompt_id = claims.parse_id(value.get("project_id")), value.get("prompt_id")
    return (
        (project_id, prompt_id)
        if project_id is not None and isinstance(prompt_id, str) and prompt_id
        else None
    )


def handle_prompt_choice(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    action = body["actions"][0]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    target = _choice_target(action)
    if target is None:
        return
    project_id, prompt_id = target
    choice = {ids.A_PROMPT_PIN: "pin", ids.A_PROMPT_SKIP: "skip"}.get(action["action_id"])
    from_home = (body.get("container") or {}).get("type") == "view"
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or project.id is None:
            return
        if not repo.is_lead(session, project_id=project.id, user_id=user_id):
            if not from_home:
                respond(
                    text=_not_a_lead_text(session, project), response_type="ephemeral", replace_original=False
                )
            return
        try:
            prompt = load_catalogue().get(prompt_id)
        except KeyError:
            return
        if choice is None:
            answers_repo.clear_prompt_choice(
                session, project=project, prompt_id=prompt_id, cleared_by=user_id
            )
        else:
            answers_repo.set_prompt_choice(
                session, project=project, prompt_id=prompt_id, choice=choice, chosen_by=user_id
            )
        stage = prompt.stage
        listing = _prompts_listing(session, project, stage)
    home.publish(client, engine, team_id=team_id, user_id=user_id)
    if not from_home:
        done = {
            "pin": "Pinned: it will be the next team prompt.",
            "skip": "Skipped: it won't be asked.",
            None: "Done: back to the usual rotation for that prompt.",
        }[choice]
        listing_blocks, text = listing
        respond(
            blocks=[blocks.context(done), *listing_blocks][:50],
            text=f"{done} {text}",
            response_type="ephemeral",
            replace_original=True,
        )


def _prompts_listing(session: Session, project: Project, stage: str) -> tuple[list[blocks.Block], str]:
    assert project.id is not None
    pinned, skipped = sched.prompt_choices(session, project_id=project.id)
    states = dict.fromkeys(skipped, "skip")
    if pinned:
        states[pinned] = "pin"
    return pb.prompts_list_message(
        project_id=project.id,
        project_name=project.name,
        stage_id=stage,
        states=states,
        other_stages=[s for s in STAGE_IDS if s != stage],
    )


def handle_prompts_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id and context.user_id
    wanted = rest.strip().lower()
    if wanted and wanted not in STAGE_IDS:
        respond(
            text=f"I don't know the stage `{blocks.typed(wanted[:40])}`. The stages are: "
            + ", ".join(f"`{s}`" for s in STAGE_IDS)
            + ".",
            response_type="ephemeral",
        )
        return
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=context.team_id, channel_id=context.channel_id)
        if project is None or project.id is None:
            respond(
                text="There is no project in this channel yet. Start one with `/mfi new`.",
                response_type="ephemeral",
            )
            return
        if not repo.is_lead(session, project_id=project.id, user_id=context.user_id):
            respond(text=_not_a_lead_text(session, project), response_type="ephemeral")
            return
        stage = wanted or stages_for(project_state(session, project))[0]
        listing, text = _prompts_listing(session, project, stage)
    respond(blocks=listing, text=text, response_type="ephemeral")


# --- export ----------------------------------------------------------------------------------------------------


def _names(client: WebClient, user_ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for user_id in user_ids:
        try:
            user = client.users_info(user=user_id)["user"]
            names[user_id] = str(user.get("real_name") or user.get("name") or user_id)
        except SlackApiError:
            names[user_id] = user_id
    return names


def handle_export_answers(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    project_id = claims.parse_id(claims.action_json(body).get("project_id"))
    if project_id is None:
        return
    catalogue = load_catalogue()
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not repo.is_lead(session, project_id=project_id, user_id=user_id):
            return
        # Only what the team may see: anonymous answers once enough people could have given them, dated by
        # their pool (so a held-back answer's own date cannot single anyone out).
        rows = [
            (
                s.day.isoformat(),
                s.answer.stage,
                s.answer.prompt_id,
                s.answer.text,
                s.answer.user_id,
                s.answer.from_partner,
                "yes" if s.answer.shared else "no",
            )
            for s in reversed(answers_repo.visible_answers(session, project=project))
        ]
        name, zone = project.name, project.timezone
    names = _names(client, {row[4] for row in rows if row[4]})
    table = []
    for day, stage, prompt_id, text, author, partner, shared in rows:
        try:
            question = catalogue.get(prompt_id).text
        except KeyError:
            question = prompt_id
        if author:
            who = names[author] + (" (service-user partner)" if partner else "")
        else:
            # Anonymous answers were stored without a user id, so there is nothing to look up.
            who = "Service-user partner" if partner else "Anonymous"
        table.append(
            {"date": day, "stage": stage, "prompt": question, "answer": text, "from": who, "shared": shared}
        )
    content = pb.answers_csv(table)
    channel = client.conversations_open(users=user_id)["channel"]["id"]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "project"
    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    client.files_upload_v2(
        channel=channel,
        content=content,
        filename=f"answers-{slug}-{today}.csv",
        title=f"Answers to reflective prompts: {name}",
        initial_comment=(
            f"Here are the answers for *{blocks.typed(name)}* as a CSV. Anonymous answers stay anonymous. "
            + "An anonymous answer is included only once enough people could have given it. "
            + "It holds people's own words: keep it within the project team."
        ),
    )


def register(app: App) -> None:
    app.view(ids.CB_SCHEDULE)(
        guard(
            handle_schedule_submission,
            Rule(access.form, need="lead", saved=("The schedule was saved", "`/mfi schedule`")),
        )
    )
    app.view(ids.CB_ANSWER)(
        guard(
            handle_answer_submission,
            Rule(access.form, need="partner", saved=("Your answer was saved", "your Home tab")),
        )
    )
    app.action(ids.A_ANSWER)(guard(handle_answer_open, Rule(access.value_delivery, need="partner")))
    app.action(ids.A_PROMPT_PIN)(guard(handle_prompt_choice, Rule(access.prompt_choice, need="lead")))
    app.action(ids.A_PROMPT_SKIP)(guard(handle_prompt_choice, Rule(access.prompt_choice, need="lead")))
    app.action(ids.A_PROMPT_CLEAR)(guard(handle_prompt_choice, Rule(access.prompt_choice, need="lead")))
    app.action(ids.A_EXPORT_ANSWERS)(guard(handle_export_answers, Rule(access.value_project, need="lead")))
