"""The /pdsa command (help, list, show, and opening a step's form) and the buttons on the cards."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.services import pdsa as cycles
from bot.services.engine import Engine
from handlers import blocks, claims
from handlers.blocks import pdsa as pb
from handlers.pdsa.act import open_act
from handlers.pdsa.do import open_do
from handlers.pdsa.plan import open_edit, open_plan
from handlers.pdsa.study import open_study

HELP = (
    "*PDSA cycles*\n"
    "`/pdsa new` plan a test with a prediction for each group · `/pdsa list` every cycle and its next step\n"
    "`/pdsa show N` a cycle's card and history · `/pdsa do N` log what happened · `/pdsa study N` compare results "
    "with the predictions · `/pdsa act N` adopt, adapt or abandon · `/pdsa edit N` change the plan (history kept)\n"
    "N is the cycle number, or the ramp and step shown on the card (e.g. `1.2`)."
)
OPENERS = {"do": open_do, "study": open_study, "act": open_act, "edit": open_edit}


def _unknown_cycle_text(refs: list[str], ref: str) -> str:
    if not refs:
        return f"There's no PDSA cycle `{blocks.typed(ref[:20])}` here: this project has no cycles yet. Plan one with `/pdsa new`."
    return (
        f"There's no PDSA cycle `{blocks.typed(ref[:20])}` in this channel's project. Cycles here: "
        f"{', '.join(refs[-15:])}. `/pdsa list` shows them with their next step.\n" + HELP
    )


def handle_pdsa(
    ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    ack()
    text = (command.get("text") or "").strip()
    word, _, rest = text.partition(" ")
    word, rest = word.lower(), rest.strip()
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id and context.user_id
    if word in ("", "help"):
        respond(text=HELP, response_type="ephemeral")
        return
    project_id = cycles.channel_project_id(engine, team_id=context.team_id, channel_id=context.channel_id)
    if project_id is None:
        respond(
            text="There is no improvement project in this channel yet. Start one with `/mfi new`, then plan "
            "PDSA cycles here.",
            response_type="ephemeral",
        )
        return
    if word == "new":
        open_plan(
            client, engine, team_id=context.team_id, project_id=project_id, trigger_id=command["trigger_id"]
        )
    elif word == "list":
        show_list(respond, engine, team_id=context.team_id, project_id=project_id)
    elif word in ("show", "do", "study", "act", "edit"):
        if not rest:
            respond(
                text=f"Which cycle? Try `/pdsa {blocks.typed(word)} 1`.\n" + HELP, response_type="ephemeral"
            )
            return
        ref = rest.split()[0]
        found = cycles.find_cycle(engine, team_id=context.team_id, project_id=project_id, ref=ref)
        if found.cycle_id is None:
            respond(text=_unknown_cycle_text(found.refs, ref), response_type="ephemeral")
            return
        if word == "show":
            show_cycle(respond, engine, team_id=context.team_id, cycle_id=found.cycle_id)
        else:
            OPENERS[word](
                client,
                engine,
                team_id=context.team_id,
                cycle_id=found.cycle_id,
                trigger_id=command["trigger_id"],
                user_id=context.user_id,
                channel_id=context.channel_id,
                respond=respond,
            )
    else:
        respond(text=f"I don't know `/pdsa {blocks.typed(word[:30])}`.\n" + HELP, response_type="ephemeral")


def show_list(respond: Respond, engine: Engine, *, team_id: str, project_id: int) -> None:
    infos, record = cycles.list_cycles(engine, team_id=team_id, project_id=project_id)
    respond(
        blocks=pb.list_blocks(infos, record=record),
        text=blocks.counted(len(infos), "PDSA cycle"),
        response_type="ephemeral",
    )


def show_cycle(respond: Respond, engine: Engine, *, team_id: str, cycle_id: int) -> None:
    info = cycles.show_cycle(engine, team_id=team_id, cycle_id=cycle_id, with_history=True)
    if info is None:
        return
    respond(blocks=pb.show_blocks(info), text=pb.cycle_text(info), response_type="ephemeral")


# ---------------------------------------------------------------- buttons on the card and the project card


def _check_click(
    client: WebClient, engine: Engine, body: dict[str, Any], context: BoltContext
) -> tuple[str, int, str, int] | None:
    """(team_id, cycle_id, channel_id, project_id) when the clicked cycle belongs to this workspace and channel."""
    team_id = context.team_id or body["team"]["id"]
    cycle_id = claims.action_id_value(body)
    channel_id = (body.get("channel") or {}).get("id")
    if cycle_id is None:
        return None
    place = cycles.cycle_place(engine, team_id=team_id, cycle_id=cycle_id)
    if place is None or (channel_id is not None and channel_id != place.channel_id):
        if channel_id:
            client.chat_postEphemeral(
                channel=channel_id,
                user=body["user"]["id"],
                text="That PDSA cycle belongs to another channel's project.",
            )
        return None
    return team_id, cycle_id, place.channel_id, place.project_id


def _button(opener: Any) -> Any:
    def handle(
        ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
    ) -> None:
        ack()
        engine: Engine = context["engine"]
        checked = _check_click(client, engine, body, context)
        if checked is None:
            return
        team_id, cycle_id, channel_id, _ = checked
        opener(
            client,
            engine,
            team_id=team_id,
            cycle_id=cycle_id,
            trigger_id=body["trigger_id"],
            user_id=body["user"]["id"],
            channel_id=channel_id,
            respond=respond,
        )

    handle.__name__ = f"handle_{opener.__name__}_button"
    return handle


def handle_open_new(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """The project card's "Plan a PDSA cycle" button."""
    ack()
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    project_id = claims.action_id_value(body)
    if project_id is None:
        return
    open_plan(client, engine, team_id=team_id, project_id=project_id, trigger_id=body["trigger_id"])


def handle_next_cycle(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """ "Plan the next cycle" after an Adapt decision: the plan modal pre-filled, continuing the ramp."""
    ack()
    engine: Engine = context["engine"]
    checked = _check_click(client, engine, body, context)
    if checked is None:
        return
    team_id, cycle_id, _, project_id = checked
    open_plan(
        client,
        engine,
        team_id=team_id,
        project_id=project_id,
        trigger_id=body["trigger_id"],
        continue_from=cycle_id,
    )
