"""Block Kit for the bias review register: its list, its form, the channel note and the Home section (pure)."""

from __future__ import annotations

import json
from datetime import date

from bot.core.registers import EVIDENCE_KINDS, REVIEWED_KINDS, STATUSES
from bot.services.bias import BiasEntry, BiasForm, BiasPage
from handlers import blocks
from handlers.blocks import Block, View, ids

# Form field name -> input block (the service reports errors by field name).
FIELD_BLOCKS = {
    "reviewed_kind": ids.B_BIAS_KIND,
    "subject": ids.B_BIAS_SUBJECT,
    "where_bias": ids.B_BIAS_WHERE,
    "evidence_kinds": ids.B_BIAS_EVIDENCE_KINDS,
    "evidence": ids.B_BIAS_EVIDENCE,
    "institutional": ids.B_BIAS_INSTITUTIONAL,
    "action": ids.B_BIAS_ACTION,
    "owner_id": ids.B_BIAS_OWNER,
    "due_date": ids.B_BIAS_DUE,
    "status": ids.B_BIAS_STATUS,
    "cycle_ids": ids.B_BIAS_CYCLES,
    "driver_id": ids.B_BIAS_DRIVER,
}
NO_PROJECT = (
    "There is no project in this channel yet. Start one with `/mfi new`, then review policies for bias here."
)


def value(project_id: int, **extra: int) -> str:
    """A button's value; numbers as strings, so no "key: 3" in a channel message reads as a small count."""
    return json.dumps({"project_id": str(project_id), **{k: str(v) for k, v in extra.items()}})


def nice_date(value: date | None) -> str:
    return f"{value.day} {value:%B %Y}" if value else ""


def _options(choices: dict[str, str]) -> list[dict[str, object]]:
    return [blocks.option(label, key) for key, label in choices.items()]


def _initial(choices: dict[str, str], key: str | None) -> dict[str, object] | None:
    return blocks.option(choices[key], key) if key in choices else None


def summary_line(entry: BiasEntry) -> str:
    kind = REVIEWED_KINDS.get(entry.reviewed_kind, entry.reviewed_kind)
    parts = [
        f"*#{entry.number} {blocks.typed(entry.subject)}* ({kind.lower()}) · {STATUSES.get(entry.status, entry.status)}"
    ]
    parts.append(f"_Where bias may be present:_ {blocks.typed(entry.where_bias[:300])}")
    if entry.action:
        owner = f" · owner <@{entry.owner_id}>" if entry.owner_id else ""
        due = f" · due {nice_date(entry.due_date)}" if entry.due_date else ""
        parts.append(f"_Action:_ {blocks.typed(entry.action[:300])}{owner}{due}")
    else:
        parts.append("_Action:_ none yet")
    if entry.driver:
        parts.append(f"_Driver:_ {blocks.typed(entry.driver[:200])}")
    if entry.cycle_numbers:
        parts.append("_PDSA cycles:_ " + ", ".join(f"PDSA {n}" for n in entry.cycle_numbers))
    return "\n".join(parts)


def page_button(action_id: str, project_id: int, page: int, pages: int) -> dict[str, object]:
    """One paging button (one action_id per actions block): the next page, or back to the first from the last."""
    if page < pages:
        return blocks.button("Next page", action_id, value=value(project_id, page=page + 1))
    return blocks.button("Back to the first page", action_id, value=value(project_id, page=1))


def list_message(page: BiasPage) -> tuple[list[Block], str]:
    project = page.project
    out: list[Block] = [
        blocks.section(
            f"*Bias review: {blocks.typed(project.name)}*\nPolicies, processes, pathways and services the team has "
            "reviewed for racial bias, and what it will do about them."
        )
    ]
    if not page.entries:
        out.append(
            blocks.section(
                "Nothing reviewed yet. Start with the policy closest to the gap you are working on."
            )
        )
    for entry in page.entries:
        out.append(
            blocks.section(
                summary_line(entry),
                accessory=blocks.button("Edit", ids.A_BIAS_EDIT, value=value(project.id, entry=entry.number)),
            )
        )
    buttons = [blocks.button("Add an entry", ids.A_BIAS_ADD, value=value(project.id), style="primary")]
    if page.pages > 1:
        buttons.append(page_button(ids.A_BIAS_PAGE, project.id, page.page, page.pages))
    out.append(blocks.actions(*buttons))
    return out, f"Bias review: {blocks.typed(project.name)}"


