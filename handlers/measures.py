"""The /measure command, the measure and log forms, private file imports (a file_input form) and undo."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from bot.config import Settings
from bot.core import ethnicity
from bot.core.equity.disclosure import check_text_for_disclosure
from bot.core.extracts import ImportRefused, period_start, read_extract
from bot.services import downloads
from bot.services import measures as importing
from bot.services.projects import card_data
from handlers import access, blocks, claims, projects
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.blocks import measures as mb
from storage import measures_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Measure, Project

logger = logging.getLogger(__name__)

IMPORT_EXTENSIONS = (".csv", ".xlsx", ".xlsm", ".xls", ".txt")
_COUNTS = re.compile(r"^\s*(-?[\d.,]+)\s*(?:/|\bof\b|\bout of\b)\s*(-?[\d.,]+)\s*$", re.IGNORECASE)


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


def _project(session: Session, context: BoltContext, channel_id: str | None = None) -> Project | None:
    return repo.project_for_channel(
        session, team_id=context.team_id or "", channel_id=channel_id or context.channel_id or ""
    )


NO_PROJECT = (
    "There is no project in this channel yet. Start one with `/mfi new`; measures belong to a project."
)


def _local_today(project: Project) -> date:
    return datetime.now(ZoneInfo(project.timezone)).date()


# --- /measure new --------------------------------------------------------------------------------------------


def open_measure_modal(
    client: WebClient, context: BoltContext, *, trigger_id: str, respond: Respond | None, channel_id: str
) -> None:
    engine: Engine = context["engine"]
    with unit_of_work(engine) as session:
        project = _project(session, context, channel_id)
        if project is None or project.id is None:
            if respond:
                respond(text=NO_PROJECT, response_type="ephemeral")
            return
        has_balancing = any(
            m.measure_type == "balancing"
            for m in measures_repo.measures_for_project(session, project_id=project.id)
        )
        view = mb.measure_modal(
            channel_id=channel_id,
            project_id=project.id,
            project_reference=project.reference_group,
            has_balancing=has_balancing,
        )
    client.views_open(trigger_id=trigger_id, view=view)


def handle_open_measure_new(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """The project card's "Add a measure" button (value: project id), from the channel or the Home tab."""
    ack()
    engine: Engine = context["engine"]
    with unit_of_work(engine) as session:
        project = repo.get_project(
            session, team_id=context.team_id or "", project_id=claims.action_id_value(body) or 0
        )
        channel_id = project.channel_id if project else None
    if channel_id:
        open_measure_modal(
            client, context, trigger_id=body["trigger_id"], respond=None, channel_id=channel_id
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
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    try:
        with unit_of_work(engine) as session:
            project = repo.get_project(
                session, team_id=team_id, project_id=claims.metadata_id(view, "project_id") or 0
            )
            if project is None or project.id is None:
                ack(response_action="errors", errors={ids.B_MEASURE_NAME: "This project no longer exists."})
                return
            fields, errors = read_measure_form(view, focus_groups=list(project.focus_groups))
            if not errors and measures_repo.find_measure_by_name(
                session, project_id=project.id, name=fields["name"]
            ):
                errors[ids.B_MEASURE_NAME] = (
                    f"This project already has a measure called “{fields['name']}”. Choose another name, "
                    "or use `/measure log` to add data to that one."
                )
            if errors:
                ack(response_action="errors", errors=errors)
                return
            measure = measures_repo.create_measure(session, project=project, created_by=user_id, **fields)
            repo.audit(
                session,
                team_id=team_id,
                project_id=project.id,
                user_id=user_id,
                action="measure.create",
                detail={"measure_id": measure.id},
            )
            others = measures_repo.measures_for_project(session, project_id=project.id)
            has_balancing = any(m.measure_type == "balancing" for m in others)
            added, text = mb.measure_added(measure.model_dump(), by=user_id, has_balancing=has_balancing)
            channel_id, card_ts, project_id = project.channel_id, project.card_ts, project.id
    except SQLAlchemyError:
        logger.exception("Saving the measure failed")
        ack(
            response_action="errors",
            errors={
                ids.B_MEASURE_NAME: "We couldn't save this just now (a database "
                "problem). Everything you typed is still here: press the button again in a moment."
            },
        )
        return
    ack()
    client.chat_postMessage(channel=channel_id, text=text, blocks=added)
    _refresh_card(
        client, engine, team_id=team_id, project_id=project_id, channel_id=channel_id, card_ts=card_ts
    )


def _refresh_card(
    client: WebClient, engine: Engine, *, team_id: str, project_id: int, channel_id: str, card_ts: str | None
) -> None:
    if card_ts is None:
        return
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id)
        if project is None:
            return
        card, text = projects.card_for(card_data(session, project))
    try:
        client.chat_update(channel=channel_id, ts=card_ts, text=text, blocks=card)
    except SlackApiError as exc:
        logger.warning("Could not refresh the project card: %s", exc.response.get("error"))


