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

The checks that read the database live in bot/services/access.py (re-exported here under their old names);
this module is the Slack side: the decorator, the refusal and the form-grant bookkeeping around a listener.

Every listener is registered through `guard` (or `unscoped` for the few with no project, such as
app_uninstalled), which marks it; tests/test_security_authz.py fails if one is not.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.core.claims import request_channel, request_user
from bot.services.access import (
    ALREADY_SAVED,
    APPLYING_MINUTES,
    BEING_SAVED,
    GRANT_DAYS,
    GRANT_WAIT_SECONDS,
    NOT_YOURS,
    OPENING,
    STALE_FORM,
    Allowed,
    Claim,
    Need,
    ProjectRef,
    Refusal,
    WriteTracker,
    admit_submission,
    authorise,
    await_grant,
    block_or_value_project,
    channel_project,
    check_grant,
    check_request,
    claim_submission,
    form,
    is_member_of_record,
    is_personal,
    lead_refusal,
    metadata_projects,
    record_grant,
    record_opening,
    settle_submission,
    track_writes,
    value_batch,
    value_cycle,
    value_delivery,
    value_measure,
    value_project,
    view_metadata,
)
from bot.services.engine import Engine
from handlers.blocks import ids
from handlers.replies import INVITE, Args, cannot_post, kind_of, refuse, saved_but, tell

__all__ = [  # the checks' old names, for the surfaces and the tests
    "INVITE",
    "Args",
    "cannot_post",
    "refuse",
    "tell",
    "ALREADY_SAVED",
    "APPLYING_MINUTES",
    "BEING_SAVED",
    "GRANT_DAYS",
    "GRANT_WAIT_SECONDS",
    "NOT_YOURS",
    "OPENING",
    "STALE_FORM",
    "Claim",
    "Need",
    "Refusal",
    "authorise",
    "channel_project",
    "only_for",
    "check_grant",
    "claim_submission",
    "form",
    "is_member_of_record",
    "is_personal",
    "lead_refusal",
    "metadata_projects",
    "prompt_choice",
    "record_grant",
    "record_opening",
    "request_channel",
    "request_user",
    "settle_submission",
    "value_batch",
    "value_cycle",
    "value_delivery",
    "value_measure",
    "value_project",
    "view_metadata",
]

logger = logging.getLogger(__name__)

MARK = "__mfi_access__"
NOTHING_SAVED = "__mfi_nothing_saved__"

# Pin/skip: a Home select's block_id carries the project id; a button's JSON value carries "project_id".
prompt_choice = block_or_value_project(ids.B_PROMPT_CHOICE_PREFIX)


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


class _RecordingAck:
    """The listener's ack, noting whether it was called and with inline errors. `before_errors` runs before an
    ack with errors goes out: the person can correct the form and submit again as soon as they see them."""

    def __init__(self, ack: Any, before_errors: Callable[[], None] | None = None) -> None:
        self._ack = ack
        self._before_errors = before_errors
        self.called = False
        self.errors = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.called = True
        self.errors = kwargs.get("response_action") == "errors"
        if self.errors and self._before_errors is not None:
            self._before_errors()
        return self._ack(*args, **kwargs)


def _subcommand(body: Mapping[str, Any]) -> str:
    return str(body.get("text") or "").strip().split(" ", 1)[0].lower()


def words(*subcommands: str) -> Callable[[Mapping[str, Any]], bool]:
    """A `posts` predicate: true for these subcommands of a slash command."""
    wanted = set(subcommands)

    def matches(body: Mapping[str, Any]) -> bool:
        return _subcommand(body) in wanted

    return matches


class OnlyFor:
    """A claim narrowed to some subcommands of a slash command (see only_for); `about` tells, without a session,
    whether a request is about a project at all, so _run opens no unit of work for one that is not."""

    def __init__(self, claim: Claim, subcommands: set[str]) -> None:
        self.__wrapped__ = claim  # the claim it narrows, for the test that every command has one
        self._subcommands = subcommands

    def about(self, body: Mapping[str, Any]) -> bool:
        return _subcommand(body) in self._subcommands

    def __call__(self, session: Any, team_id: str, body: Mapping[str, Any]) -> int | None:
        return self.__wrapped__(session, team_id, body) if self.about(body) else None


def only_for(claim: Claim, *subcommands: str) -> Claim:
    """`claim` for these subcommands of a slash command only: any other word (help, one it does not know) is about no
    project, so its answer waits for no database read (with `optional`, the request goes ahead with no project)."""
    return OnlyFor(claim, set(subcommands))


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
    kind = kind_of(body)
    view: dict[str, Any] | None = body.get("view") if isinstance(body.get("view"), dict) else None
    in_form = view is not None and view.get("type") == "modal"
    need = rule.need(body) if callable(rule.need) else rule.need
    claim = rule.claim
    if rule.optional and isinstance(claim, OnlyFor) and not claim.about(body):
        claim = None  # help, or a word it does not know: about no project, so nothing to look up
    # A form submitted: checked and claimed (marked as being saved) in one unit of work, before the listener.
    submitted = kind == "view_submission" and in_form and rule.claim is not None and view is not None
    outcome: Allowed | Refusal
    if submitted and view is not None:
        outcome = admit_submission(engine, team_id=team_id or "", user_id=user_id or "", view=view, need=need)
    else:
        if in_form and rule.claim is not None and view is not None:
            await_grant(
                engine, team_id=team_id or "", user_id=user_id or "", view_id=str(view.get("id") or "")
            )
        outcome = check_request(
            engine,
            team_id=team_id,
            user_id=user_id,
            channel_id=channel_id,
            body=body,
            claim=claim,
            need=need,
            optional=rule.optional,
            view=view if in_form else None,
        )
    if isinstance(outcome, Refusal):
        refuse(args, outcome)
        return
    project, grant_channel = outcome.project, outcome.grant_channel
    posts = rule.posts(body) if callable(rule.posts) else rule.posts
    if posts and kind != "view_submission":
        target = project.channel_id if project is not None else channel_id
        problem = cannot_post(args.client, target) if target else None
        if problem:
            refuse(args, Refusal(problem))
            return
    claimed_form = submitted
    if not submitted and kind == "view_submission" and view is not None and rule.claim is not None:
        already = claim_submission(engine, team_id=team_id or "", view_id=str(view.get("id") or ""))
        if already is not None:
            refuse(args, already)
            return
        claimed_form = True
    tracker: WriteTracker | None = None
    released = False

    def release_before_errors() -> None:
        # The form goes back to the person with errors and nothing saved: it is free again before they see the
        # errors, or a quick corrected submission would find it still "being saved" and be refused.
        nonlocal released
        if claimed_form and view is not None and (tracker is None or not tracker.committed):
            settle_submission(engine, team_id=team_id or "", view_id=str(view.get("id") or ""), applied=False)
            released = True

    ack = _RecordingAck(args.ack, release_before_errors)
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
        tell(args, saved_but(rule.saved, error, where, reference))
    finally:
        if claimed_form and view is not None and not released:  # released: a resubmission may hold it now
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
    project: ProjectRef | None,
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
