"""Service-user partners: the consent request, the partners and privacy settings, and a partner's own choices.

Each use case opens and commits its own unit of work and returns plain values; the listeners in
handlers/partners.py word them and make the Slack calls after the transaction is closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.delivery import CONSENT_KIND, CONSENT_OCCURRENCE
from storage import answers_repo
from storage import repositories as repo
from storage import schedule_repo as sched
from storage.db import unit_of_work
from storage.models import ProjectMember, utcnow


@dataclass(frozen=True)
class ConsentRequests:
    """Consent requests claimed in the delivery ledger, to be sent: (delivery id, partner) pairs."""

    project_id: int
    about: str  # the plain-language description partners see instead of the project's name
    leads: tuple[str, ...]
    claimed: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class PartnerStatus:
    user_id: str
    consent: str
    stopped: bool
    paused: bool
    share_in_channel: bool
    # The message asking for consent: "" not sent yet, "claimed" (going out), "sent", "failed" (Slack refused it).
    asked: str = ""


@dataclass(frozen=True)
class PartnersForm:
    """The partners modal's values, or why the person may not open it: status "ok", "no_project" or "not_lead"."""

    status: str
    leads: tuple[str, ...] = ()
    project_id: int = 0
    project_name: str = ""
    partners: tuple[str, ...] = ()
    statuses: tuple[PartnerStatus, ...] = ()
    about: str = ""
    anonymity_threshold: int = 3
    retention_days: int | None = None


@dataclass(frozen=True)
class PartnersEdit:
    """What checking a partners form needs: the lowest threshold it may set and the leads (who cannot be partners)."""

    current_threshold: int
    leads: frozenset[str]


@dataclass(frozen=True)
class PartnerChoice:
    """A partner's button, applied: what to tell them."""

    project_id: int
    about: str
    share_in_channel: bool = False
    state: str = ""  # "stopped", "paused" or "resumed"
    leads: tuple[str, ...] = ()


def _leads(session: Session, project_id: int) -> tuple[str, ...]:
    return tuple(m.user_id for m in repo.members(session, project_id=project_id, role="lead"))


def claim_consent_requests(
    engine: Engine, *, team_id: str, project_id: int, now: datetime | None = None
) -> ConsentRequests | None:
    """Claim a consent request in the delivery ledger for every partner not yet asked (the same row the scheduler
    would write, so a partner is asked once); None when the project is gone or has no description for partners."""
    moment = now or utcnow()
    claimed: list[tuple[int, str]] = []
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not project.partner_description.strip():
            return None  # partners are told what the project is about in plain words first
        schedule = next(
            s for s in sched.ensure_default_schedules(session, project=project) if s.kind == "partner_prompt"
        )
        asked = {d.recipient for d in sched.deliveries(session, project_id=project_id, kind=CONSENT_KIND)}
        for partner in sched.partners_awaiting_consent(session, project_id=project_id):
            if partner.user_id in asked:
                continue
            delivery = sched.claim_delivery(
                session,
                schedule=schedule,
                occurrence=CONSENT_OCCURRENCE,
                recipient=partner.user_id,
                kind=CONSENT_KIND,
                claimed_by="handlers.partners",
                now=moment,
            )
            if delivery is not None and delivery.id is not None:
                claimed.append((delivery.id, partner.user_id))
        return ConsentRequests(
            project_id, project.partner_description, _leads(session, project_id), tuple(claimed)
        )


def consent_sent(engine: Engine, *, delivery_id: int, channel_id: str, message_ts: str) -> None:
    with unit_of_work(engine) as session:
        sched.mark_sent(
            session, delivery_id=delivery_id, channel_id=channel_id, message_ts=message_ts, now=utcnow()
        )


def consent_failed(engine: Engine, *, delivery_id: int, error: str) -> None:
    with unit_of_work(engine) as session:
        sched.mark_failed(session, delivery_id=delivery_id, error=error)


def _status(member: ProjectMember, asked: Mapping[str, str]) -> PartnerStatus:
    return PartnerStatus(
        member.user_id,
        member.consent,
        bool(member.stopped),
        bool(member.paused),
        bool(member.share_in_channel),
        asked.get(member.user_id, ""),
    )


