"""Pure Block Kit builders for measures: the measure and log forms, the measure list, import and undo replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from bot import ethnicity
from bot.importing import (
    ImportOutcome,
    UndoOutcome,
    group_name,
    kind_label,
    period_label,
    periods_text,
    summary_lines,
)
from handlers import ids
from handlers.blocks import (
    Block,
    View,
    actions,
    button,
    context,
    counted,
    divider,
    header,
    input_block,
    modal,
    option,
    plain,
    section,
    text_input,
)

TYPE_OPTIONS = (
    ("outcome", "Outcome", "What matters to women and families, e.g. PPH of 1,000 ml or more"),
    ("process", "Process", "Whether the change is happening, e.g. interpreter offered at booking"),
    ("balancing", "Balancing", "Unintended harm the change could cause, e.g. caesarean or transfusion rate"),
)
KIND_OPTIONS = (
    ("proportion", "Proportion (events / records)"),
    ("rate_per_1000", "Rate per 1,000"),
    ("count", "Count"),
    ("value", "Mean or single value"),
)
DIRECTION_OPTIONS = (("lower", "Lower is better"), ("higher", "Higher is better"), ("neither", "Neither: watch it"))
PERIOD_OPTIONS = (("week", "Weekly"), ("month", "Monthly"), ("quarter", "Quarterly"))

BALANCING_REMINDER = (
    ":balance_scale: *This project has no balancing measure yet.* The framework asks for one: a balancing measure "
    "catches unintended harm that could deepen disparities while you improve the outcome. For PPH, for example: "
    "the transfusion or caesarean rate, length of stay, or the White group's own PPH rate. "
    "Add one with `/measure new`."
)

# Without a figure for every group, the form keeps to the groups the project is about.
LOG_HINT_COUNTS = (
    "Type events/records for each group, e.g. 14/230 for 14 counted out of 230 records. Whole numbers only; "
    "leave a row empty if you have no figure. Earlier values for the same period are replaced and kept as history."
)
LOG_HINT_COUNT = "Type the count for each group, e.g. 14 (or 14/230 to keep the number of records too)."
LOG_HINT_VALUE = "Type the value for each group, e.g. 3.2. Leave a row empty if you have no figure."


def _option_of(options: Sequence[tuple[str, str]], value: str) -> dict[str, Any]:
    label = next(text for key, text in options if key == value)
    return option(label, value)


def reference_options(project_reference: str) -> list[dict[str, Any]]:
    """Option groups for the reference group: the usual choices first, then high-level groups, then categories."""
    usual = dict.fromkeys([project_reference, "A", ethnicity.BEST, ethnicity.OTHERS])
    return [
        {"label": plain("Usual choices"), "options": [option(_reference_text(c), c) for c in usual]},
        {"label": plain("Whole high-level groups"),
         "options": [option(f"All {ethnicity.label(k)}", k) for k in ethnicity.HIGH_LEVEL_GROUPS]},
        {"label": plain("NHS ethnic categories"),
         "options": [option(ethnicity.display(c), c) for c in ethnicity.NATIONAL_CODES]},
    ]


def _reference_text(code: str) -> str:
    if code == ethnicity.BEST:
        return "Best-performing group"
    if code == ethnicity.OTHERS:
        return "All other groups (everyone not in the focus groups)"
    return ethnicity.display(code)


def reference_label(code: str) -> str:
    return _reference_text(code) if code in (ethnicity.BEST, ethnicity.OTHERS) else ethnicity.display(code)


def measure_modal(*, channel_id: str, project_id: int, project_reference: str, has_balancing: bool) -> View:
    """The "Add a measure" form."""
    reference_groups = reference_options(project_reference)
    blocks: list[Block] = [
        section(
            "Every measure is charted *by ethnic group*. Say exactly what is counted, so the numbers mean the same "
            "thing every month and in every group."
        ),
    ]
    if not has_balancing:
        blocks.append(context(BALANCING_REMINDER))
    blocks += [
        input_block(ids.B_MEASURE_NAME, "Measure name",
                    text_input(max_length=120, placeholder="PPH of 1,000 ml or more")),
        input_block(
            ids.B_MEASURE_TYPE,
            "Type of measure",
            {
                "type": "radio_buttons",
                "options": [{**option(text, key), "description": plain(desc)} for key, text, desc in TYPE_OPTIONS],
            },
        ),
        input_block(
            ids.B_MEASURE_KIND,
            "What kind of number?",
            {"type": "static_select", "options": [option(t, k) for k, t in KIND_OPTIONS],
             "initial_option": _option_of(KIND_OPTIONS, "proportion")},
        ),
        input_block(
            ids.B_MEASURE_NUMERATOR_DEF,
            "Numerator (or the value): exactly what is counted",
            text_input(multiline=True, max_length=1000,
                       placeholder="Women with measured blood loss of 1,000 ml or more within 24 hours of birth"),
        ),
        input_block(
            ids.B_MEASURE_DENOMINATOR_DEF,
            "Denominator: the records it is out of",
            text_input(multiline=True, max_length=1000, placeholder="All women giving birth in the unit (live or stillbirth)"),
            optional=True,
            hint="Needed for proportions and rates.",
        ),
        input_block(
            ids.B_MEASURE_DIRECTION,
            "Which direction is improvement?",
            {"type": "radio_buttons", "options": [option(t, k) for k, t in DIRECTION_OPTIONS],
             "initial_option": _option_of(DIRECTION_OPTIONS, "lower")},
        ),
        input_block(
            ids.B_MEASURE_REFERENCE,
            "Compare each group with",
            {"type": "static_select", "option_groups": reference_groups,
             "initial_option": reference_groups[0]["options"][0]},
            hint="Gaps are measured against this group. White British (A) is the usual NHS reference.",
        ),
        input_block(
            ids.B_MEASURE_PERIOD,
            "Reporting period",
            {"type": "static_select", "options": [option(t, k) for k, t in PERIOD_OPTIONS],
             "initial_option": _option_of(PERIOD_OPTIONS, "month")},
        ),
        input_block(ids.B_MEASURE_TARGET, "Target", text_input(placeholder="6%", max_length=20), optional=True,
                    hint="For proportions a percentage (6%); otherwise a number in the measure's own unit."),
    ]
    return modal(ids.CB_MEASURE_NEW, "Add a measure", blocks, submit="Add measure",
                 metadata={"channel_id": channel_id, "project_id": project_id})


def describe_measure(measure: Mapping[str, Any]) -> str:
    direction = dict(DIRECTION_OPTIONS)[measure["direction"]].lower()
    period = dict(PERIOD_OPTIONS)[measure["period"]].lower()
    target = f" · target {target_text(measure['kind'], measure['target'])}" if measure.get("target") is not None else ""
    return (
        f"{measure['measure_type']} · {kind_label(measure['kind'])} · {direction} · "
        f"compared with {reference_label(measure['reference_group'])} · {period}{target}"
    )


def target_text(kind: str, target: float) -> str:
    return f"{target:.1%}" if kind == "proportion" else f"{target:g}"


def measure_added(measure: Mapping[str, Any], *, by: str, has_balancing: bool) -> tuple[list[Block], str]:
    text = f"<@{by}> added a measure: *{measure['name']}* ({describe_measure(measure)})."
    blocks: list[Block] = [section(text)]
    definition = f"*Counts:* {measure['numerator_definition']}"
    if measure.get("denominator_definition"):
        definition += f"\n*Out of:* {measure['denominator_definition']}"
    blocks.append(context(definition[:3000]))
    blocks.append(context("Enter data with `/measure log`, or load an extract with `/measure import`."))
    if not has_balancing:
        blocks.append(section(BALANCING_REMINDER))
    return blocks, text


# --- the log form ----------------------------------------------------------------------------------------------


def default_log_groups(focus_groups: Sequence[str], reference: str) -> list[str]:
    """Focus groups, the reference group, all other groups, Not stated (Z) and Not known (99); codes only."""
    codes: list[str] = []
    for key in [*focus_groups, reference]:
        if key in (ethnicity.BEST, ethnicity.OTHERS):
            continue
        codes += list(ethnicity.members(key))
    return list(dict.fromkeys([*codes, ethnicity.OTHERS, "Z", "99"]))


def full_log_groups() -> list[str]:
    # No "all other groups" row here: every category has its own row, so OTHERS would count people twice.
    return list(ethnicity.CODES)


def log_modal(
    *,
    channel_id: str,
    project_id: int,
    measures: Sequence[Mapping[str, Any]],
    measure_id: int,
    groups: Sequence[str],
    full: bool,
    period_initial: date,
    values: Mapping[str, str] | None = None,
) -> View:
    """The "Enter one period" form: one input per group, each taking "numerator/denominator" (or a value)."""
    measure = next(m for m in measures if m["id"] == measure_id)
    values = values or {}
    kind = measure["kind"]
    hint = LOG_HINT_VALUE if kind == "value" else LOG_HINT_COUNT if kind == "count" else LOG_HINT_COUNTS
    placeholder = "3.2" if kind == "value" else "14" if kind == "count" else "14/230"
    blocks: list[Block] = []
    if len(measures) > 1:
        options = [option(m["name"], str(m["id"])) for m in measures][:100]
        blocks.append(
            input_block(
                ids.B_LOG_MEASURE,
                "Measure",
                {"type": "static_select", "action_id": ids.A_LOG_MEASURE_PICKED, "options": options,
                 "initial_option": next(o for o in options if o["value"] == str(measure_id))},
                dispatch_action=True,
            )
        )
    else:
        blocks.append(section(f"*{measure['name']}*"))
    blocks.append(context(f"{describe_measure(measure)}\n{hint}"))
    blocks.append(
        input_block(
            ids.B_LOG_PERIOD,
            f"Period ({dict(PERIOD_OPTIONS)[measure['period']].lower()}: any day in it)",
            {"type": "datepicker", "initial_date": period_initial.isoformat()},
        )
    )
    zero = "0" if kind == "count" else "0/0"
    for code in groups:
        element = text_input(placeholder=placeholder, initial=values.get(code), max_length=40)
        # Blank is unknown, not zero: for the missing categories that difference decides whether completeness
        # can be reported at all.
        row_hint = (f"Type {zero} if there were none. Left blank, it counts as not entered, so completeness is unknown."
                if code in ethnicity.MISSING_CODES and kind != "value" else None)
        blocks.append(input_block(ids.B_LOG_ROW_PREFIX + code, ethnicity.display(code), element, optional=True,
                                  hint=row_hint))
    switch = (
        button("Show only the usual groups", ids.A_LOG_FULL_LIST, value="short")
        if full
        else button(f"Show all {len(ethnicity.CODES)} categories", ids.A_LOG_FULL_LIST, value="full")
    )
    blocks.append(actions(switch))
    blocks.append(
        context(
            "“All other groups” is everyone not entered on their own row; it is analysed as one group and never "
            "added to the named rows. The full list has a row for every NHS category instead."
        )
    )
    return modal(
        ids.CB_MEASURE_LOG,
        "Enter one period",
        blocks,
        submit="Save",
        metadata={"channel_id": channel_id, "project_id": project_id, "measure_id": measure_id, "full": full},
    )


def logged_message(
    outcome: ImportOutcome, *, by: str, blank: Sequence[str] = (), kind: str = "proportion"
) -> tuple[list[Block], str]:
    """The channel's confirmation of a /measure log entry; `blank` lists Z and 99 when they were not entered."""
    period = period_label(outcome.periods[0], outcome.period)
    groups = ", ".join(group_name(g) for g in outcome.groups)
    replaced = len(outcome.replaced)
    text = f"<@{by}> entered {period} for *{outcome.measure_name}* ({groups})."
    if replaced:
        were = "was" if replaced == 1 else "were"
        text += f" {counted(replaced, 'earlier value')} {were} replaced; they are kept and come back with Undo."
    blocks = [section(text)]
    if blank:
        names = " and ".join(group_name(code) for code in blank)
        warning = (
            f":warning: {names} {'was' if len(blank) == 1 else 'were'} left blank, so how complete ethnicity "
            f"recording is for {period} is unknown (blank means not entered, not zero). If there were none, "
            f"enter {'0' if kind == 'count' else '0/0'} for {'it' if len(blank) == 1 else 'them'} with `/measure log`."
        )
        blocks.append(section(warning))
        text += " " + warning
    blocks += [
        actions(button("Undo this entry", ids.A_UNDO_BATCH, value=str(outcome.batch_id))),
        context(f"Entry {outcome.batch_id} · `/measure undo {outcome.batch_id}` does the same."),
    ]
    return blocks, text


