"""Queries and writes for prompt answers, pins and skips, partners' consent and schedule settings. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from bot.schedule_rules import DEFAULTS
from storage.models import (
    Answer,
    AnswerReceipt,
    DataPoint,
    Delivery,
    Measure,
    PdsaCycle,
    Project,
    ProjectMember,
    PromptChoice,
    utcnow,
)
from storage.repositories import audit

SCHEDULE_KINDS: tuple[str, ...] = tuple(DEFAULTS)  # team_prompt, partner_prompt, lead_nudge


# --- schedules (the rows themselves live in storage.schedule_repo) ---------------------------------------------


def set_project_zone(session: Session, *, project: Project, timezone: str, region: str, changed_by: str) -> None:
    if (project.timezone, project.region) == (timezone, region):
        return
    audit(
        session,
        team_id=project.team_id,
        project_id=project.id,
        user_id=changed_by,
        action="project.zone",
        detail={"previous": {"timezone": project.timezone, "region": project.region}},
    )
    project.timezone, project.region = timezone, region
    project.updated_at = utcnow()
    session.add(project)


# --- deliveries and answers ------------------------------------------------------------------------------------


def get_delivery(session: Session, *, team_id: str, delivery_id: int) -> Delivery | None:
    delivery = session.get(Delivery, delivery_id)
    return delivery if delivery is not None and delivery.team_id == team_id else None


def latest_delivery(session: Session, *, project_id: int, kind: str) -> Delivery | None:
    return session.exec(
        select(Delivery)
        .where(Delivery.project_id == project_id, Delivery.kind == kind, Delivery.status == "sent")
        .order_by(col(Delivery.occurrence).desc(), col(Delivery.id).desc())
    ).first()


def add_answer(
    session: Session,
    *,
    project: Project,
    prompt_id: str,
    stage: str,
    delivery_id: int | None,
    user_id: str,
    text: str,
    anonymous: bool,
    shared: bool,
    from_partner: bool,
) -> Answer:
    """Store an answer; anonymous ones keep no user id. The receipt (who answered, not what) drives reminders."""
    assert project.id is not None
    answer = Answer(
        project_id=project.id,
        team_id=project.team_id,
        prompt_id=prompt_id,
        stage=stage,
        delivery_id=delivery_id,
        user_id=None if anonymous else user_id,
        from_partner=from_partner,
        anonymous=anonymous,
        shared=shared,
        text=text,
    )
    session.add(answer)
    if delivery_id is not None:
        exists = session.exec(
            select(AnswerReceipt).where(AnswerReceipt.delivery_id == delivery_id, AnswerReceipt.user_id == user_id)
        ).first()
        if exists is None:
            session.add(AnswerReceipt(delivery_id=delivery_id, user_id=user_id))
    session.flush()
    return answer


def answers(
    session: Session, *, project_id: int, since: datetime | None = None, limit: int | None = None
) -> list[Answer]:
    """A project's answers, newest first."""
    query = select(Answer).where(Answer.project_id == project_id)
    if since is not None:
        query = query.where(col(Answer.created_at) >= since)
    query = query.order_by(col(Answer.created_at).desc(), col(Answer.id).desc())
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def answers_this_week(session: Session, *, project_id: int, since: datetime) -> list[Answer]:
    """Answers given since `since`, or to prompts sent since then (the ledger's occurrence), newest first."""
    recent_deliveries = select(Delivery.id).where(Delivery.project_id == project_id, col(Delivery.occurrence) >= since)
    query = (
        select(Answer)
        .where(Answer.project_id == project_id)
        .where(or_(col(Answer.created_at) >= since, col(Answer.delivery_id).in_(recent_deliveries)))
        .order_by(col(Answer.created_at).desc(), col(Answer.id).desc())
    )
    return list(session.exec(query))


def receipts(session: Session, *, delivery_id: int) -> list[AnswerReceipt]:
    return list(session.exec(select(AnswerReceipt).where(AnswerReceipt.delivery_id == delivery_id)))


# --- pins and skips --------------------------------------------------------------------------------------------


