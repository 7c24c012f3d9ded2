"""Data ownership: /mfi export, /mfi delete, and stopping a workspace on app_uninstalled / tokens_revoked."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App, BoltContext, Respond
from slack_bolt.listener.builtins import TokenRevocationListeners
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import InstallationStore

from bot.core import export
from bot.core.prompts import load_catalogue
from bot.services import ownership as service
from bot.services.engine import Engine
from handlers import access, blocks, claims, home
from handlers.access import Rule, guard
from handlers.blocks import ids
from handlers.blocks import ownership as ob

logger = logging.getLogger(__name__)


def _channel_project_for_lead(context: BoltContext, *, what: str) -> tuple[int | None, str | None]:
    """The channel's project id when the person leads it; otherwise the polite reason why not."""
    assert context.team_id and context.channel_id and context.user_id
    found = service.lead_project(
        context["engine"], team_id=context.team_id, channel_id=context.channel_id, user_id=context.user_id
    )
    if found.status == "no_project":
        return None, ob.NO_PROJECT
    if found.status == "not_lead":
        return None, ob.not_a_lead(found.project_name, list(found.leads), what=what)
    return found.project_id, None


# --- export ---------------------------------------------------------------------------------------------------


def _names(client: WebClient, user_ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for user_id in sorted(user_ids):
        try:
            user = client.users_info(user=user_id)["user"]
            names[user_id] = str(user.get("real_name") or user.get("name") or user_id)
        except SlackApiError:
            names[user_id] = user_id
    return names


def _prompt_text(prompt_id: str) -> str:
    try:
        return load_catalogue().get(prompt_id).text
    except KeyError:
        return prompt_id


def send_export(client: WebClient, engine: Engine, *, team_id: str, user_id: str, project_id: int) -> bool:
    """Build the bundle and DM it to a lead; False when the project is gone or the person is not a lead."""
    found = service.export_data(engine, team_id=team_id, user_id=user_id, project_id=project_id)
    if found is None:
        return False
    rows, name, zone = found.rows, found.project_name, found.timezone
    bundle = export.build_bundle(
        rows, names=_names(client, export.authors_to_name(rows)), prompt_text=_prompt_text
    )
    stem = export.filename_stem(name, datetime.now(ZoneInfo(zone)).date())
    xlsx_name, zip_name = f"{stem}.xlsx", f"{stem}-csv.zip"
    message, text = ob.export_dm(name, xlsx_name=xlsx_name, zip_name=zip_name)
    channel = client.conversations_open(users=user_id)["channel"]["id"]
    client.chat_postMessage(channel=channel, text=text, blocks=message)
    client.files_upload_v2(
        channel=channel,
        file_uploads=[
            {"file": bundle.xlsx, "filename": xlsx_name, "title": f"{name}: export (Excel)"},
            {"file": bundle.zip, "filename": zip_name, "title": f"{name}: export (CSV files)"},
        ],
    )
    # Who, when and which project: never the numbers themselves.
    service.record_export(
        engine,
        team_id=team_id,
        user_id=user_id,
        project_id=project_id,
        project_name=name,
        detail={"files": [xlsx_name, zip_name], "sheets": list(export.SHEETS)},
    )
    return True


def handle_export_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    project_id, refusal = _channel_project_for_lead(context, what="export its data")
    if project_id is None:
        respond(text=refusal or ob.NO_PROJECT, response_type="ephemeral")
        return
    respond(text=ob.PREPARING, response_type="ephemeral")
    assert context.team_id and context.user_id
    send_export(
        client, context["engine"], team_id=context.team_id, user_id=context.user_id, project_id=project_id
    )


def handle_export_button(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    team_id = context.team_id or body["team"]["id"]
    if not send_export(
        client,
        context["engine"],
        team_id=team_id,
        user_id=body["user"]["id"],
        project_id=claims.action_id_value(body) or 0,
    ):
        logger.info("Export refused from Home: not a lead, or the project is gone")


# --- delete ---------------------------------------------------------------------------------------------------


def _open_delete_modal(
    client: WebClient, engine: Engine, *, trigger_id: str, team_id: str, project_id: int
) -> None:
    project = service.project_ref(engine, team_id=team_id, project_id=project_id)
    if project is None:
        return
    view = ob.delete_modal(project_id=project_id, project_name=project.name, channel_id=project.channel_id)
    client.views_open(trigger_id=trigger_id, view=view)


def handle_delete_command(
    *, ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: BoltContext, rest: str
) -> None:
    ack()
    project_id, refusal = _channel_project_for_lead(context, what="delete the project")
    if project_id is None:
        respond(text=refusal or ob.NO_PROJECT, response_type="ephemeral")
        return
    assert context.team_id
    _open_delete_modal(
        client,
        context["engine"],
        trigger_id=command["trigger_id"],
        team_id=context.team_id,
        project_id=project_id,
    )


def handle_delete_button(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    team_id = context.team_id or body["team"]["id"]
    project_id = claims.action_id_value(body) or 0
    if service.is_lead(context["engine"], project_id=project_id, user_id=body["user"]["id"]):
        _open_delete_modal(
            client, context["engine"], trigger_id=body["trigger_id"], team_id=team_id, project_id=project_id
        )


def handle_delete_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    user_id = body["user"]["id"]
    team_id = context.team_id or body["team"]["id"]
    typed = blocks.state_value(view, ids.B_DELETE_NAME) or ""
    project_id = claims.metadata_id(view, "project_id")
    if project_id is None:
        ack(response_action="errors", errors={ids.B_DELETE_NAME: ob.ALREADY_GONE})
        return
    # Deleted before the modal closes, in one transaction: a failure keeps every row and says so in the form.
    deletion = service.delete_project(
        engine, team_id=team_id, project_id=project_id, user_id=user_id, typed_name=typed
    )
    refusal = {
        "gone": ob.ALREADY_GONE,
        "not_lead": ob.not_a_lead(deletion.project_name, list(deletion.leads), what="delete it"),
        "mismatch": ob.name_mismatch(deletion.project_name),
        "failed": ob.DELETE_FAILED,
    }.get(deletion.status)
    if refusal is not None:
        ack(response_action="errors", errors={ids.B_DELETE_NAME: refusal})
        return
    name, channel_id, people = deletion.project_name, deletion.channel_id, list(deletion.people)
    ack()
    notice, text = ob.delete_notice(user_id=user_id, project_name=name)
    try:
        client.chat_postMessage(channel=channel_id, text=text, blocks=notice)
    except SlackApiError as exc:
        # The deletion stands; only the notice is lost (the bot may have been removed from the channel).
        logger.warning("Project %s deleted but the notice failed: %s", project_id, exc.response.get("error"))
    home.publish_for_people(client, engine, team_id=team_id, user_ids=people)


def handle_workspace_gone(
    event: dict[str, Any], context: BoltContext, *, store: InstallationStore | None, reason: str
) -> None:
    """Forget the tokens (OAuth mode) and stop the workspace's schedules; its data stays until a lead deletes it.

    This replaces Bolt's enable_token_revocation_listeners(): Bolt runs only the first listener that matches an
    event, so the installation store clean-up happens here, with the same code Bolt would run.
    """
    if reason == "tokens_revoked":
        if store is not None:
            TokenRevocationListeners(store).handle_tokens_revoked_events(event, context)
        if not (event.get("tokens") or {}).get("bot"):
            # Only people's user tokens went; the bot's own token still works, so the schedules carry on.
            service.record_user_tokens_revoked(
                context["engine"],
                team_id=context.team_id or context.enterprise_id or "",
                users=len((event.get("tokens") or {}).get("oauth") or []),
            )
            return
    elif store is not None:
        TokenRevocationListeners(store).handle_app_uninstalled_events(context)
    stopped = service.stop_workspace(
        context["engine"],
        team_id=context.team_id,
        enterprise_id=context.enterprise_id,
        reason=reason,
        whole_enterprise=bool(context.is_enterprise_install),
    )
    logger.info("%s for team %s: stopped %s schedules (data kept)", reason, context.team_id, stopped)


def register(app: App) -> None:
    app.view(ids.CB_DELETE_CONFIRM)(
        guard(
            handle_delete_submission,
            Rule(access.form, need="lead", saved=("The project was deleted", "`/mfi status`")),
        )
    )
    app.action(ids.A_EXPORT)(guard(handle_export_button, Rule(access.value_project, need="lead")))
    app.action(ids.A_DELETE)(guard(handle_delete_button, Rule(access.value_project, need="lead")))
    store = app.installation_store  # None in single-workspace mode

    def handle_app_uninstalled(event: dict[str, Any], context: BoltContext) -> None:
        handle_workspace_gone(event, context, store=store, reason="app_uninstalled")

    def handle_tokens_revoked(event: dict[str, Any], context: BoltContext) -> None:
        handle_workspace_gone(event, context, store=store, reason="tokens_revoked")

    app.event("app_uninstalled")(access.unscoped(handle_app_uninstalled))
    app.event("tokens_revoked")(access.unscoped(handle_tokens_revoked))
