"""The /mfi command: one explicit router table from its first word to the surface that answers it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from handlers import (
    access,
    bias,
    blocks,
    drivers,
    missing,
    ownership,
    partners,
    projects,
    prompts,
    report,
    team,
)
from handlers.access import Rule, guard
from handlers.blocks import ids

# `/mfi new|status|edit|help` are answered below; every other word is routed here.
SUBCOMMANDS: dict[str, Callable[..., None]] = {
    "schedule": prompts.handle_schedule_command,
    "prompts": prompts.handle_prompts_command,
    "partners": partners.handle_partners_command,
    "export": ownership.handle_export_command,
    "delete": ownership.handle_delete_command,
    "drivers": drivers.handle_drivers_command,
    "bias": bias.handle_bias_command,
    "team": team.handle_team_command,
    "missing": missing.handle_missing_command,
    "report": report.handle_report_command,
}


def handle_mfi(
    ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext
) -> None:
    text = (command.get("text") or "").strip()
    word, _, rest = text.partition(" ")
    word = word.lower()
    if word in ("", "help"):
        # Answered in the acknowledgement itself: immediate, and no second HTTP call.
        ack(blocks=blocks.help_message(), text="MFI-AR: what I can do", response_type="ephemeral")
    elif word == "new":
        ack()
        projects.open_new_project(client, context, trigger_id=command["trigger_id"], respond=respond)
    elif word == "status":
        ack()
        projects.show_status(respond, context)
    elif word == "edit":
        ack()
        projects.open_edit_project(client, context, trigger_id=command["trigger_id"], respond=respond)
    elif word in SUBCOMMANDS:
        SUBCOMMANDS[word](
            ack=ack, command=command, respond=respond, client=client, context=context, rest=rest
        )
    else:
        ack(
            blocks=blocks.help_message(unknown=word),
            text=f"I don't know `{blocks.typed(word)}`.",
            response_type="ephemeral",
        )


def register(app: App) -> None:
    app.command(ids.MFI)(
        guard(
            handle_mfi,
            Rule(
                # Help (and a word it does not know) is answered in the ack, with no project to look up.
                access.only_for(access.channel_project, "new", "status", "edit", *SUBCOMMANDS),
                optional=True,
                posts=access.words("new", "edit", "drivers"),
            ),
        )
    )
