"""/measure log: the log form (the default rows or every category, switching measure), reading each row, and
saving one period's figures after the acknowledgement."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.core.extracts import period_start
from bot.services import measure_forms
from bot.services import measures as importing
from bot.services.engine import Engine
from handlers import blocks, claims
from handlers.blocks import ids
from handlers.blocks import measures as mb
from handlers.measures.define import NO_PROJECT

_COUNTS = re.compile(r"^\s*(-?[\d.,]+)\s*(?:/|\bof\b|\bout of\b)\s*(-?[\d.,]+)\s*$", re.IGNORECASE)


def _log_view(
    form: measure_forms.LogForm,
    *,
    full: bool,
    values: dict[str, str] | None = None,
    period_initial: date | None = None,
) -> dict[str, Any] | None:
    if not form.measures:
        return None
    groups = mb.full_log_groups() if full else mb.default_log_groups(form.focus_groups, form.reference_group)
    return mb.log_modal(
        channel_id=form.channel_id,
        project_id=form.project_id,
        measures=form.measures,
        measure_id=form.measure_id,
        groups=groups,
        full=full,
        values=values,
        period_initial=period_initial or form.period_initial or date.min,
    )


def open_log_modal(client: WebClient, context: BoltContext, *, trigger_id: str, respond: Respond) -> None:
    engine: Engine = context["engine"]
    form = measure_forms.log_form(engine, team_id=context.team_id or "", channel_id=context.channel_id or "")
    if form is None:
        respond(text=NO_PROJECT, response_type="ephemeral")
        return
    view = _log_view(form, full=False)
    if view is None:
        respond(
            text="This project has no measures yet. Define one with `/measure new` first.",
            response_type="ephemeral",
        )
        return
    client.views_open(trigger_id=trigger_id, view=view)


def _row_texts(view: dict[str, Any]) -> dict[str, str]:
    values = view.get("state", {}).get("values", {})
    out: dict[str, str] = {}
    for block_id in values:
        if block_id.startswith(ids.B_LOG_ROW_PREFIX):
            text = blocks.state_value(view, block_id)
            if text:
                out[block_id[len(ids.B_LOG_ROW_PREFIX) :]] = text
    return out


def _update_log_view(
    body: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    *,
    full: bool | None,
    measure_id: int | None,
) -> None:
    view = body.get("view")
    if not isinstance(view, dict):
        return  # these controls live in the log form; a click from anywhere else is not one the bot offered
    meta = blocks.metadata_of(view)
    engine: Engine = context["engine"]
    picked = blocks.state_value(view, ids.B_LOG_PERIOD)
    form = measure_forms.log_form(
        engine,
        team_id=context.team_id or "",
        project_id=claims.metadata_id(view, "project_id") or 0,
        measure_id=measure_id if measure_id is not None else claims.metadata_id(view, "measure_id"),
    )
    if form is None:
        return
    new_view = _log_view(
        form,
        full=bool(meta.get("full")) if full is None else full,
        values=_row_texts(view),
        period_initial=date.fromisoformat(picked) if picked else None,
    )
    if new_view is not None:
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=new_view)


def handle_log_full_list(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    _update_log_view(body, client, context, full=body["actions"][0].get("value") == "full", measure_id=None)


def handle_log_measure_picked(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    ack()
    chosen = (body["actions"][0].get("selected_option") or {}).get("value")
    _update_log_view(body, client, context, full=None, measure_id=claims.parse_id(chosen))


def _whole(text: str) -> int | None:
    cleaned = text.replace(",", "")
    return int(cleaned) if re.fullmatch(r"\d+", cleaned) else None


def parse_log_row(text: str, kind: str) -> tuple[importing.LoggedRow | None, str | None]:
    """One row of the log form: the parsed entry, or an error message for that row."""
    if kind == "value":
        try:
            return float(text.replace(",", "")), None
        except ValueError:
            return None, "Type a number, e.g. 3.2."
    match = _COUNTS.match(text)
    if match is None:
        if kind == "count":
            if text.strip().startswith("-"):
                return None, "A count can't be negative: type a whole number, 0 or more."
            count = _whole(text.strip())
            return ((count, None), None) if count is not None else (None, "Type a whole number, e.g. 14.")
        return None, "Type events/records as two whole numbers, e.g. 14/230."
    raw_num, raw_den = match.group(1), match.group(2)
    if raw_num.startswith("-") or raw_den.startswith("-"):
        return None, "Numbers can't be negative: type whole numbers, 0 or more."
    numerator, denominator = _whole(raw_num), _whole(raw_den)
    if numerator is None or denominator is None:
        return None, "Use whole numbers (no decimals), e.g. 14/230."
    if kind == "proportion" and numerator > denominator:
        return (
            None,
            f"The numerator ({numerator}) can't be larger than the denominator ({denominator}) in a proportion.",
        )
    return (numerator, denominator), None


def read_log_form(
    view: dict[str, Any], *, kind: str, period: str, today: date
) -> tuple[date | None, dict[str, importing.LoggedRow], dict[str, str]]:
    """The period, the filled rows and inline errors keyed by input block_id."""
    errors: dict[str, str] = {}
    picked = blocks.state_value(view, ids.B_LOG_PERIOD)
    start: date | None = None
    if not picked:
        errors[ids.B_LOG_PERIOD] = "Choose the period these figures are for."
    else:
        chosen = date.fromisoformat(picked)
        if chosen > today:
            errors[ids.B_LOG_PERIOD] = (
                "That date is in the future. Choose a day in the period the figures are for."
            )
        else:
            start = period_start(chosen, period)  # type: ignore[arg-type]
    rows: dict[str, importing.LoggedRow] = {}
    texts = _row_texts(view)
    for code, text in texts.items():
        entry, problem = parse_log_row(text, kind)
        if problem:
            errors[ids.B_LOG_ROW_PREFIX + code] = problem
        elif entry is not None:
            rows[code] = entry
    if not texts:
        row_ids = [
            b["block_id"]
            for b in view.get("blocks", [])
            if b.get("block_id", "").startswith(ids.B_LOG_ROW_PREFIX)
        ]
        if row_ids:
            errors[row_ids[0]] = "Fill in at least one group: there is nothing to save yet."
    return start, rows, errors


def handle_log_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    measure_id = claims.metadata_id(view, "measure_id") or 0
    project_id = claims.metadata_id(view, "project_id") or 0
    target = measure_forms.log_target(engine, team_id=team_id, project_id=project_id, measure_id=measure_id)
    if target is None:
        ack(response_action="errors", errors={ids.B_LOG_PERIOD: "This measure no longer exists."})
        return
    start, rows, errors = read_log_form(view, kind=target.kind, period=target.period, today=target.today)
    if errors or start is None:
        ack(response_action="errors", errors=errors)
        return
    ack()
    logged = measure_forms.save_log(
        engine,
        team_id=team_id,
        project_id=project_id,
        measure_id=measure_id,
        start=start,
        rows=rows,
        user_id=user_id,
    )
    if logged is None:
        return
    message, text = mb.logged_message(logged.outcome, by=user_id, blank=logged.blank, kind=logged.kind)
    client.chat_postMessage(channel=logged.channel_id, text=text, blocks=message)
