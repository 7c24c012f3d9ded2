"""Queries and writes for prompt answers, pins and skips, partners' consent and schedule settings. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot.core.schedule_rules import DEFAULTS
from storage.models import (
    Answer,
    Delivery,
    PdsaCycle,
    PdsaEntry,
    Project,
    ProjectMember,
    PromptChoice,
    utcnow,
)
from storage.repositories import audit

SCHEDULE_KINDS: tuple[str, ...] = tuple(DEFAULTS)  # team_prompt, partner_prompt, lead_nudge


# --- schedules (the rows themselves live in storage.schedule_repo) ---------------------------------------------


def set_project_zone(
    session: Session, *, project: Project, timezone: str, region: str, changed_by: str
) -> None:
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


ROUND_WINDOW = timedelta(hours=36)  # partners in other time zones get the same round within this window
_PARTNER_KINDS = {"partner_prompt": "partner", "team_prompt": "team"}


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class Round:
    """One round of a prompt: who was asked (partners by id; a channel by how many were in it), and its date."""

    audience: str  # team | partner
    prompt_id: str
    day: date
    asked: frozenset[str]
    crowd: int  # people who could have answered this round

    @property
    def key(self) -> tuple[str, str, date]:
        return self.audience, self.prompt_id, self.day


def rounds(session: Session, *, project: Project) -> list[Round]:
    """The project's prompt rounds, oldest first (from the delivery ledger: who was asked, never who answered)."""
    assert project.id is not None
    zone = ZoneInfo(project.timezone)
    rows = session.exec(
        select(Delivery)
        .where(
            Delivery.project_id == project.id,
            col(Delivery.kind).in_(list(_PARTNER_KINDS)),
            col(Delivery.prompt_id).is_not(None),
            Delivery.status == "sent",
        )
        .order_by(col(Delivery.occurrence), col(Delivery.id))
    ).all()
    found: list[
        tuple[datetime, str, str, set[str], int]
    ] = []  # first occurrence, audience, prompt, asked, crowd
    for row in rows:
        audience = _PARTNER_KINDS[row.kind]
        occurrence = _aware(row.occurrence)
        current = (
            next(
                (
                    r
                    for r in reversed(found)
                    if r[1] == audience and r[2] == row.prompt_id and occurrence - r[0] < ROUND_WINDOW
                ),
                None,
            )
            if audience == "partner"
            else None
        )
        if current is None:
            current = (occurrence, audience, row.prompt_id or "", set(), 0)
            found.append(current)
        if audience == "partner":
            current[3].add(row.recipient)
        else:
            found[-1] = (*current[:4], max(current[4], row.crowd or 0))
    out = []
    for first, audience, prompt_id, asked, crowd in found:
        out.append(
            Round(
                audience=audience,
                prompt_id=prompt_id,
                day=first.astimezone(zone).date(),
                asked=frozenset(asked),
                crowd=len(asked) if audience == "partner" else crowd,
            )
        )
    return out


def round_for(session: Session, *, project: Project, delivery: Delivery) -> Round | None:
    """The round a delivery belongs to."""
    audience = _PARTNER_KINDS.get(delivery.kind)
    if audience is None or not delivery.prompt_id:
        return None
    occurrence = _aware(delivery.occurrence).astimezone(ZoneInfo(project.timezone)).date()
    candidates = [
        r
        for r in rounds(session, project=project)
        if r.audience == audience
        and r.prompt_id == delivery.prompt_id
        and abs((r.day - occurrence).days) <= 2
    ]
    return min(candidates, key=lambda r: abs((r.day - occurrence).days)) if candidates else None


@dataclass(frozen=True)
class Pooling:
    """Which rounds' anonymous answers may be shown: released rounds map to the date their pool was complete."""

    released: dict[tuple[str, str, date], date]
    waiting: list[Round]  # rounds whose anonymous answers are held back, oldest first
    threshold: int

    def crowd_if_answered(self, target: Round) -> int:
        """How many people could have given an answer to `target`, pooled with the rounds held back before it."""
        if target.key in self.released:
            return self.threshold
        pool = [r for r in self.waiting if r.audience == target.audience and r.day <= target.day] + [target]
        if target.audience == "team":
            return max(r.crowd for r in pool)
        return len(frozenset().union(*(r.asked for r in pool)))


