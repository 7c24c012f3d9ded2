"""One authorisation check for every command, action, submission and event the bot listens to.

A request's team, user and (for commands, messages and events) channel are facts: Slack sets them and the
signature covers them. Everything else in a payload, a button's `value`, a form's `private_metadata`, a
`channel_id` inside either, is a claim to check against the database:

* the claimed project exists in this workspace;
* it belongs to the channel the request came from, or the request came from somewhere personal (the App Home or
  the person's DM with the bot, e.g. a partner's DM) and the person is one of the project's leads, members or
  partners;
* the person may do this: leads only where leads only.

Forms are checked against the `view_grant` the bot recorded when it opened them (Slack's view id, the person and
the project the opener was authorised for), so a submission's metadata cannot point somewhere else; the same row
makes a submission apply once, however often it is replayed.

Every listener is registered through `guard` (or `unscoped` for the few with no project, such as
app_uninstalled), which marks it; tests/test_security_authz.py fails if one is not.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, delete, update
from sqlmodel import Session, col, select

from handlers import claims
from handlers.blocks import ids
from storage import drivers_repo, measures_repo, pdsa_repo
from storage import repositories as repo
from storage.answers_repo import get_delivery
from storage.db import WriteTracker, track_writes, unit_of_work
from storage.models import Measure, Project, ProjectMember, ViewGrant, utcnow

logger = logging.getLogger(__name__)

# partner: anyone on the project, service-user partners included (their own DM buttons and answers);
# member: the project's channel, or its leads and team members from Home or a DM; lead: its leads only.
Need = Literal["partner", "member", "lead"]
MARK = "__mfi_access__"
NOTHING_SAVED = "__mfi_nothing_saved__"
GRANT_DAYS = 7  # a form left open longer than this must be opened again
GRANT_WAIT_SECONDS = 2.0  # a form submitted the instant it opened may beat the opener's record of it
OPENING = "opening:"  # a view_grant row for a form being opened, before Slack gives its view id
APPLYING_MINUTES = 2  # a submission that died mid-way frees its form after this

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
INVITE = "`/invite @MFI-AR`"


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
    found = session.exec(
        select(ProjectMember.id).where(
            ProjectMember.project_id == project_id,
            ProjectMember.user_id == user_id,
            col(ProjectMember.role).in_(roles),
        )
    ).first()
    return found is not None


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


def request_channel(body: Mapping[str, Any]) -> str | None:
    """The channel a request came from, as Slack set it (never from a value or metadata)."""
    if body.get("command"):
        return str(body.get("channel_id") or "") or None
    event = body.get("event")
    if isinstance(event, dict):
        return str(event.get("channel_id") or event.get("channel") or "") or None
    channel = body.get("channel")
    return str(channel.get("id") or "") or None if isinstance(channel, dict) else None


def request_user(body: Mapping[str, Any]) -> str | None:
    if body.get("command"):
        return str(body.get("user_id") or "") or None
    event = body.get("event")
    if isinstance(event, dict):
        return str(event.get("user_id") or event.get("user") or "") or None
    user = body.get("user")
    return str(user.get("id") or "") or None if isinstance(user, dict) else None


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
    measure = session.get(Measure, batch.measure_id) if batch else None
    return measure.project_id if measure is not None and measure.team_id == team_id else None


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


def prompt_choice(session: Session, team_id: str, body: Mapping[str, Any]) -> int | None:
    """Pin/skip: a Home select's block_id carries the project id; a button's JSON value carries "project_id"."""
    actions = body.get("actions") or [{}]
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    if action.get("selected_option"):
        return _int(str(action.get("block_id") or "").removeprefix(ids.B_PROMPT_CHOICE_PREFIX))
    return _int(_json_value(body).get("project_id"))


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
        session.add(ViewGrant(team_id=team_id, view_id=marker, user_id=user_id, status="opening"))
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
            session.exec(
                delete(ViewGrant).where(col(ViewGrant.team_id) == team_id, col(ViewGrant.view_id) == marker)
            )
        session.exec(
            delete(ViewGrant).where(col(ViewGrant.opened_at) < utcnow() - timedelta(days=GRANT_DAYS))
        )
        if view_id and view is not None:
            session.merge(
                ViewGrant(
                    team_id=team_id,
                    view_id=view_id,
                    user_id=user_id,
                    project_id=project_id,
                    channel_id=channel_id,
                    callback_id=str(view.get("callback_id") or "")[:64],
                )
            )


def check_grant(
    session: Session,
    *,
    team_id: str,
    user_id: str,
    view: Mapping[str, Any],
    need: Need,
) -> tuple[ViewGrant, Project | None] | Refusal:
    """The grant for a form and the project it may act on; the metadata's ids must all point at that project."""
    grant = session.get(ViewGrant, (team_id, str(view.get("id") or "")))
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


