"""Shortcuts: "Add to a PDSA cycle" saves a message in the channel as an observation in one of its cycles' Do log;
"Log a measure" (global) opens the /measure log form for one of the person's projects."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from sqlalchemy import Engine

from handlers import access, blocks, claims, limits, onboarding
from handlers.blocks import ids
from handlers.measures import _log_view
from handlers.pdsa import post_in_thread
from storage import pdsa_repo
from storage import repositories as repo
from storage.db import unit_of_work

logger = logging.getLogger(__name__)


def observation_modal(options: list[tuple[str, str]], text: str, *, project_id: int) -> dict[str, Any]:
    limit = limits.limit_for(ids.B_PDSA_OBS_TEXT)
    return blocks.modal(
        ids.CB_PDSA_OBSERVATION,
        "Add to a PDSA cycle",
        [
            blocks.input_block(
                ids.B_PDSA_OBS_CYCLE,
                "Which cycle?",
                {
                    "type": "static_select",
                    "options": [blocks.option(label, value) for label, value in options[:100]],
                    **({"initial_option": blocks.option(*options[0])} if len(options) == 1 else {}),
                },
            ),
            blocks.input_block(
                ids.B_PDSA_OBS_TEXT,
                "Observation",
                blocks.text_input(initial=text[:limit], multiline=True),
                hint="Saved in the cycle's Do log. Take out anything that could identify a patient. "
                "Who wrote the message is not saved.",
            ),
        ],
        submit="Save",
        metadata={"project_id": project_id},
    )


def handle_add_to_pdsa(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    shortcut = body
    engine: Engine = context["engine"]
    channel_id = str((shortcut.get("channel") or {}).get("id") or "")
    text = str((shortcut.get("message") or {}).get("text") or "").strip()
    if not context.team_id or not channel_id:
        return
    with unit_of_work(engine) as session:
        project = repo.project_for_channel(session, team_id=context.team_id, channel_id=channel_id)
        project_id = project.id if project is not None else None
        options = []
        if project_id is not None:
            for cycle in pdsa_repo.list_cycles(session, project_id=project_id):
                if cycle.status in pdsa_repo.OPEN_STATUSES and cycle.id is not None:
                    ref = f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}"
                    options.append((f"PDSA {ref}: {cycle.title}"[:75], str(cycle.id)))
    if project_id is None:
        reply = (
            "This channel has no improvement project, so there is no PDSA cycle to add the message to. "
            "Start one with `/mfi new`."
        )
    elif not options:
        reply = (
            "No PDSA cycle in this channel is planned or running, so I have nowhere to add the message. "
            "Plan one with `/pdsa new`, then try again."
        )
    elif not text:
        reply = "That message has no words I can save. Use the shortcut on a message with text."
    else:
        client.views_open(
            trigger_id=shortcut["trigger_id"], view=observation_modal(options, text, project_id=project_id)
        )
        return
    respond(text=reply, response_type="ephemeral", replace_original=False)


def handle_observation_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    user_id = body["user"]["id"]
    cycle_id = claims.parse_id(blocks.state_value(view, ids.B_PDSA_OBS_CYCLE))
    text = str(blocks.state_value(view, ids.B_PDSA_OBS_TEXT) or "").strip()
    if not text:
        ack(response_action="errors", errors={ids.B_PDSA_OBS_TEXT: "Write the observation to save."})
        return
    with unit_of_work(engine) as session:
        cycle = pdsa_repo.get_cycle_by_id(session, team_id=team_id, cycle_id=cycle_id or 0)
        # The cycle is a claim from the form: it must be an open cycle of the project the form was opened for.
        if (
            cycle is None
            or cycle.project_id != claims.metadata_id(view, "project_id")
            or cycle.status not in pdsa_repo.OPEN_STATUSES
        ):
            ack(
                response_action="errors",
                errors={
                    ids.B_PDSA_OBS_CYCLE: "Choose one of this channel's PDSA cycles that is planned or running."
                },
            )
            return
        pdsa_repo.add_entry(
            session,
            cycle=cycle,
            kind="do",
            user_id=user_id,
            data={"observations": text, "from_message": True},
        )
        saved_id = int(cycle.id or 0)
        ref = f"{pdsa_repo.series_number(session, cycle=cycle)}.{cycle.ramp_step}"
    ack()
    # The words stay in the Do log (/pdsa show); the thread says only that an observation was added.
    post_in_thread(
        client,
        engine,
        team_id=team_id,
        cycle_id=saved_id,
        text=f"*Do* · <@{user_id}> added an observation from a message to the Do log of PDSA {ref}. "
        f"See it with `/pdsa show {ref}`.",
    )


# --- Log a measure (global shortcut: no channel, so the person's own projects) ---------------------------------


def _loggable_projects(session: Any, *, team_id: str, user_id: str) -> list[Any]:
    """Projects where the person is a lead or team member (partners do not log data), oldest first, once each."""
    seen: dict[int, Any] = {}
    for project, role in repo.projects_for_user(session, team_id=team_id, user_id=user_id):
        if role in ("lead", "member") and project.id is not None:
            seen.setdefault(project.id, project)
    return list(seen.values())


def _notice(title: str, text: str) -> dict[str, Any]:
    return blocks.modal(ids.VIEW_LOG_PICK_PROJECT, title, [blocks.section(text)], submit=None, close="Close")


def _log_form_or_notice(session: Any, project: Any) -> dict[str, Any]:
    view = _log_view(session, project, channel_id=project.channel_id, measure_id=None, full=False)
    if view is not None:
        return view
    return _notice(
        "Log a measure",
        f"*{blocks.typed(project.name)}* has no measures yet. Add one with "
        f"`/measure new` in <#{project.channel_id}>, then log it here.",
    )


def only_project(session: Any, team_id: str, body: Any) -> int | None:
    """The claim for "Log a measure": the person's one loggable project (none or several: chosen in the form)."""
    projects = _loggable_projects(session, team_id=team_id, user_id=access.request_user(body) or "")
    return int(projects[0].id) if len(projects) == 1 else None