def pooling(session: Session, *, project: Project) -> Pooling:
    """Pool rounds, oldest first, until at least the project's anonymity threshold of people were asked.

    A round asked of enough people stands alone; one asked of too few waits for later rounds (of the same
    audience) until together they reach the threshold, and then all of them are released with the last one's date.
    """
    threshold = max(3, project.anonymity_threshold)
    released: dict[tuple[str, str, date], date] = {}
    waiting: list[Round] = []
    for audience in ("team", "partner"):
        pool: list[Round] = []
        people: set[str] = set()
        crowd = 0
        for current in (r for r in rounds(session, project=project) if r.audience == audience):
            pool.append(current)
            people |= current.asked
            crowd = max(crowd, current.crowd) if audience == "team" else len(people)
            if crowd >= threshold:
                for member in pool:
                    released[member.key] = current.day
                pool, people, crowd = [], set(), 0
        waiting += pool
    return Pooling(released=released, waiting=sorted(waiting, key=lambda r: r.day), threshold=threshold)


@dataclass(frozen=True)
class Shown:
    """An answer the team may see, with the date to show (a pooled anonymous answer shows its pool's date)."""

    answer: Answer
    day: date


def _release_day(answer: Answer, pool: Pooling) -> date | None:
    if answer.occurrence_date is None:
        return None
    matches = [
        (key, day)
        for key, day in pool.released.items()
        if key[0] == answer.audience
        and key[1] == answer.prompt_id
        and abs((key[2] - answer.occurrence_date).days) <= 2
    ]
    if not matches:
        return None
    return min(matches, key=lambda m: abs((m[0][2] - answer.occurrence_date).days))[1]  # type: ignore[operator]


def visible_answers(session: Session, *, project: Project, limit: int | None = None) -> list[Shown]:
    """A project's answers the team may see, newest first: named ones, and anonymous ones whose crowd is big enough."""
    assert project.id is not None
    zone = ZoneInfo(project.timezone)
    pool = pooling(session, project=project)
    shown: list[Shown] = []
    for answer in answers(session, project_id=project.id):
        if answer.anonymous:
            day = _release_day(answer, pool)
            if day is None:
                continue
        else:
            day = _aware(answer.created_at).astimezone(zone).date()
        shown.append(Shown(answer=answer, day=day))
    shown.sort(key=lambda s: (s.day, s.answer.id or 0), reverse=True)
    return shown[:limit] if limit is not None else shown


def held_back_count(session: Session, *, project: Project) -> int:
    """How many anonymous answers are waiting for a big enough crowd (told to leads privately, never counted in a channel)."""
    assert project.id is not None
    pool = pooling(session, project=project)
    return sum(
        1 for a in answers(session, project_id=project.id) if a.anonymous and _release_day(a, pool) is None
    )


def record_crowd(session: Session, *, delivery: Delivery, crowd: int) -> None:
    """A channel prompt: remember the most people seen in the channel (a number, never who)."""
    if crowd > (delivery.crowd or 0):
        delivery.crowd = crowd
        session.add(delivery)
        session.flush()


def add_answer(
    session: Session,
    *,
    project: Project,
    delivery: Delivery,
    user_id: str,
    text: str,
    anonymous: bool,
    shared: bool,
    from_partner: bool,
    cycle_id: int | None = None,
) -> Answer:
    """Store an answer.

    A named answer keeps its author and time. An anonymous one keeps only what it answers: the project, the prompt,
    the round's date (its timestamp is midnight of that date), and nothing that leads to a person. Separately, a
    partner's own delivery is flagged "answered" (for reminders); that row shares no key with the answer.
    """
    assert project.id is not None and delivery.prompt_id is not None
    audience = _PARTNER_KINDS.get(delivery.kind, "team")
    found = round_for(session, project=project, delivery=delivery)
    day = (
        found.day
        if found is not None
        else _aware(delivery.occurrence).astimezone(ZoneInfo(project.timezone)).date()
    )
    answer = Answer(
        project_id=project.id,
        team_id=project.team_id,
        prompt_id=delivery.prompt_id,
        stage=delivery.prompt_id.split(".", 1)[0],
        audience=audience,
        occurrence_date=day,
        cycle_id=None if anonymous else cycle_id,
        user_id=None if anonymous else user_id,
        # An anonymous answer to a channel prompt does not say whether a partner gave it (there may be only one).
        from_partner=(audience == "partner") if anonymous else from_partner,
        anonymous=anonymous,
        shared=shared,
        text=text,
    )
    if anonymous:
        answer.created_at = datetime.combine(day, time(0), tzinfo=UTC)
    session.add(answer)
    if delivery.recipient == user_id and delivery.kind == "partner_prompt":
        # One statement rewrites every delivery row of the round, flipping only this person's flag: on PostgreSQL
        # each row's transaction id (xmin) then matches the answer's for the whole round, not for this person.
        occurrence = _aware(delivery.occurrence)
        session.exec(
            update(Delivery)
            .where(
                col(Delivery.schedule_id) == delivery.schedule_id,
                col(Delivery.kind) == "partner_prompt",
                col(Delivery.prompt_id) == delivery.prompt_id,
                col(Delivery.occurrence) > occurrence - ROUND_WINDOW,
                col(Delivery.occurrence) < occurrence + ROUND_WINDOW,
            )
            .values(answered=or_(col(Delivery.answered), col(Delivery.id) == delivery.id))
            .execution_options(synchronize_session=False)
        )
        session.expire(delivery)
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


