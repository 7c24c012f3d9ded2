"""Act: the Act modal (adopt, adapt or abandon, who took part, the response to any harm) and its submission."""

from __future__ import annotations

from datetime import date
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.services import pdsa_act
from bot.services.engine import Engine
from handlers import blocks, claims
from handlers.blocks import ids
from handlers.blocks import pdsa as pb
from handlers.pdsa.posting import ephemeral, post_in_thread, refresh_card, refresh_home


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
    form = pdsa_act.act_form(engine, team_id=team_id, cycle_id=cycle_id, user_id=user_id)
    if form is None:
        return
    if isinstance(form, str):
        ephemeral(client, channel=channel_id, user=user_id, respond=respond, text=form)
        return
    view = pb.act_modal(
        form.info, measure_name=form.measure_name, metadata={"cycle_id": cycle_id}, harm=form.harm
    )
    client.views_open(trigger_id=trigger_id, view=view)


def read_act_form(view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The decision as save_act's arguments, and inline errors by block_id."""
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
    fields = {
        "decision": str(decision),
        "reason": reason,
        "involved": str(involved),
        "who": who,
        "rebase_on": date.fromisoformat(rebase_text) if rebase and rebase_text else None,
        "harm_response": harm_response,
    }
    return fields, errors


def handle_act_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    user_id = body["user"]["id"]
    fields, errors = read_act_form(view)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    cycle_id = claims.metadata_id(view, "cycle_id") or 0
    problem = pdsa_act.check_act(engine, team_id=team_id, cycle_id=cycle_id, user_id=user_id)
    if problem is not None:
        ack(response_action="errors", errors={ids.B_PDSA_DECISION: problem})
        return
    ack()
    saved = pdsa_act.save_act(engine, team_id=team_id, cycle_id=cycle_id, user_id=user_id, **fields)
    if saved is None:
        return
    decision, reason, involved, who = fields["decision"], fields["reason"], fields["involved"], fields["who"]
    harm_response = fields["harm_response"]
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
    if saved.rebase_note:
        text += f"\n:chart_with_upwards_trend: {blocks.typed(saved.rebase_note)}"
    message_blocks: list[blocks.Block] = []
    if saved.warning:
        message_blocks.append(blocks.section(f":warning: *Warning recorded:* {saved.warning}"))
    message_blocks.append(blocks.section(text))
    if decision == "adapt":
        message_blocks.append(
            blocks.actions(
                blocks.button(
                    f"Plan the next cycle (ramp step {saved.next_step})",
                    ids.A_PDSA_NEXT,
                    value=str(saved.cycle_id),
                    style="primary",
                )
            )
        )
    post_in_thread(
        client,
        engine,
        team_id=team_id,
        cycle_id=saved.cycle_id,
        text=blocks.typed(f"Act: {decision}. {reason}"[:300]),
        message_blocks=message_blocks,
    )
    refresh_card(client, engine, team_id=team_id, cycle_id=saved.cycle_id)
    refresh_home(client, engine, team_id=team_id, project_id=saved.project_id)