def handle_log_measure(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    shortcut = body
    engine: Engine = context["engine"]
    if not context.team_id or not context.user_id:
        return
    with unit_of_work(engine) as session:
        projects = _loggable_projects(session, team_id=context.team_id, user_id=context.user_id)
        if not projects:
            view = onboarding.how_to_start_view()
        elif len(projects) == 1:
            view = _log_form_or_notice(session, projects[0])
        else:
            choices = [blocks.option(p.name[:75], str(p.id)) for p in projects[:100]]
            view = blocks.modal(
                ids.VIEW_LOG_PICK_PROJECT,
                "Log a measure",
                [
                    blocks.section(
                        "Which project is the measure in?",
                        accessory={
                            "type": "static_select",
                            "action_id": ids.A_LOG_PICK_PROJECT,
                            "options": choices,
                            "placeholder": blocks.plain("Choose a project"),
                        },
                    ),
                ],
                submit=None,
                close="Cancel",
            )
    client.views_open(trigger_id=shortcut["trigger_id"], view=view)


def handle_log_pick_project(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    engine: Engine = context["engine"]
    view = body.get("view")
    action = (body.get("actions") or [{}])[0]
    project_id = claims.parse_id((action.get("selected_option") or {}).get("value"))
    if not isinstance(view, dict) or not context.team_id or not context.user_id or project_id is None:
        return
    with unit_of_work(engine) as session:
        # The choice is a claim: only a project this person may log data for.
        chosen = next(
            (
                p
                for p in _loggable_projects(session, team_id=context.team_id, user_id=context.user_id)
                if p.id == project_id
            ),
            None,
        )
        if chosen is None:
            return
        form = _log_form_or_notice(session, chosen)
        chosen_id = chosen.id
    # The same view becomes a form acting on the chosen project (checked above): its grant says so before Slack
    # shows it, so a quick submission never meets the picker's grant.
    access.record_grant(
        engine,
        team_id=context.team_id,
        user_id=context.user_id,
        project_id=chosen_id,
        channel_id=None,
        view={"id": view["id"], "callback_id": form.get("callback_id") or ""},
    )
    client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)


def register(app: App) -> None:
    # A message's channel is a fact Slack sets: its project (if any) is checked like a slash command's.
    app.shortcut(ids.SC_ADD_TO_PDSA)(
        access.guard(handle_add_to_pdsa, access.Rule(claim=access.channel_project, optional=True))
    )
    app.view(ids.CB_PDSA_OBSERVATION)(
        access.guard(handle_observation_submission, access.Rule(claim=access.form))
    )
    app.shortcut(ids.SC_LOG_MEASURE)(
        access.guard(handle_log_measure, access.Rule(claim=only_project, optional=True))
    )
    app.action(ids.A_LOG_PICK_PROJECT)(access.guard(handle_log_pick_project, access.Rule(claim=access.form)))