def answers_this_week(session: Session, *, project: Project, since: datetime) -> list[Shown]:
    """Answers the team may see that were given (or released from the pool) since `since`, newest first."""
    first_day = _aware(since).astimezone(ZoneInfo(project.timezone)).date()
    return [s for s in visible_answers(session, project=project) if s.day >= first_day]


REFLECTION_FIELDS = {"do": ("what", "observations"), "study": ("learning",), "act": ("reason",)}


def delete_expired(session: Session, *, now: datetime) -> dict[int, int]:
    """Apply each project's retention setting to free text: answers older than it are deleted, and the words of
    older PDSA reflections (what happened, what was learned, the reason for a decision) are replaced by a note,
    keeping the cycle's structure (scores, decisions). Returns answers removed per project.

    Projects without a setting keep everything for the project's life (deleting the project removes it).
    """
    removed: dict[int, int] = {}
    for project in session.exec(select(Project).where(col(Project.retention_days).is_not(None))):
        assert project.id is not None and project.retention_days is not None
        cutoff = now - timedelta(days=project.retention_days)
        old = list(
            session.exec(
                select(Answer).where(Answer.project_id == project.id, col(Answer.created_at) < cutoff)
            )
        )
        for row in old:
            session.delete(row)
        note = f"(removed after {project.retention_days} days, the project's retention setting)"
        cycles = select(PdsaCycle.id).where(PdsaCycle.project_id == project.id)
        redacted = 0
        for entry in session.exec(
            select(PdsaEntry).where(
                col(PdsaEntry.cycle_id).in_(cycles),
                col(PdsaEntry.kind).in_(list(REFLECTION_FIELDS)),
                col(PdsaEntry.created_at) < cutoff,
            )
        ):
            fields = [
                f
                for f in REFLECTION_FIELDS[entry.kind]
                if isinstance(entry.data.get(f), str) and entry.data[f] and entry.data[f] != note
            ]
            if fields:
                entry.data = {**entry.data, **dict.fromkeys(fields, note)}
                session.add(entry)
                redacted += 1
        if old:
            removed[project.id] = len(old)
        if old or redacted:
            audit(
                session,
                team_id=project.team_id,
                project_id=project.id,
                user_id=None,
                action="retention.delete",
                detail={
                    "answers": len(old),
                    "reflections": redacted,
                    "older_than_days": project.retention_days,
                },
            )
    session.flush()
    return removed


