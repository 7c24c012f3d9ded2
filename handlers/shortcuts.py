"""Shortcuts: "Add to a PDSA cycle" saves a message in the channel as an observation in one of its cycles' Do log;
"Log a measure" (global) opens the /measure log form for one of the person's projects."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient

from bot.services import shortcuts as service
from bot.services.engine import Engine
from bot.services.shortcuts import LogTarget
from handlers import access, blocks, claims, limits, onboarding
from handlers.blocks import ids
from handlers.blocks import measures as mb
from handlers.measures import _previous_period
from handlers.pdsa import post_in_thread

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
    found = service.channel_cycles(engine, team_id=context.team_id, channel_id=channel_id)
    project_id = found.project_id
    options = [(f"PDSA {cycle.ref}: {cycle.title}"[:75], str(cycle.id)) for cycle in found.cycles]
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
    # The cycle is a claim from the form: it must be an open cycle of the project the form was opened for.
    saved = service.add_observation(
        engine,
        team_id=team_id,
        user_id=user_id,
        cycle_id=cycle_id or 0,
        project_id=claims.metadata_id(view, "project_id"),
        text=text,
    )
    if saved is None:
        ack(
            response_action="errors",
            errors={
                ids.B_PDSA_OBS_CYCLE: "Choose one of this channel's PDSA cycles that is planned or running."
            },
        )
        return
    saved_id, ref = saved.id, saved.ref
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


def _notice(title: str, text: str) -> dict[str, Any]:
    return blocks.modal(ids.VIEW_LOG_PICK_PROJECT, title, [blocks.section(text)], submit=None, close="Close")


def log_form(target: LogTarget) -> dict[str, Any] | None:
    """The "Enter one period" form for the project's first measure (as /measure log opens it), or None without
    measures."""
    if not target.measures:
        return None
    measure = target.measures[0]
    return mb.log_modal(
        channel_id=target.channel_id,
        project_id=target.project_id,
        measures=list(target.measures),
        measure_id=measure["id"],
        groups=mb.default_log_groups(list(target.focus_groups), measure["reference_group"]),
        full=False,
        period_initial=_previous_period(target.today, measure["period"]),
    )


def _log_form_or_notice(project: LogTarget) -> dict[str, Any]:
    view = log_form(project)
    if view is not None:
        return view
    return _notice(
        "Log a measure",
        f"*{blocks.typed(project.name)}* has no measures yet. Add one with "
        f"`/measure new` in <#{project.channel_id}>, then log it here.",
    )


def only_project(session: Any, team_id: str, body: Any) -> int | None:
    """The claim for "Log a measure": the person's one loggable project (none or several: chosen in the form)."""
    return service.only_loggable_project(session, team_id=team_id, user_id=access.request_user(body) or "")


def handle_log_measure(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    shortcut = body
    engine: Engine = context["engine"]
    if not context.team_id or not context.user_id:
        return
    projects = service.log_targets(engine, team_id=context.team_id, user_id=context.user_id)
    if not projects:
        view = onboarding.how_to_start_view()
    elif len(projects) == 1:
        view = _log_form_or_notice(projects[0])
    else:
        choices = [blocks.option(p.name[:75], str(p.project_id)) for p in projects[:100]]
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
    # The choice is a claim: only a project this person may log data for.
    chosen = service.log_target(
        engine, team_id=context.team_id, user_id=context.user_id, project_id=project_id
    )
    if chosen is None:
        return
    form = _log_form_or_notice(chosen)
    chosen_id = chosen.project_id
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
