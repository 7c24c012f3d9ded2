"""What every PDSA step posts: the cycle's card in the channel, its thread, and the members' Home tabs."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services import pdsa as cycles
from bot.services.engine import Engine
from handlers import blocks, home
from handlers.blocks import pdsa as pb

logger = logging.getLogger(__name__)


def ephemeral(
    client: WebClient, *, channel: str, user: str, text: str, respond: Respond | None = None
) -> None:
    if respond is not None:
        respond(text=text, response_type="ephemeral", replace_original=False)
    else:
        client.chat_postEphemeral(channel=channel, user=user, text=text)


def refresh_home(client: WebClient, engine: Engine, *, team_id: str, project_id: int) -> None:
    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


def post_card(client: WebClient, engine: Engine, *, team_id: str, cycle_id: int, by: str) -> None:
    """Post a new cycle's card in the channel; its thread will hold the cycle's history."""
    card = cycles.card(engine, team_id=team_id, cycle_id=cycle_id, new=True)
    assert card is not None
    info, channel_id = card.info, card.channel_id
    intro = (
        f"<@{by}> planned a PDSA cycle."
        if info.ramp_step == 1
        else (f"<@{by}> planned the next cycle in the ramp (step {info.ramp_step}).")
    )
    result = client.chat_postMessage(
        channel=channel_id,
        text=f"{intro} {pb.cycle_text(info)}",
        blocks=[blocks.section(intro), *pb.cycle_card(info)],
    )
    ts = str(result["ts"])
    cycles.set_card_ts(engine, team_id=team_id, cycle_id=cycle_id, ts=ts)
    if info.involvement_pending:
        client.chat_postMessage(
            channel=channel_id,
            thread_ts=ts,
            text=(
                ":hourglass: *Reminder:* no one from the communities most affected has shaped this test yet. "
                "The framework asks that their priorities guide what is tested. Before the test runs, ask your service-user "
                f"partners or community groups, then record who with `/pdsa edit {info.ref}`. "
                "This cycle stays on the Home tab until then."
            ),
        )
    if info.balancing is None:
        what = (
            ("choose one with `/pdsa edit " + info.ref + "`")
            if card.balancing_exists
            else (
                "add one with `/measure new` (type: balancing), then choose it with `/pdsa edit "
                + info.ref
                + "`"
            )
        )
        client.chat_postMessage(
            channel=channel_id,
            thread_ts=ts,
            text=(
                ":eyes: This cycle has no balancing measure. A change that helps one group can harm another: "
                f"{what} so the Study checks every group for unintended harm."
            ),
        )


def refresh_card(client: WebClient, engine: Engine, *, team_id: str, cycle_id: int) -> None:
    card = cycles.card(engine, team_id=team_id, cycle_id=cycle_id)
    if card is None or card.card_ts is None:
        return
    try:
        client.chat_update(
            channel=card.channel_id,
            ts=card.card_ts,
            text=pb.cycle_text(card.info),
            blocks=pb.cycle_card(card.info),
        )
    except SlackApiError as exc:
        logger.warning("Could not update the PDSA card: %s", exc.response.get("error"))


def post_in_thread(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str,
    cycle_id: int,
    text: str,
    message_blocks: list[blocks.Block] | None = None,
) -> None:
    place = cycles.cycle_place(engine, team_id=team_id, cycle_id=cycle_id)
    if place is None:
        return
    kwargs: dict[str, Any] = {"channel": place.channel_id, "text": text[:3900]}
    if place.card_ts:
        kwargs["thread_ts"] = place.card_ts
    if message_blocks:
        kwargs["blocks"] = message_blocks
    client.chat_postMessage(**kwargs)
