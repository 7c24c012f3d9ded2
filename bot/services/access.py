"""Who may act on which project: the authorisation check behind handlers/access.py's `guard`, the claims that
read which project a payload says it is about, and the form grants that make a submission apply once.

A request's team, user and channel are facts (Slack sets them and signs them); a button's value or a form's
private_metadata is a claim, checked here against the database. Each function that reads opens its own short
unit of work, or (the claims, `authorise`, `check_grant`) runs inside the one `check_request` opens.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Engine
from sqlmodel import Session

from bot.core import claims
from bot.core.claims import request_channel
from storage import drivers_repo, grants_repo, measures_repo, pdsa_repo
from storage import repositories as repo
from storage.answers_repo import get_delivery
from storage.db import WriteTracker, track_writes, unit_of_work
from storage.models import Project, ViewGrant, utcnow

__all__ = ["WriteTracker", "track_writes"]  # how a listener's committed writes are counted (storage.db)

logger = logging.getLogger(__name__)

# partner: anyone on the project, service-user partners included (their own DM buttons and answers);
# member: the project's channel, or its leads and team members from Home or a DM; lead: its leads only.
Need = Literal["partner", "member", "lead"]
GRANT_DAYS = 7  # a form left open longer than this must be opened again
GRANT_WAIT_SECONDS = 2.0  # a form submitted the instant it opened may beat the opener's record of it
OPENING = "opening:"  # a view_grant row for a form being opened, before Slack gives its view id
APPLYING_MINUTES = 2  # a submission that died mid-way frees its form after this
GRANT_POLL_SECONDS = 0.05  # how often a submission waiting for its form's record looks again

# Told when this process has recorded a form it opened: a submission waiting for that record here goes on at once
# rather than at its next look (a form opened by another instance is seen at the next look).
_GRANTED = threading.Condition()

NOT_YOURS = (
    "That isn't part of a project you can use from here (it may belong to another channel, or no longer exist), "
    "so nothing was changed. Use the commands and buttons in your project's own channel: `/mfi status` there "
    "shows its project."
)
STALE_FORM = (
    "I can't save this form: it wasn't opened for you by MFI-AR, or it is out of date, so nothing was changed. "
    "Close it and open it again from your project's channel."
)
ALREADY_SAVED = "This form was saved already, so nothing was changed this time. You can close it."
BEING_SAVED = "This form is being saved already, so nothing more was changed. You can close it."


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused, in words for the person who sent it (nothing about anyone else's project)."""

    text: str


# ---------------------------------------------------------------- the check


def is_personal(channel_id: str | None) -> bool:
    """The App Home (no channel) or a direct message with the bot (D…): places that prove no project."""
    return channel_id is None or channel_id.startswith("D")


def is_member_of_record(session: Session, *, project_id: int, user_id: str, partners: bool = True) -> bool:
    roles = ("lead", "member", "partner") if partners else ("lead", "member")
    return grants_repo.is_on_record(session, project_id=project_id, user_id=user_id, roles=roles)


def lead_refusal(session: Session, project: Project) -> Refusal:
    assert project.id is not None
    leads = ", ".join(f"<@{m.user_id}>" for m in repo.members(session, project_id=project.id, role="lead"))
    return Refusal(
        "Only the project's leads can do that, so nothing was changed. "
        f"The leads of *{_mrkdwn(project.name)}* are {leads or 'listed on the project card'}: ask one of them."
    )


def authorise(
    session: Session,
    team_id: str | None,
    claimed_project_id: int | None,
    channel_id: str | None,
    user_id: str | None,
    need: Need = "member",
) -> Project | Refusal:
    """The project the person may act on, or why not.

    ``channel_id`` is where the request came from (a fact, or the channel the bot recorded when it opened the form);
    None for the App Home. A channel other than the project's own is refused whoever asks, with the same words as a
    project that does not exist, so a refusal reveals nothing about another team's project.
    """
    if not team_id or not user_id or claimed_project_id is None:
        return Refusal(NOT_YOURS)
    project = repo.get_project(session, team_id=team_id, project_id=claimed_project_id)
    if project is None or project.id is None:
        return Refusal(NOT_YOURS)
    if channel_id != project.channel_id:
        if not is_personal(channel_id):
            return Refusal(NOT_YOURS)
        if not is_member_of_record(
            session, project_id=project.id, user_id=user_id, partners=need == "partner"
        ):
            return Refusal(NOT_YOURS)
    if need == "lead" and not repo.is_lead(session, project_id=project.id, user_id=user_id):
        return lead_refusal(session, project)
    return project


