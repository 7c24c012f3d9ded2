"""Do: the Do modal (what happened) and its submission."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.services import pdsa as cycles
from bot.services import pdsa_act
from bot.services.engine import Engine
from handlers import blocks, claims
from handlers.blocks import ids
from handlers.blocks import pdsa as pb
from handlers.pdsa.posting import post_in_thread, refresh_card, refresh_home


def open_do(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str,
    cycle_id: int,
    trigger_id: str,
    user_id: str,
    channel_id: str,
    respond: Respond | None = None,
) -> None:
    info = cycles.show_cycle(engine, team_id=team_id, cycle_id=cycle_id)
    if info is None:
        return
    client.views_open(trigger_id=trigger_id, view=pb.do_modal(info, metadata={"cycle_id": cycle_id}))


def handle_do_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    user_id = body["user"]["id"]
    what = blocks.state_value(view, ids.B_PDSA_DO_WHAT) or ""
    as_planned = blocks.state_value(view, ids.B_PDSA_DO_AS_PLANNED)
    observations = blocks.state_value(view, ids.B_PDSA_DO_OBSERVATIONS) or ""
    errors: dict[str, str] = {}
    if len(what) < 3:
        errors[ids.B_PDSA_DO_WHAT] = "Say briefly what happened, even if it was nothing yet."
    if as_planned not in ("yes", "partly", "no"):
        errors[ids.B_PDSA_DO_AS_PLANNED] = "Did it run as planned? Choose yes, partly or no."
    if errors:
        ack(response_action="errors", errors=errors)
        return
    cycle_id = claims.metadata_id(view, "cycle_id") or 0
    if not pdsa_act.cycle_exists(engine, team_id=team_id, cycle_id=cycle_id):
        ack(response_action="errors", errors={ids.B_PDSA_DO_WHAT: pdsa_act.CYCLE_GONE})
        return
    ack()
    saved = pdsa_act.save_do(
        engine,
        team_id=team_id,
        cycle_id=cycle_id,
        user_id=user_id,
        what=what,
        as_planned=str(as_planned),
        observations=observations,
    )
    if saved is None:
        return
    text = f"*Do* · <@{user_id}> · ran as planned: *{blocks.typed(as_planned)}*\n>{blocks.typed(what)}"
    if observations:
        text += f"\n*Observations:* {blocks.typed(observations)}"
    if saved.involvement_pending:
        text += (
            f"\n:hourglass: Still no one from the communities most affected recorded as shaping this test: "
            f"`/pdsa edit {saved.ref}` once they have."
        )
    post_in_thread(client, engine, team_id=team_id, cycle_id=saved.cycle_id, text=text)
    if saved.started:
        refresh_card(client, engine, team_id=team_id, cycle_id=saved.cycle_id)
        refresh_home(client, engine, team_id=team_id, project_id=saved.project_id)
