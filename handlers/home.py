"""The App Home tab: each person's projects, with what needs doing next."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.ack_first import homes
from bot.services import home as service
from bot.services.engine import Engine
from bot.services.home import ProjectHome
from handlers import access, blocks, onboarding
from handlers.blocks import bias as bias_blocks
from handlers.blocks import drivers as drivers_blocks
from handlers.blocks import missing as missing_blocks
from handlers.blocks import ownership as ownership_blocks
from handlers.blocks import pdsa as pdsa_blocks
from handlers.blocks import prompts as prompts_blocks
from handlers.blocks import summary as summary_blocks
from handlers.blocks import team as team_blocks
from handlers.blocks.checklist import checklist_blocks

logger = logging.getLogger(__name__)

# --- the sections, in the order the Home tab shows them --------------------------------------------------------------------------------------------------


def prompts_section(project: ProjectHome, role: str, user_id: str) -> list[blocks.Block]:
    """Leads see this week's prompt, the latest answers, pin/skip and the export."""
    panel = project.prompts
    if role != "lead" or panel is None:
        return []
    this_week = None
    if panel.this_week is not None:
        question, sent = panel.this_week
        this_week = (question, prompts_blocks.when_text(sent.at, sent.timezone))
    next_text = (
        prompts_blocks.when_text(panel.next_prompt.at, panel.next_prompt.timezone)
        if panel.next_prompt is not None
        else "paused (`/mfi schedule resume`)"
    )
    recent = []
    for answer in panel.recent:
        if answer.user_id is None:
            who = prompts_blocks.PARTNER_LABEL if answer.from_partner else "Anonymous"
            when = prompts_blocks.day_text(answer.day)  # anonymous answers keep only the day
        else:
            who = f"<@{answer.user_id}>" + (" (service-user partner)" if answer.from_partner else "")
            when = prompts_blocks.when_text(answer.created_at, answer.timezone)
        recent.append(prompts_blocks.RecentAnswer(who=who, text=answer.text, stage=answer.stage, when=when))
    return prompts_blocks.prompts_home_section(
        project_id=project.id,
        this_week=this_week,
        next_prompt=next_text,
        pinned=panel.pinned,
        skipped_count=panel.skipped_count,
        recent=recent,
        current_stage=panel.current_stage,
    )


def pdsa_section(project: ProjectHome, role: str, user_id: str) -> list[blocks.Block]:
    if role == "partner" or project.pdsa is None:
        return []
    return pdsa_blocks.home_section(list(project.pdsa.cycles), record=project.pdsa.record)


def summary_section(project: ProjectHome, role: str, user_id: str) -> list[blocks.Block]:
    """The equity summary grid: what the channel may see, so every role sees it."""
    return summary_blocks.home_section(project.name, list(project.summary))


def ownership_section(project: ProjectHome, role: str, user_id: str) -> list[blocks.Block]:
    if role != "lead":
        return []
    return ownership_blocks.home_section(project.id)


def registers_section(project: ProjectHome, role: str, user_id: str) -> list[blocks.Block]:
    """The framework's tools (issue 14): bias review, team reflection, who is missing; the team only."""
    if project.registers is None or project.team is None or role == "partner":
        return []
    found = project.registers
    return [
        *bias_blocks.home_section(project.id, total=found.bias_total, open_actions=found.bias_open_actions),
        *team_blocks.home_section(project.team),
        *missing_blocks.home_section(project.id, found.missing_total, found.missing_without_plan),
    ]


def drivers_section(project: ProjectHome, role: str, user_id: str) -> list[blocks.Block]:
    return drivers_blocks.home_section(project.drivers) if project.drivers is not None else []


# Each project's sections after its summary: (project's Home values, role, user_id) -> blocks. One explicit list;
# what a section shows is read by bot.services.home.
HomeSection = Callable[[ProjectHome, str, str], list[blocks.Block]]
SECTIONS: tuple[HomeSection, ...] = (
    prompts_section,
    pdsa_section,
    summary_section,
    drivers_section,
    registers_section,
    ownership_section,
)

ROLE_TEXT = {
    "lead": "You lead this project",
    "partner": "You are a service-user partner",
    "member": "Team member",
}


def build_home(projects: Sequence[ProjectHome], *, user_id: str) -> dict[str, Any]:
    """A person's Home view from their projects' values (bot.services.home.homes)."""
    home_blocks: list[blocks.Block] = [blocks.header("MFI-AR: anti-racism improvement")]
    if not projects:
        home_blocks += onboarding.empty_home()
    for project in projects:
        done = project.stages_done
        home_blocks += [
            blocks.divider(),
            blocks.section(
                f"*{blocks.typed(project.name)}* in <#{project.channel_id}>\n{blocks.typed(project.aim)}\n"
                f"_For whom:_ {blocks.describe_groups(list(project.focus_groups))}"
            ),
            blocks.context(
                f"{ROLE_TEXT.get(project.role, project.role)} · {blocks.counted(project.measure_count, 'measure')} · "
                f"{blocks.counted(project.open_cycles, 'open PDSA cycle')} · "
                f"{sum(done.values())} of {len(done)} framework stages under way"
            ),
        ]
        if project.role == "lead":
            home_blocks += checklist_blocks(list(project.checks), project.id)
        for build_section in SECTIONS:
            home_blocks += build_section(project, project.role, user_id)
    return {"type": "home", "blocks": home_blocks[:100]}


def publish(client: WebClient, engine: Engine, *, team_id: str, user_id: str) -> None:
    publish_for_people(client, engine, team_id=team_id, user_ids=[user_id], quiet=False)


def publish_for_people(
    client: WebClient, engine: Engine, *, team_id: str, user_ids: Sequence[str], quiet: bool = True
) -> None:
    """Refresh these people's Home tabs: every view built in one transaction, then published after it.

    One read for the whole batch, and no Slack call while the transaction is open. With `quiet` (a refresh after
    something changed) it happens on the background lane (bot.ack_first.homes), after any acknowledgement that is
    due, once per person however many changes came meanwhile; a person whose Home cannot be published is logged
    and the rest still get theirs. Without it (the person opening the tab) it happens now, and a failure raises.
    """
    if quiet:
        homes(engine).submit(
            team_id,
            user_ids,
            lambda people: _publish_now(client, engine, team_id=team_id, user_ids=people, quiet=True),
        )
    else:
        _publish_now(client, engine, team_id=team_id, user_ids=user_ids, quiet=False)


def _publish_now(
    client: WebClient, engine: Engine, *, team_id: str, user_ids: Sequence[str], quiet: bool
) -> None:
    views = {
        user_id: build_home(projects, user_id=user_id)
        for user_id, projects in service.homes(engine, team_id=team_id, user_ids=user_ids).items()
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
    people = service.project_people(engine, project_id=project_id)
    publish_for_people(client, engine, team_id=team_id, user_ids=people)


def handle_home_opened(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    onboarding.greet(event, client, context)  # the welcome DM, once, on a person's first visit to either tab
    if event.get("tab") != "home":
        return
    assert context.team_id
    publish(client, context["engine"], team_id=context.team_id, user_id=event["user"])


def register(app: App) -> None:
    app.event("app_home_opened")(access.unscoped(handle_home_opened))
