"""/measure new and the project card's "Add a measure": the measure form, reading it, and saving it."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import ethnicity
from bot.services import measure_forms
from bot.services import projects as project_service
from bot.services.engine import Engine
from handlers import blocks, claims, projects
from handlers.blocks import ids
from handlers.blocks import measures as mb

logger = logging.getLogger(__name__)

NO_PROJECT = (
    "There is no project in this channel yet. Start one with `/mfi new`; measures belong to a project."
)


def open_measure_modal(
    client: WebClient, context: BoltContext, *, trigger_id: str, respond: Respond | None, channel_id: str
) -> None:
    engine: Engine = context["engine"]
    form = measure_forms.measure_form(engine, team_id=context.team_id or "", channel_id=channel_id)
    if form is None:
        if respond:
            respond(text=NO_PROJECT, response_type="ephemeral")
        return
    view = mb.measure_modal(
        channel_id=channel_id,
        project_id=form.project_id,
        project_reference=form.reference_group,
        has_balancing=form.has_balancing,
    )
    client.views_open(trigger_id=trigger_id, view=view)


def handle_open_measure_new(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """The project card's "Add a measure" button (value: project id), from the channel or the Home tab."""
    ack()
    engine: Engine = context["engine"]
    form = measure_forms.measure_form(
        engine, team_id=context.team_id or "", project_id=claims.action_id_value(body) or 0
    )
    if form is not None and form.channel_id:
        open_measure_modal(
            client, context, trigger_id=body["trigger_id"], respond=None, channel_id=form.channel_id
        )


def parse_target(text: str, kind: str) -> float | None:
    """A target as typed ("6%", "0.06", "120"); proportions are stored as fractions. Raises ValueError."""
    cleaned = text.strip().replace(",", "")
    if not cleaned:
        return None
    percent = cleaned.endswith("%")
    number = float(cleaned.rstrip("%").strip())
    if kind == "proportion":
        if percent or number > 1:
            number /= 100
        if not 0 <= number <= 1:
            raise ValueError("a proportion target must be between 0% and 100%")
    return number


def read_measure_form(
    view: dict[str, Any], *, focus_groups: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted measure form as clean fields, and inline errors keyed by input block_id."""
    errors: dict[str, str] = {}
    name = blocks.state_value(view, ids.B_MEASURE_NAME) or ""
    kind = blocks.state_value(view, ids.B_MEASURE_KIND) or "proportion"
    denominator = blocks.state_value(view, ids.B_MEASURE_DENOMINATOR_DEF) or ""
    reference = blocks.state_value(view, ids.B_MEASURE_REFERENCE) or "A"
    target_text = blocks.state_value(view, ids.B_MEASURE_TARGET) or ""
    if len(name) < 3:
        errors[ids.B_MEASURE_NAME] = (
            "Give the measure a name of at least 3 characters, e.g. “PPH of 1,000 ml or more”."
        )
    if kind in ("proportion", "rate_per_1000") and len(denominator) < 3:
        errors[ids.B_MEASURE_DENOMINATOR_DEF] = (
            "A proportion or rate needs a denominator: say which records it is out of, e.g. “all women giving birth”."
        )
    if reference in focus_groups or any(
        reference in ethnicity.members(g) for g in focus_groups if g not in (ethnicity.BEST, ethnicity.OTHERS)
    ):
        errors[ids.B_MEASURE_REFERENCE] = (
            f"{ethnicity.display(reference)} is one of the project's focus groups, so it can't be the comparison too. "
            "Choose White British (A), the best-performing group or all other groups."
        )
    target: float | None = None
    try:
        target = parse_target(target_text, kind)
    except ValueError as exc:
        message = str(exc) if "between" in str(exc) else "Type a number, e.g. 6% or 120"
        errors[ids.B_MEASURE_TARGET] = f"{message[0].upper()}{message[1:]}."
    fields = {
        "name": name,
        "measure_type": blocks.state_value(view, ids.B_MEASURE_TYPE) or "outcome",
        "kind": kind,
        "numerator_definition": blocks.state_value(view, ids.B_MEASURE_NUMERATOR_DEF) or "",
        "denominator_definition": denominator,
        "direction": blocks.state_value(view, ids.B_MEASURE_DIRECTION) or "lower",
        "reference_group": reference,
        # Payload values are claims: only the offered periods are stored.
        "period": period
        if (period := blocks.state_value(view, ids.B_MEASURE_PERIOD)) in dict(mb.PERIOD_OPTIONS)
        else "month",
        "quarters": "calendar"
        if blocks.state_value(view, ids.B_MEASURE_QUARTERS) == "calendar"
        else "financial",
        "target": target,
    }
    return fields, errors


def handle_measure_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Read the form against the project, save the measure in one short unit of work (a database failure or a
    name in use keeps the modal and what was typed), acknowledge, then post it and refresh the project card."""
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    project_id = claims.metadata_id(view, "project_id") or 0
    focus = measure_forms.focus_groups(engine, team_id=team_id, project_id=project_id)
    if isinstance(focus, str):
        ack(response_action="errors", errors={ids.B_MEASURE_NAME: focus})
        return
    fields, errors = read_measure_form(view, focus_groups=focus)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    saved = measure_forms.save_measure(
        engine, team_id=team_id, project_id=project_id, user_id=user_id, fields=fields
    )
    if isinstance(saved, str):
        ack(response_action="errors", errors={ids.B_MEASURE_NAME: saved})
        return
    ack()
    added, text = mb.measure_added(saved.measure, by=user_id, has_balancing=saved.has_balancing)
    client.chat_postMessage(channel=saved.channel_id, text=text, blocks=added)
    refresh_project_card(client, engine, team_id=team_id, channel_id=saved.channel_id)


def refresh_project_card(client: WebClient, engine: Engine, *, team_id: str, channel_id: str) -> None:
    """Update the channel's project card (its measure count and stages), read first, then sent to Slack."""
    found = project_service.channel_card(engine, team_id=team_id, channel_id=channel_id)
    if found is None or found.card_ts is None:
        return
    card, text = projects.card_for(found)
    try:
        client.chat_update(channel=channel_id, ts=found.card_ts, text=text, blocks=card)
    except SlackApiError as exc:
        logger.warning("Could not refresh the project card: %s", exc.response.get("error"))