def set_prompt_choice(session: Session, *, project: Project, prompt_id: str, choice: str, chosen_by: str) -> None:
    """Pin (ask next, once) or skip (never ask) a prompt. One pin at a time: a new pin replaces an unused one."""
    if choice not in ("pin", "skip"):
        raise ValueError(f"choice must be pin or skip, got {choice!r}")
    assert project.id is not None
    if choice == "pin":
        for old in session.exec(
            select(PromptChoice).where(
                PromptChoice.project_id == project.id, PromptChoice.choice == "pin", PromptChoice.used == False  # noqa: E712
            )
        ):
            if old.prompt_id != prompt_id:
                session.delete(old)
    row = session.exec(
        select(PromptChoice).where(PromptChoice.project_id == project.id, PromptChoice.prompt_id == prompt_id)
    ).first()
    if row is None:
        row = PromptChoice(project_id=project.id, team_id=project.team_id, prompt_id=prompt_id, choice=choice,
                           chosen_by=chosen_by)
    row.choice, row.used, row.chosen_by, row.created_at = choice, False, chosen_by, utcnow()
    session.add(row)
    audit(session, team_id=project.team_id, project_id=project.id, user_id=chosen_by, action=f"prompt.{choice}",
          detail={"prompt_id": prompt_id})
    session.flush()


def clear_prompt_choice(session: Session, *, project: Project, prompt_id: str, cleared_by: str) -> bool:
    assert project.id is not None
    row = session.exec(
        select(PromptChoice).where(PromptChoice.project_id == project.id, PromptChoice.prompt_id == prompt_id)
    ).first()
    if row is None:
        return False
    session.delete(row)
    audit(session, team_id=project.team_id, project_id=project.id, user_id=cleared_by, action="prompt.clear",
          detail={"prompt_id": prompt_id})
    session.flush()
    return True


# --- partners --------------------------------------------------------------------------------------------------


def set_partner_state(
    session: Session,
    *,
    partner: ProjectMember,
    consent: str | None = None,
    paused: bool | None = None,
    stopped: bool | None = None,
    share_in_channel: bool | None = None,
) -> None:
    changes: dict[str, Any] = {}
    for name, value in (("consent", consent), ("paused", paused), ("stopped", stopped),
                        ("share_in_channel", share_in_channel)):
        if value is not None and getattr(partner, name) != value:
            changes[name] = value
            setattr(partner, name, value)
    if changes:
        session.add(partner)
        audit(session, team_id=partner.team_id, project_id=partner.project_id, user_id=partner.user_id,
              action="partner.state", detail=changes)


def set_partners(session: Session, *, project: Project, user_ids: Sequence[str], added_by: str) -> tuple[list[str], list[str]]:
    """Make the partner list exactly `user_ids`; returns (added, removed). Those who stay keep their consent."""
    assert project.id is not None
    existing = {
        m.user_id: m
        for m in session.exec(
            select(ProjectMember).where(ProjectMember.project_id == project.id, ProjectMember.role == "partner")
        )
    }
    added = [u for u in user_ids if u not in existing]
    removed = [u for u in existing if u not in user_ids]
    for user_id in added:
        session.add(ProjectMember(project_id=project.id, team_id=project.team_id, user_id=user_id, role="partner",
                                  added_by=added_by))
    for user_id in removed:
        session.delete(existing[user_id])
    if added or removed:
        audit(session, team_id=project.team_id, project_id=project.id, user_id=added_by, action="partners.set",
              detail={"added": len(added), "removed": len(removed)})
    session.flush()
    return added, removed


# --- what the leads' nudge reads -------------------------------------------------------------------------------


def active_measures(session: Session, *, project_id: int) -> list[Measure]:
    return list(
        session.exec(
            select(Measure)
            .where(Measure.project_id == project_id, Measure.archived == False)  # noqa: E712
            .order_by(col(Measure.id))
        )
    )


def data_points(session: Session, *, measure_id: int) -> list[DataPoint]:
    return list(
        session.exec(
            select(DataPoint)
            .where(DataPoint.measure_id == measure_id)
            .order_by(col(DataPoint.period_start), col(DataPoint.group_code))
        )
    )


def cycles(session: Session, *, project_id: int) -> list[PdsaCycle]:
    return list(session.exec(select(PdsaCycle).where(PdsaCycle.project_id == project_id).order_by(col(PdsaCycle.number))))