def clear_answered_flags(session: Session, *, sent_before: datetime) -> int:
    """Forget who answered once their reminder can no longer be due (the flag is only for reminders)."""
    result = session.exec(
        update(Delivery)
        .where(col(Delivery.answered).is_(True), col(Delivery.sent_at) < sent_before)
        .values(answered=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- pins and skips --------------------------------------------------------------------------------------------


def set_prompt_choice(
    session: Session, *, project: Project, prompt_id: str, choice: str, chosen_by: str
) -> None:
    """Pin (ask next, once) or skip (never ask) a prompt. One pin at a time: a new pin replaces an unused one."""
    if choice not in ("pin", "skip"):
        raise ValueError(f"choice must be pin or skip, got {choice!r}")
    assert project.id is not None
    if choice == "pin":
        for old in session.exec(
            select(PromptChoice).where(
                PromptChoice.project_id == project.id,
                PromptChoice.choice == "pin",
                PromptChoice.used == False,  # noqa: E712
            )
        ):
            if old.prompt_id != prompt_id:
                session.delete(old)
    row = session.exec(
        select(PromptChoice).where(PromptChoice.project_id == project.id, PromptChoice.prompt_id == prompt_id)
    ).first()
    if row is None:
        row = PromptChoice(
            project_id=project.id,
            team_id=project.team_id,
            prompt_id=prompt_id,
            choice=choice,
            chosen_by=chosen_by,
        )
    row.choice, row.used, row.chosen_by, row.created_at = choice, False, chosen_by, utcnow()
    session.add(row)
    audit(
        session,
        team_id=project.team_id,
        project_id=project.id,
        user_id=chosen_by,
        action=f"prompt.{choice}",
        detail={"prompt_id": prompt_id},
    )
    session.flush()


def clear_prompt_choice(session: Session, *, project: Project, prompt_id: str, cleared_by: str) -> bool:
    assert project.id is not None
    row = session.exec(
        select(PromptChoice).where(PromptChoice.project_id == project.id, PromptChoice.prompt_id == prompt_id)
    ).first()
    if row is None:
        return False
    session.delete(row)
    audit(
        session,
        team_id=project.team_id,
        project_id=project.id,
        user_id=cleared_by,
        action="prompt.clear",
        detail={"prompt_id": prompt_id},
    )
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
    for name, value in (
        ("consent", consent),
        ("paused", paused),
        ("stopped", stopped),
        ("share_in_channel", share_in_channel),
    ):
        if value is not None and getattr(partner, name) != value:
            changes[name] = value
            setattr(partner, name, value)
    if changes:
        session.add(partner)
        audit(
            session,
            team_id=partner.team_id,
            project_id=partner.project_id,
            user_id=partner.user_id,
            action="partner.state",
            detail=changes,
        )


def set_partners(
    session: Session, *, project: Project, user_ids: Sequence[str], added_by: str
) -> tuple[list[str], list[str]]:
    """Make the partner list exactly `user_ids`; returns (added, removed). Those who stay keep their consent."""
    assert project.id is not None
    existing = {
        m.user_id: m
        for m in session.exec(
            select(ProjectMember).where(
                ProjectMember.project_id == project.id, ProjectMember.role == "partner"
            )
        )
    }
    added = [u for u in user_ids if u not in existing]
    removed = [u for u in existing if u not in user_ids]
    for user_id in added:
        session.add(
            ProjectMember(
                project_id=project.id,
                team_id=project.team_id,
                user_id=user_id,
                role="partner",
                added_by=added_by,
            )
        )
    for user_id in removed:
        session.delete(existing[user_id])
    if added or removed:
        audit(
            session,
            team_id=project.team_id,
            project_id=project.id,
            user_id=added_by,
            action="partners.set",
            detail={"added": len(added), "removed": len(removed)},
        )
    session.flush()
    return added, removed


def set_privacy(
    session: Session,
    *,
    project: Project,
    about: str,
    threshold: int,
    retention_days: int | None | str,
    changed_by: str,
) -> None:
    """Save the partners' description, the anonymity threshold (raise-only) and how long answers are kept.

    `retention_days` "keep" leaves the setting as it is.
    """
    previous: dict[str, Any] = {}
    if about != project.partner_description:
        previous["partner_description"] = project.partner_description
        project.partner_description = about
    if threshold > project.anonymity_threshold:
        previous["anonymity_threshold"] = project.anonymity_threshold
        project.anonymity_threshold = threshold
    if retention_days != "keep" and retention_days != project.retention_days:
        previous["retention_days"] = project.retention_days
        project.retention_days = retention_days if isinstance(retention_days, int) else None
    if previous:
        project.updated_at = utcnow()
        session.add(project)
        audit(
            session,
            team_id=project.team_id,
            project_id=project.id,
            user_id=changed_by,
            action="project.privacy",
            detail={"previous": previous},
        )
        session.flush()


# --- what the leads' nudge reads -------------------------------------------------------------------------------


def cycles(session: Session, *, project_id: int) -> list[PdsaCycle]:
    return list(
        session.exec(
            select(PdsaCycle).where(PdsaCycle.project_id == project_id).order_by(col(PdsaCycle.number))
        )
    )


# --- partner voices for a publication (the board pack) ----------------------------------------------------------


def partner_voices(session: Session, *, project: Project) -> list[Shown]:
    """Partners' answers they agreed to share, newest first: ticked "share" with consent given when they answered,
    anonymous ones only once their round's crowd was big enough, and named ones only while the partner still
    consents and shares (a partner who stops or withdraws takes their words out of the next pack)."""
    assert project.id is not None
    still_sharing = {
        m.user_id
        for m in session.exec(
            select(ProjectMember).where(
                ProjectMember.project_id == project.id,
                ProjectMember.role == "partner",
                ProjectMember.consent == "given",
                ProjectMember.share_in_channel == True,  # noqa: E712
                ProjectMember.stopped == False,  # noqa: E712
            )
        )
    }
    return [
        s
        for s in visible_answers(session, project=project)
        if s.answer.from_partner
        and s.answer.shared
        and (s.answer.anonymous or s.answer.user_id in still_sharing)
    ]
