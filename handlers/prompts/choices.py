"""The leads' say over prompts: /mfi prompts (one stage's prompts with Pin and Skip), the Pin, Skip and Undo
buttons (in that list and on the Home tab), and the CSV export of the answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.prompts import STAGE_IDS, load_catalogue
from bot.services import answers
from bot.services.engine import Engine
from bot.services.schedules import NotLead
from handlers import blocks, claims, home
from handlers.blocks import ids
from handlers.blocks import prompts as pb
from handlers.prompts.common import not_a_lead_text


def _choice_target(action: dict[str, Any]) -> tuple[int, str] | None:
    """(project id, prompt id) from a Pin/Skip button's value or a Home select."""
    if isinstance(action.get("selected_option"), dict):
        block_id = str(action.get("block_id") or "")
        project_id = claims.parse_id(block_id.removeprefix(ids.B_PROMPT_CHOICE_PREFIX))
        prompt_id = action["selected_option"].get("value")
    else:
        value = claims.parse_json_object(action.get("value")) or {}
        project_id, prompt_id = claims.parse_id(value.get("project_id")), value.get("prompt_id")
    return (
        (project_id, prompt_id)
        if project_id is not None and isinstance(prompt_id, str) and prompt_id
        else None
    )


def _listing_message(listing: answers.PromptsListing) -> tuple[list[blocks.Block], str]:
    return pb.prompts_list_message(
        project_id=listing.project_id,
        project_name=listing.project_name,
        stage_id=listing.stage,
        states=listing.states,
        other_stages=listing.other_stages,
    )


def handle_prompt_choice(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    action = body["actions"][0]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    target = _choice_target(action)
    if target is None:
        return
    project_id, prompt_id = target
    choice = {ids.A_PROMPT_PIN: "pin", ids.A_PROMPT_SKIP: "skip"}.get(action["action_id"])
    from_home = (body.get("container") or {}).get("type") == "view"
    listing = answers.choose_prompt(
        engine, team_id=team_id, project_id=project_id, user_id=user_id, prompt_id=prompt_id, choice=choice
    )
    if listing is None:
        return
    if isinstance(listing, NotLead):
        if not from_home:
            respond(text=not_a_lead_text(listing), response_type="ephemeral", replace_original=False)
        return
    home.publish(client, engine, team_id=team_id, user_id=user_id)
    if not from_home:
        done = {
            "pin": "Pinned: it will be the next team prompt.",
            "skip": "Skipped: it won't be asked.",
            None: "Done: back to the usual rotation for that prompt.",
        }[choice]
        listing_blocks, text = _listing_message(listing)
        respond(
            blocks=[blocks.context(done), *listing_blocks][:50],
            text=f"{done} {text}",
            response_type="ephemeral",
            replace_original=True,
        )


def handle_prompts_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id and context.user_id
    wanted = rest.strip().lower()
    if wanted and wanted not in STAGE_IDS:
        respond(
            text=f"I don't know the stage `{blocks.typed(wanted[:40])}`. The stages are: "
            + ", ".join(f"`{s}`" for s in STAGE_IDS)
            + ".",
            response_type="ephemeral",
        )
        return
    listing = answers.prompts_listing(
        engine,
        team_id=context.team_id,
        channel_id=context.channel_id,
        user_id=context.user_id,
        stage=wanted or None,
    )
    if listing is None:
        respond(
            text="There is no project in this channel yet. Start one with `/mfi new`.",
            response_type="ephemeral",
        )
        return
    if isinstance(listing, NotLead):
        respond(text=not_a_lead_text(listing), response_type="ephemeral")
        return
    listing_blocks, text = _listing_message(listing)
    respond(blocks=listing_blocks, text=text, response_type="ephemeral")


# --- export ----------------------------------------------------------------------------------------------------


def _names(client: WebClient, user_ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for user_id in user_ids:
        try:
            user = client.users_info(user=user_id)["user"]
            names[user_id] = str(user.get("real_name") or user.get("name") or user_id)
        except SlackApiError:
            names[user_id] = user_id
    return names


def handle_export_answers(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    project_id = claims.parse_id(claims.action_json(body).get("project_id"))
    if project_id is None:
        return
    catalogue = load_catalogue()
    export = answers.export_answers(engine, team_id=team_id, project_id=project_id, user_id=user_id)
    if export is None:
        return
    name, zone = export.project_name, export.timezone
    names = _names(client, {row.author for row in export.rows if row.author})
    table = []
    for row in export.rows:
        try:
            question = catalogue.get(row.prompt_id).text
        except KeyError:
            question = row.prompt_id
        if row.author:
            who = names[row.author] + (" (service-user partner)" if row.partner else "")
        else:
            # Anonymous answers were stored without a user id, so there is nothing to look up.
            who = "Service-user partner" if row.partner else "Anonymous"
        table.append(
            {
                "date": row.day.isoformat(),
                "stage": row.stage,
                "prompt": question,
                "answer": row.text,
                "from": who,
                "shared": "yes" if row.shared else "no",
            }
        )
    content = pb.answers_csv(table)
    channel = client.conversations_open(users=user_id)["channel"]["id"]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "project"
    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    client.files_upload_v2(
        channel=channel,
        content=content,
        filename=f"answers-{slug}-{today}.csv",
        title=f"Answers to reflective prompts: {name}",
        initial_comment=(
            f"Here are the answers for *{blocks.typed(name)}* as a CSV. Anonymous answers stay anonymous. "
            + "An anonymous answer is included only once enough people could have given it. "
            + "It holds people's own words: keep it within the project team."
        ),
    )