# --- the measure list ------------------------------------------------------------------------------------------


def _pct(part: int, total: int) -> str:
    return f"{part / total:.1%}" if total else "n/a"


def measure_list(
    project_name: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    has_balancing: bool,
) -> tuple[list[Block], str]:
    """/measure list: each measure with its definition and data completeness (shares, never counts)."""
    if not rows:
        empty = [section(f"*{project_name}* has no measures yet. Add one with `/measure new`."),
                 section(BALANCING_REMINDER)]
        return empty, f"{project_name} has no measures yet."
    blocks: list[Block] = [header(f"Measures: {project_name}"[:150])]
    for row in rows[:12]:
        latest = row.get("latest")
        latest_text = period_label(latest, row["period"]) if latest else "no data yet"
        complete = row.get("completeness")
        unknown = complete.unknown_periods if complete is not None else 0
        if (complete is None or not complete.total) and not unknown:
            complete_text = "no record counts (values)" if row["kind"] == "value" else "no records yet"
        elif complete is not None and not complete.total:
            complete_text = (":warning: unknown: Not stated (Z) or Not known (99) was left blank "
                             f"(blank is not zero). Enter them with `/measure log {row['name']}`")
        else:
            assert complete is not None
            complete_text = (
                f"{_pct(complete.stated, complete.total)} with a stated ethnicity (A–S) · "
                f"Not stated (Z) {_pct(complete.not_stated, complete.total)} · "
                f"Not known (99) {_pct(complete.not_known, complete.total)}"
            )
            if unknown:
                complete_text += (
                    f" · :warning: unknown for {unknown} of {complete.periods} periods, where Not stated or Not "
                    "known was left blank (not counted above)"
                )
        blocks.append(divider())
        blocks.append(section(f"*{row['name']}*\n{describe_measure(row)}"))
        blocks.append(context(f"Latest period: {latest_text} · Ethnicity recorded: {complete_text}"))
    if len(rows) > 12:
        blocks.append(context(f"…and {len(rows) - 12} more measures."))
    if not has_balancing:
        blocks.append(section(BALANCING_REMINDER))
    text = f"{project_name}: " + "; ".join(str(r["name"]) for r in rows)
    return blocks, text