# ---------------------------------------------------------------- claims: which project a payload says it is about

Claim = Callable[[Session, str, Mapping[str, Any]], int | None]


def _value(body: Mapping[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    return str(action.get("value") or "")


def _json_value(body: Mapping[str, Any]) -> dict[str, Any]:
    return claims.action_json(body)


def _int(raw: Any) -> int | None:
    """An id claimed by a payload: a positive whole number within the database's integer range, or None."""
    return claims.parse_id(raw)


def channel_project(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
    """The project of the channel the request came from."""
    channel = request_channel(body)
    project = repo.project_for_channel(session, team_id=team_id, channel_id=channel) if channel else None
    return project.id if project else None


def value_project(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
    """A button whose value is a project id (plain, or JSON with "project_id")."""
    return _int(_value(body)) if _value(body).strip().isdigit() else _int(_json_value(body).get("project_id"))


def value_cycle(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
    cycle_id = _int(_value(body))
    cycle = (
        pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if cycle_id is not None
        else None
    )
    return cycle.project_id if cycle else None


def value_batch(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
    batch_id = _int(_value(body))
    batch = (
        measures_repo.get_batch(session, team_id=team_id, batch_id=batch_id) if batch_id is not None else None
    )
    measure = (
        measures_repo.get_measure(session, team_id=team_id, measure_id=batch.measure_id) if batch else None
    )
    return measure.project_id if measure is not None else None


def _delivery_project(session: Session, team_id: str, raw: Any) -> int | None:
    delivery_id = _int(raw)
    delivery = (
        get_delivery(session, team_id=team_id, delivery_id=delivery_id) if delivery_id is not None else None
    )
    return delivery.project_id if delivery else None


def value_delivery(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
    """A prompt's button: JSON with "delivery_id" (or, on some partner buttons, "project_id")."""
    value = _json_value(body)
    if "project_id" in value:
        return _int(value["project_id"])
    return _delivery_project(session, team_id, value.get("delivery_id"))


def value_measure(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
    """An /equity button: JSON with "measure"."""
    measure_id = _int(_json_value(body).get("measure"))
    measure = (
        measures_repo.get_measure(session, team_id=team_id, measure_id=measure_id) if measure_id else None
    )
    return measure.project_id if measure else None


def block_or_value_project(block_prefix: str) -> Claim:
    """A claim for pin/skip: a Home select's block_id (`block_prefix` + the project id) or a button's JSON value
    with "project_id"."""

    def prompt_choice(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
        actions = body.get("actions") or [{}]
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        if action.get("selected_option"):
            return _int(str(action.get("block_id") or "").removeprefix(block_prefix))
        return _int(_json_value(body).get("project_id"))

    return prompt_choice


def metadata_projects(session: Session, team_id: str, metadata: Mapping[str, Any]) -> set[int | None]:
    """Every project a form's private_metadata points at, through each id it carries."""
    found: set[int | None] = set()
    if "project_id" in metadata:
        found.add(_int(metadata["project_id"]))
    if "cycle_id" in metadata:
        cycle_id = _int(metadata["cycle_id"])
        cycle = (
            pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
            if cycle_id is not None
            else None
        )
        found.add(cycle.project_id if cycle else None)
    if "measure_id" in metadata:
        measure_id = _int(metadata["measure_id"])
        measure = (
            measures_repo.get_measure(session, team_id=team_id, measure_id=measure_id) if measure_id else None
        )
        found.add(measure.project_id if measure else None)
    if "delivery_id" in metadata:
        found.add(_delivery_project(session, team_id, metadata["delivery_id"]))
    if "driver_id" in metadata:
        driver_id = _int(metadata["driver_id"])
        driver = drivers_repo.get_driver(session, team_id=team_id, driver_id=driver_id) if driver_id else None
        found.add(driver.project_id if driver else None)
    if "idea_id" in metadata:
        idea_id = _int(metadata["idea_id"])
        idea = drivers_repo.get_idea(session, team_id=team_id, idea_id=idea_id) if idea_id else None
        found.add(idea.project_id if idea else None)
    return found


def form(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
    """A form (or a button inside one): checked against the grant recorded when the bot opened it."""
    return None


def view_metadata(view: Mapping[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- forms: grants and once-only submissions


def record_opening(engine: Engine, *, team_id: str, user_id: str) -> str:
    """Note that a form is being opened for this person (before Slack answers with its view id)."""
    marker = f"{OPENING}{uuid.uuid4().hex}"
    with track_writes(), unit_of_work(engine) as session:  # bookkeeping: not something the person saved
        grants_repo.add_opening(session, team_id=team_id, view_id=marker, user_id=user_id)
    return marker


def record_grant(
    engine: Engine,
    *,
    team_id: str,
    user_id: str,
    project_id: int | None,
    channel_id: str | None,
    view: Mapping[str, Any] | None,
    marker: str | None = None,
) -> None:
    """Remember a modal the bot opened (Slack's view id), for whom and for which project; drop the opening note."""
    view_id = str((view or {}).get("id") or "")
    with track_writes(), unit_of_work(engine) as session:  # bookkeeping: not something the person saved
        if marker:
            grants_repo.drop_grant(session, team_id=team_id, view_id=marker)
        grants_repo.drop_grants_opened_before(session, before=utcnow() - timedelta(days=GRANT_DAYS))
        if view_id and view is not None:
            grants_repo.put_grant(
                session,
                team_id=team_id,
                view_id=view_id,
                user_id=user_id,
                project_id=project_id,
                channel_id=channel_id,
                callback_id=str(view.get("callback_id") or "")[:64],
            )
    with _GRANTED:
        _GRANTED.notify_all()


def _wait_for_grant() -> None:
    with _GRANTED:
        _GRANTED.wait(GRANT_POLL_SECONDS)


def check_grant(
    session: Session,
    *,
    team_id: str,
    user_id: str,
    view: Mapping[str, Any],
    need: Need,
) -> tuple[ViewGrant, Project | None] | Refusal:
    """The grant for a form and the project it may act on; the metadata's ids must all point at that project."""
    grant = grants_repo.get_grant(session, team_id=team_id, view_id=str(view.get("id") or ""))
    if (
        grant is None
        or grant.status == "opening"
        or grant.user_id != user_id
        or grant.callback_id != str(view.get("callback_id") or "")[:64]
    ):
        return Refusal(STALE_FORM)
    if grant.opened_at < utcnow() - timedelta(days=GRANT_DAYS):
        return Refusal(STALE_FORM)
    metadata = view_metadata(view)
    claimed = metadata_projects(session, team_id, metadata)
    if grant.project_id is None:
        # Only /mfi new opens a form before there is a project: the form may name no project, only its channel.
        if claimed or str(metadata.get("channel_id") or "") != (grant.channel_id or ""):
            return Refusal(STALE_FORM)
        return grant, None
    if claimed - {grant.project_id}:
        return Refusal(STALE_FORM)
    checked = authorise(session, team_id, grant.project_id, grant.channel_id, user_id, need)
    if isinstance(checked, Refusal):
        return checked
    if "channel_id" in metadata and str(metadata["channel_id"]) != checked.channel_id:
        return Refusal(STALE_FORM)
    return grant, checked


def await_grant(engine: Engine, *, team_id: str, user_id: str, view_id: str) -> None:
    """Wait while a form is still being opened for this person: a submission can beat the record of its opening.

    Only an opening under way makes it wait, so a form the bot never opened is refused at once.
    """
    deadline = time.monotonic() + GRANT_WAIT_SECONDS
    recent = utcnow() - timedelta(seconds=GRANT_WAIT_SECONDS * 4)
    while True:
        with unit_of_work(engine) as session:
            if grants_repo.get_grant(session, team_id=team_id, view_id=view_id) is not None:
                return
            opening = grants_repo.opening_since(session, team_id=team_id, user_id=user_id, since=recent)
        if opening is None or time.monotonic() >= deadline:
            return
        _wait_for_grant()


def claim_submission(engine: Engine, *, team_id: str, view_id: str) -> Refusal | None:
    """Mark a form as being saved, atomically; a refusal when it was saved (or is being saved) already."""
    stale = utcnow() - timedelta(minutes=APPLYING_MINUTES)
    with unit_of_work(engine) as session:
        if grants_repo.mark_applying(session, team_id=team_id, view_id=view_id, stale_before=stale):
            return None
        grant = grants_repo.get_grant(session, team_id=team_id, view_id=view_id)
    return Refusal(ALREADY_SAVED if grant is not None and grant.status == "applied" else BEING_SAVED)


def admit_submission(
    engine: Engine, *, team_id: str, user_id: str, view: Mapping[str, Any], need: Need
) -> Allowed | Refusal:
    """A submitted form checked against its grant and marked as being saved, in one short unit of work.

    The same steps as await_grant, check_request and claim_submission, which each took a transaction of their own
    before the acknowledgement: one transaction (and one connection from the pool) instead of three, on every
    form submitted. Waiting for a form still being opened happens between transactions, never inside one.
    """
    view_id = str(view.get("id") or "")
    deadline = time.monotonic() + GRANT_WAIT_SECONDS
    recent = utcnow() - timedelta(seconds=GRANT_WAIT_SECONDS * 4)
    while True:
        with unit_of_work(engine) as session:
            # Held while checking: the session's identity map is weak, and check_grant reads the grant again.
            grant = grants_repo.get_grant(session, team_id=team_id, view_id=view_id)
            if (
                grant is not None
                or time.monotonic() >= deadline
                or grants_repo.opening_since(session, team_id=team_id, user_id=user_id, since=recent) is None
            ):
                return _admit(session, team_id=team_id, user_id=user_id, view=view, need=need)
        _wait_for_grant()


def _admit(
    session: Session, *, team_id: str, user_id: str, view: Mapping[str, Any], need: Need
) -> Allowed | Refusal:
    checked = check_grant(session, team_id=team_id, user_id=user_id, view=view, need=need)
    if isinstance(checked, Refusal):
        return checked
    grant, project = checked
    if grant.status == "applied":
        return Refusal(ALREADY_SAVED)
    stale = utcnow() - timedelta(minutes=APPLYING_MINUTES)
    if grants_repo.mark_applying(session, team_id=team_id, view_id=grant.view_id, stale_before=stale):
        return Allowed(_ref(project), grant.channel_id)
    session.refresh(grant)  # another submission of this form got there first: saved already, or being saved
    return Refusal(ALREADY_SAVED if grant.status == "applied" else BEING_SAVED)


def settle_submission(engine: Engine, *, team_id: str, view_id: str, applied: bool) -> None:
    try:
        with unit_of_work(engine) as session:
            grants_repo.settle(session, team_id=team_id, view_id=view_id, applied=applied)
    except Exception:
        logger.exception("Could not record whether form %s was saved", view_id)


# ---------------------------------------------------------------- one request, checked in one short unit of work


@dataclass(frozen=True)
class ProjectRef:
    """The project a request may act on, as plain values."""

    id: int
    channel_id: str


@dataclass(frozen=True)
class Allowed:
    project: ProjectRef | None  # None: the request is about no project (or an optional claim found none)
    grant_channel: str | None = None  # for a form: the channel the bot recorded when it opened it


def check_request(
    engine: Engine,
    *,
    team_id: str | None,
    user_id: str | None,
    channel_id: str | None,
    body: Mapping[str, Any],
    claim: Claim | None,
    need: Need,
    optional: bool,
    view: Mapping[str, Any] | None,
) -> Allowed | Refusal:
    """Whether this request may go ahead, and on which project: a form against its grant, anything else against
    the project its payload claims (`claim`), which must be this channel's or, from somewhere personal, one the
    person belongs to."""
    if claim is None:
        return Allowed(None)
    with unit_of_work(engine) as session:
        if view is not None:
            checked = check_grant(session, team_id=team_id or "", user_id=user_id or "", view=view, need=need)
            if isinstance(checked, Refusal):
                return checked
            grant, project = checked
            if grant.status == "applied":
                return Refusal(ALREADY_SAVED)
            return Allowed(_ref(project), grant.channel_id)
        claimed = claim(session, team_id or "", body) if team_id else None
        if claimed is None and optional:
            return Allowed(None)
        outcome = authorise(session, team_id, claimed, channel_id, user_id, need)
        return outcome if isinstance(outcome, Refusal) else Allowed(_ref(outcome))


def _ref(project: Project | None) -> ProjectRef | None:
    return ProjectRef(int(project.id or 0), project.channel_id) if project is not None else None
