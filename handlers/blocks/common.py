"""Pure Block Kit builders (plain dicts) shared by every surface, plus the project modal, card, help and Home."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from bot.core import ethnicity
from bot.core.blockkit import (
    Block,
    View,
    actions,
    button,
    context,
    counted,
    fields,
    header,
    plain,
    section,
    typed,
)
from handlers import limits
from handlers.blocks import ids

# The framework's seven principles, in the order a project meets them.
STAGES: tuple[tuple[str, str], ...] = (
    ("naming", "Name racism: the aim says who the work is for"),
    ("understanding", "Understand and acknowledge racism: drivers mapped"),
    ("bias", "Identify racial bias in policies and pathways"),
    ("data", "Collect and publish data by ethnic group"),
    ("lens", "Race-critical lens: balancing measures watch for harm"),
    ("involvement", "Involve racially minoritised staff and service users"),
    ("evaluation", "Evaluate and reflect with those most affected"),
)


# --- small helpers -------------------------------------------------------------------------------------------


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text[:75]), "value": value[:150]}


def input_block(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
    dispatch_action: bool = False,
) -> Block:
    element = {**element, "action_id": element.get("action_id", ids.A_INPUT)}
    if element.get("type") == "plain_text_input":
        element["max_length"] = limits.limit_for(block_id)  # the one table the server also enforces
        if isinstance(element.get("initial_value"), str):  # text stored before the limit existed still opens
            element["initial_value"] = element["initial_value"][: element["max_length"]]
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label[:2000]), "element": element}
    if optional:
        block["optional"] = True
    if hint:
        block["hint"] = plain(hint[:2000])
    if dispatch_action:
        block["dispatch_action"] = True
    return block


def text_input(
    *,
    initial: str | None = None,
    multiline: bool = False,
    placeholder: str | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if initial:
        element["initial_value"] = initial
    if placeholder:
        element["placeholder"] = plain(placeholder[:150])
    if max_length:
        element["max_length"] = max_length
    return element


def modal(
    callback_id: str,
    title: str,
    blocks: Sequence[Block],
    *,
    submit: str | None = "Save",
    close: str = "Cancel",
    metadata: Mapping[str, Any] | None = None,
) -> View:
    view: View = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title[:24]),
        "close": plain(close[:24]),
        "blocks": list(blocks)[:100],
        "private_metadata": json.dumps(dict(metadata or {}))[:3000],
    }
    if submit:
        view["submit"] = plain(submit[:24])
    return view


def metadata_of(view: Mapping[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- reading submitted state ---------------------------------------------------------------------------------


def state_value(view: Mapping[str, Any], block_id: str, action_id: str = ids.A_INPUT) -> Any:
    """The submitted value of one input, typed by element: str, list of str, date string or None."""
    item = (view.get("state", {}).get("values", {}).get(block_id) or {}).get(action_id) or {}
    kind = item.get("type")
    if kind in ("static_select", "radio_buttons", "external_select"):
        return (item.get("selected_option") or {}).get("value")
    if kind in ("multi_static_select", "checkboxes", "multi_external_select"):
        return [o["value"] for o in item.get("selected_options") or []]
    if kind == "datepicker":
        return item.get("selected_date")
    if kind == "users_select":
        return item.get("selected_user")
    if kind == "multi_users_select":
        return list(item.get("selected_users") or [])
    if kind in ("conversations_select", "channels_select"):
        return item.get("selected_conversation") or item.get("selected_channel")
    if kind == "file_input":
        return item.get("files") or []
    value = item.get("value")
    return value.strip() if isinstance(value, str) else value


# --- ethnic-group pickers ------------------------------------------------------------------------------------


def group_option_groups(
    *, include_high_level: bool = True, include_missing: bool = False
) -> list[dict[str, Any]]:
    """NHS categories grouped under their 2001 high-level headings; never a "BAME" roll-up."""
    groups: list[dict[str, Any]] = []
    if include_high_level:
        groups.append(
            {
                "label": plain("Whole high-level groups"),
                "options": [option(f"All {ethnicity.label(k)}", k) for k in ethnicity.HIGH_LEVEL_GROUPS],
            }
        )
    for key, codes in ethnicity.HIGH_LEVEL_GROUPS.items():
        groups.append(
            {
                "label": plain(ethnicity.label(key)[:75]),
                "options": [option(ethnicity.display(c), c) for c in codes],
            }
        )
    if include_missing:
        groups.append(
            {
                "label": plain("Missing ethnicity"),
                "options": [option(ethnicity.display(c), c) for c in ("Z", "99")],
            }
        )
    return groups


def group_options_flat(codes: Iterable[str]) -> list[dict[str, Any]]:
    return [option(ethnicity.display(code), code) for code in codes]


def describe_groups(codes: Sequence[str]) -> str:
    return ", ".join(ethnicity.display(code) for code in codes) if codes else "not named yet"


# --- projects ------------------------------------------------------------------------------------------------


def help_message(unknown: str | None = None) -> list[Block]:
    lines = [
        "*MFI-AR helps your team practise the Anti-Racism Model for Improvement in Slack.* "
        "It keeps your aim honest about who the work is for, charts every measure by ethnic group with "
        "honest statistics, keeps your PDSA cycles, and asks the framework's reflective questions on a schedule.",
        "*Start here*\n"
        "`/mfi new` start an improvement project in this channel\n"
        "`/mfi status` show this channel's project card · `/mfi edit` change it (earlier versions are kept)\n"
        "`/mfi schedule` when prompts and the leads' weekly nudge go out · `/mfi partners` service-user partners · "
        "`/mfi prompts` pin or skip a reflective prompt\n"
        "`/mfi drivers` the driver diagram: drivers of racial inequity, change ideas, and the cycles testing them\n"
        "`/mfi report` the board pack (PDF) by direct message; `/mfi report dashboard` adds the web dashboard\n"
        "`/mfi export` download the project's data · `/mfi delete` remove it (leads only, asks first)",
        "*The framework's tools*\n"
        "`/mfi bias` review policies and pathways for racial bias, with actions · "
        "`/mfi team` reflect on the team's make-up and invite who is missing from it · "
        "`/mfi missing` who the data do not show, and how you will hear from them",
        "*Measures and data*\n"
        "`/measure new` define an outcome, process or balancing measure · `/measure log` enter one period by ethnic group\n"
        "`/measure import` load a CSV or Excel extract · `/measure list` · `/measure undo` undo the last entry or import",
        "*Equity analysis*\n"
        "`/equity` list measures · `/equity PPH` (a measure's name) chart it by ethnic group with gap statistics · "
        "`/equity missing` the data-quality report",
        "*PDSA cycles*\n"
        "`/pdsa new` plan a test with predictions for each group · `/pdsa list` · `/pdsa show N` · "
        "`/pdsa do N` · `/pdsa study N` · `/pdsa act N`",
    ]
    blocks: list[Block] = []
    if unknown:
        blocks.append(
            section(f":grey_question: I don't know `{typed(unknown[:60])}`. Here is what I can do:")
        )
    blocks.extend(section(line) for line in lines)
    blocks.append(
        context(
            "Counts from 1 to 7 are never posted in a channel; other counts are rounded to the nearest 5. "
            "Ethnic groups are named as the NHS codes them; Not stated (Z) and Not known (99) are kept apart."
        )
    )
    return blocks


def project_modal(
    *,
    callback_id: str,
    channel_id: str,
    user_id: str,
    project: Mapping[str, Any] | None = None,
    leads: Sequence[str] = (),
    partners: Sequence[str] = (),
) -> View:
    """The "Start an improvement project" form (or the same form pre-filled for editing)."""
    p = project or {}
    focus_initial = [
        o
        for g in group_option_groups()
        for o in g["options"]
        if o["value"] in set(p.get("focus_groups") or [])
    ]
    focus_element: dict[str, Any] = {
        "type": "multi_static_select",
        "placeholder": plain("Choose the groups most disadvantaged"),
        "option_groups": group_option_groups(),
    }
    if focus_initial:
        focus_element["initial_options"] = focus_initial
    reference = p.get("reference_group") or "A"
    reference_options = [option(f"All {ethnicity.label(k)} groups", k) for k in ("HL:White",)] + [
        option(ethnicity.display(c), c) for c in ethnicity.NATIONAL_CODES
    ]
    reference_element = {
        "type": "static_select",
        "options": reference_options,
        "initial_option": next(
            (o for o in reference_options if o["value"] == reference), reference_options[1]
        ),
    }
    target_date: dict[str, Any] = {"type": "datepicker"}
    if p.get("target_date"):
        target_date["initial_date"] = str(p["target_date"])
    leads_element: dict[str, Any] = {"type": "multi_users_select", "initial_users": list(leads) or [user_id]}
    partners_element: dict[str, Any] = {"type": "multi_users_select"}
    if partners:
        partners_element["initial_users"] = list(partners)
    blocks = [
        section(
            "The framework asks every aim to say *for whom*: name the ethnic groups most disadvantaged, "
            "and commit to closing the gap. You can change any of this later; earlier versions are kept."
        ),
        input_block(ids.B_PROJECT_NAME, "Project name", text_input(initial=p.get("name"), max_length=200)),
        input_block(
            ids.B_PROJECT_AIM,
            "Aim: what will improve, by how much, by when?",
            text_input(
                initial=p.get("aim"),
                multiline=True,
                max_length=2000,
                placeholder="Reduce PPH among Black African and Black Caribbean women from 12% to 6% by March 2026",
            ),
        ),
        input_block(
            ids.B_PROJECT_FOCUS,
            "For whom: the ethnic groups most disadvantaged",
            focus_element,
            hint="Named as NHS ethnic categories, or whole high-level groups. Required: an equity aim names who it is for.",
        ),
        input_block(
            ids.B_PROJECT_REFERENCE,
            "Compare with (reference group)",
            reference_element,
            hint="Gaps are measured against this group. White British (A) is the usual NHS reference; say if you use another.",
        ),
        input_block(
            ids.B_PROJECT_BASELINE,
            "Baseline",
            text_input(
                initial=p.get("baseline"), placeholder="12% for Black women vs 5% for White British (2023/24)"
            ),
            optional=True,
        ),
        input_block(
            ids.B_PROJECT_TARGET,
            "Target",
            text_input(initial=p.get("target"), placeholder="6% by March 2026"),
            optional=True,
        ),
        input_block(ids.B_PROJECT_TARGET_DATE, "Target date", target_date, optional=True),
        input_block(
            ids.B_PROJECT_LEADS,
            "Project leads",
            leads_element,
            hint="Leads get the weekly equity nudge by DM.",
        ),
        input_block(
            ids.B_PROJECT_PARTNERS,
            "Service-user partners",
            partners_element,
            optional=True,
            hint="People with lived experience. They will be asked for consent first, and can answer anonymously.",
        ),
        input_block(
            ids.B_PROJECT_RACISM,
            "Where might racism be operating here?",
            text_input(initial=p.get("racism_context"), multiline=True, max_length=3000),
            optional=True,
            hint="Optional now. The bot will come back to this question with the team.",
        ),
        input_block(
            ids.B_PROJECT_THRESHOLD,
            "Smallest count shown in the channel",
            {
                "type": "number_input",
                "is_decimal_allowed": False,
                "min_value": "8",
                "max_value": "100",
                "initial_value": str(p.get("suppression_threshold") or 8),
            },
            optional=True,
            hint='Counts from 1 up to one less than this are shown as "<N" in Slack. 8 follows NHS practice; '
            "raise it for a small unit where people may know the patients. It cannot go lower.",
        ),
    ]
    title = "Start a project" if callback_id == ids.CB_PROJECT_NEW else "Edit the project"
    return modal(
        callback_id,
        title,
        blocks,
        submit="Start project" if callback_id == ids.CB_PROJECT_NEW else "Save changes",
        metadata={"channel_id": channel_id, **({"project_id": p["id"]} if p.get("id") else {})},
    )


def stage_checklist(done: Mapping[str, bool]) -> str:
    return "\n".join(
        f"{':white_check_mark:' if done.get(key) else ':white_large_square:'} {text}" for key, text in STAGES
    )


def _partners(taking_part: int, waiting: int) -> str:
    """Partners on the card: those who said yes, and those named who have not answered yet (so a partner the lead
    has just named is not shown as "none")."""
    if taking_part and waiting:
        return f"{taking_part} taking part, {waiting} more named"
    if taking_part:
        return f"{taking_part} taking part"
    if waiting:
        return f"{waiting} named, not taking part until they say yes"
    return "none yet: the framework asks for them"


def project_card(
    project: Mapping[str, Any],
    *,
    leads: Sequence[str],
    partner_count: int,
    stages_done: Mapping[str, bool],
    measure_count: int,
    open_cycles: int,
    checklist: Sequence[Block] | None = None,
    partners_waiting: int = 0,
) -> list[Block]:
    """The project card posted in the channel: aim, for whom, target, and the framework's stages.

    `checklist`, when given, replaces the plain ticks with the stages from evidence (handlers/blocks/checklist.py).
    """
    offered = {e.get("action_id") for b in checklist or () if b["type"] == "actions" for e in b["elements"]}
    target = typed(project.get("target") or "not set yet")
    if project.get("target_date"):
        target += f" (by {_nice_date(project['target_date'])})"
    blocks = [
        header(f"Improvement project: {project['name']}"),
        section(f"*Aim*\n{typed(project['aim'])}"),
        fields(
            [
                ("For whom", describe_groups(project.get("focus_groups") or [])),
                ("Compared with", ethnicity.display(project.get("reference_group") or "A")),
                ("Baseline", typed(project.get("baseline") or "not set yet")),
                ("Target", target),
                ("Leads", ", ".join(f"<@{u}>" for u in leads) or "none yet"),
                ("Service-user partners", _partners(partner_count, partners_waiting)),
            ]
        ),
        *(
            checklist
            if checklist is not None
            else [section("*The framework's stages*\n" + stage_checklist(stages_done))]
        ),
        context(
            f"{counted(measure_count, 'measure')} · {counted(open_cycles, 'open PDSA cycle')} · "
            "`/mfi help` for every command"
        ),
        actions(
            *(
                b
                for b in (
                    button(
                        "Add a measure", ids.A_OPEN_MEASURE_NEW, value=str(project["id"]), style="primary"
                    ),
                    button("Plan a PDSA cycle", ids.A_OPEN_PDSA_NEW, value=str(project["id"])),
                    button("Edit project", ids.A_OPEN_PROJECT_EDIT, value=str(project["id"])),
                    button("Driver diagram", ids.A_DRIVERS_OPEN, value=str(project["id"])),
                )
                if b["action_id"] not in offered  # once on the card: the checklist's next step keeps it
            )
        ),
    ]
    return blocks


def project_card_text(project: Mapping[str, Any]) -> str:
    groups = describe_groups(project.get("focus_groups") or [])
    return f"Improvement project {typed(project['name'])}: {typed(project['aim'])} For whom: {groups}."


def _nice_date(value: Any) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return f"{value.day} {value:%B %Y}" if isinstance(value, date) else str(value)