# --- import and undo -------------------------------------------------------------------------------------------

IMPORT_FORMATS = (
    "Accepted layouts (CSV or .xlsx, first sheet): aggregated counts with columns *period, ethnicity, numerator, "
    "denominator*; one value per group with *period, ethnicity, value*; or one row per birth or episode with "
    "*date, ethnicity, outcome* (0 or 1), which is counted up by period on the way in and never stored row by row. "
    "No identifiers: a file with NHS numbers, names, dates of birth or postcodes is refused."
)


def import_prompt(measure_name: str) -> str:
    return (
        f"Upload the file in this channel now and I'll import it into *{measure_name}* "
        "(or upload it with the measure name in the message). " + IMPORT_FORMATS
    )


def import_started(filename: str, measure_name: str, *, by: str) -> tuple[list[Block], str]:
    text = f":hourglass_flowing_sand: Importing {filename} into *{measure_name}* for <@{by}>…"
    return [section(text)], text


def import_result(outcome: ImportOutcome, *, by: str) -> tuple[list[Block], str]:
    """The channel reply: rounded counts only; row numbers go to the importer privately."""
    text = f":white_check_mark: <@{by}> imported {outcome.filename} into *{outcome.measure_name}*."
    lines = summary_lines(outcome, safe=True)
    blocks = [
        section(text),
        section("\n".join(lines)),
        actions(button("Undo this import", ids.A_UNDO_BATCH, value=str(outcome.batch_id))),
        context(
            f"Entry {outcome.batch_id} · counts are rounded to the nearest 5 and those under 8 shown as <8 · "
            f"`/measure undo {outcome.batch_id}` also undoes it."
        ),
    ]
    return blocks, f"{text} {periods_text(outcome.periods, outcome.period)}."