def partners_form(engine: Engine, *, team_id: str, channel_id: str, user_id: str) -> PartnersForm:
    """The channel's project's partners and privacy settings, for one of its leads."""
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=team_id, channel_id=channel_id)
        if project is None or project.id is None:
            return PartnersForm("no_project")
        leads = _leads(session, project.id)
        if not repo.is_lead(session, project_id=project.id, user_id=user_id):
            return PartnersForm("not_lead", leads=leads)
        members = repo.members(session, project_id=project.id, role="partner")
        asked = {
            d.recipient: d.status for d in sched.deliveries(session, project_id=project.id, kind=CONSENT_KIND)
        }
        return PartnersForm(
            "ok",
            leads=leads,
            project_id=project.id,
            project_name=project.name,
            partners=tuple(m.user_id for m in members),
            statuses=tuple(_status(m, asked) for m in members),
            about=project.partner_description,
            anonymity_threshold=max(3, project.anonymity_threshold),
            retention_days=project.retention_days,
        )


def partners_edit(engine: Engine, *, team_id: str, project_id: int, user_id: str) -> PartnersEdit | None:
    """What checking the form needs; None unless the project exists and the person leads it."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not repo.is_lead(session, project_id=project_id, user_id=user_id):
            return None
        return PartnersEdit(max(3, project.anonymity_threshold), frozenset(_leads(session, project_id)))


def save_partners(
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    user_id: str,
    partners: list[str],
    about: str,
    threshold: int,
    retention_days: int | None | str,
) -> bool:
    """Save the partner list and privacy settings; False (nothing saved) unless the person leads the project."""
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None or not repo.is_lead(session, project_id=project_id, user_id=user_id):
            return False
        answers_repo.set_partners(session, project=project, user_ids=partners, added_by=user_id)
        answers_repo.set_privacy(
            session,
            project=project,
            about=about,
            threshold=threshold,
            retention_days=retention_days,
            changed_by=user_id,
        )
    return True


def claimed_project(
    session: Session, *, team_id: str, project_id: int | None, delivery_id: int | None
) -> int | None:
    """Partner buttons carry a project id, or (on prompts) a delivery id that leads to one."""
    if project_id is not None:
        return project_id
    if delivery_id is not None:
        delivery = answers_repo.get_delivery(session, team_id=team_id, delivery_id=delivery_id)
        return delivery.project_id if delivery else None
    return None


def record_consent(
    engine: Engine,
    *,
    team_id: str,
    user_id: str,
    project_id: int | None,
    delivery_id: int | None,
    said_yes: bool,
) -> PartnerChoice | None:
    """A partner's yes or no; None when they are no longer a partner on the project."""
    with unit_of_work(engine) as session:
        pid = claimed_project(session, team_id=team_id, project_id=project_id, delivery_id=delivery_id)
        project = repo.get_project(session, team_id=team_id, project_id=pid or 0)
        partner = sched.member(session, project_id=pid or 0, user_id=user_id, role="partner")
        if project is None or project.id is None or partner is None:
            return None
        answers_repo.set_partner_state(
            session,
            partner=partner,
            consent="given" if said_yes else "declined",
            stopped=False if said_yes else None,
        )
        return PartnerChoice(project.id, project.partner_description, bool(partner.share_in_channel))


def change_partner_state(
    engine: Engine,
    *,
    team_id: str,
    user_id: str,
    project_id: int | None,
    delivery_id: int | None,
    wanted: str,
) -> PartnerChoice | None:
    """Pause, resume or stop ("pause", "resume", "stop"); stopping is final from the partner's side (a lead can
    add them again). None when they are not a partner on the project."""
    with unit_of_work(engine) as session:
        pid = claimed_project(session, team_id=team_id, project_id=project_id, delivery_id=delivery_id)
        project = repo.get_project(session, team_id=team_id, project_id=pid) if pid else None
        partner = sched.member(session, project_id=pid or 0, user_id=user_id, role="partner")
        if project is None or project.id is None or partner is None:
            return None
        leads = _leads(session, project.id)
        if partner.stopped or wanted == "stop":
            answers_repo.set_partner_state(session, partner=partner, stopped=True)
            state = "stopped"
        elif wanted == "pause":
            answers_repo.set_partner_state(session, partner=partner, paused=True)
            state = "paused"
        else:
            answers_repo.set_partner_state(session, partner=partner, paused=False)
            state = "resumed"
        return PartnerChoice(project.id, project.partner_description, state=state, leads=leads)


def set_sharing(
    engine: Engine,
    *,
    team_id: str,
    user_id: str,
    project_id: int | None,
    delivery_id: int | None,
    share: bool,
) -> bool:
    """Whether a taking-part partner's answers may reach the channel; False when they are not taking part."""
    with unit_of_work(engine) as session:
        pid = claimed_project(session, team_id=team_id, project_id=project_id, delivery_id=delivery_id)
        partner = sched.member(session, project_id=pid or 0, user_id=user_id, role="partner")
        if partner is None or partner.consent != "given":
            return False
        answers_repo.set_partner_state(session, partner=partner, share_in_channel=share)
    return True
