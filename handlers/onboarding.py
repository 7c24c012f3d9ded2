"""Meeting the bot: App Home for someone with no project, a "How to start" guide, and a welcome DM sent once."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import onboarding as service
from bot.services.engine import Engine
from handlers import access, blocks
from handlers.blocks import ids

logger = logging.getLogger(__name__)

INVITE = "/invite @MFI-AR"

# What the bot does, in three lines (plain English, reading age about 9 to 11).
WHAT_IT_DOES = (
    "I help your team make care fairer, one small test at a time, with the Anti-Racism Model for Improvement.",
    "Your aim says who the work is for, and I chart every measure by ethnic group.",
    "I keep small numbers out of the channel, and I ask the questions the model asks.",
)

STEPS = (
    "Go to your team's channel. Make a new one if the project has none yet.",
    f"Type `{INVITE}` there, so I can post in it.",
    "Type `/mfi new` and fill in the form: the aim, who it is for, and who leads it.",
    "Add a measure with `/measure new`, then see it by ethnic group with `/equity`.",
)


def empty_home() -> list[blocks.Block]:
    """The Home tab of someone who is on no project yet: what the bot does and a button showing how to start."""
    return [
        blocks.section("\n".join(WHAT_IT_DOES)),
        blocks.actions(blocks.button("How to start", ids.A_HOME_HOW_TO_START, style="primary")),
        blocks.context("`/mfi help` lists every command."),
    ]


def how_to_start_view() -> dict[str, Any]:
    steps = "\n".join(f"{number}. {step}" for number, step in enumerate(STEPS, start=1))
    return blocks.modal(
        ids.VIEW_HOW_TO_START,
        "How to start",
        [
            blocks.section(steps),
            blocks.context("Each project has its own channel. `/mfi help` lists every command."),
        ],
        submit=None,
        close="Close",
    )


def handle_how_to_start(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    ack()
    # The request's own client, not the access check's form-granting one: a guide with nothing to submit needs no
    # grant, so a click (whatever value it carries) writes nothing.
    client: WebClient = context.client
    client.views_open(trigger_id=body["trigger_id"], view=how_to_start_view())


def welcome_message(roles: frozenset[str]) -> tuple[list[blocks.Block], str]:
    """The first-visit DM, from the person's roles on the workspace's projects: for a partner, what to expect; for a
    team member, where their projects are; else how to start."""
    if roles and roles <= {"partner"}:
        text = (
            "Hello, and welcome. I'm MFI-AR. A team has asked you to help with their project. If you agree, "
            "I'll send you a few questions here now and then. You can pause or stop at any time."
        )
        return [blocks.section(text)], text
    if roles:
        text = "Hello, and welcome. I'm MFI-AR. Your projects, and what needs doing next, are on my Home tab."
        return [blocks.section(text), blocks.context("`/mfi help` lists every command.")], text
    steps = "\n".join(f"{number}. {step}" for number, step in enumerate(STEPS, start=1))
    text = "Hello, and welcome. I'm MFI-AR."
    return [
        blocks.section(f"*{text}*\n" + "\n".join(WHAT_IT_DOES)),
        blocks.section(f"*How to start*\n{steps}"),
        blocks.context("`/mfi help` lists every command. My Home tab shows your projects."),
    ], text


def welcome_once(
    client: WebClient, engine: Engine, *, team_id: str, user_id: str, channel: str | None
) -> bool:
    """Send the welcome DM if this person has never had it; True when it was sent now.

    The row is claimed before posting, so two deliveries of the first visit send one DM; if the post fails the
    claim is removed, so the next visit tries again.
    """
    roles = service.claim_welcome(engine, team_id=team_id, user_id=user_id)
    if roles is None:
        return False
    message, text = welcome_message(roles)
    try:
        target = channel or str(client.conversations_open(users=user_id)["channel"]["id"])
        client.chat_postMessage(channel=target, text=text, blocks=message)
    except SlackApiError as exc:
        logger.warning(
            "Could not send the welcome DM to %s: %s; will try at their next visit",
            user_id,
            exc.response.get("error"),
        )
        service.release_welcome(engine, team_id=team_id, user_id=user_id)
        return False
    return True


def greet(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """From app_home_opened (either tab): the welcome DM on a person's first visit. Never stops the Home refresh."""
    user_id = event.get("user")
    if not context.team_id or not isinstance(user_id, str) or user_id == context.bot_user_id:
        return
    try:
        welcome_once(
            client,
            context["engine"],
            team_id=context.team_id,
            user_id=user_id,
            channel=event.get("channel") if isinstance(event.get("channel"), str) else None,
        )
    except Exception:  # the Home tab must still be published
        logger.exception("Welcome DM for %s failed", user_id)


def register(app: App) -> None:
    # About no project (a guide anyone may read): marked as reviewed rather than checked against a project.
    app.action(ids.A_HOME_HOW_TO_START)(access.unscoped(handle_how_to_start))