def _await_grant(engine: Engine, *, team_id: str, user_id: str, view_id: str) -> None:
    """Wait while a form is still being opened for this person: a submission can beat the record of its opening.

    Only an opening under way makes it wait, so a form the bot never opened is refused at once.
    """
    deadline = time.monotonic() + GRANT_WAIT_SECONDS
    recent = utcnow() - timedelta(seconds=GRANT_WAIT_SECONDS * 4)
    while True:
        with unit_of_work(engine) as session:
            if session.get(ViewGrant, (team_id, view_id)) is not None:
                return
            opening = session.exec(
                select(ViewGrant.view_id).where(
                    ViewGrant.team_id == team_id,
                    ViewGrant.user_id == user_id,
                    ViewGrant.status == "opening",
                    col(ViewGrant.opened_at) >= recent,
                )
            ).first()
        if opening is None or time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def claim_submission(engine: Engine, *, team_id: str, view_id: str) -> Refusal | None:
    """Mark a form as being saved, atomically; a refusal when it was saved (or is being saved) already."""
    stale = utcnow() - timedelta(minutes=APPLYING_MINUTES)
    with unit_of_work(engine) as session:
        result = session.exec(
            update(ViewGrant)
            .where(col(ViewGrant.team_id) == team_id, col(ViewGrant.view_id) == view_id)
            .where(
                (col(ViewGrant.status) == "open")
                | ((col(ViewGrant.status) == "applying") & (col(ViewGrant.updated_at) < stale))
            )
            .values(status="applying", updated_at=utcnow())
        )
        if result.rowcount == 1:
            return None
        grant = session.get(ViewGrant, (team_id, view_id))
    return Refusal(ALREADY_SAVED if grant is not None and grant.status == "applied" else BEING_SAVED)


def settle_submission(engine: Engine, *, team_id: str, view_id: str, applied: bool) -> None:
    try:
        with unit_of_work(engine) as session:
            session.exec(
                update(ViewGrant)
                .where(col(ViewGrant.team_id) == team_id, col(ViewGrant.view_id) == view_id)
                .values(status="applied" if applied else "open", updated_at=utcnow())
            )
    except Exception:
        logger.exception("Could not record whether form %s was saved", view_id)


# ---------------------------------------------------------------- can the bot post where the form will post?


def cannot_post(client: WebClient, channel_id: str) -> str | None:
    """Why the bot can't post in a channel (with what to do), or None when it can (or Slack can't say just now)."""
    try:
        info = client.conversations_info(channel=channel_id)["channel"]
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "")
        if error in ("channel_not_found", "not_in_channel"):
            # Slack answers this for a private channel the bot is not in, and for direct messages between people.
            return (
                "I can't post in this conversation, so I haven't opened the form. If it's a private channel, "
                f"invite me with {INVITE} and try again. I can't join direct messages between people: "
                "run this in your team's channel."
            )
        logger.warning("conversations.info for %s failed (%s); trying anyway", channel_id, error)
        return None
    if info.get("is_archived"):
        return "This channel is archived, so I can't post in it. Run this in your team's current channel."
    if info.get("is_im") or info.get("is_mpim"):
        return None
    if info.get("is_member") is False:
        name = str(info.get("name") or "")
        where = f"#{name}" if name else "this channel"
        return (
            f"I'm not in {where} yet, so I couldn't post what this form saves, and I haven't opened it. "
            f"Invite me with {INVITE}, then try again."
        )
    return None


# ---------------------------------------------------------------- the decorator every listener goes through


@dataclass(frozen=True)
class Rule:
    """How a listener's request is authorised."""

    claim: Claim | None  # None: the request is about no project (e.g. app_uninstalled)
    need: Need | Callable[[Mapping[str, Any]], Need] = "member"
    optional: bool = False  # a fact-based claim may find no project (a command in a channel without one)
    posts: bool | Callable[[Mapping[str, Any]], bool] = (
        False  # opens a form (or posts) in the project's channel
    )
    saved: tuple[str, str] | None = (
        None  # ("Your figures were saved", "`/measure list`"): honest post-failure words
    )


@dataclass
class Args:
    """What a listener is given (Bolt injects these by name)."""

    ack: Any
    body: dict[str, Any]
    client: WebClient
    context: BoltContext
    respond: Any
    view: Any
    command: Any
    event: Any
    action: Any
    say: Any
    logger: logging.Logger


class _RecordingAck:
    def __init__(self, ack: Any) -> None:
        self._ack = ack
        self.called = False
        self.errors = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.called = True
        self.errors = kwargs.get("response_action") == "errors"
        return self._ack(*args, **kwargs)


