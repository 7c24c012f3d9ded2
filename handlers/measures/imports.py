"""/measure import: a private form with a file input (so the extract never appears in the channel), checked,
acknowledged, then downloaded, read and saved; and the reminder when a data file is shared in the channel."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.core.equity.disclosure import check_text_for_disclosure
from bot.core.extracts import ImportRefused, read_extract
from bot.services import downloads, measure_forms, measure_imports
from bot.services import measures as importing
from bot.services.engine import Engine
from handlers import blocks
from handlers.blocks import ids
from handlers.blocks import measures as mb
from handlers.measures.define import NO_PROJECT

logger = logging.getLogger(__name__)

IMPORT_EXTENSIONS = (".csv", ".xlsx", ".xlsm", ".xls", ".txt")
SAFE_FALLBACK = "An import finished; the person who imported has the details."


def open_import_modal(
    client: WebClient, context: BoltContext, *, trigger_id: str, respond: Respond, measure_name: str
) -> None:
    """`/measure import [measure]`: a form with a file input, so the extract never appears in the channel."""
    engine: Engine = context["engine"]
    form = measure_imports.import_form(
        engine, team_id=context.team_id or "", channel_id=context.channel_id or "", measure_name=measure_name
    )
    if form is None:
        respond(text=NO_PROJECT, response_type="ephemeral")
        return
    if not form.measures:
        respond(
            text="This project has no measures yet. Define one with `/measure new`, then import into it.",
            response_type="ephemeral",
        )
        return
    view = mb.import_modal(
        channel_id=form.channel_id,
        project_id=form.project_id,
        measures=form.measures,
        measure_id=form.measure_id,
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
    files = blocks.state_value(view, ids.B_IMPORT_FILE)
    files = [f for f in files if isinstance(f, dict) and f.get("id")] if isinstance(files, list) else []
    target = measure_imports.import_target(
        engine,
        team_id=team_id,
        project_id=_whole_id(meta.get("project_id")),
        measure_id=_whole_id(blocks.state_value(view, ids.B_IMPORT_MEASURE)),
        channel_id=meta.get("channel_id"),
    )
    if isinstance(target, str):
        ack(response_action="errors", errors={ids.B_IMPORT_MEASURE: target})
        return
    problem = _file_problem(files, settings)
    if problem is None:
        earlier = measure_imports.earlier_import(engine, team_id=team_id, file_key=file_key(files[0]))
        if earlier is not None:
            problem = mb.already_imported(
                earlier.filename, earlier.measure_name, earlier.batch_id, inline=True
            )
    if problem is not None:
        ack(response_action="errors", errors={ids.B_IMPORT_FILE: problem[:2000]})
        return
    job = _ImportJob(
        team_id=team_id,
        channel_id=target.channel_id,
        user_id=user_id,
        measure_id=target.measure_id,
        measure_name=target.measure_name,
        period=target.period,
        today=target.today,
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
        outcome = measure_imports.save_import(
            engine,
            team_id=job.team_id,
            measure_id=job.measure_id,
            parsed=parsed,
            filename=filename,
            user_id=job.user_id,
            file_key=file_key(file),
        )
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
    if isinstance(outcome, importing.AlreadyImported):
        _tell(client, job, mb.already_imported(filename, outcome.measure_name, outcome.batch_id))
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
    if measure_forms.project_in_channel(engine, team_id=context.team_id or "", channel_id=channel_id) is None:
        return
    try:
        file = client.files_info(file=event["file_id"])["file"]
    except SlackApiError as exc:
        logger.info("files.info failed for a shared file: %s", exc.response.get("error"))
        return
    filename = str(file.get("name") or "")
    if filename.lower().endswith(IMPORT_EXTENSIONS):
        client.chat_postEphemeral(channel=channel_id, user=user_id, text=mb.shared_file_warning(filename))
