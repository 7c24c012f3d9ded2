"""`/mfi report`: the project's board pack (and optionally the dashboard) to the asker by DM, built after the ack."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.services import boardpack
from bot.services.engine import Engine
from handlers.blocks import report as rb

logger = logging.getLogger(__name__)

DASHBOARD_WORDS = ("dashboard", "zip", "with dashboard")


def handle_report_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()  # at once: reading, analysing and rendering take seconds
    option = " ".join(rest.lower().split())
    if option and option not in DASHBOARD_WORDS:
        respond(text=rb.USAGE, response_type="ephemeral")
        return
    engine: Engine = context["engine"]
    assert context.team_id and context.channel_id and context.user_id
    who = boardpack.who_may_ask(
        engine, team_id=context.team_id, channel_id=context.channel_id, user_id=context.user_id
    )
    if who.project_id is None:
        respond(text=who.refusal or rb.USAGE, response_type="ephemeral")
        return
    dashboard = bool(option)
    respond(text=rb.building_text(who.project_name, dashboard), response_type="ephemeral")
    send_report(
        client,
        engine,
        team_id=context.team_id,
        user_id=context.user_id,
        project_id=who.project_id,
        project_name=who.project_name,
        dashboard=dashboard,
    )


def send_report(
    client: WebClient,
    engine: Engine,
    *,
    team_id: str,
    user_id: str,
    project_id: int,
    project_name: str,
    dashboard: bool,
) -> None:
    """Build the pack with progress in a DM (one message, updated), then upload the files to that DM."""
    channel = client.conversations_open(users=user_id)["channel"]["id"]
    ts = str(client.chat_postMessage(channel=channel, text=rb.progress_text(project_name, 0, 0))["ts"])

    def progress(done: int, total: int) -> None:
        client.chat_update(channel=channel, ts=ts, text=rb.progress_text(project_name, done, total))

    try:
        built = boardpack.build_files(
            engine, team_id=team_id, project_id=project_id, dashboard=dashboard, progress=progress
        )
    except Exception:
        reference = uuid.uuid4().hex[:8]
        logger.exception("Building the board pack failed (reference %s)", reference)
        client.chat_update(channel=channel, ts=ts, text=rb.failed_text(project_name, reference))
        return
    if built is None:
        client.chat_update(channel=channel, ts=ts, text=rb.failed_text(project_name, "project gone"))
        return
    uploads: list[dict[str, Any]] = [
        {"file": built.pdf, "filename": f"{built.filename}.pdf", "title": f"{built.name}: board pack"}
    ]
    if built.zip is not None:
        uploads.append(
            {
                "file": built.zip,
                "filename": f"{built.filename.replace('board-pack', 'dashboard')}.zip",
                "title": f"{built.name}: equity dashboard",
            }
        )
    client.files_upload_v2(channel=channel, file_uploads=uploads)
    client.chat_update(channel=channel, ts=ts, text=rb.ready_text(built.name, dashboard))
    boardpack.record_sent(
        engine,
        team_id=team_id,
        project_id=project_id,
        user_id=user_id,
        files=[u["filename"] for u in uploads],
    )