def _kind(body: Mapping[str, Any]) -> str:
    if body.get("command"):
        return "command"
    return str(body.get("type") or "")


def _subcommand(body: Mapping[str, Any]) -> str:
    return str(body.get("text") or "").strip().split(" ", 1)[0].lower()


def words(*subcommands: str) -> Callable[[Mapping[str, Any]], bool]:
    """A `posts` predicate: true for these subcommands of a slash command."""
    wanted = set(subcommands)

    def matches(body: Mapping[str, Any]) -> bool:
        return _subcommand(body) in wanted

    return matches


def _first_input(view: Mapping[str, Any]) -> str | None:
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return None


def refuse(args: Args, refusal: Refusal) -> None:
    """Say no where the person will see it, and only to them; nothing else happens."""
    body: Mapping[str, Any] = args.body or {}
    kind = _kind(body)
    user = request_user(body)
    logger.info("Refused %s from %s: %s", kind, user, refusal.text[:80])
    if kind == "view_submission":
        view = body.get("view") or {}
        block = _first_input(view)
        if block:
            args.ack(response_action="errors", errors={block: refusal.text})
        else:
            args.ack(
                response_action="update",
                view={
                    "type": "modal",
                    "title": {"type": "plain_text", "text": "MFI-AR"},
                    "close": {"type": "plain_text", "text": "Close"},
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": refusal.text}}],
                },
            )
        return
    if kind == "event_callback":
        return
    args.ack()
    tell(args, refusal.text)


def tell(args: Args, text: str) -> None:
    """An ephemeral reply through response_url, or a DM when there is none (App Home, forms)."""
    body: Mapping[str, Any] = args.body or {}
    try:
        if args.respond is not None and (body.get("response_url") or _kind(body) == "command"):
            args.respond(text=text, response_type="ephemeral", replace_original=False)
            return
        user = request_user(body)
        if user:
            args.client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        logger.warning("Could not tell %s: %s", request_user(body), exc.response.get("error"))


def _saved_but(rule: Rule, error: Exception, channel: str | None, reference: str) -> str:
    saved, then = rule.saved or ("What you asked for was saved", "`/mfi status`")
    where = f"<#{channel}>" if channel else "the channel"
    slack_error = str(error.response.get("error") or "") if isinstance(error, SlackApiError) else ""
    if slack_error in ("not_in_channel", "channel_not_found", "is_archived"):
        return (
            f"{saved}, but I couldn't post it in {where}: I'm not a member there. "
            f"Invite me with {INVITE}, then use {then} to see it."
        )
    return (
        f"{saved}, but something went wrong afterwards, so it may not have been posted in {where}. "
        f"Use {then} to see what was saved. If it keeps happening, tell your Slack admin (reference {reference})."
    )


def _params(fn: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(fn).parameters)


def guard(listener: Callable[..., Any], rule: Rule) -> Callable[..., Any]:
    """`listener`, run only when `authorise` allows the request; marked so a test can find any listener without it."""
    wanted = _params(listener)

    def guarded(
        ack: Any,
        body: dict[str, Any],
        client: WebClient,
        context: BoltContext,
        respond: Any,
        view: Any,
        command: Any,
        event: Any,
        action: Any,
        say: Any,
        logger: logging.Logger,
    ) -> None:
        args = Args(
            ack=ack,
            body=body,
            client=client,
            context=context,
            respond=respond,
            view=view,
            command=command,
            event=event,
            action=action,
            say=say,
            logger=logger,
        )
        try:
            _run(listener, wanted, rule, args)
        except Exception as error:
            # _run reports a failure after a save itself; whatever escapes it saved nothing.
            with contextlib.suppress(AttributeError):
                setattr(error, NOTHING_SAVED, True)  # the generic apology may then say "nothing was changed"
            raise

    guarded.__name__ = getattr(listener, "__name__", "listener")
    guarded.__qualname__ = getattr(listener, "__qualname__", guarded.__name__)
    guarded.__doc__ = listener.__doc__
    setattr(guarded, MARK, rule)
    return guarded