def import_details(outcome: ImportOutcome, detail: Sequence[str]) -> tuple[list[Block], str]:
    """Exact rejected rows and reading notes, for the person who imported (ephemeral)."""
    text = f"Details of your import of {outcome.filename} (only you can see this):"
    body = "\n".join(f"• {line}" for line in detail[:30])
    if len(detail) > 30:
        body += f"\n…and {len(detail) - 30} more lines."
    return [section(text), section(body or "No problems found.")], text


def import_refused(filename: str, message: str) -> tuple[list[Block], str]:
    text = f":no_entry: {filename} was not imported. {message}"
    return [section(text)], text


def import_failed(filename: str) -> tuple[list[Block], str]:
    text = (
        f":warning: The import of {filename} failed on our side and nothing was changed. "
        "Please try again; if it keeps happening, tell your Slack admin."
    )
    return [section(text)], text


def undone_message(outcome: UndoOutcome, *, by: str) -> tuple[list[Block], str]:
    what = f"the import of {outcome.filename}" if outcome.filename else f"entry {outcome.batch_id}"
    done = []
    if outcome.restored:
        done.append("the values it had replaced are back")
    if outcome.deleted:
        done.append("the values it added are removed")
    text = (
        f":leftwards_arrow_with_hook: <@{by}> undid {what} in *{outcome.measure_name}*"
        + (f"; {' and '.join(done)}." if done else ".")
    )
    return [section(text)], text


def help_blocks() -> list[Block]:
    return [
        section(
            "*Measures and data*\n"
            "`/measure new` define an outcome, process or balancing measure\n"
            "`/measure log` enter one period by ethnic group\n"
            "`/measure import [measure]` load a CSV or Excel extract\n"
            "`/measure list` measures, latest period and how complete ethnicity recording is\n"
            "`/measure undo [N]` undo the latest entry or import (or entry N)"
        )
    ]
