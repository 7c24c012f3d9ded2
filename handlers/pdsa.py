"""The /pdsa command, the cycle card's buttons and the Plan/Do/Study/Act modals."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, cast

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core import pdsa
from bot.core.equity import wording
from bot.core.equity.disclosure import DEFAULT_POLICY, DisclosurePolicy, cell
from bot.core.equity.stats import aggregation_check, balancing_check
from bot.core.equity.types import Direction, GroupCounts
from bot.services import missing as missing_service
from bot.services.pdsa import cycle_info
from bot.services.pdsa import local_today as _today
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.blocks import pdsa as pb
from storage import measures_repo, pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Measure, PdsaCycle, Project

logger = logging.getLogger(__name__)

NOT_YET = ("not yet", "no one yet", "nobody yet", "none yet")
HELP = (
    "*PDSA cycles*\n"
    "`/pdsa new` plan a test with a prediction for each group · `/pdsa list` every cycle and its next step\n"
    "`/pdsa show N` a cycle's card and history · `/pdsa do N` log what happened · `/pdsa study N` compare results "
    "with the predictions · `/pdsa act N` adopt, adapt or abandon · `/pdsa edit N` change the plan (history kept)\n"
    "N is the cycle number, or the ramp and step shown on the card (e.g. `1.2`)."
)


# ---------------------------------------------------------------- small helpers


def _cycle_and_project(
    session: Session, *, team_id: str, cycle_id: int
) -> tuple[PdsaCycle | None, Project | None]:
    """A cycle and its project, both only within this workspace."""
    cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
    project = repo.get_project(session, team_id=team_id, project_id=cycle.project_id) if cycle else None
    return cycle, project


def project_groups(project: Project) -> list[str]:
    """Overall, each focus group, then the reference group: the rows of every prediction and study."""
    return list(dict.fromkeys([pdsa.OVERALL, *project.focus_groups, project.reference_group]))


def _policy(project: Project) -> DisclosurePolicy:
    return DisclosurePolicy(threshold=max(project.suppression_threshold, DEFAULT_POLICY.threshold))


def _measure_infos(measures: Sequence[Measure]) -> list[pb.MeasureInfo]:
    return [pb.MeasureInfo(int(m.id or 0), m.name, m.measure_type, m.kind) for m in measures]


def _primary_measure(session: Session, cycle: PdsaCycle) -> Measure | None:
    for measure_id in cycle.measure_ids:
        measure = measures_repo.get_measure(session, project_id=cycle.project_id, measure_id=int(measure_id))
        if measure is not None:
            return measure
    return None


def _ephemeral(
    client: WebClient, *, channel: str, user: str, text: str, respond: Respond | None = None
) -> None:
    if respond is not None:
        respond(text=text, response_type="ephemeral", replace_original=False)
    else:
        client.chat_postEphemeral(channel=channel, user=user, text=text)


def _unknown_cycle_text(session: Session, project: Project, ref: str) -> str:
    assert project.id is not None
    cycles = pdsa_repo.list_cycles(session, project_id=project.id)
    if not cycles:
        return f"There's no PDSA cycle `{blocks.typed(ref[:20])}` here: this project has no cycles yet. Plan one with `/pdsa new`."
    refs = ", ".join(f"{pdsa_repo.series_number(session, cycle=c)}.{c.ramp_step}" for c in cycles[-15:])
    return (
        f"There's no PDSA cycle `{blocks.typed(ref[:20])}` in this channel's project. Cycles here: {refs}. "
        "`/pdsa list` shows them with their next step.\n" + HELP
    )


# ---------------------------------------------------------------- the /pdsa command


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
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=context.team_id, channel_id=context.channel_id)
        project_id = project.id if project else None
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
        with unit_of_work(engine) as session:
            project = repo.get_project(session, team_id=context.team_id, project_id=project_id)
            assert project is not None
            cycle = pdsa_repo.find_cycle(session, project_id=project_id, ref=rest.split()[0])
            cycle_id = cycle.id if cycle else None
            unknown = _unknown_cycle_text(session, project, rest.split()[0]) if cycle is None else ""
        if cycle_id is None:
            respond(text=unknown, response_type="ephemeral")
            return
        opener = {"show": None, "do": open_do, "study": open_study, "act": open_act, "edit": open_edit}[word]
        if opener is None:
            show_cycle(respond, engine, team_id=context.team_id, cycle_id=cycle_id)
        else:
            opener(
                client,
                engine,
                team_id=context.team_id,
                cycle_id=cycle_id,
                trigger_id=command["trigger_id"],
                user_id=context.user_id,
                channel_id=context.channel_id,
                respond=respond,
            )
    else:
        respond(text=f"I don't know `/pdsa {blocks.typed(word[:30])}`.\n" + HELP, response_type="ephemeral")


def show_list(respond: Respond, engine: Engine, *, team_id: str, project_id: int) -> None:
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        assert project is not None
        today = _today(project)
        infos = [
            cycle_info(session, c, today=today) for c in pdsa_repo.list_cycles(session, project_id=project_id)
        ]
        record = pdsa.prediction_record(pdsa_repo.study_scores(session, project_id=project_id)).text()
    respond(
        blocks=pb.list_blocks(infos, record=record),
        text=blocks.counted(len(infos), "PDSA cycle"),
        response_type="ephemeral",
    )


def show_cycle(respond: Respond, engine: Engine, *, team_id: str, cycle_id: int) -> None:
    with unit_of_work(engine) as session:
        cycle, project = _cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        assert cycle is not None and project is not None
        info = cycle_info(session, cycle, today=_today(project), with_history=True)
    respond(blocks=pb.show_blocks(info), text=pb.cycle_text(info), response_type="ephemeral")


# ---------------------------------------------------------------- Plan (new, next in a ramp, edit)


def _earlier_cycles(session: Session, project_id: int) -> list[tuple[int, str]]:
    return [
        (int(c.id or 0), f"PDSA {pdsa_repo.series_number(session, cycle=c)}.{c.ramp_step}: {c.title}"[:75])
        for c in pdsa_repo.list_cycles(session, project_id=project_id)
    ]


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
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return
        measures = _measure_infos(measures_repo.measures_for_project(session, project_id=project_id))
        initial: dict[str, Any] | None = None
        notice = None
        if continue_from is not None:
            previous = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=continue_from)
            if previous is not None and previous.project_id == project_id:
                length = previous.end_date - previous.start_date
                start = max(previous.end_date + timedelta(days=1), _today(project))
                initial = {
                    **pdsa_repo.plan_snapshot(previous),
                    "continue_cycle_id": previous.id,
                    "start_date": start,
                    "end_date": start + length,
                }
                ref = f"{pdsa_repo.series_number(session, cycle=previous)}.{previous.ramp_step + 1}"
                notice = (
                    f":repeat: *Next cycle in the ramp: PDSA {ref}.* Pre-filled from the last cycle: change what "
                    "you are adapting, check each group's prediction, and choose new dates."
                )
        view = pb.plan_modal(
            callback_id=ids.CB_PDSA_NEW,
            groups=project_groups(project),
            measures=measures,
            earlier_cycles=_earlier_cycles(session, project_id),
            initial=initial,
            notice=notice,
            metadata={"project_id": project_id, "channel_id": project.channel_id},
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
    refusal: str | None = None
    with unit_of_work(engine) as session:
        cycle, project = _cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None or project.id is None:
            return
        if cycle.status == "acted" and not repo.is_lead(session, project_id=project.id, user_id=user_id):
            refusal = (
                f"PDSA {pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step} is closed (the team has acted "
                "on it). Only the project's leads can change a closed cycle; ask one of them."
            )
        else:
            notice = None
            if cycle.status == "acted":
                notice = (
                    ":lock: This cycle is closed. Your changes are saved with the earlier values kept in its "
                    "history, and posted in the cycle's thread."
                )
            view = pb.plan_modal(
                callback_id=ids.CB_PDSA_EDIT,
                groups=project_groups(project),
                measures=_measure_infos(measures_repo.measures_for_project(session, project_id=project.id)),
                initial=pdsa_repo.plan_snapshot(cycle),
                notice=notice,
                metadata={"project_id": project.id, "channel_id": project.channel_id, "cycle_id": cycle.id},
            )
    if refusal is not None:
        _ephemeral(client, channel=channel_id, user=user_id, respond=respond, text=refusal)
        return
    client.views_open(trigger_id=trigger_id, view=view)


def _is_not_yet(text: str) -> bool:
    lowered = " ".join(text.lower().split()).strip(" .!")
    return lowered in NOT_YET or lowered.startswith("not yet")


def read_plan_form(
    view: Mapping[str, Any], *, groups: Sequence[str], measures: Sequence[Measure]
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
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    is_edit = view["callback_id"] == ids.CB_PDSA_EDIT
    first_block = ids.B_PDSA_TITLE
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(
                session, team_id=team_id, project_id=claims.metadata_id(view, "project_id") or 0
            )
            if project is None or project.id is None:
                ack(response_action="errors", errors={first_block: "This project no longer exists."})
                return
            measures = measures_repo.measures_for_project(session, project_id=project.id)
            fields, errors, continue_id = read_plan_form(
                view, groups=project_groups(project), measures=measures
            )
            previous = None
            if not is_edit and continue_id:
                previous = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=continue_id)
                if previous is None or previous.project_id != project.id:
                    previous = None
            if errors:
                ack(response_action="errors", errors=errors)
                return
            if is_edit:
                cycle = pdsa_repo.get_cycle_by_id(
                    session, team_id=team_id, cycle_id=claims.metadata_id(view, "cycle_id") or 0
                )
                if cycle is None or cycle.project_id != project.id:
                    ack(response_action="errors", errors={first_block: "This cycle no longer exists."})
                    return
                if cycle.status == "acted" and not repo.is_lead(
                    session, project_id=project.id, user_id=user_id
                ):
                    ack(
                        response_action="errors",
                        errors={first_block: "This cycle is closed: only the project's leads can change it."},
                    )
                    return
                changed = sorted(pdsa_repo.update_cycle(session, cycle=cycle, changed_by=user_id, **fields))
            else:
                cycle = pdsa_repo.create_cycle(
                    session, project=project, created_by=user_id, previous=previous, **fields
                )
                changed = []
            cycle_id = int(cycle.id or 0)
            project_id = project.id
    except SQLAlchemyError:
        logger.exception("Saving the PDSA cycle failed")
        ack(
            response_action="errors",
            errors={
                first_block: "We couldn't save this just now (a database problem). "
                "Everything you typed is still here: try again in a moment."
            },
        )
        return
    ack()
    if is_edit:
        if changed:
            refresh_card(client, engine, team_id=team_id, cycle_id=cycle_id)
            post_in_thread(
                client,
                engine,
                team_id=team_id,
                cycle_id=cycle_id,
                text=f"<@{user_id}> edited the plan: {', '.join(n.replace('_', ' ') for n in changed)}. "
                "The earlier values are kept in the cycle's history (`/pdsa show`).",
            )
    else:
        post_card(client, engine, team_id=team_id, cycle_id=cycle_id, by=user_id)
    _refresh_home(client, engine, team_id=team_id, project_id=project_id)


def _refresh_home(client: WebClient, engine: Engine, *, team_id: str, project_id: int) -> None:
    home.publish_for_project(client, engine, team_id=team_id, project_id=project_id)


def post_card(client: WebClient, engine: Engine, *, team_id: str, cycle_id: int, by: str) -> None:
    """Post a new cycle's card in the channel; its thread will hold the cycle's history."""
    with unit_of_work(engine) as session:
        cycle, project = _cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        assert cycle is not None and project is not None
        info = cycle_info(session, cycle, today=_today(project))
        channel_id = cycle.channel_id
        balancing_exists = bool(
            measures_repo.measures_for_project(session, project_id=project.id or 0, measure_type="balancing")
        )
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
    with unit_of_work(engine) as session:
        found = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if found is not None:
            pdsa_repo.set_card_ts(session, cycle=found, ts=ts)
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
            if balancing_exists
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
    with unit_of_work(engine) as session:
        cycle, project = _cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None or cycle.card_ts is None:
            return
        info = cycle_info(session, cycle, today=_today(project))
        channel_id, ts = cycle.channel_id, cycle.card_ts
    try:
        client.chat_update(channel=channel_id, ts=ts, text=pb.cycle_text(info), blocks=pb.cycle_card(info))
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
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None:
            return
        channel_id, ts = cycle.channel_id, cycle.card_ts
    kwargs: dict[str, Any] = {"channel": channel_id, "text": text[:3900]}
    if ts:
        kwargs["thread_ts"] = ts
    if message_blocks:
        kwargs["blocks"] = message_blocks
    client.chat_postMessage(**kwargs)


# ---------------------------------------------------------------- buttons on the card and the project card


def _clicked_cycle(body: dict[str, Any]) -> int | None:
    return claims.action_id_value(body)


def _check_click(
    client: WebClient, engine: Engine, body: dict[str, Any], context: BoltContext
) -> tuple[str, int, str] | None:
    """(team_id, cycle_id, channel_id) when the clicked cycle belongs to this workspace and channel."""
    team_id = context.team_id or body["team"]["id"]
    cycle_id = _clicked_cycle(body)
    channel_id = (body.get("channel") or {}).get("id")
    if cycle_id is None:
        return None
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        cycle_channel = cycle.channel_id if cycle else None
    if cycle_channel is None or (channel_id is not None and channel_id != cycle_channel):
        if channel_id:
            client.chat_postEphemeral(
                channel=channel_id,
                user=body["user"]["id"],
                text="That PDSA cycle belongs to another channel's project.",
            )
        return None
    return team_id, cycle_id, cycle_channel


def _button(opener: Any) -> Any:
    def handle(
        ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
    ) -> None:
        ack()
        engine: Engine = context["engine"]
        checked = _check_click(client, engine, body, context)
        if checked is None:
            return
        team_id, cycle_id, channel_id = checked
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
    team_id, cycle_id, _ = checked
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        project_id = cycle.project_id if cycle else None
    if project_id is not None:
        open_plan(
            client,
            engine,
            team_id=team_id,
            project_id=project_id,
            trigger_id=body["trigger_id"],
            continue_from=cycle_id,
        )


# ---------------------------------------------------------------- Do


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
    with unit_of_work(engine) as session:
        cycle, project = _cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None:
            return
        info = cycle_info(session, cycle, today=_today(project))
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
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(
            session, team_id=team_id, cycle_id=claims.metadata_id(view, "cycle_id") or 0
        )
        if cycle is None:
            ack(response_action="errors", errors={ids.B_PDSA_DO_WHAT: "This cycle no longer exists."})
            return
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="do",
            user_id=user_id,
            data={"what": what, "as_planned": as_planned, "observations": observations},
        )
        started = cycle.status == "planned"
        if started:
            pdsa_repo.set_status(session, cycle=cycle, status="doing")
        cycle_id, pending, project_id = int(cycle.id or 0), cycle.involvement_pending, cycle.project_id
        ref = f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}"
    ack()
    text = f"*Do* · <@{user_id}> · ran as planned: *{blocks.typed(as_planned)}*\n>{blocks.typed(what)}"
    if observations:
        text += f"\n*Observations:* {blocks.typed(observations)}"
    if pending:
        text += (
            f"\n:hourglass: Still no one from the communities most affected recorded as shaping this test: "
            f"`/pdsa edit {ref}` once they have."
        )
    post_in_thread(client, engine, team_id=team_id, cycle_id=cycle_id, text=text)
    if started:
        refresh_card(client, engine, team_id=team_id, cycle_id=cycle_id)
        _refresh_home(client, engine, team_id=team_id, project_id=project_id)


# ---------------------------------------------------------------- Study


def _missing_text(
    measure: Measure,
    cycle: PdsaCycle,
    periods: Sequence[date],
    missing: Mapping[str, list[date]],
    have_any: bool,
) -> str | None:
    window = f"{cycle.start_date.day} {cycle.start_date:%b %Y} to {cycle.end_date.day} {cycle.end_date:%b %Y}"
    how = (
        "Log each period with `/measure log`, or load an extract with `/measure import`; or type the results "
        "below as events/total."
    )
    if not have_any:
        return (
            f":warning: *No data logged for {blocks.typed(measure.name)}* between {window} "
            f"(periods: {pdsa.describe_periods(periods, measure.period) or 'none'}), for any group. " + how
        )
    gaps = [
        f"{pdsa.group_name(g)} ({pdsa.describe_periods(p, measure.period)})" for g, p in missing.items() if p
    ]
    if not gaps:
        return None
    return ":warning: *Some data are missing* for " + "; ".join(gaps[:10]) + ". " + how


def open_study(
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
    refusal: str | None = None
    with unit_of_work(engine) as session:
        cycle, project = _cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None:
            return
        info = cycle_info(session, cycle, today=_today(project))
        measure = _primary_measure(session, cycle)
        if measure is None:
            refusal = (
                f"PDSA {info.ref} has no measure to study, so there are no data to compare with the predictions. "
                f"Choose one with `/pdsa edit {info.ref}` (add it first with `/measure new` if the project has none), "
                "then log data for the cycle's dates with `/measure log` or `/measure import`."
            )
        else:
            groups = project_groups(project)
            counts, periods, missing = pdsa_repo.window_counts(
                session, measure=measure, groups=groups, start=cycle.start_date, end=cycle.end_date
            )
            missing_text = _missing_text(measure, cycle, periods, missing, bool(counts))
            view = pb.study_modal(
                info,
                measure=_measure_infos([measure])[0],
                groups=groups,
                prefill={g: (c.numerator, c.denominator) for g, c in counts.items()},
                missing_text=missing_text,
                metadata={"cycle_id": cycle_id, "measure_id": measure.id},
            )
    if refusal is not None:
        _ephemeral(client, channel=channel_id, user=user_id, respond=respond, text=refusal)
        return
    client.views_open(trigger_id=trigger_id, view=view)


def _direction_of(direction: str) -> Direction:
    return "higher" if direction == "higher" else "lower" if direction == "lower" else "neither"


def _rounded_for_check(counts: Mapping[str, GroupCounts], policy: DisclosurePolicy) -> list[GroupCounts]:
    """Counts as they may be shown, so the balancing check's rates come from rounded counts (small ones stay
    below the check's minimum and are reported as too few)."""
    out = []
    for code, c in counts.items():
        num, den = cell(c.numerator, policy), cell(c.denominator, policy)
        if num.rounded is None or den.rounded is None or num.rounded > den.rounded:
            out.append(GroupCounts(code, min(c.numerator, policy.threshold - 1), max(c.denominator, 1)))
        else:
            out.append(GroupCounts(code, num.rounded, den.rounded))
    return out