def _run(listener: Callable[..., Any], wanted: list[str], rule: Rule, args: Args) -> None:
    context: BoltContext = args.context
    body: Mapping[str, Any] = args.body or {}
    engine: Engine = context["engine"]
    team_id = context.team_id or str((body.get("team") or {}).get("id") or "") or None
    user_id = request_user(body)
    channel_id = request_channel(body)
    kind = _kind(body)
    view: dict[str, Any] | None = body.get("view") if isinstance(body.get("view"), dict) else None
    in_form = view is not None and view.get("type") == "modal"
    need = rule.need(body) if callable(rule.need) else rule.need
    project: Project | None = None
    grant_channel: str | None = None
    if in_form and rule.claim is not None and view is not None:
        _await_grant(engine, team_id=team_id or "", user_id=user_id or "", view_id=str(view.get("id") or ""))
    with unit_of_work(engine) as session:
        if rule.claim is None:
            outcome: Project | Refusal | None = None
        elif in_form:
            assert view is not None
            checked = check_grant(session, team_id=team_id or "", user_id=user_id or "", view=view, need=need)
            if isinstance(checked, Refusal):
                outcome = checked
            else:
                outcome, grant_channel = checked[1], checked[0].channel_id
                if checked[0].status == "applied":
                    outcome = Refusal(ALREADY_SAVED)
        else:
            claimed = rule.claim(session, team_id or "", body) if team_id else None
            if claimed is None and rule.optional:
                outcome = None
            else:
                outcome = authorise(session, team_id, claimed, channel_id, user_id, need)
    if isinstance(outcome, Refusal):
        refuse(args, outcome)
        return
    project = outcome
    posts = rule.posts(body) if callable(rule.posts) else rule.posts
    if posts and kind != "view_submission":
        target = project.channel_id if project is not None else channel_id
        problem = cannot_post(args.client, target) if target else None
        if problem:
            refuse(args, Refusal(problem))
            return
    claimed_form = False
    if kind == "view_submission" and view is not None and rule.claim is not None:
        already = claim_submission(engine, team_id=team_id or "", view_id=str(view.get("id") or ""))
        if already is not None:
            refuse(args, already)
            return
        claimed_form = True
    ack = _RecordingAck(args.ack)
    client = _granting_client(
        args.client,
        engine,
        team_id=team_id,
        user_id=user_id,
        project=project,
        channel_id=channel_id if project is None or channel_id == project.channel_id else None,
    )
    supplied = {"ack": ack, "client": client}
    kwargs = {name: supplied[name] if name in supplied else _arg(args, name) for name in wanted}
    tracker: WriteTracker | None = None
    try:
        with track_writes() as tracker:
            listener(**kwargs)
    except Exception as error:
        if tracker is None or not tracker.committed:
            raise
        # Saved, then something failed (usually the post in the channel): say exactly that, never "nothing changed".
        reference = uuid.uuid4().hex[:8]
        logger.exception("Listener failed after saving (reference %s)", reference)
        where = project.channel_id if project is not None else (grant_channel or channel_id)
        tell(args, _saved_but(rule, error, where, reference))
    finally:
        if claimed_form and view is not None:
            applied = tracker is not None and (tracker.committed or (ack.called and not ack.errors))
            settle_submission(
                engine, team_id=team_id or "", view_id=str(view.get("id") or ""), applied=applied
            )


def unscoped(listener: Callable[..., Any]) -> Callable[..., Any]:
    """A listener about no project (the person's own Home, the workspace leaving): marked as reviewed."""
    return guard(listener, Rule(claim=None))


def _arg(args: Args, name: str) -> Any:
    if name in Args.__dataclass_fields__:
        return getattr(args, name)
    return args.context.get(name)


def _interactive(view: Any) -> bool:
    """Whether a modal can send anything back (a submit button, an input or an interactive element)."""
    if not isinstance(view, Mapping):
        return True  # not ours to judge: record it
    if view.get("submit"):
        return True
    return any(
        isinstance(b, Mapping) and (b.get("type") in ("input", "actions") or b.get("accessory"))
        for b in view.get("blocks") or []
    )


def _granting_client(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str | None,
    user_id: str | None,
    project: Project | None,
    channel_id: str | None,
) -> WebClient:
    """The same client, except that a modal it opens is recorded as granted to this person for this project."""
    if not team_id or not user_id:
        return client
    granting = copy.copy(client)

    def opener(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not _interactive(kwargs.get("view")):
                return method(*args, **kwargs)  # nothing in it can be submitted or pressed: nothing to grant
            marker = record_opening(engine, team_id=team_id, user_id=user_id)
            opened: Any = None
            try:
                result = method(*args, **kwargs)
                opened = result.get("view") if hasattr(result, "get") else None
                return result
            finally:
                record_grant(
                    engine,
                    team_id=team_id,
                    user_id=user_id,
                    project_id=project.id if project is not None else None,
                    channel_id=project.channel_id if project is not None and channel_id else channel_id,
                    view=opened if isinstance(opened, dict) else None,
                    marker=marker,
                )

        return call

    granting.views_open = opener(client.views_open)  # type: ignore[method-assign]
    granting.views_push = opener(client.views_push)  # type: ignore[method-assign]
    return granting