def bias_modal(form: BiasForm) -> View:
    entry = form.entry
    kind: dict[str, object] = {"type": "static_select", "options": _options(REVIEWED_KINDS)}
    if entry and (initial := _initial(REVIEWED_KINDS, entry.reviewed_kind)):
        kind["initial_option"] = initial
    evidence: dict[str, object] = {"type": "checkboxes", "options": _options(EVIDENCE_KINDS)}
    chosen = [
        blocks.option(EVIDENCE_KINDS[k], k)
        for k in (entry.evidence_kinds if entry else ())
        if k in EVIDENCE_KINDS
    ]
    if chosen:
        evidence["initial_options"] = chosen
    owner: dict[str, object] = {"type": "users_select"}
    if entry and entry.owner_id:
        owner["initial_user"] = entry.owner_id
    due: dict[str, object] = {"type": "datepicker"}
    if entry and entry.due_date:
        due["initial_date"] = entry.due_date.isoformat()
    status = {
        "type": "static_select",
        "options": _options(STATUSES),
        "initial_option": _initial(STATUSES, entry.status if entry else "open"),
    }
    out: list[Block] = [
        blocks.input_block(ids.B_BIAS_KIND, "What was reviewed", kind),
        blocks.input_block(
            ids.B_BIAS_SUBJECT,
            "Its name",
            blocks.text_input(
                initial=entry.subject if entry else None, placeholder="Blood-loss estimation guideline"
            ),
        ),
        blocks.input_block(
            ids.B_BIAS_WHERE,
            "Where racial bias may be present",
            blocks.text_input(initial=entry.where_bias if entry else None, multiline=True),
        ),
        blocks.input_block(ids.B_BIAS_EVIDENCE_KINDS, "Evidence from", evidence, optional=True),
        blocks.input_block(
            ids.B_BIAS_EVIDENCE,
            "The evidence",
            blocks.text_input(initial=entry.evidence if entry else None, multiline=True),
            optional=True,
            hint="What the data, staff or service users showed. No names or patient details.",
        ),
        blocks.input_block(
            ids.B_BIAS_INSTITUTIONAL,
            "The element of institutional racism this project can address",
            blocks.text_input(initial=entry.institutional if entry else None, multiline=True),
            optional=True,
        ),
        blocks.input_block(
            ids.B_BIAS_ACTION,
            "Action",
            blocks.text_input(initial=entry.action if entry else None, multiline=True),
            optional=True,
            hint="What the team will do. An entry with an action ticks the bias stage on the project card.",
        ),
        blocks.input_block(ids.B_BIAS_OWNER, "Owner", owner, optional=True),
        blocks.input_block(ids.B_BIAS_DUE, "Due", due, optional=True),
        blocks.input_block(ids.B_BIAS_STATUS, "Status", status),
    ]
    if form.cycles:
        cycles: dict[str, object] = {
            "type": "multi_static_select",
            "options": [blocks.option(label, v) for v, label in form.cycles],
        }
        linked = {str(n) for n in (entry.cycle_numbers if entry else ())}
        initial_cycles = [blocks.option(label, v) for v, label in form.cycles if v in linked]
        if initial_cycles:
            cycles["initial_options"] = initial_cycles
        out.append(
            blocks.input_block(ids.B_BIAS_CYCLES, "PDSA cycles testing the action", cycles, optional=True)
        )
    if form.drivers:
        driver: dict[str, object] = {
            "type": "static_select",
            "placeholder": blocks.plain("Choose a driver"),
            "options": [blocks.option(label, v) for v, label in form.drivers],
        }
        current = next(
            (blocks.option(label, v) for v, label in form.drivers if entry and v == str(entry.driver_id)),
            None,
        )
        if current is not None:
            driver["initial_option"] = current
        out.append(
            blocks.input_block(
                ids.B_BIAS_DRIVER,
                "The driver of the gap it feeds",
                driver,
                optional=True,
                hint="From the project's driver diagram (`/mfi drivers`).",
            )
        )
    metadata: dict[str, object] = {"project_id": form.project.id, "channel_id": form.project.channel_id}
    if entry is not None:
        metadata["entry"] = entry.number
        out.append(blocks.context(f"Editing #{entry.number}. The earlier version is kept in the history."))
    return blocks.modal(ids.CB_BIAS_ENTRY, "Bias review", out, submit="Save", metadata=metadata)


def saved_note(project_id: int, entry: BiasEntry, *, user_id: str, created: bool) -> tuple[list[Block], str]:
    verb = "added to the bias review" if created else "updated bias review entry"
    text = f"<@{user_id}> {verb} *#{entry.number} {blocks.typed(entry.subject)}*"
    return [
        blocks.section(
            text + "\n" + summary_line(entry).split("\n", 1)[1],
            accessory=blocks.button("Edit", ids.A_BIAS_EDIT, value=value(project_id, entry=entry.number)),
        ),
        blocks.context("`/mfi bias` shows the whole review"),
    ], text


def home_section(project_id: int, *, total: int, open_actions: int) -> list[Block]:
    line = f"*Bias review:* {blocks.counted(total, 'entry', 'entries')}"
    if open_actions:
        line += f", {blocks.counted(open_actions, 'action')} open"
    line += " · `/mfi bias`"
    return [
        blocks.section(line, accessory=blocks.button("Add review", ids.A_BIAS_ADD, value=value(project_id)))
    ]
