"""/mfi schedule: the schedule form (team prompts, partner questions, the leads' nudge), pause and resume, and
saving the form."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.core.schedule_rules import REGIONS
from bot.services import schedules
from bot.services.engine import Engine
from handlers import blocks, claims
from handlers.blocks import ids
from handlers.blocks import prompts as pb
from handlers.partners import invite_pending_partners
from handlers.prompts.common import not_a_lead_text

KIND_WORDS = {
    "team": "team_prompt",
    "partners": "partner_prompt",
    "partner": "partner_prompt",
    "nudge": "lead_nudge",
}
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def schedule_lines(lines: Sequence[schedules.ScheduleLine]) -> list[tuple[str, str, list[str], bool]]:
    """(label, description, next three occurrences, paused) for each of the project's schedules."""
    return [
        (
            pb.KIND_LABELS[line.kind],
            line.description,
            [pb.when_text(t, line.timezone) for t in line.upcoming],
            line.paused,
        )
        for line in lines
    ]


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
    found = schedules.schedule_command(
        engine,
        team_id=context.team_id,
        channel_id=context.channel_id,
        user_id=context.user_id,
        now=datetime.now(UTC),
        pause=None if shortcut is None else shortcut == "pause",
        kinds=None if target == "all" else [KIND_WORDS[target]],
    )
    if found is None:
        respond(
            text="There is no project in this channel yet. Start one with `/mfi new`.",
            response_type="ephemeral",
        )
        return
    if isinstance(found, schedules.NotLead):
        respond(text=not_a_lead_text(found), response_type="ephemeral")
        return
    if isinstance(found, schedules.Paused):
        # Told after the commit, so what the lead reads is what the scheduler will see.
        summary = pb.schedule_summary_text(found.project_name, schedule_lines(found.lines))
        respond(
            text=f"{'Paused' if shortcut == 'pause' else 'Resumed'}. {summary}", response_type="ephemeral"
        )
        return
    view = pb.schedule_modal(
        project_id=found.project_id,
        channel_id=found.channel_id,
        project_name=found.project_name,
        forms=[
            pb.ScheduleForm(
                kind=k.kind,
                weekdays=k.weekdays,
                hour=k.hour,
                minute=k.minute,
                every_weeks=k.every_weeks,
                paused=k.paused,
            )
            for k in found.kinds
        ],
        timezone=found.timezone,
        use_recipient_tz=found.use_recipient_tz,
        skip_weekends=found.skip_weekends,
        skip_bank_holidays=found.skip_bank_holidays,
        region=found.region,
    )
    client.views_open(trigger_id=command["trigger_id"], view=view)


def _selected_time(view: dict[str, Any], block_id: str) -> str | None:
    item = (view.get("state", {}).get("values", {}).get(block_id) or {}).get(ids.A_INPUT) or {}
    value = item.get("selected_time")
    return str(value) if value else None


def read_schedule_form(view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted schedule form as clean settings, and inline errors keyed by block_id."""
    errors: dict[str, str] = {}
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in schedules.SCHEDULE_KINDS:
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
    """Save the form in one short unit of work (so a failure keeps it open, with what was chosen), then show the
    saved schedule in the modal, and ask partners not yet asked when partner questions are on."""
    settings, errors = read_schedule_form(view)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    saved = schedules.save_schedule(
        engine,
        team_id=team_id,
        project_id=claims.metadata_id(view, "project_id") or 0,
        user_id=user_id,
        settings=settings,
        now=datetime.now(UTC),
    )
    if isinstance(saved, str):
        ack(response_action="errors", errors={ids.B_SCHEDULE_TIMEZONE: saved})
        return
    note = None
    if saved.waiting and saved.partners_on:
        note = (
            "Partners not asked yet get a message now, asking for their consent."
            if saved.can_invite
            else "Partners have not been asked yet: describe the project for them in plain words in "
            "`/mfi partners`, and they will be asked."
        )
    lines = schedule_lines(saved.lines)
    ack(
        response_action="update",
        view=pb.schedule_saved_view(project_name=saved.project_name, lines=lines, note=note),
    )
    if saved.waiting and saved.partners_on and saved.can_invite:
        invite_pending_partners(client, engine, team_id=team_id, project_id=saved.project_id)
