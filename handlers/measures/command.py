"""The /measure command (new, log, list, import, undo, help) and the Undo button on a data entry's message."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.services import measure_forms, measure_imports
from bot.services.engine import Engine
from handlers import blocks, claims
from handlers.blocks import measures as mb
from handlers.measures.define import NO_PROJECT, open_measure_modal
from handlers.measures.imports import open_import_modal
from handlers.measures.log import open_log_modal


def handle_measure(
    ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    ack()
    word, _, rest = (command.get("text") or "").strip().partition(" ")
    word, rest = word.lower(), rest.strip()
    if word == "new":
        open_measure_modal(
            client,
            context,
            trigger_id=command["trigger_id"],
            respond=respond,
            channel_id=context.channel_id or "",
        )
    elif word == "log":
        open_log_modal(client, context, trigger_id=command["trigger_id"], respond=respond)
    elif word == "list":
        show_list(respond, context)
    elif word == "import":
        open_import_modal(
            client, context, trigger_id=command["trigger_id"], respond=respond, measure_name=rest
        )
    elif word == "undo":
        undo_from_command(client, respond, context, rest=rest)
    else:
        intro = (
            [blocks.section(f":grey_question: I don't know `{blocks.typed(word[:40])}`.")]
            if word not in ("", "help")
            else []
        )
        respond(blocks=[*intro, *mb.help_blocks()], text="/measure: what I can do", response_type="ephemeral")


def show_list(respond: Respond, context: BoltContext) -> None:
    engine: Engine = context["engine"]
    found = measure_forms.measure_list(
        engine, team_id=context.team_id or "", channel_id=context.channel_id or ""
    )
    if found is None:
        respond(text=NO_PROJECT, response_type="ephemeral")
        return
    has_balancing = any(r["measure_type"] == "balancing" for r in found.rows)
    listed, text = mb.measure_list(found.project_name, found.rows, has_balancing=has_balancing)
    respond(blocks=listed, text=text, response_type="ephemeral")


# --- undo ----------------------------------------------------------------------------------------------------


def undo_from_command(client: WebClient, respond: Respond, context: BoltContext, *, rest: str) -> None:
    engine: Engine = context["engine"]
    team_id, user_id = context.team_id or "", context.user_id or ""
    if rest and claims.parse_id(rest) is None:
        respond(
            text="Type `/measure undo` for the latest entry, or `/measure undo N` with the entry number.",
            response_type="ephemeral",
        )
        return
    done = measure_imports.undo_in_channel(
        engine,
        team_id=team_id,
        channel_id=context.channel_id or "",
        user_id=user_id,
        batch_id=claims.parse_id(rest) if rest else None,
    )
    if done is None or isinstance(done, str):
        respond(text=NO_PROJECT if done is None else done, response_type="ephemeral")
        return
    message, text = mb.undone_message(done.outcome, by=user_id)
    client.chat_postMessage(channel=done.channel_id, text=text, blocks=message)


def handle_undo_button(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    team_id, user_id = context.team_id or "", body["user"]["id"]
    batch_id = claims.action_id_value(body) or 0
    if not body.get("response_url"):
        return  # Undo buttons live in channel messages, which always carry a response_url: this one is not ours
    outcome = measure_imports.undo(engine, team_id=team_id, batch_id=batch_id, user_id=user_id)
    if isinstance(outcome, str):
        respond(text=outcome, response_type="ephemeral", replace_original=False)
        return
    message, text = mb.undone_message(outcome, by=user_id)
    channel = (body.get("channel") or {}).get("id")
    original = body.get("message") or {}
    if channel and original.get("ts"):
        # The button goes: the reply now says what was undone, so nobody clicks it twice.
        kept = [b for b in original.get("blocks") or [] if b.get("type") != "actions"]
        client.chat_update(
            channel=channel, ts=original["ts"], text=original.get("text") or text, blocks=[*kept, *message]
        )
    elif channel:
        client.chat_postMessage(channel=channel, text=text, blocks=message)
