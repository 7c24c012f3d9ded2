"""Pure Block Kit builders for the driver diagram: the editor modal, its forms, the channel post and Home."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core.blockkit import Block, View, actions, button, context, counted, divider, section, typed
from bot.core.charts.driver_diagram import cycles_text, influence_text, where_text
from bot.services.drivers import (
    INFLUENCE,
    INFLUENCE_LABELS,
    WHERE,
    WHERE_LABELS,
    Diagram,
    DriverInfo,
    IdeaInfo,
)
from handlers.blocks import ids
from handlers.blocks.common import input_block, modal, option, text_input

PAGE_SIZE = 30  # items per page of the editor: with its header and buttons, well within a modal's 100 blocks
B_ITEM = "drivers_item_"  # + "driver_<id>" or "idea_<id>": each item's section in the editor
OPTION_LABEL = 75  # Slack's limit on an option's text


def _short(text: str, limit: int = OPTION_LABEL) -> str:
    """Text cut at a word boundary for a select's option label (the full text is in the diagram)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return (cut or text[: limit - 1]) + "…"


def summary(diagram: Diagram) -> str:
    drivers, ideas = len(diagram.drivers), len(diagram.ideas)
    if not drivers:
        return "No drivers yet"  # callers end the sentence
    return (
        f"{counted(drivers, 'driver')} ({diagram.can_influence} the team can influence), "
        f"{counted(ideas, 'change idea')}"
    )


