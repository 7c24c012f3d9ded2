"""Answering reflective prompts, choosing which prompts are asked (pin, skip) and exporting the answers: each use
case opens and commits its own unit of work and returns plain values; no Slack call is made here (how many people
could have answered in a channel is counted by the caller, between the units of work)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.prompts import STAGE_IDS, load_catalogue, stages_for
from bot.services.schedules import NotLead, not_lead
from storage import answers_repo
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import Project

logger = logging.getLogger(__name__)

QUESTION_GONE = "Sorry, this question no longer exists."
DATABASE_PROBLEM = "We couldn't save your answer just now. It is still here: press Send again in a moment."

# ---------------------------------------------------------------- answering


@dataclass(frozen=True)
class Delivery:
    """A question that can be answered; `channel` is where a team prompt was asked (None for a DM)."""

    channel: str | None


def answerable(engine: Engine, *, team_id: str, delivery_id: int) -> Delivery | None:
    with unit_of_work(engine) as session:
        delivery = answers_repo.get_delivery(session, team_id=team_id, delivery_id=delivery_id)
        if delivery is None or not delivery.prompt_id:
            return None
        return Delivery(delivery.channel_id if delivery.kind == "team_prompt" else None)


@dataclass(frozen=True)
class Asked:
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


def answer_form(
    engine: Engine, *, team_id: str, delivery_id: int, user_id: str, crowd_now: int | None
) -> Asked | None:
    """The delivery, whether this person is a partner on it, and how many people could have given its answer
    (`crowd_now`: the people in the channel just now, recorded with the delivery when known)."""
    with unit_of_work(engine) as session:
        delivery = answers_repo.get_delivery(session, team_id=team_id, delivery_id=delivery_id)
        project = (
            repo.get_project(session, team_id=team_id, project_id=delivery.project_id) if delivery else None
        )
        if delivery is None or project is None or project.id is None or not delivery.prompt_id:
            return None
        if crowd_now is not None:
            answers_repo.record_crowd(session, delivery=delivery, crowd=crowd_now)
        partner = sched.member(session, project_id=project.id, user_id=user_id, role="partner")
        pool = answers_repo.pooling(session, project=project)
        found = answers_repo.round_for(session, project=project, delivery=delivery)
        crowd = pool.crowd_if_answered(found) if found is not None else 0
        return Asked(
            delivery_id=delivery.id or 0,
            prompt_id=delivery.prompt_id,
            project_name=project.name,
            partner=partner is not None,
            can_share=partner is None or partner.consent == "given",
            crowd=crowd,
            threshold=pool.threshold,
        )


@dataclass(frozen=True)
class AnswerSaved:
    project_id: int
    partner: bool
    shared: bool
    held: bool  # anonymous, and not shown until enough people could have given it
    post_channel: str | None  # where a shared answer goes: the prompt's thread, or the project's channel
    post_thread: str | None
    thanks_channel: str


def save_answer(
    engine: Engine,
    *,
    team_id: str,
    delivery_id: int,
    user_id: str,
    text: str,
    anonymous: bool,
    share: bool,
) -> AnswerSaved | str:
    """Save an answer in one short unit of work; the words for the form when it cannot be saved."""
    try:
        with unit_of_work(engine) as session:
            delivery = answers_repo.get_delivery(session, team_id=team_id, delivery_id=delivery_id)
            project = (
                repo.get_project(session, team_id=team_id, project_id=delivery.project_id)
                if delivery
                else None
            )
            if delivery is None or project is None or project.id is None or not delivery.prompt_id:
                return QUESTION_GONE
            partner = sched.member(session, project_id=project.id, user_id=user_id, role="partner")
            stored = answers_repo.add_answer(
                session,
                project=project,
                delivery=delivery,
                user_id=user_id,
                text=text,
                anonymous=anonymous,
                # A partner's answer reaches the channel only with their consent and their tick on this answer.
                shared=share and (partner is None or partner.consent == "given"),
                from_partner=partner is not None,
            )
            # An anonymous answer is shown only once enough people could have given it.
            held = anonymous and not any(
                s.answer.id == stored.id for s in answers_repo.visible_answers(session, project=project)
            )
            where = (
                (delivery.channel_id, delivery.message_ts) if partner is None else (project.channel_id, None)
            )
            return AnswerSaved(
                project_id=project.id,
                partner=partner is not None,
                shared=stored.shared,
                held=held,
                post_channel=where[0],
                post_thread=where[1],
                thanks_channel=delivery.channel_id or project.channel_id,
            )
    except SQLAlchemyError:
        logger.exception("Saving an answer failed")
        return DATABASE_PROBLEM


# ---------------------------------------------------------------- choosing prompts (leads)


@dataclass(frozen=True)
class PromptsListing:
    """One stage's team prompts and which are pinned ("pin") or skipped ("skip")."""

    project_id: int
    project_name: str
    stage: str
    states: dict[str, str]
    other_stages: list[str]


def _listing(session: Session, project: Project, stage: str) -> PromptsListing:
    assert project.id is not None
    pinned, skipped = sched.prompt_choices(session, project_id=project.id)
    states = dict.fromkeys(skipped, "skip")
    if pinned:
        states[pinned] = "pin"
    return PromptsListing(project.id, project.name, stage, states, [s for s in STAGE_IDS if s != stage])


def prompts_listing(
    engine: Engine, *, team_id: str, channel_id: str, user_id: str, stage: str | None
) -> PromptsListing | NotLead | None:
    """`/mfi prompts [stage]` (the project's current stage when none is given); None without a project."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return None
        if not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return not_lead(session, project)
        return _listing(session, project, stage or stages_for(sched.project_state(session, project))[0])


def choose_prompt(
    engine: Engine, *, team_id: str, project_id: int, user_id: str, prompt_id: str, choice: str | None
) -> PromptsListing | NotLead | None:
    """Pin or skip a prompt (or, with no choice, put it back in the rotation); the listing of its stage after.
    None when the project or the prompt is not there."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or project.id is None:
            return None
        if not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return not_lead(session, project)
        try:
            prompt = load_catalogue().get(prompt_id)
        except KeyError:
            return None
        if choice is None:
            answers_repo.clear_prompt_choice(
                session, project=project, prompt_id=prompt_id, cleared_by=user_id
            )
        else:
            answers_repo.set_prompt_choice(
                session, project=project, prompt_id=prompt_id, choice=choice, chosen_by=user_id
            )
        return _listing(session, project, prompt.stage)


# ---------------------------------------------------------------- export (leads)


@dataclass(frozen=True)
class AnswerRow:
    day: date
    stage: str
    prompt_id: str
    text: str
    author: str | None  # None for an anonymous answer: nothing that leads to the person is stored
    partner: bool
    shared: bool


@dataclass(frozen=True)
class Export:
    project_name: str
    timezone: str
    rows: list[AnswerRow]


def export_answers(engine: Engine, *, team_id: str, project_id: int, user_id: str) -> Export | None:
    """Only what the team may see, newest last: anonymous answers once enough people could have given them, dated
    by their pool (so a held-back answer's own date cannot single anyone out). None unless a lead asks."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not repo.is_lead(session, project_id=project_id, user_id=user_id):
            return None
        rows = [
            AnswerRow(
                s.day,
                s.answer.stage,
                s.answer.prompt_id,
                s.answer.text,
                s.answer.user_id,
                s.answer.from_partner,
                s.answer.shared,
            )
            for s in reversed(answers_repo.visible_answers(session, project=project))
        ]
        return Export(project.name, project.timezone, rows)
