"""Reminders: one follow-up per prompt, in the thread for the team, by DM to partners who have not answered.

At most once: the marker is set before posting, so a crash there loses the reminder rather than doubling it.
"""

from __future__ import annotations

import logging
import urllib.error
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.services.delivery import posting
from bot.services.delivery.context import RunContext
from bot.services.delivery.model import RunReport, delivery_key, delivery_metadata
from bot.services.delivery.planning import partner_prompt, still_wanted
from storage import planning_repo
from storage import schedule_repo as sched
from storage.db import unit_of_work

if TYPE_CHECKING:
    from bot.services.delivery import Deliverer

logger = logging.getLogger(__name__)


def remind(deliverer: Deliverer, ctx: RunContext, report: RunReport) -> None:
    config = deliverer.config
    sent_before = ctx.now - config.reminder_after
    with unit_of_work(deliverer.engine) as session:
        candidates = sched.reminder_candidates(
            session,
            kinds=("team_prompt", "partner_prompt"),
            sent_before=sent_before,
            sent_after=sent_before - config.reminder_window,
        )
        schedules, projects = planning_repo.schedules_and_projects(
            session, schedule_ids={d.schedule_id for d in candidates}
        )
        due: list[tuple[int, str, str, str, str, str | None, str, str]] = []
        for delivery in candidates:
            assert delivery.id is not None
            schedule = schedules.get(delivery.schedule_id)
            project = projects.get(delivery.project_id)
            if schedule is None or project is None or schedule.paused or schedule.disabled_reason:
                continue
            if not delivery.prompt_id or not delivery.channel_id or not delivery.message_ts:
                continue
            if sched.newer_round_sent(session, delivery=delivery):
                # The next prompt is already out; a reminder about the old one is noise.
                sched.settle_reminder(session, delivery_id=delivery.id, now=ctx.now)
                continue
            if delivery.kind == "partner_prompt":
                partner = sched.member(
                    session, project_id=project.id or 0, user_id=delivery.recipient, role="partner"
                )
                if (
                    sched.has_answered(session, delivery_id=delivery.id, user_id=delivery.recipient)
                    or partner is None
                    or not still_wanted(partner)
                ):
                    # Settled like the reminded ones, at the same moment: the ledger keeps no trace of who
                    # had answered (the flag is cleared, and reminded_at is set either way).
                    sched.settle_reminder(session, delivery_id=delivery.id, now=ctx.now)
                    continue
            due.append(
                (
                    delivery.id,
                    delivery.kind,
                    delivery.prompt_id,
                    delivery.channel_id,
                    delivery.message_ts,
                    schedule.enterprise_id,
                    project.name,
                    project.partner_description or project.name,
                )
            )
    for delivery_id, kind, prompt_id, channel_id, message_ts, enterprise_id, project_name, about in due:
        with unit_of_work(deliverer.engine) as session:
            row = sched.get_delivery(session, delivery_id)
            assert row is not None
            team_id = row.team_id
            # Its own key, so a reminder is never mistaken for the prompt it follows up.
            reminder_key = delivery_key(row.schedule_id, row.occurrence, row.recipient) + ":reminder"
            if not sched.claim_reminder(session, delivery_id=delivery_id, now=ctx.now):
                continue
        client = ctx.client(team_id, enterprise_id)
        if client is None:
            continue
        to_partner = kind == "partner_prompt"
        prompt = partner_prompt(deliverer, prompt_id) if to_partner else deliverer.catalogue.get(prompt_id)
        # For the team the reminder goes to everyone in the thread and names nobody: answers can be
        # anonymous, so who has answered is not something the channel may learn.
        blocks, text = deliverer.messages.reminder_message(
            prompt,
            project_name=project_name,
            delivery_id=delivery_id,
            audience="partner" if to_partner else "team",
            about=about,
        )
        deliverer.throttle.wait(channel_id)
        try:
            posting.post_message(
                client,
                channel=channel_id,
                text=text,
                blocks=blocks,
                thread_ts=message_ts,
                metadata=delivery_metadata(delivery_id, reminder_key),
            )
        except (SlackApiError, urllib.error.URLError, OSError) as exc:
            logger.warning("Reminder for delivery %s not sent: %s", delivery_id, exc)
            continue
        report.add("reminded")