# --- /measure log --------------------------------------------------------------------------------------------


def _measure_dicts(measures: list[Measure]) -> list[dict[str, Any]]:
    return [m.model_dump() for m in measures]


def _previous_period(today: date, period: str) -> date:
    """The start of the last complete period: what a team usually enters."""
    current = period_start(today, period)  # type: ignore[arg-type]
    return period_start(current - timedelta(days=1), period)  # type: ignore[arg-type]


def _log_view(
    session: Session,
    project: Project,
    *,
    channel_id: str,
    measure_id: int | None,
    full: bool,
    values: dict[str, str] | None = None,
    period_initial: date | None = None,
) -> dict[str, Any] | None:
    assert project.id is not None
    measures = measures_repo.measures_for_project(session, project_id=project.id)
    if not measures:
        return None
    measure = next((m for m in measures if m.id == measure_id), measures[0])
    assert measure.id is not None
    groups = (
        mb.full_log_groups() if full else mb.default_log_groups(project.focus_groups, measure.reference_group)
    )
    return mb.log_modal(
        channel_id=channel_id,
        project_id=project.id,
        measures=_measure_dicts(measures),
        measure_id=measure.id,
        groups=groups,
        full=full,
        values=values,
        period_initial=period_initial or _previous_period(_local_today(project), measure.period),
    )