def pages(diagram: Diagram) -> int:
    return max(1, -(-len(diagram.outline()) // PAGE_SIZE))


def _item_menu(kind: str, item_id: int) -> dict[str, Any]:
    choices = (("Edit or move", "edit"), ("Move up", "up"), ("Move down", "down"), ("Retire", "retire"))
    return {
        "type": "overflow",
        "action_id": ids.A_DRIVERS_ITEM,
        "options": [option(label, f"{op}:{kind}:{item_id}") for label, op in choices],
    }


def _driver_line(d: DriverInfo) -> str:
    level = "Primary driver" if d.parent_id is None else "↳ Secondary driver"
    where = where_text(d.where)
    meta = influence_text(d.influence, typed(d.who_can)) + (f" · {where}" if where else "")
    return f"*{level} {d.label}:* {typed(d.text)}\n{meta}"


def _idea_line(i: IdeaInfo, under: str) -> str:
    return f"◦ *Change idea* (under {under}): {typed(i.text)}\n_{cycles_text(i.cycles)}_"


def editor_view(diagram: Diagram, *, page: int = 0, note: str | None = None) -> View:
    """The editor: the outline a page at a time, each item with its menu, and the buttons that add."""
    outline = diagram.outline()
    last = pages(diagram) - 1
    page = min(max(page, 0), last)
    labels = {d.id: d.label for d in diagram.drivers}
    blocks: list[Block] = [
        section(f"*Aim:* {typed(diagram.aim)}"),
        context(
            f"{summary(diagram)}. Drivers of racial inequity: where racism may be operating, and whether "
            "the team can influence each one. Change ideas hang off drivers; PDSA cycles test them."
        ),
        actions(
            button("Add a primary driver", ids.A_DRIVERS_ADD_PRIMARY, value="primary", style="primary"),
            button("Add a secondary driver", ids.A_DRIVERS_ADD_SECONDARY, value="secondary"),
            button("Add a change idea", ids.A_DRIVERS_ADD_IDEA, value="idea"),
            button("Post the picture in the channel", ids.A_DRIVERS_POST, value="post"),
        ),
    ]
    if note:
        blocks.append(context(note))
    blocks.append(divider())
    if not outline:
        blocks.append(
            section(
                "Start with the primary drivers: the big reasons the gap exists (for example, how blood loss "
                "is estimated). Then add secondary drivers under them, and change ideas to test."
            )
        )
    for kind, item in outline[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]:
        if kind == "driver":
            assert isinstance(item, DriverInfo)
            blocks.append(
                section(
                    _driver_line(item),
                    block_id=f"{B_ITEM}driver_{item.id}",
                    accessory=_item_menu("driver", item.id),
                )
            )
        else:
            assert isinstance(item, IdeaInfo)
            blocks.append(
                section(
                    _idea_line(item, labels.get(item.driver_id, "?")),
                    block_id=f"{B_ITEM}idea_{item.id}",
                    accessory=_item_menu("idea", item.id),
                )
            )
    if last > 0:
        paging = []
        if page > 0:
            paging.append(button("Previous page", ids.A_DRIVERS_PAGE_PREV, value=str(page - 1)))
        if page < last:
            paging.append(button("Next page", ids.A_DRIVERS_PAGE_NEXT, value=str(page + 1)))
        blocks += [context(f"Page {page + 1} of {last + 1}"), actions(*paging)]
    return modal(
        ids.VIEW_DRIVERS,
        "Driver diagram",
        blocks,
        submit=None,
        close="Done",
        metadata={"project_id": diagram.project_id, "page": page},
    )


TOP_LEVEL = "primary"  # the edit form's choice for "a primary driver" (other values are primary drivers' ids)
TOP_LEVEL_LABEL = "A primary driver (top level)"


def _primary_options(diagram: Diagram) -> list[dict[str, Any]]:
    return [option(_short(f"{d.label}. {d.text}"), str(d.id)) for d in diagram.primaries()][:100]


def _driver_options(diagram: Diagram) -> list[dict[str, Any]]:
    return [option(_short(f"{d.label}. {d.text}"), str(d.id)) for d in diagram.drivers][:100]


def driver_form(diagram: Diagram, *, secondary: bool, driver: DriverInfo | None = None) -> View:
    """Add (driver None) or edit a driver; a secondary chooses the primary it sits under (a move when edited)."""
    blocks: list[Block] = []
    if driver is None and not secondary:
        blocks.append(context("A primary driver is a big reason the gap exists. Keep it to a few words."))
    blocks.append(
        input_block(
            ids.B_DRIVER_TEXT,
            "Driver",
            text_input(
                initial=driver.text if driver else None,
                multiline=True,
                placeholder="For example: PPH signs are taught on white skin",
            ),
        )
    )
    if driver is not None:
        # Editing: the driver can move under another primary, become a primary, or (with nothing under it)
        # become a secondary; the service checks the move.
        choices = [option(TOP_LEVEL_LABEL, TOP_LEVEL)] + [
            c for c in _primary_options(diagram) if c["value"] != str(driver.id)
        ]
        wanted = TOP_LEVEL if driver.parent_id is None else str(driver.parent_id)
        element: dict[str, Any] = {
            "type": "static_select",
            "options": choices,
            "initial_option": next((c for c in choices if c["value"] == wanted), choices[0]),
        }
        blocks.append(
            input_block(
                ids.B_DRIVER_PARENT,
                "Where it sits on the diagram",
                element,
                hint="A primary driver, or a secondary under one of the primary drivers.",
            )
        )
    elif secondary:
        choices = _primary_options(diagram)
        element = {
            "type": "static_select",
            "placeholder": {"type": "plain_text", "text": "Choose a primary driver"},
            "options": choices or [option("No primary drivers yet", "none")],
        }
        blocks.append(input_block(ids.B_DRIVER_PARENT, "Under which primary driver", element))
    where_options = [option(WHERE_LABELS[w], w) for w in WHERE]
    where_element: dict[str, Any] = {"type": "checkboxes", "options": where_options}
    chosen = [o for o in where_options if driver and o["value"] in driver.where]
    if chosen:
        where_element["initial_options"] = chosen
    blocks.append(
        input_block(ids.B_DRIVER_WHERE, "Where may racism be operating here?", where_element, optional=True)
    )
    influence_options = [option(INFLUENCE_LABELS[i], i) for i in INFLUENCE]
    initial = next(o for o in influence_options if o["value"] == (driver.influence if driver else "yes"))
    blocks.append(
        input_block(
            ids.B_DRIVER_INFLUENCE,
            "Can the team influence it?",
            {"type": "radio_buttons", "options": influence_options, "initial_option": initial},
        )
    )
    blocks.append(
        input_block(
            ids.B_DRIVER_WHO,
            "Who can influence it?",
            text_input(
                initial=driver.who_can if driver else None, placeholder="For example: the trust board"
            ),
            optional=True,
            hint="Needed when the team can't influence it directly, so the driver has an owner.",
        )
    )
    title = "Edit driver" if driver else ("Add secondary driver" if secondary else "Add primary driver")
    metadata: dict[str, Any] = {
        "project_id": diagram.project_id,
        # An edit's level comes from the form ("any"); an add's from the button that opened it.
        "level": "any" if driver else ("secondary" if secondary else "primary"),
    }
    if driver is not None:
        metadata["driver_id"] = driver.id
    return modal(ids.CB_DRIVER, title, blocks, metadata=metadata)


def idea_form(diagram: Diagram, *, idea: IdeaInfo | None = None) -> View:
    choices = _driver_options(diagram)
    element: dict[str, Any] = {
        "type": "static_select",
        "placeholder": {"type": "plain_text", "text": "Choose a driver"},
        "options": choices or [option("No drivers yet: add one first", "none")],
    }
    current = next((c for c in choices if idea and c["value"] == str(idea.driver_id)), None)
    if current:
        element["initial_option"] = current
    blocks: list[Block] = [
        input_block(
            ids.B_IDEA_TEXT,
            "Change idea",
            text_input(
                initial=idea.text if idea else None,
                multiline=True,
                placeholder="For example: book an interpreter by default",
            ),
        ),
        input_block(ids.B_IDEA_DRIVER, "Which driver does it work on?", element),
    ]
    metadata: dict[str, Any] = {"project_id": diagram.project_id}
    if idea is not None:
        metadata["idea_id"] = idea.id
    return modal(ids.CB_CHANGE_IDEA, ("Edit" if idea else "Add") + " change idea", blocks, metadata=metadata)


def retire_form(diagram: Diagram, *, kind: str, item_id: int, text: str) -> View:
    what = "driver" if kind == "driver" else "change idea"
    key = "driver_id" if kind == "driver" else "idea_id"
    return modal(
        ids.CB_DRIVERS_RETIRE,
        f"Retire {what}",
        [
            section(
                f"Retire this {what}? *{typed(text)}*\nIt leaves the diagram; its history and any cycles "
                "that tested it are kept, and the export lists it."
            ),
            input_block(ids.B_RETIRE_WHY, "Why (optional)", text_input(multiline=True), optional=True),
        ],
        submit="Retire",
        metadata={"project_id": diagram.project_id, key: item_id},
    )


COMMENT_LIMIT = 3000  # the outline under the picture, well within a message's 4,000 characters


def outline_text(diagram: Diagram) -> str:
    """The whole diagram as an indented text outline (typed text escaped): the picture's words, for everyone."""
    labels = {d.id: d.label for d in diagram.drivers}
    lines = []
    for _, item in diagram.outline():
        if isinstance(item, DriverInfo):
            indent = "" if item.parent_id is None else "    "
            reach = influence_text(item.influence, typed(item.who_can))
            lines.append(f"{indent}*{item.label}* {typed(item.text)} _({reach})_")
        else:
            indent = "        " if "." in labels.get(item.driver_id, "") else "    "
            lines.append(f"{indent}◦ {typed(item.text)} _({cycles_text(item.cycles)})_")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if sum(len(k) + 1 for k in kept) + len(line) > COMMENT_LIMIT:
            kept.append(f"…and {len(lines) - i} more: see `/mfi drivers`.")
            break
        kept.append(line)
    return "\n".join(kept)


def posted_comment(diagram: Diagram, user_id: str) -> str:
    return f"Driver diagram posted by <@{user_id}>: {summary(diagram)}.\n{outline_text(diagram)}"


def home_section(diagram: Diagram) -> list[Block]:
    """A short section on each team member's Home: the counts, the button, and the picture last posted."""
    blocks: list[Block] = [
        section(
            f"*Driver diagram:* {summary(diagram)}",
            accessory={
                "type": "button",
                "action_id": ids.A_DRIVERS_OPEN,
                "text": {"type": "plain_text", "text": "Driver diagram"},
                "value": str(diagram.project_id),
            },
        )
    ]
    if diagram.last_post is not None:
        file_id, _, alt, _ = diagram.last_post
        blocks.append(
            {
                "type": "image",
                "slack_file": {"id": file_id},
                "alt_text": (alt or f"Driver diagram for {diagram.project_name}")[:2000],
                "title": {"type": "plain_text", "text": "The driver diagram as last posted in the channel"},
            }
        )
    return blocks


def errors_for(problems: dict[str, str], mapping: Sequence[tuple[str, str]]) -> dict[str, str]:
    """A service's problems (by field) as inline errors (by block id); anything unmapped goes on the first."""
    fields = dict(mapping)
    first = mapping[0][1]
    errors: dict[str, str] = {}
    for field, text in problems.items():
        block = fields.get(field, first)
        errors[block] = f"{errors[block]} {text}" if block in errors else text
    return errors
