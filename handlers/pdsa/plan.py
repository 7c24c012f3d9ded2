"""Plan: the plan modal (a new cycle, the next step in a ramp, an edit) and its submission."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.core import pdsa
from bot.services import pdsa_plan
from bot.services.engine import Engine
from bot.services.pdsa import MeasureRef
from handlers import blocks, claims
from handlers.blocks import ids
from handlers.blocks import pdsa as pb
from handlers.pdsa.posting import ephemeral, post_card, post_in_thread, refresh_card, refresh_home

NOT_YET = ("not yet", "no one yet", "nobody yet", "none yet")


class _Measure(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def measure_type(self) -> str: ...
    @property
    def kind(self) -> str: ...


def measure_infos(measures: Sequence[MeasureRef]) -> list[pb.MeasureInfo]:
    return [pb.MeasureInfo(m.id, m.name, m.measure_type, m.kind) for m in measures]


def open_plan(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str,
    project_id: int,
    trigger_id: str,
    continue_from: int | None = None,
) -> None:
    """Open the plan modal; with `continue_from`, pre-filled from that cycle as the next step of its ramp."""
    form = pdsa_plan.new_plan_form(
        engine, team_id=team_id, project_id=project_id, continue_from=continue_from
    )
    if form is None:
        return
    notice = None
    if form.continues_ref is not None:
        notice = (
            f":repeat: *Next cycle in the ramp: PDSA {form.continues_ref}.* Pre-filled from the last cycle: change "
            "what you are adapting, check each group's prediction, and choose new dates."
        )
    view = pb.plan_modal(
        callback_id=ids.CB_PDSA_NEW,
        groups=form.groups,
        measures=measure_infos(form.measures),
        earlier_cycles=form.earlier_cycles,
        initial=form.initial,
        notice=notice,
        metadata={"project_id": form.project_id, "channel_id": form.channel_id},
        ideas=form.ideas,
        drivers=form.drivers,
    )
    client.views_open(trigger_id=trigger_id, view=view)


def open_edit(
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
    form = pdsa_plan.edit_plan_form(engine, team_id=team_id, cycle_id=cycle_id, user_id=user_id)
    if form is None:
        return
    if isinstance(form, pdsa_plan.Refused):
        ephemeral(client, channel=channel_id, user=user_id, respond=respond, text=form.text)
        return
    notice = None
    if form.closed:
        notice = (
            ":lock: This cycle is closed. Your changes are saved with the earlier values kept in its "
            "history, and posted in the cycle's thread."
        )
    view = pb.plan_modal(
        callback_id=ids.CB_PDSA_EDIT,
        groups=form.groups,
        measures=measure_infos(form.measures),
        initial=form.initial,
        notice=notice,
        metadata={"project_id": form.project_id, "channel_id": form.channel_id, "cycle_id": form.cycle_id},
        ideas=form.ideas,
        drivers=form.drivers,
    )
    client.views_open(trigger_id=trigger_id, view=view)


def _is_not_yet(text: str) -> bool:
    lowered = " ".join(text.lower().split()).strip(" .!")
    return lowered in NOT_YET or lowered.startswith("not yet")


def read_plan_form(
    view: Mapping[str, Any], *, groups: Sequence[str], measures: Sequence[_Measure]
) -> tuple[dict[str, Any], dict[str, str], int | None]:
    """The submitted plan as cycle fields, inline errors by block_id, and the cycle it continues (if any)."""
    errors: dict[str, str] = {}
    by_id = {str(m.id): m for m in measures}
    measure_ids = [int(v) for v in (blocks.state_value(view, ids.B_PDSA_MEASURES) or []) if v in by_id]
    # Order by the project's own measure order, so "the first measure" is stable whatever Slack returns.
    order = [int(m.id or 0) for m in measures]
    measure_ids.sort(key=order.index)
    kind = by_id[str(measure_ids[0])].kind if measure_ids else "proportion"
    predictions: list[dict[str, Any]] = []
    first_prediction_block: str | None = None
    for code in list(dict.fromkeys(groups))[: pb.MAX_GROUP_INPUTS]:
        block_id = ids.B_PDSA_PREDICT_PREFIX + code
        text = blocks.state_value(view, block_id) or ""
        if not text:
            continue
        first_prediction_block = first_prediction_block or block_id
        try:
            predictions.append(pdsa.parse_prediction(text, group=code, kind=kind).as_dict())
        except pdsa.PredictionError as exc:
            errors[block_id] = str(exc)
    overall_block = ids.B_PDSA_PREDICT_PREFIX + pdsa.OVERALL
    if first_prediction_block is None:
        errors[overall_block] = (
            "Predict what will happen, at least overall and ideally for each group: a prediction "
            "is what turns a test into learning. " + pdsa.PREDICTION_HINT
        )
    elif not measure_ids:
        usable = [m for m in measures if m.measure_type != "balancing"] or list(measures)
        if usable:
            errors[ids.B_PDSA_MEASURES] = (
                "A prediction needs a measure to be judged against: choose the measure "
                "(or measures) these predictions are about."
            )
        else:
            errors.setdefault(
                first_prediction_block,
                (
                    "A prediction needs a measure to be judged against, and this project has none yet. Add one with "
                    "`/measure new` (or the project card's Add a measure button), then plan the cycle."
                ),
            )
    start_text = blocks.state_value(view, ids.B_PDSA_START)
    end_text = blocks.state_value(view, ids.B_PDSA_END)
    start = date.fromisoformat(start_text) if start_text else None
    end = date.fromisoformat(end_text) if end_text else None
    if start is None:
        errors[ids.B_PDSA_START] = "Choose the date the test starts."
    if end is None:
        errors[ids.B_PDSA_END] = "Choose the date the test ends: the Study compares the data for these dates."
    elif start is not None and end < start:
        errors[ids.B_PDSA_END] = (
            f"The end date is before the start date ({start.day} {start:%b %Y}). "
            "Choose an end date on or after the start."
        )
    involvement = blocks.state_value(view, ids.B_PDSA_INVOLVEMENT) or ""
    if not involvement:
        errors[ids.B_PDSA_INVOLVEMENT] = (
            "Say who from the communities most affected shaped this test, or write "
            '"not yet" and the bot will remind the team.'
        )
    title = blocks.state_value(view, ids.B_PDSA_TITLE) or ""
    if len(title) < 3:
        errors[ids.B_PDSA_TITLE] = "Give the test a short title (at least 3 characters)."
    balancing_value = blocks.state_value(view, ids.B_PDSA_BALANCING)
    balancing_id = int(balancing_value) if balancing_value and balancing_value in by_id else None
    continue_value = blocks.state_value(view, ids.B_PDSA_CONTINUE)
    tasks = [line.strip(" •-*\t") for line in (blocks.state_value(view, ids.B_PDSA_TASKS) or "").splitlines()]
    fields: dict[str, Any] = {
        "title": title,
        "change_idea": blocks.state_value(view, ids.B_PDSA_CHANGE) or "",
        "question": blocks.state_value(view, ids.B_PDSA_QUESTION) or "",
        "measure_ids": measure_ids,
        "balancing_measure_id": balancing_id,
        "predictions": predictions,
        "plan": {
            "who": blocks.state_value(view, ids.B_PDSA_WHO) or "",
            "where": blocks.state_value(view, ids.B_PDSA_WHERE) or "",
            "tasks": [t for t in tasks if t],
        },
        "start_date": start,
        "end_date": end,
        "involvement": involvement,
        "involvement_pending": _is_not_yet(involvement),
    }
    return fields, errors, claims.parse_id(continue_value)


def handle_plan_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Read the form against the project (a short unit of work), answer errors inline, save the cycle in one
    short unit of work (so a database failure keeps the modal and what was typed), acknowledge, then post."""
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    is_edit = view["callback_id"] == ids.CB_PDSA_EDIT
    first_block = ids.B_PDSA_TITLE
    checked = pdsa_plan.check_plan(
        engine, team_id=team_id, project_id=claims.metadata_id(view, "project_id") or 0
    )
    if isinstance(checked, str):
        ack(response_action="errors", errors={first_block: checked})
        return
    fields, errors, continue_id = read_plan_form(view, groups=checked.groups, measures=checked.measures)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    saved = pdsa_plan.save_plan(
        engine,
        team_id=team_id,
        project_id=claims.metadata_id(view, "project_id") or 0,
        user_id=user_id,
        fields=fields,
        continue_id=None if is_edit else continue_id,
        cycle_id=(claims.metadata_id(view, "cycle_id") or 0) if is_edit else None,
        idea_id=claims.parse_id(blocks.state_value(view, ids.B_PDSA_IDEA)),
        new_idea_under=claims.parse_id(blocks.state_value(view, ids.B_PDSA_IDEA_DRIVER)),
    )
    if isinstance(saved, dict):  # the change idea or driver is not this project's, or the idea can't be added
        fields_to_blocks = {
            "idea": ids.B_PDSA_IDEA,
            "driver": ids.B_PDSA_IDEA_DRIVER,
            "text": ids.B_PDSA_CHANGE,
        }
        present = {b.get("block_id") for b in view.get("blocks") or []}
        errors = {}
        for field, text in saved.items():
            block = fields_to_blocks.get(field, ids.B_PDSA_CHANGE)
            errors[block if block in present else ids.B_PDSA_CHANGE] = text
        ack(response_action="errors", errors=errors)
        return
    if isinstance(saved, str):
        ack(response_action="errors", errors={first_block: saved})
        return
    ack()
    if is_edit:
        if saved.changed:
            refresh_card(client, engine, team_id=team_id, cycle_id=saved.cycle_id)
            post_in_thread(
                client,
                engine,
                team_id=team_id,
                cycle_id=saved.cycle_id,
                text=f"<@{user_id}> edited the plan: {', '.join(n.replace('_', ' ') for n in saved.changed)}. "
                "The earlier values are kept in the cycle's history (`/pdsa show`).",
            )
    else:
        post_card(client, engine, team_id=team_id, cycle_id=saved.cycle_id, by=user_id)
    refresh_home(client, engine, team_id=team_id, project_id=saved.project_id)