def handle_study_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    user_id = body["user"]["id"]
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(
            session, team_id=team_id, cycle_id=claims.metadata_id(view, "cycle_id") or 0
        )
        project = repo.get_project(session, team_id=team_id, project_id=cycle.project_id) if cycle else None
        measure = (
            measures_repo.get_measure(
                session, project_id=cycle.project_id, measure_id=claims.metadata_id(view, "measure_id") or 0
            )
            if cycle
            else None
        )
        groups = project_groups(project) if project else []
        first_block = ids.B_PDSA_OBSERVED_PREFIX + (groups[0] if groups else pdsa.OVERALL)
        if cycle is None or project is None or project.id is None or measure is None:
            ack(response_action="errors", errors={first_block: "This cycle or its measure no longer exists."})
            return
        if cycle.status == "acted" and not repo.is_lead(session, project_id=project.id, user_id=user_id):
            ack(
                response_action="errors",
                errors={first_block: "This cycle is closed: only the project's leads can add a study to it."},
            )
            return
        errors: dict[str, str] = {}
        observed: dict[str, GroupCounts] = {}
        for code in groups[: pb.MAX_GROUP_INPUTS]:
            block_id = ids.B_PDSA_OBSERVED_PREFIX + code
            text = blocks.state_value(view, block_id) or ""
            if not text:
                continue
            try:
                num, den = pdsa.parse_counts(text)
            except ValueError as exc:
                errors[block_id] = str(exc)
                continue
            observed[code] = GroupCounts(code, num, den)
        if not observed and not errors:
            _, periods, missing = pdsa_repo.window_counts(
                session, measure=measure, groups=groups, start=cycle.start_date, end=cycle.end_date
            )
            errors[first_block] = (
                (_missing_text(measure, cycle, periods, missing, False) or "No results.")
                .replace(":warning: ", "")
                .replace("*", "")
            )
        if errors:
            ack(response_action="errors", errors=errors)
            return
        cycle_id, project_id, measure_id = int(cycle.id or 0), project.id, int(measure.id or 0)
    # Acknowledge first (the form is valid), then score, check balancing and save: Slack waits 3 seconds at most.
    ack()
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id)
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        measure = measures_repo.get_measure(session, project_id=project_id, measure_id=measure_id)
        if cycle is None or project is None or project.id is None or measure is None:
            logger.info("PDSA cycle %s or its measure went away before its study was saved", cycle_id)
            return
        policy = _policy(project)
        base_start, base_end = pdsa.periods_before(cycle.start_date, cycle.end_date, measure.period)
        baseline, _, _ = pdsa_repo.window_counts(
            session, measure=measure, groups=groups, start=base_start, end=base_end
        )
        predictions = [pdsa.Prediction.from_dict(p) for p in cycle.predictions]
        results = pdsa.score_all(
            predictions, groups, observed, baseline, measure_direction=measure.direction, policy=policy
        )
        balancing_notes: list[str] = []
        harm: list[str] = []
        balancing_name: str | None = None
        if cycle.balancing_measure_id:
            balancing = measures_repo.get_measure(
                session, project_id=project.id, measure_id=cycle.balancing_measure_id
            )
            if balancing is not None:
                balancing_name = balancing.name
                after, _, _ = pdsa_repo.window_counts(
                    session, measure=balancing, groups=groups, start=cycle.start_date, end=cycle.end_date
                )
                b_start, b_end = pdsa.periods_before(cycle.start_date, cycle.end_date, balancing.period)
                before, _, _ = pdsa_repo.window_counts(
                    session, measure=balancing, groups=groups, start=b_start, end=b_end
                )
                direction = cast(
                    Direction,
                    balancing.direction if balancing.direction in ("higher", "lower") else "neither",
                )
                if not after or not before:
                    balancing_notes.append(
                        f"No data for {balancing.name} in the cycle's window and the window before "
                        "it, so it could not be checked. Log it with `/measure log`."
                    )
                else:
                    warnings = balancing_check(
                        _rounded_for_check(before, policy),
                        _rounded_for_check(after, policy),
                        direction=direction,
                        measure_name=balancing.name,
                        min_count=policy.threshold,
                        labels={g: pdsa.group_name(g) for g in groups},
                    )
                    # Harm first: a clear worsening; one that is not yet clear stays with the balancing notes.
                    clear = [
                        w
                        for w in wording.ordered_flags(warnings)
                        if wording.is_harm(w) and w.severity in ("warning", "critical")
                    ]
                    balancing_notes = [w.message for w in warnings if w not in clear]
                    harm += [wording.short(w) for w in clear]
        # A group moving against an improving measure is harm too, from the same rounded counts as shown.
        against = aggregation_check(
            _rounded_for_check(baseline, policy),
            _rounded_for_check(observed, policy),
            direction=_direction_of(measure.direction),
            min_count=policy.threshold,
        )
        harm = [wording.short(w) for w in against if w.severity in ("warning", "critical")] + harm
        shared, unshared = pdsa_repo.partner_reflections(
            session, project_id=project.id, start=cycle.start_date, end=cycle.end_date
        )
        learning = blocks.state_value(view, ids.B_PDSA_STUDY_LEARNING) or ""
        scores = [
            {
                "group": r.group,
                "outcome": r.outcome,
                "reason": r.reason,
                "predicted": r.prediction is not None,
            }
            for r in results
        ]
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="study",
            user_id=user_id,
            data={
                "measure_id": measure.id,
                "observed": {g: [c.numerator, c.denominator] for g, c in observed.items()},
                "baseline_window": [base_start.isoformat(), base_end.isoformat()],
                "scores": scores,
                "learning": learning,
                "balancing": balancing_notes,
                "harm": harm,
            },
        )
        # Issue 14: the "Who did this not work for?" answer goes to the who-is-missing register.
        not_for = blocks.state_value(view, ids.B_PDSA_STUDY_NOT_FOR) or ""
        missing_service.record_from_study(session, cycle=cycle, who=not_for, user_id=user_id)
        if cycle.status in ("planned", "doing"):
            pdsa_repo.set_status(session, cycle=cycle, status="studied")
        cycle_id, project_id = int(cycle.id or 0), project.id
        ref = f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}"
        window = (
            f"{cycle.start_date.day} {cycle.start_date:%b %Y} to {cycle.end_date.day} {cycle.end_date:%b %Y}"
        )
        measure_name, kind = measure.name, measure.kind
    message = study_message(
        ref=ref,
        user_id=user_id,
        measure_name=measure_name,
        window=window,
        kind=kind,
        results=results,
        balancing_name=balancing_name,
        balancing_notes=balancing_notes,
        shared=shared,
        unshared=unshared,
        learning=learning,
        policy=policy,
        harm=harm,
    )
    post_in_thread(
        client, engine, team_id=team_id, cycle_id=cycle_id, text=message[1], message_blocks=message[0]
    )
    refresh_card(client, engine, team_id=team_id, cycle_id=cycle_id)
    _refresh_home(client, engine, team_id=team_id, project_id=project_id)


