"""The framework's stage checklist on the project card and Home: ticks from evidence, what is missing, buttons."""

from __future__ import annotations

import json
from collections.abc import Sequence

from bot.core.checklist import StageCheck
from handlers import blocks
from handlers.blocks import Block, ids

# Where a stage's missing evidence is made: a button when one opens the form, otherwise the command.
_BUTTONS = {
    "edit_project": ("Edit project", ids.A_OPEN_PROJECT_EDIT, False),
    "measure": ("Add a measure", ids.A_OPEN_MEASURE_NEW, False),
    "bias": ("Review a policy for bias", ids.A_BIAS_ADD, True),
    "team": ("Reflect and invite", ids.A_TEAM_OPEN, True),
}
_COMMANDS = {
    "drivers": "`/mfi drivers`",
    "data": "`/measure log` or `/measure import`",
    "act": "`/pdsa act N` on a studied cycle",
    "team": "`/mfi team` or `/mfi partners`",
    "bias": "`/mfi bias`",
    "edit_project": "`/mfi edit`",
    "measure": "`/measure new`",
}


def checklist_text(checks: Sequence[StageCheck]) -> str:
    lines = []
    for check in checks:
        if check.done:
            lines.append(f":white_check_mark: {check.title}")
            continue
        where = _COMMANDS.get(check.action or "", "")
        lines.append(
            f":white_large_square: {check.title}\n      _{check.missing}_" + (f" ({where})" if where else "")
        )
    return "\n".join(lines)


def checklist_buttons(checks: Sequence[StageCheck], project_id: int) -> Block | None:
    """One button per tool that makes a missing stage's evidence (each once, in the stages' order)."""
    seen: dict[str, dict[str, object]] = {}
    for check in checks:
        if check.done or check.action not in _BUTTONS or check.action in seen:
            continue
        label, action_id, as_json = _BUTTONS[check.action]
        raw = json.dumps({"project_id": str(project_id)}) if as_json else str(project_id)
        seen[check.action] = blocks.button(label, action_id, value=raw)
    return blocks.actions(*seen.values(), block_id="stage_checklist") if seen else None


def checklist_blocks(
    checks: Sequence[StageCheck], project_id: int, *, racism_context: str = ""
) -> list[Block]:
    out: list[Block] = []
    if racism_context.strip():
        out.append(blocks.section(f"*Where racism may be operating*\n{blocks.typed(racism_context[:2500])}"))
    out.append(blocks.section("*The framework's stages*\n" + checklist_text(checks)))
    buttons = checklist_buttons(checks, project_id)
    if buttons is not None:
        out.append(buttons)
    return out