def open_log_modal(client: WebClient, context: BoltContext, *, trigger_id: str, respond: Respond) -> None:
    engine: Engine = context["engine"]
    with unit_of_work(engine) as session:
        project = _project(session, context)
        if project is None:
            respond(text=NO_PROJECT, response_type="ephemeral")
            return
        view = _log_view(session, project, channel_id=context.channel_id or "", measure_id=None, full=False)
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
    with unit_of_work(engine) as session:
        project = repo.get_project(
            session, team_id=context.team_id or "", project_id=claims.metadata_id(view, "project_id") or 0
        )
        if project is None:
            return
        new_view = _log_view(
            session,
            project,
            channel_id=project.channel_id,
            measure_id=measure_id if measure_id is not None else claims.metadata_id(view, "measure_id"),
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
    with unit_of_work(engine) as session:
        measure = measures_repo.get_measure(
            session, team_id=team_id, measure_id=claims.metadata_id(view, "measure_id") or 0
        )
        project = repo.get_project(
            session, team_id=team_id, project_id=claims.metadata_id(view, "project_id") or 0
        )
        if measure is None or project is None or measure.project_id != project.id:
            ack(response_action="errors", errors={ids.B_LOG_PERIOD: "This measure no longer exists."})
            return
        start, rows, errors = read_log_form(
            view, kind=measure.kind, period=measure.period, today=_local_today(project)
        )
        if errors or start is None:
            ack(response_action="errors", errors=errors)
            return
        outcome = importing.log_period(
            session, measure=measure, period_start=start, rows=rows, user_id=user_id
        )
        blank = (
            []
            if measure.kind == "value"
            else measures_repo.blank_missing_categories(
                session, measure_id=measure.id or 0, period_start=start
            )
        )
        measure_kind = measure.kind
        channel_id = project.channel_id
    ack()
    message, text = mb.logged_message(outcome, by=user_id, blank=blank, kind=measure_kind)
    client.chat_postMessage(channel=channel_id, text=text, blocks=message)


# --- /measure list -------------------------------------------------------------------------------------------


def show_list(respond: Respond, context: BoltContext) -> None:
    engine: Engine = context["engine"]
    with unit_of_work(engine) as session:
        project = _project(session, context)
        if project is None or project.id is None:
            respond(text=NO_PROJECT, response_type="ephemeral")
            return
        rows: list[dict[str, Any]] = []
        for measure in measures_repo.measures_for_project(session, project_id=project.id):
            assert measure.id is not None
            rows.append(
                {
                    **measure.model_dump(),
                    "latest": measures_repo.latest_period(session, measure_id=measure.id),
                    "completeness": measures_repo.completeness(
                        session, measure_id=measure.id, kind=measure.kind
                    ),
                }
            )
        has_balancing = any(r["measure_type"] == "balancing" for r in rows)
        listed, text = mb.measure_list(project.name, rows, has_balancing=has_balancing)
    respond(blocks=listed, text=text, response_type="ephemeral")


# --- /measure import (a private upload form) and file_shared ----------------------------------------------------


def open_import_modal(
    client: WebClient, context: BoltContext, *, trigger_id: str, respond: Respond, measure_name: str
) -> None:
    """`/measure import [measure]`: a form with a file input, so the extract never appears in the channel."""
    engine: Engine = context["engine"]
    with unit_of_work(engine) as session:
        project = _project(session, context)
        if project is None or project.id is None:
            respond(text=NO_PROJECT, response_type="ephemeral")
            return
        measures = measures_repo.measures_for_project(session, project_id=project.id)
        if not measures:
            respond(
                text="This project has no measures yet. Define one with `/measure new`, then import into it.",
                response_type="ephemeral",
            )
            return
        chosen = (
            measures_repo.resolve_measure(session, project_id=project.id, key=measure_name)
            if measure_name
            else measures[0]
            if len(measures) == 1
            else None
        )
        view = mb.import_modal(
            channel_id=project.channel_id,
            project_id=project.id,
            measures=_measure_dicts(measures),
            measure_id=chosen.id if chosen else None,
            max_mb=_settings(context).mfi_import_max_mb,
        )
    client.views_open(trigger_id=trigger_id, view=view)


def _settings(context: BoltContext) -> Settings:
    settings = context.get("settings")
    return settings if isinstance(settings, Settings) else Settings()


def file_key(file: dict[str, Any]) -> str:
    """A Slack file's id and version: the same upload replayed has the same key, a new upload a new one."""
    version = file.get("updated") or file.get("timestamp") or file.get("created") or ""
    return f"{file.get('id')}@{version}"[:120]


def _whole_id(value: Any) -> int | None:
    text = str(value if value is not None else "")
    return int(text) if text.isdigit() and len(text) < 12 else None


def handle_import_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Check the form (inline errors, nothing saved), close it, then download, read and save the file."""
    meta = blocks.metadata_of(view)
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    settings = _settings(context)
    engine: Engine = context["engine"]
    project_id, measure_id = (
        _whole_id(meta.get("project_id")),
        _whole_id(blocks.state_value(view, ids.B_IMPORT_MEASURE)),
    )
    files = blocks.state_value(view, ids.B_IMPORT_FILE)
    files = [f for f in files if isinstance(f, dict) and f.get("id")] if isinstance(files, list) else []
    with unit_of_work(engine) as session:
        project = repo.get_project(session, team_id=team_id, project_id=project_id) if project_id else None
        measure = (
            measures_repo.get_measure(session, team_id=team_id, measure_id=measure_id) if measure_id else None
        )
        if project is None or project.channel_id != meta.get("channel_id"):
            ack(response_action="errors", errors={ids.B_IMPORT_MEASURE: "This project no longer exists."})
            return
        if measure is None or measure.project_id != project.id:
            ack(
                response_action="errors",
                errors={ids.B_IMPORT_MEASURE: "Choose one of this project's measures."},
            )
            return
        problem = _file_problem(files, settings)
        if problem is None:
            earlier = importing.already_imported(session, team_id=team_id, file_key=file_key(files[0]))
            if earlier is not None:
                problem = mb.already_imported(
                    earlier.filename, earlier.measure_name, earlier.batch_id, inline=True
                )
        if problem is not None:
            ack(response_action="errors", errors={ids.B_IMPORT_FILE: problem[:2000]})
            return
        job = _ImportJob(
            team_id=team_id,
            channel_id=project.channel_id,
            user_id=user_id,
            measure_id=measure.id or 0,
            measure_name=measure.name,
            period=importing.measure_period(measure),
            today=_local_today(project),
            file_id=str(files[0]["id"]),
        )
    ack()
    run_import(client, engine, settings, job)


def _file_problem(files: list[dict[str, Any]], settings: Settings) -> str | None:
    """An inline error for the file input, from what the form says about the file (checked again after download)."""
    if len(files) != 1:
        return "Choose one file: a CSV or Excel (.xlsx) extract."
    name = str(files[0].get("name") or "")
    if name and not name.lower().endswith(IMPORT_EXTENSIONS):
        return f"{name[:80]} is not a CSV or Excel file. Save the data as .csv or .xlsx and choose it again."
    size = files[0].get("size")
    if isinstance(size, int) and size > settings.import_max_bytes:
        return (
            f"This file is {downloads.megabytes(size)}; the most I import is "
            f"{downloads.megabytes(settings.import_max_bytes)}. Export only the columns needed, or aggregated "
            "counts by period and ethnic group, and choose the smaller file."
        )
    return None


@dataclass(frozen=True)
class _ImportJob:
    team_id: str
    channel_id: str
    user_id: str
    measure_id: int
    measure_name: str
    period: str
    today: date
    file_id: str


def run_import(client: WebClient, engine: Engine, settings: Settings, job: _ImportJob) -> None:
    """Read the file through files.info, download it within bounds, import it once per file version, then post the
    disclosure-safe summary in the channel and every detail privately to the importer."""
    try:
        file = client.files_info(file=job.file_id)["file"]
    except SlackApiError as exc:
        error = exc.response.get("error")
        logger.warning("files.info failed for an import: %s", error)
        if error == "missing_scope":
            _tell(
                client,
                job,
                "I could not read your file: this app needs Slack's files:read permission. Nothing "
                "was saved. Ask your Slack admin to reinstall the app from its manifest, then try again.",
            )
        else:
            _tell(
                client,
                job,
                "I could not read your file from Slack, so nothing was saved. Try `/measure import` "
                "again in a moment.",
            )
        return
    filename = str(file.get("name") or "upload")
    if file.get("user") != job.user_id:
        # A form only ever carries the submitter's own upload; anything else is a forged or replayed payload.
        _tell(
            client,
            job,
            f"{mb.file_label(filename)} was not uploaded by you, so I did not import it. Nothing "
            "was saved; upload your own extract with `/measure import`.",
        )
        return
    try:
        data = downloads.download(
            file, token=client.token, api_url=settings.slack_api_url, max_bytes=settings.import_max_bytes
        )
        parsed = read_extract(data, filename=filename, period=job.period, today=job.today)  # type: ignore[arg-type]
        with unit_of_work(engine) as session:
            measure = measures_repo.get_measure(session, team_id=job.team_id, measure_id=job.measure_id)
            if measure is None:
                raise ImportRefused("The measure was deleted before the import finished. Nothing was saved.")
            outcome = importing.apply_import(
                session,
                measure=measure,
                parsed=parsed,
                source="import",
                filename=filename,
                user_id=job.user_id,
                file_key=file_key(file),
            )
    except importing.AlreadyImported as earlier:
        _tell(client, job, mb.already_imported(filename, earlier.measure_name, earlier.batch_id))
        return
    except IntegrityError:
        # Another delivery of the same file version was saved first (the unique index on its key).
        with unit_of_work(engine) as session:
            winner = importing.already_imported(session, team_id=job.team_id, file_key=file_key(file))
        if winner is None:
            raise
        _tell(client, job, mb.already_imported(filename, winner.measure_name, winner.batch_id))
        return
    except ImportRefused as refused:
        has_details = refused.message != refused.public
        _post_in_channel(
            client, job, mb.import_refused(filename, refused.public, by=job.user_id, has_details=has_details)
        )
        deleted = _delete_file(client, job.file_id)
        lines = [line.removeprefix("• ") for line in refused.message.split("\n")]
        listed, text = mb.import_details(
            heading=f":no_entry: Your file {mb.file_label(filename)} was not imported",
            exact=[lines[0]],
            detail=lines[1:],
            file_note=mb.file_kept_note(filename, file.get("permalink"), deleted=deleted),
        )
        _tell(client, job, text, listed)
        return
    except Exception:
        logger.exception("Import of a file failed")
        blocks_, text = mb.import_failed(filename)
        _tell(client, job, text, blocks_)
        return
    advice = parsed.advice()
    posted = _post_in_channel(client, job, mb.import_result(outcome, by=job.user_id))
    deleted = _delete_file(client, job.file_id)
    heading = f"Your import of {mb.file_label(filename)} into *{blocks.typed(outcome.measure_name)}* (entry {outcome.batch_id})"
    if not posted:
        heading += (
            " is saved, but I could not post its summary in the channel: invite me with `/invite @MFI-AR` "
            "so the team sees the next one"
        )
    listed, text = mb.import_details(
        heading=heading,
        exact=importing.summary_lines(outcome, safe=False),
        detail=importing.detail_lines(outcome, advice),
        file_note=mb.file_kept_note(filename, file.get("permalink"), deleted=deleted),
    )
    _tell(client, job, text, listed)


def _post_in_channel(client: WebClient, job: _ImportJob, message: tuple[list[blocks.Block], str]) -> bool:
    """Post in the channel only what passes the same disclosure checks as /equity; False if Slack refused."""
    listed, text = message
    problems = check_text_for_disclosure(text + "\n" + json.dumps(listed), [])
    if problems:
        logger.error("An import message failed the disclosure check and was not posted: %s", problems[:3])
        listed, text = [blocks.section(SAFE_FALLBACK)], SAFE_FALLBACK
    try:
        client.chat_postMessage(channel=job.channel_id, text=text, blocks=listed)
    except SlackApiError as exc:
        logger.warning("Could not post the import summary in the channel: %s", exc.response.get("error"))
        return False
    return True


SAFE_FALLBACK = "An import finished; the person who imported has the details."


def _tell(client: WebClient, job: _ImportJob, text: str, listed: list[blocks.Block] | None = None) -> None:
    """A private message to the importer: ephemeral in the project's channel, or a DM if that fails."""
    shown = listed or [blocks.section(text)]
    try:
        client.chat_postEphemeral(channel=job.channel_id, user=job.user_id, text=text, blocks=shown)
    except SlackApiError:
        try:
            client.chat_postMessage(channel=job.user_id, text=text, blocks=shown)
        except SlackApiError as exc:
            logger.warning("Could not tell the importer privately: %s", exc.response.get("error"))


def _delete_file(client: WebClient, file_id: str) -> bool:
    """Delete the uploaded extract where Slack lets a bot (only files the bot uploaded); True when it is gone."""
    try:
        client.files_delete(file=file_id)
    except SlackApiError as exc:
        logger.info("The uploaded file stays with its owner (files.delete: %s)", exc.response.get("error"))
        return False
    return True


def handle_file_shared(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """A file shared in a project's channel: files are no longer imported from the channel, so a data file gets a
    private reminder to delete it from the channel and use the private form instead."""
    user_id = event.get("user_id") or ""
    channel_id = event.get("channel_id") or ""
    if not channel_id or not user_id or user_id == context.bot_user_id:
        return
    engine: Engine = context["engine"]
    with unit_of_work(engine) as session:
        if _project(session, context, channel_id) is None:
            return
    try:
        file = client.files_info(file=event["file_id"])["file"]
    except SlackApiError as exc:
        logger.info("files.info failed for a shared file: %s", exc.response.get("error"))
        return
    filename = str(file.get("name") or "")
    if filename.lower().endswith(IMPORT_EXTENSIONS):
        client.chat_postEphemeral(channel=channel_id, user=user_id, text=mb.shared_file_warning(filename))


# --- undo ----------------------------------------------------------------------------------------------------


def _undo(session: Session, *, team_id: str, batch_id: int, user_id: str) -> importing.UndoOutcome:
    return importing.undo_batch(session, batch_id=batch_id, team_id=team_id, user_id=user_id)


def undo_from_command(client: WebClient, respond: Respond, context: BoltContext, *, rest: str) -> None:
    engine: Engine = context["engine"]
    team_id, user_id = context.team_id or "", context.user_id or ""
    if rest and claims.parse_id(rest) is None:
        respond(
            text="Type `/measure undo` for the latest entry, or `/measure undo N` with the entry number.",
            response_type="ephemeral",
        )
        return
    try:
        with unit_of_work(engine) as session:
            project = _project(session, context)
            if project is None or project.id is None:
                respond(text=NO_PROJECT, response_type="ephemeral")
                return
            if rest:
                batch_id = claims.parse_id(rest) or 0
                batch = measures_repo.get_batch(session, team_id=team_id, batch_id=batch_id)
                measure = session.get(Measure, batch.measure_id) if batch else None
                if measure is None or measure.project_id != project.id:
                    respond(
                        text=f"This channel's project has no entry {batch_id}.", response_type="ephemeral"
                    )
                    return
            else:
                latest = measures_repo.batches_for_project(
                    session, project_id=project.id, include_undone=False
                )
                if not latest or latest[0].id is None:
                    respond(
                        text="There is nothing to undo in this channel's project.", response_type="ephemeral"
                    )
                    return
                batch_id = latest[0].id
            outcome = _undo(session, team_id=team_id, batch_id=batch_id, user_id=user_id)
            channel_id = project.channel_id
    except importing.UndoRefused as refused:
        respond(text=refused.message, response_type="ephemeral")
        return
    message, text = mb.undone_message(outcome, by=user_id)
    client.chat_postMessage(channel=channel_id, text=text, blocks=message)


def handle_undo_button(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    engine: Engine = context["engine"]
    team_id, user_id = context.team_id or "", body["user"]["id"]
    batch_id = claims.action_id_value(body) or 0
    if not body.get("response_url"):
        return  # Undo buttons live in channel messages, which always carry a response_url: this one is not ours
    try:
        with unit_of_work(engine) as session:
            outcome = _undo(session, team_id=team_id, batch_id=batch_id, user_id=user_id)
    except importing.UndoRefused as refused:
        respond(text=refused.message, response_type="ephemeral", replace_original=False)
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


LISTED = "`/measure list`"


def register(app: App) -> None:
    app.command(ids.MEASURE)(
        guard(
            handle_measure,
            Rule(access.channel_project, optional=True, posts=access.words("new", "log", "import")),
        )
    )
    app.view(ids.CB_MEASURE_NEW)(
        guard(handle_measure_submission, Rule(access.form, saved=("The measure was saved", LISTED)))
    )
    app.view(ids.CB_MEASURE_LOG)(
        guard(handle_log_submission, Rule(access.form, saved=("Your figures were saved", LISTED)))
    )
    app.view(ids.CB_MEASURE_IMPORT)(
        guard(handle_import_submission, Rule(access.form, saved=("Your import was saved", LISTED)))
    )
    app.action(ids.A_OPEN_MEASURE_NEW)(guard(handle_open_measure_new, Rule(access.value_project, posts=True)))
    app.action(ids.A_LOG_FULL_LIST)(guard(handle_log_full_list, Rule(access.form)))
    app.action(ids.A_LOG_MEASURE_PICKED)(guard(handle_log_measure_picked, Rule(access.form)))
    app.action(ids.A_UNDO_BATCH)(guard(handle_undo_button, Rule(access.value_batch)))
    app.event("file_shared")(guard(handle_file_shared, Rule(access.channel_project, optional=True)))