def study_message(
    *,
    ref: str,
    user_id: str,
    measure_name: str,
    window: str,
    kind: str,
    results: Sequence[pdsa.GroupResult],
    balancing_name: str | None,
    balancing_notes: Sequence[str],
    shared: Sequence[str],
    unshared: int,
    learning: str,
    policy: DisclosurePolicy,
    harm: Sequence[str] = (),
) -> tuple[list[blocks.Block], str]:
    """The Study post, harm first: any harm signal, then predicted against observed per group (disclosure-safe)
    and the verdict, balancing, partners, and the next step."""
    verdict = pdsa.worked_for_everyone(results)
    out: list[blocks.Block] = [
        blocks.section(f"*Study: PDSA {ref}* · <@{user_id}> · {blocks.typed(measure_name)}, {window}")
    ]
    if harm:
        out.append(
            blocks.section(
                ":warning: *Harm to check first*\n"
                + "\n".join(f"• {blocks.typed_within(h[0].upper() + h[1:], measure_name)}" for h in harm[:5])
                + "\nThe Act form asks how the team will respond."
            )
        )
    out += [
        blocks.section(
            "*Predicted against observed*\n" + "\n".join(pdsa.result_line(r, kind) for r in results)
        ),
        blocks.section(f"*Did it work for everyone?* {verdict}"),
    ]
    if balancing_name is None:
        out.append(
            blocks.section(
                "*Balancing measure:* none chosen for this cycle, so unintended harm was not checked."
            )
        )
    else:
        notes = list(balancing_notes) or (
            [] if harm else [f"{balancing_name} did not get worse for any group that could be checked."]
        )
        if not notes:
            notes = ["see the harm signal above."]
        out.append(
            blocks.section(
                f"*Balancing measure ({blocks.typed(balancing_name)}), against the same number of "
                "days before:*\n"
                + "\n".join(f"• {blocks.typed_within(n, balancing_name)}" for n in notes[:10])
            )
        )
    if shared or unshared:
        lines = [f"> {blocks.typed(text[:500])}" for text in shared[:5]]
        if unshared:
            shown = cell(unshared, policy)
            many = "Fewer than " + str(policy.threshold) if shown.suppressed else shown.shown
            lines.append(
                f"{many} other partner reflections were recorded during the cycle; leads can read them "
                "in the Home tab."
            )
        out.append(
            blocks.section("*Service-user partners' reflections during the cycle*\n" + "\n".join(lines))
        )
    if learning:
        out.append(blocks.section(f"*What we learned*\n{blocks.typed(learning)}"))
    out.append(
        blocks.section(
            ":speech_balloon: *Who did this not work for?* Look at the groups above, and at who is "
            "missing from the data. Reply in this thread, then decide with *Act*."
        )
    )
    out.append(blocks.context(policy.note + " Intervals are 95% Wilson intervals from the shown counts."))
    prefix = "Harm to check first. " if harm else ""
    return out, f"{prefix}Study of PDSA {ref}: {verdict}"


