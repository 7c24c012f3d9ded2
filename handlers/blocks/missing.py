"""Block Kit for the who-is-missing register: its list, its form, the channel note and the Home section (pure)."""

from __future__ import annotations

from bot.core.registers import SOURCES, STATUSES
from bot.services.missing import MissingPage, MissingView
from handlers import blocks
from handlers.blocks import Block, View, ids
from handlers.blocks.bias import page_button, value

FIELD_BLOCKS = {
    "who": ids.B_MISSING_WHO,
    "how_to_hear": ids.B_MISSING_HOW,
    "what_happened": ids.B_MISSING_WHAT,
    "status": ids.B_MISSING_STATUS,
}
NO_PROJECT = "There is no project in this channel yet. Start one with `/mfi new`, then keep track of who is missing here."


def summary_line(entry: MissingView) -> str:
    source = SOURCES.get(entry.source, entry.source)
    if entry.cycle_number:
        source += f" (PDSA {entry.cycle_number})"
    lines = [
        f"*#{entry.number}* {blocks.typed(entry.who[:500])}",
        f"_{source} · {STATUSES.get(entry.status, entry.status)}_",
        "_How we will hear from them:_ "
        + (blocks.typed(entry.how_to_hear[:300]) if entry.how_to_hear else "not decided yet"),
    ]
    if entry.what_happened:
        lines.append(f"_What happened:_ {blocks.typed(entry.what_happened[:300])}")
    return "\n".join(lines)


def register_blocks(page: MissingPage, *, with_intro: bool = True) -> list[Block]:
    project = page.project
    out: list[Block] = []
    if with_intro:
        out.append(
            blocks.section(
                f"*Who is missing: {blocks.typed(project.name)}*\nPeople the data do not show, and how the team "
                "will hear from them instead (conversations, partners, community organisations)."
            )
        )
    if page.added:
        out.append(blocks.context("New entries were found in the latest data (marked “found in the data”)."))
    if not page.entries:
        out.append(
            blocks.section(
                "No one recorded yet. Add the people you know the data miss, for example women who speak "
                "Tigrinya or Somali, or families who never booked."
            )
        )
    for entry in page.entries:
        out.append(
            blocks.section(
                summary_line(entry),
                accessory=blocks.button(
                    "Edit", ids.A_MISSING_EDIT, value=value(project.id, entry=entry.number)
                ),
            )
        )
    buttons = [blocks.button("Add someone", ids.A_MISSING_ADD, value=value(project.id), style="primary")]
    if page.pages > 1:
        buttons.append(page_button(ids.A_MISSING_PAGE, project.id, page.page, page.pages))
    out.append(blocks.actions(*buttons))
    return out


def list_message(page: MissingPage) -> tuple[list[Block], str]:
    return register_blocks(page), f"Who is missing: {blocks.typed(page.project.name)}"


def missing_modal(*, project_id: int, channel_id: str, entry: MissingView | None) -> View:
    status = {
        "type": "static_select",
        "options": [blocks.option(label, key) for key, label in STATUSES.items()],
        "initial_option": blocks.option(
            STATUSES.get(entry.status if entry else "open", "Open"), entry.status if entry else "open"
        ),
    }
    out: list[Block] = []
    if entry is not None and entry.source != "team":
        out.append(blocks.context(f"#{entry.number}: {SOURCES.get(entry.source, entry.source)}."))
    out += [
        blocks.input_block(
            ids.B_MISSING_WHO,
            "Who is missing",
            blocks.text_input(
                initial=entry.who if entry else None,
                multiline=True,
                placeholder="Women who speak Tigrinya or Somali",
            ),
            hint="A group, never a person: no names or details that could identify anyone.",
        ),
        blocks.input_block(
            ids.B_MISSING_HOW,
            "How will the team hear from them instead?",
            blocks.text_input(initial=entry.how_to_hear if entry else None, multiline=True),
            optional=True,
            hint="For example: a conversation with a community organisation, partners, interviews, complaints.",
        ),
        blocks.input_block(
            ids.B_MISSING_WHAT,
            "What happened",
            blocks.text_input(initial=entry.what_happened if entry else None, multiline=True),
            optional=True,
        ),
        blocks.input_block(ids.B_MISSING_STATUS, "Status", status),
    ]
    metadata: dict[str, object] = {"project_id": project_id, "channel_id": channel_id}
    if entry is not None:
        metadata["entry"] = entry.number
    return blocks.modal(ids.CB_MISSING_ENTRY, "Who is missing", out, submit="Save", metadata=metadata)


def saved_note(
    project_id: int, entry: MissingView, *, user_id: str, created: bool
) -> tuple[list[Block], str]:
    verb = "added to the register of who is missing" if created else "updated who is missing"
    text = f"<@{user_id}> {verb}: *#{entry.number}* {blocks.typed(entry.who[:200])}"
    return [
        blocks.section(
            text,
            accessory=blocks.button("Edit", ids.A_MISSING_EDIT, value=value(project_id, entry=entry.number)),
        ),
        blocks.context("`/mfi missing` shows the whole register"),
    ], text


def home_section(project_id: int, total: int, without_plan: int) -> list[Block]:
    line = f"*Who is missing:* {blocks.counted(total, 'entry', 'entries')}"
    if without_plan:
        line += f", {without_plan} without a plan to hear from them"
    line += " · `/mfi missing`"
    return [
        blocks.section(
            line, accessory=blocks.button("Add someone", ids.A_MISSING_ADD, value=value(project_id))
        )
    ]
