"""The App Home tab: each person's projects, with what needs doing next."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import pdsa as core_pdsa
from bot.core.prompts import load_catalogue, stages_for
from bot.core.schedule_rules import DEFAULTS, next_occurrence
from bot.services import drivers as drivers_service
from bot.services.pdsa import cycle_info, local_today
from handlers import access, blocks, onboarding
from handlers.blocks import drivers as drivers_blocks
from handlers.blocks import ownership as ownership_blocks
from handlers.blocks import pdsa as pdsa_blocks
from handlers.blocks import prompts as prompts_blocks
from storage import answers_repo, pdsa_repo
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project

logger = logging.getLogger(__name__)

# --- the sections, in the order the Home tab shows them --------------------------------------------------------------------------------------------------


def prompts_section(session: Session, project: Project, role: str, user_id: str) -> list[blocks.Block]:
    """Leads see this week's prompt, the latest answers, pin/skip and the export."""
    if role != "lead" or project.id is None:
        return []
    catalogue = load_catalogue()
    this_week = None
    delivery = answers_repo.latest_delivery(session, project_id=project.id, kind="team_prompt")
    if delivery is not None and delivery.prompt_id:
        try:
            question = catalogue.get(delivery.prompt_id).text
        except KeyError:
            question = delivery.prompt_id
        this_week = (
            question,
            prompts_blocks.when_text(delivery.sent_at or delivery.occurrence, project.timezone),
        )
    # Read-only: the Home tab never creates schedules (the scheduler and /mfi schedule do).
    team = sched.get_schedule(session, project_id=project.id, kind="team_prompt")
    if team is not None and team.paused:
        next_text = "paused (`/mfi schedule resume`)"
    else:
        spec = (
            sched.spec_for(team, region=project.region)
            if team is not None
            else replace(DEFAULTS["team_prompt"], timezone=project.timezone, region=project.region)
        )
        next_text = prompts_blocks.when_text(next_occurrence(spec, datetime.now(UTC)), spec.timezone)
    pinned, skipped = sched.prompt_choices(session, project_id=project.id)
    pinned_text = None
    if pinned:
        try:
            pinned_text = catalogue.get(pinned).text
        except KeyError:
            pinned_text = None
    recent = []
    for shown in answers_repo.visible_answers(session, project=project, limit=5):
        answer = shown.answer
        if answer.user_id is None:
            who = prompts_blocks.PARTNER_LABEL if answer.from_partner else "Anonymous"
            when = prompts_blocks.day_text(shown.day)  # anonymous answers keep only the day
        else:
            who = f"<@{answer.user_id}>" + (" (service-user partner)" if answer.from_partner else "")
            when = prompts_blocks.when_text(answer.created_at, project.timezone)
        recent.append(prompts_blocks.RecentAnswer(who=who, text=answer.text, stage=answer.stage, when=when))
    return prompts_blocks.prompts_home_section(
        project_id=project.id,
        this_week=this_week,
        next_prompt=next_text,
        pinned=pinned_text,
        skipped_count=len(skipped),
        recent=recent,
        current_stage=stages_for(sched.project_state(session, project))[0],
    )


def pdsa_section(session: Session, project: Project, role: str, user_id: str) -> list[blocks.Block]:
    if project.id is None or role == "partner":
        return []
    today = local_today(project)
    infos = [
        cycle_info(session, c, today=today) for c in pdsa_repo.list_cycles(session, project_id=project.id)
    ]
    record = core_pdsa.prediction_record(pdsa_repo.study_scores(session, project_id=project.id)).text()
    return pdsa_blocks.home_section(infos, record=record)


def ownership_section(session: Session, project: Project, role: str, user_id: str) -> list[blocks.Block]:
    if role != "lead" or project.id is None:
        return []
    return ownership_blocks.home_section(project.id)


def drivers_section(session: Session, project: Project, role: str, user_id: str) -> list[blocks.Block]:
    if project.id is None or role == "partner":
        return []
    diagram = drivers_service.diagram_in(session, project_id=project.id)
    return drivers_blocks.home_section(diagram) if diagram is not None else []


# --- the workspace uninstalled the app ------------------------------------------------------------------------


# Each project's sections after its summary: (session, project, role, user_id) -> blocks. One explicit list.
HomeSection = Callable[[Session, Project, str, str], list[blocks.Block]]
SECTIONS: tuple[HomeSection, ...] = (prompts_section, pdsa_section, drivers_section, ownership_section)


def build_home(session: Session, *, team_id: str, user_id: str) -> dict[str, Any]:
    rows = repo.projects_for_user(session, team_id=team_id, user_id=user_id)
    home_blocks: list[blocks.Block] = [blocks.header("MFI-AR: anti-racism improvement")]
    if not rows:
        home_blocks += onboarding.empty_home()
    seen: set[int] = set()
    for project, role in rows:
        if project.id is None or project.id in seen:
            continue
        seen.add(project.id)
        progress = repo.project_progress(session, project=project)
        done = repo.stages_done(project, progress)
        role_text = {
            "lead": "You lead this project",
            "partner": "You are a service-user partner",
            "member": "Team member",
        }
        home_blocks += [
            blocks.divider(),
            blocks.section(
                f"*{blocks.typed(project.name)}* in <#{project.channel_id}>\n{blocks.typed(project.aim)}\n"
                f"_For whom:_ {blocks.describe_groups(project.focus_groups)}"
            ),
            blocks.context(
                f"{role_text.get(role, role)} · {blocks.counted(progress['measure_count'], 'measure')} · "
                f"{blocks.counted(progress['open_cycles'], 'open PDSA cycle')} · "
                f"{sum(done.values())} of {len(done)} framework stages under way"
            ),
        ]
        if role == "lead":
            home_blocks.append(blocks.section(blocks.stage_checklist(done)))
        for build_section in SECTIONS:
            home_blocks += build_section(session, project, role, user_id)
    return {"type": "home", "blocks": home_blocks[:100]}


def publish(client: WebClient, engine: Engine, *, team_id: str, user_id: str) -> None:
    publish_for_people(client, engine, team_id=team_id, user_ids=[user_id], quiet=False)


def publish_for_people(
    client: WebClient, engine: Engine, *, team_id: str, user_ids: Sequence[str], quiet: bool = True
) -> None:
    """Refresh these people's Home tabs: every view built in one transaction, then published after it.

    One read for the whole batch, and no Slack call while the transaction is open. With `quiet`, a person
    whose Home cannot be published is logged and the rest still get theirs.
    """
    with unit_of_work(engine) as session:
        views = {
            user_id: build_home(session, team_id=team_id, user_id=user_id)
            for user_id in dict.fromkeys(user_ids)
        }
    for user_id, view in views.items():
        try:
            client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            if not quiet:
                raise
            logger.warning("Could not publish Home for %s: %s", user_id, exc.response.get("error"))


def publish_for_project(client: WebClient, engine: Engine, *, team_id: str, project_id: int) -> None:
    """Refresh the Home tab of everyone on a project (leads first), in one batch."""
    with unit_of_work(engine) as session:
        people = [
            m.user_id for m in repo.members(session, project_id=project_id) if m.role in ("lead", "member")
        ]
    publish_for_people(client, engine, team_id=team_id, user_ids=people)


def handle_home_opened(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    onboarding.greet(event, client, context)  # the welcome DM, once, on a person's first visit to either tab
    if event.get("tab") != "home":
        return
    assert context.team_id
    publish(client, context["engine"], team_id=context.team_id, user_id=event["user"])


def register(app: App) -> None:
    app.event("app_home_opened")(access.unscoped(handle_home_opened))