# ---------------------------------------------------------------- Act


def open_act(
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
    refusal: str | None = None
    with unit_of_work(engine) as session:
        cycle, project = _cycle_and_project(session, team_id=team_id, cycle_id=cycle_id)
        if cycle is None or project is None or project.id is None:
            return
        if cycle.status == "acted" and not repo.is_lead(session, project_id=project.id, user_id=user_id):
            refusal = "The team has already acted on this cycle; only the project's leads can change a closed cycle."
        else:
            info = cycle_info(session, cycle, today=_today(project))
            measure = _primary_measure(session, cycle)
            study = pdsa_repo.latest_study(session, cycle_id=cycle_id)
            harm = [str(h) for h in ((study.data or {}).get("harm") or [])] if study is not None else []
            view = pb.act_modal(
                info,
                measure_name=measure.name if measure else None,
                metadata={"cycle_id": cycle_id},
                harm=harm,
            )
    if refusal is not None:
        _ephemeral(client, channel=channel_id, user=user_id, respond=respond, text=refusal)
        return
    client.views_open(trigger_id=trigger_id, view=view)


def handle_act_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    user_id = body["user"]["id"]
    decision = blocks.state_value(view, ids.B_PDSA_DECISION)
    reason = blocks.state_value(view, ids.B_PDSA_ACT_REASON) or ""
    involved = blocks.state_value(view, ids.B_PDSA_ACT_INVOLVED)
    who = blocks.state_value(view, ids.B_PDSA_ACT_WHO) or ""
    rebase = "rebase" in (blocks.state_value(view, ids.B_PDSA_REBASE) or [])
    rebase_text = blocks.state_value(view, ids.B_PDSA_REBASE_DATE)
    harm_response = (blocks.state_value(view, ids.B_PDSA_ACT_HARM) or "").strip()
    harm_shown = any(b.get("block_id") == ids.B_PDSA_ACT_HARM for b in view.get("blocks") or [])
    errors: dict[str, str] = {}
    if decision not in ("adopt", "adapt", "abandon"):
        errors[ids.B_PDSA_DECISION] = "Choose adopt, adapt or abandon."
    if len(reason) < 3:
        errors[ids.B_PDSA_ACT_REASON] = "Say why: the reason is what the next team will learn from."
    if involved not in ("yes", "no", "partly"):
        errors[ids.B_PDSA_ACT_INVOLVED] = (
            "Did those most affected take part in this decision? Choose yes, partly or no."
        )
    elif involved in ("yes", "partly") and not who:
        errors[ids.B_PDSA_ACT_WHO] = "Say who took part (names, roles or groups)."
    if harm_shown and decision == "adopt" and len(harm_response) < 3:
        errors[ids.B_PDSA_ACT_HARM] = (
            "The Study found a harm signal: say how the team will respond to it before adopting the change."
        )
    if rebase and decision != "adopt":
        errors[ids.B_PDSA_REBASE] = (
            "Only an adopted change moves the process to a new level: untick this, or choose Adopt."
        )
    elif rebase and not rebase_text:
        errors[ids.B_PDSA_REBASE_DATE] = "Choose the date the new limits start from."
    elif rebase_text and not rebase:
        errors[ids.B_PDSA_REBASE] = (
            "Tick this box to recalculate the limits from the date you chose (or clear the date)."
        )
    if errors:
        ack(response_action="errors", errors=errors)
        return
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(
            session, team_id=team_id, cycle_id=claims.metadata_id(view, "cycle_id") or 0
        )
        if cycle is None:
            ack(response_action="errors", errors={ids.B_PDSA_DECISION: "This cycle no longer exists."})
            return
        if cycle.status == "acted" and not repo.is_lead(
            session, project_id=cycle.project_id, user_id=user_id
        ):
            ack(
                response_action="errors",
                errors={
                    ids.B_PDSA_DECISION: "The team has already acted on this cycle; only "
                    "the project's leads can change it."
                },
            )
            return
        warning: str | None = None
        if cycle.status in ("planned", "doing"):
            warning = (
                "Decided before the cycle was studied: the decision does not rest on the results for each group. "
                "Study it when the data are in, and revisit the decision if they tell a different story."
            )
            pdsa_repo.add_entry(
                session,
                cycle=cycle,
                kind="warning",
                user_id=user_id,
                data={"code": "act_before_study", "message": warning},
            )
        previous_decision = cycle.decision if cycle.status == "acted" else None
        rebase_note: str | None = None
        if rebase and rebase_text:
            measure = _primary_measure(session, cycle)
            if measure is not None:
                pdsa_repo.add_rebase_date(session, measure=measure, on=date.fromisoformat(rebase_text))
                rebase_note = f"{measure.name}'s SPC limits will be recalculated from {rebase_text}."
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="act",
            user_id=user_id,
            data={
                "decision": decision,
                "reason": reason,
                "involved": involved,
                "who": who,
                "rebase": rebase_text if rebase else None,
                "previous_decision": previous_decision,
                "harm_response": harm_response or None,
            },
        )
        pdsa_repo.set_status(session, cycle=cycle, status="acted", decision=decision)
        cycle_id, project_id, next_step = int(cycle.id or 0), cycle.project_id, cycle.ramp_step + 1
    ack()
    involved_text = {"yes": "yes", "partly": "partly", "no": "no"}[str(involved)]
    text = f"*Act: {blocks.typed(decision)}* · <@{user_id}>\n>{blocks.typed(reason)}\n*Did those most affected take part in this decision?* {involved_text}"
    if who:
        text += f" ({blocks.typed(who)})"
    if involved == "no":
        text += (
            "\n_The framework asks that those most affected help evaluate the change and shape next steps._"
        )
    if harm_response:
        text += f"\n*Response to the harm signal:* {blocks.typed(harm_response)}"
    if rebase_note:
        text += f"\n:chart_with_upwards_trend: {blocks.typed(rebase_note)}"
    message_blocks: list[blocks.Block] = []
    if warning:
        message_blocks.append(blocks.section(f":warning: *Warning recorded:* {warning}"))
    message_blocks.append(blocks.section(text))
    if decision == "adapt":
        message_blocks.append(
            blocks.actions(
                blocks.button(
                    f"Plan the next cycle (ramp step {next_step})",
                    ids.A_PDSA_NEXT,
                    value=str(cycle_id),
                    style="primary",
                )
            )
        )
    post_in_thread(
        client,
        engine,
        team_id=team_id,
        cycle_id=cycle_id,
        text=blocks.typed(f"Act: {decision}. {reason}"[:300]),
        message_blocks=message_blocks,
    )
    refresh_card(client, engine, team_id=team_id, cycle_id=cycle_id)
    _refresh_home(client, engine, team_id=team_id, project_id=project_id)


