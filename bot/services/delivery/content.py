"""What a delivery says: the message for each kind (team and partner prompts, the consent invitation, the leads'
nudge), built in the claim's transaction from the project as it is now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.services.delivery.context import RunContext
from bot.services.delivery.model import CONSENT_KIND, Blocks, Task
from bot.services.delivery.planning import partner_prompt
from bot.services.nudge import build_lead_nudge
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project

if TYPE_CHECKING:
    from bot.services.delivery import Deliverer


def lead_names(deliverer: Deliverer, ctx: RunContext, task: Task) -> list[str]:
    """The leads' names for a consent invitation: ids read in one short transaction, names asked of Slack
    (users.info) after it, so a slow Slack call never holds a database transaction open."""
    with unit_of_work(deliverer.engine) as session:
        lead_ids = [m.user_id for m in sched.leads(session, project_id=task.project_id)]
    client = ctx.client(task.team_id, task.enterprise_id)
    return [ctx.real_name(client, user_id) for user_id in lead_ids]


def content(
    deliverer: Deliverer,
    session: Session,
    ctx: RunContext,
    task: Task,
    delivery_id: int,
    *,
    lead_names: list[str],
) -> tuple[Blocks, str]:
    project = session.get(Project, task.project_id)
    assert project is not None
    messages = deliverer.messages
    if task.kind in PROMPT_KINDS:
        return prompt_content(
            deliverer, task, delivery_id, name=project.name, about=project.partner_description
        )
    if task.kind == CONSENT_KIND:
        return messages.partner_consent_message(
            about=project.partner_description or project.name,
            lead_names=lead_names,
            project_id=task.project_id,
        )
    if task.kind == "lead_nudge":
        return build_lead_nudge(session, project=project, now=ctx.now)
    raise ValueError(f"unknown delivery kind {task.kind!r}")


PROMPT_KINDS = ("team_prompt", "partner_prompt")


def prompt_content(
    deliverer: Deliverer, task: Task, delivery_id: int, *, name: str, about: str
) -> tuple[Blocks, str]:
    """A team or partner prompt: built from the project's name and partner description alone."""
    assert task.prompt_id is not None
    if task.kind == "team_prompt":
        return deliverer.messages.team_prompt_message(
            deliverer.catalogue.get(task.prompt_id),
            project_name=name,
            reason=task.reason,
            delivery_id=delivery_id,
        )
    return deliverer.messages.partner_prompt_message(
        partner_prompt(deliverer, task.prompt_id),
        about=about or name,
        delivery_id=delivery_id,
        # Partners' answers are anonymous unless they say otherwise (the consent message promises it).
        anonymous_default=True,
    )
