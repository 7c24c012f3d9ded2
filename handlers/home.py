"""The App Home tab: each person's projects, with what needs doing next."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from handlers import access, blocks, onboarding
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Project

logger = logging.getLogger(__name__)

# Other surfaces add a section per project: (session, project, role, user_id) -> blocks.
HomeSection = Callable[[Session, Project, str, str], list[blocks.Block]]
SECTIONS: list[HomeSection] = []


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
        role_text = {"lead": "You lead this project", "partner": "You are a service-user partner", "member": "Team member"}
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
    with unit_of_work(engine) as session:
        view = build_home(session, team_id=team_id, user_id=user_id)
    client.views_publish(user_id=user_id, view=view)


def publish_for_project(client: WebClient, engine: Engine, *, team_id: str, project_id: int) -> None:
    """Refresh the Home tab of everyone on a project (leads first)."""
    with unit_of_work(engine) as session:
        people = [m.user_id for m in repo.members(session, project_id=project_id) if m.role in ("lead", "member")]
    for user_id in dict.fromkeys(people):
        try:
            publish(client, engine, team_id=team_id, user_id=user_id)
        except SlackApiError as exc:
            logger.warning("Could not publish Home for %s: %s", user_id, exc.response.get("error"))


def handle_home_opened(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    onboarding.greet(event, client, context)  # the welcome DM, once, on a person's first visit to either tab
    if event.get("tab") != "home":
        return
    assert context.team_id
    publish(client, context["engine"], team_id=context.team_id, user_id=event["user"])


def register(app: App) -> None:
    app.event("app_home_opened")(access.unscoped(handle_home_opened))