def register(app: App) -> None:
    app.command(ids.PDSA)(
        guard(
            handle_pdsa,
            Rule(
                access.channel_project, optional=True, posts=access.words("new", "do", "study", "act", "edit")
            ),
        )
    )
    app.action(ids.A_OPEN_PDSA_NEW)(guard(handle_open_new, Rule(access.value_project, posts=True)))
    app.action(ids.A_PDSA_DO)(guard(_button(open_do), Rule(access.value_cycle, posts=True)))
    app.action(ids.A_PDSA_STUDY)(guard(_button(open_study), Rule(access.value_cycle, posts=True)))
    app.action(ids.A_PDSA_ACT)(guard(_button(open_act), Rule(access.value_cycle, posts=True)))
    app.action(ids.A_PDSA_EDIT)(guard(_button(open_edit), Rule(access.value_cycle, posts=True)))
    app.action(ids.A_PDSA_NEXT)(guard(handle_next_cycle, Rule(access.value_cycle, posts=True)))
    saved = Rule(access.form, saved=("What you wrote for the PDSA cycle was saved", "`/pdsa list`"))
    app.view(ids.CB_PDSA_NEW)(guard(handle_plan_submission, saved))
    app.view(ids.CB_PDSA_EDIT)(guard(handle_plan_submission, saved))
    app.view(ids.CB_PDSA_DO)(guard(handle_do_submission, saved))
    app.view(ids.CB_PDSA_STUDY)(guard(handle_study_submission, saved))
    app.view(ids.CB_PDSA_ACT)(guard(handle_act_submission, saved))
