"""Study: the Study modal (the cycle's logged counts filled in) and its submission, acknowledged before it is
scored, checked for harm and saved (bot/services/pdsa_study.py), and the Study post."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.core import pdsa
from bot.core.equity.disclosure import DisclosurePolicy, cell
from bot.core.equity.types import GroupCounts
from bot.services import pdsa_study
from bot.services.engine import Engine
from handlers import blocks, claims
from handlers.blocks import ids
from handlers.blocks import pdsa as pb
from handlers.pdsa.plan import measure_infos
from handlers.pdsa.posting import ephemeral, post_in_thread, refresh_card, refresh_home


def _missing_text(missing: pdsa_study.MissingData) -> str | None:
    start, end = missing.start, missing.end
    window = f"{start.day} {start:%b %Y} to {end.day} {end:%b %Y}"
    how = (
        "Log each period with `/measure log`, or load an extract with `/measure import`; or type the results "
        "below as events/total."
    )
    if not missing.have_any:
        return (
            f":warning: *No data logged for {blocks.typed(missing.measure_name)}* between {window} "
            f"(periods: {pdsa.describe_periods(missing.periods, missing.measure_period) or 'none'}), for any group. "
            + how
        )
    gaps = [
        f"{pdsa.group_name(g)} ({pdsa.describe_periods(p, missing.measure_period)})"
        for g, p in missing.missing.items()
        if p
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
    form = pdsa_study.study_form(engine, team_id=team_id, cycle_id=cycle_id)
    if form is None:
        return
    if not isinstance(form, pdsa_study.StudyForm):
        ref = form.ref
        refusal = (
            f"PDSA {ref} has no measure to study, so there are no data to compare with the predictions. "
            f"Choose one with `/pdsa edit {ref}` (add it first with `/measure new` if the project has none), "
            "then log data for the cycle's dates with `/measure log` or `/measure import`."
        )
        ephemeral(client, channel=channel_id, user=user_id, respond=respond, text=refusal)
        return
    view = pb.study_modal(
        form.info,
        measure=measure_infos([form.measure])[0],
        groups=form.groups,
        prefill=form.prefill,
        missing_text=_missing_text(form.missing),
        metadata={"cycle_id": cycle_id, "measure_id": form.measure.id},
    )
    client.views_open(trigger_id=trigger_id, view=view)


def read_observed(
    view: dict[str, Any], groups: Sequence[str]
) -> tuple[dict[str, GroupCounts], dict[str, str]]:
    """The observed events/total per group, and inline errors by block_id."""
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
    return observed, errors


def handle_study_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    engine: Engine = context["engine"]
    team_id = context.team_id or body["team"]["id"]
    user_id = body["user"]["id"]
    cycle_id = claims.metadata_id(view, "cycle_id") or 0
    measure_id = claims.metadata_id(view, "measure_id") or 0
    checked = pdsa_study.check_study(
        engine, team_id=team_id, cycle_id=cycle_id, measure_id=measure_id, user_id=user_id
    )
    groups = checked.groups
    first_block = ids.B_PDSA_OBSERVED_PREFIX + (groups[0] if groups else pdsa.OVERALL)
    if checked.problem is not None:
        ack(response_action="errors", errors={first_block: checked.problem})
        return
    observed, errors = read_observed(view, groups)
    if not observed and not errors:
        missing = pdsa_study.missing_data(
            engine, team_id=team_id, cycle_id=cycle_id, measure_id=measure_id, groups=groups
        )
        text = _missing_text(missing) if missing is not None else None
        errors[first_block] = (text or "No results.").replace(":warning: ", "").replace("*", "")
    if errors:
        ack(response_action="errors", errors=errors)
        return
    # Acknowledge first (the form is valid), then score, check balancing and save: Slack waits 3 seconds at most.
    ack()
    outcome = pdsa_study.save_study(
        engine,
        team_id=team_id,
        cycle_id=cycle_id,
        measure_id=measure_id,
        user_id=user_id,
        groups=groups,
        observed=observed,
        learning=blocks.state_value(view, ids.B_PDSA_STUDY_LEARNING) or "",
        not_for=blocks.state_value(view, ids.B_PDSA_STUDY_NOT_FOR) or "",
    )
    if outcome is None:
        return
    message = study_message(
        ref=outcome.ref,
        user_id=user_id,
        measure_name=outcome.measure_name,
        window=outcome.window,
        kind=outcome.kind,
        results=outcome.results,
        balancing_name=outcome.balancing_name,
        balancing_notes=outcome.balancing_notes,
        shared=outcome.shared,
        unshared=outcome.unshared,
        learning=outcome.learning,
        policy=outcome.policy,
        harm=outcome.harm,
        balancing_clear=outcome.balancing_clear,
    )
    post_in_thread(
        client, engine, team_id=team_id, cycle_id=outcome.cycle_id, text=message[1], message_blocks=message[0]
    )
    refresh_card(client, engine, team_id=team_id, cycle_id=outcome.cycle_id)
    refresh_home(client, engine, team_id=team_id, project_id=outcome.project_id)


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
    balancing_clear: bool = False,
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
        # A clear worsening is headlined under harm; what stays here is the rest, so say where the clear one went.
        notes = list(balancing_notes) or (
            []
            if balancing_clear
            else [f"{balancing_name} did not get worse for any group that could be checked."]
        )
        if balancing_clear:
            notes.insert(
                0,
                "Where it clearly got worse: under *Harm to check first*, above."
                if notes
                else "It clearly got worse: see *Harm to check first*, above.",
            )
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
