"""How the bot answers a request it will not (or could not fully) carry out: a refusal where the person will see
it and only they will, a private word afterwards, and whether it can post in a channel at all."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.claims import request_user
from bot.services.access import Refusal
from bot.slack_client import before_ack

logger = logging.getLogger(__name__)

INVITE = "`/invite @MFI-AR`"


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


def kind_of(body: Mapping[str, Any]) -> str:
    if body.get("command"):
        return "command"
    return str(body.get("type") or "")


def _first_input(view: Mapping[str, Any]) -> str | None:
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return None


def refuse(args: Args, refusal: Refusal) -> None:
    """Say no where the person will see it, and only to them; nothing else happens."""
    body: Mapping[str, Any] = args.body or {}
    kind = kind_of(body)
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
        if args.respond is not None and (body.get("response_url") or kind_of(body) == "command"):
            args.respond(text=text, response_type="ephemeral", replace_original=False)
            return
        user = request_user(body)
        if user:
            args.client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        logger.warning("Could not tell %s: %s", request_user(body), exc.response.get("error"))


def saved_but(words: tuple[str, str] | None, error: Exception, channel: str | None, reference: str) -> str:
    """What was saved, and that something failed afterwards (usually the post): never "nothing was changed"."""
    saved, then = words or ("What you asked for was saved", "`/mfi status`")
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


# ---------------------------------------------------------------- can the bot post where the form will post?


def cannot_post(client: WebClient, channel_id: str) -> str | None:
    """Why the bot can't post in a channel (with what to do), or None when it can (or Slack can't say just now).

    Asked before the request is acknowledged, so without waiting out a 429 (bot.slack_client.before_ack)."""
    try:
        info = before_ack(client).conversations_info(channel=channel_id)["channel"]
    except OSError as exc:  # slow or unreachable: the form opens, and a post that fails later says so
        logger.warning(
            "conversations.info for %s did not answer in time (%s); trying anyway", channel_id, exc
        )
        return None
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
