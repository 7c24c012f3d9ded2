"""Answering a reflective prompt: the Answer modal (with how many people could have answered, counted in Slack
between the units of work), saving the answer, posting it where it was agreed, and thanking the person."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.prompts import load_catalogue
from bot.services import answers
from bot.services.engine import Engine
from handlers import blocks, claims, home
from handlers.blocks import ids
from handlers.blocks import prompts as pb

logger = logging.getLogger(__name__)


def _delivery_id(body: dict[str, Any]) -> int | None:
    return claims.parse_id(claims.action_json(body).get("delivery_id"))


def _channel_crowd(client: WebClient, channel_id: str, bot_user_id: str | None) -> int | None:
    """How many people (other than the bot) are in the channel: who could have answered its prompt."""
    people, cursor = 0, None
    try:
        for _ in range(50):
            page = client.conversations_members(channel=channel_id, limit=200, cursor=cursor)
            people += sum(1 for m in page.get("members") or [] if m != bot_user_id)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
    except SlackApiError as exc:
        logger.warning("Could not count the people in %s: %s", channel_id, exc.response.get("error"))
        return None
    return people


def _asked(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str,
    delivery_id: int,
    user_id: str,
    bot_user_id: str | None,
) -> answers.Asked | None:
    """The delivery, whether this person is a partner on it, and how many people could have given its answer."""
    found = answers.answerable(engine, team_id=team_id, delivery_id=delivery_id)
    if found is None:
        return None
    crowd_now = _channel_crowd(client, found.channel, bot_user_id) if found.channel else None
    return answers.answer_form(
        engine, team_id=team_id, delivery_id=delivery_id, user_id=user_id, crowd_now=crowd_now
    )


def handle_answer_open(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    asked = _asked(
        client,
        engine,
        team_id=team_id,
        delivery_id=_delivery_id(body) or 0,
        user_id=user_id,
        bot_user_id=context.bot_user_id,
    )
    if asked is None:
        respond(
            text="Sorry, I can't find that question any more. The next one will come as usual.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    try:
        prompt = load_catalogue().get(asked.prompt_id)
    except KeyError:
        respond(
            text="Sorry, that question has been retired, so it can't be answered any more.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    question = prompt.plain if asked.partner and prompt.plain else prompt.text
    view = pb.answer_modal(
        delivery_id=asked.delivery_id,
        project_name=asked.project_name,
        question=question,
        follow_up=prompt.follow_up,
        partner=asked.partner,
        can_share=asked.can_share,
        too_few=asked.too_few,
        crowd=asked.crowd,
    )
    client.views_open(trigger_id=body["trigger_id"], view=view)


def handle_answer_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Save the answer in one short unit of work (a failure keeps the form and the words), acknowledge, then post
    it where the person agreed and tell them exactly what happened to it."""
    text = (blocks.state_value(view, ids.B_ANSWER_TEXT) or "").strip()
    choices = blocks.state_value(view, ids.B_ANSWER_OPTIONS) or []
    mode = blocks.state_value(view, ids.B_ANSWER_MODE)  # only on a form that warned about too few people
    if len(text) < 2:
        ack(
            response_action="errors",
            errors={ids.B_ANSWER_TEXT: "Write a few words, or close this form to skip the question."},
        )
        return
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    anonymous = mode == "wait" if mode else "anonymous" in choices
    saved = answers.save_answer(
        engine,
        team_id=team_id,
        delivery_id=claims.metadata_id(view, "delivery_id") or 0,
        user_id=user_id,
        text=text,
        anonymous=anonymous,
        share="share" in choices,
    )
    if isinstance(saved, str):
        ack(response_action="errors", errors={ids.B_ANSWER_TEXT: saved})
        return
    ack()
    posted = saved.shared and not saved.held
    if posted:
        client.chat_postMessage(
            channel=saved.post_channel or saved.thanks_channel,
            thread_ts=saved.post_thread,
            text=pb.answer_thread_text(
                text=text, user_id=None if anonymous else user_id, partner=saved.partner
            ),
        )
    client_thanks(
        client,
        user_id=user_id,
        partner=saved.partner,
        anonymous=anonymous,
        posted=posted,
        held=saved.held,
        channel=saved.thanks_channel,
    )
    home.publish_for_project(client, engine, team_id=team_id, project_id=saved.project_id)


def client_thanks(
    client: WebClient, *, user_id: str, partner: bool, anonymous: bool, posted: bool, held: bool, channel: str
) -> None:
    """Tell the person exactly what happened to their answer (privately)."""
    privacy = "anonymously (nothing that leads to you is stored with it)" if anonymous else "with your name"
    if held:
        after = (
            "The project leads will read it once more people have been asked, together with their answers. "
            "It will not be posted in the channel."
        )
    elif posted:
        after = "The team can see it in their channel." if partner else "It is posted in the thread."
    else:
        after = "Only the project leads will read it." if partner else "Only the project leads will see it."
    thanks = f"Thank you. Your answer is saved {privacy}. {after}"
    if partner:
        client.chat_postMessage(channel=user_id, text=thanks)
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user_id, text=thanks)
    except SlackApiError as exc:
        # No user id here: a log line must never tie an answer to a person.
        logger.warning("Could not send the thank-you after an answer: %s", exc.response.get("error"))
