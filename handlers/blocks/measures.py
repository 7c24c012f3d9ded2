"""Pure Block Kit builders for measures: the measure and log forms, the measure list, import and undo replies."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from bot.core import ethnicity
from bot.services.measures import (
    ImportOutcome,
    UndoOutcome,
    group_name,
    kind_label,
    period_label,
    periods_text,
    summary_lines,
)
from handlers.blocks import (
    Block,
    View,
    actions,
    button,
    context,
    counted,
    divider,
    header,
    ids,
    input_block,
    modal,
    option,
    plain,
    section,
    text_input,
    typed,
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
DIRECTION_OPTIONS = (
    ("lower", "Lower is better"),
    ("higher", "Higher is better"),
    ("neither", "Neither: watch it"),
)
PERIOD_OPTIONS = (("day", "Daily"), ("week", "Weekly"), ("month", "Monthly"), ("quarter", "Quarterly"))
# The NHS reports in financial years (April to March), so financial-year quarters are the default.
QUARTER_OPTIONS = (
    ("financial", "NHS financial year: Q1 is April to June"),
    ("calendar", "Calendar year: Q1 is January to March"),
)

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
        {
            "label": plain("Whole high-level groups"),
            "options": [option(f"All {ethnicity.label(k)}", k) for k in ethnicity.HIGH_LEVEL_GROUPS],
        },
        {
            "label": plain("NHS ethnic categories"),
            "options": [option(ethnicity.display(c), c) for c in ethnicity.NATIONAL_CODES],
        },
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
        input_block(
            ids.B_MEASURE_NAME,
            "Measure name",
            text_input(max_length=120, placeholder="PPH of 1,000 ml or more"),
        ),
        input_block(
            ids.B_MEASURE_TYPE,
            "Type of measure",
            {
                "type": "radio_buttons",
                "options": [
                    {**option(text, key), "description": plain(desc)} for key, text, desc in TYPE_OPTIONS
                ],
            },
        ),
        input_block(
            ids.B_MEASURE_KIND,
            "What kind of number?",
            {
                "type": "static_select",
                "options": [option(t, k) for k, t in KIND_OPTIONS],
                "initial_option": _option_of(KIND_OPTIONS, "proportion"),
            },
        ),
        input_block(
            ids.B_MEASURE_NUMERATOR_DEF,
            "Numerator (or the value): exactly what is counted",
            text_input(
                multiline=True,
                max_length=1000,
                placeholder="Women with measured blood loss of 1,000 ml or more within 24 hours of birth",
            ),
        ),
        input_block(
            ids.B_MEASURE_DENOMINATOR_DEF,
            "Denominator: the records it is out of",
            text_input(
                multiline=True,
                max_length=1000,
                placeholder="All women giving birth in the unit (live or stillbirth)",
            ),
            optional=True,
            hint="Needed for proportions and rates.",
        ),
        input_block(
            ids.B_MEASURE_DIRECTION,
            "Which direction is improvement?",
            {
                "type": "radio_buttons",
                "options": [option(t, k) for k, t in DIRECTION_OPTIONS],
                "initial_option": _option_of(DIRECTION_OPTIONS, "lower"),
            },
        ),
        input_block(
            ids.B_MEASURE_REFERENCE,
            "Compare each group with",
            {
                "type": "static_select",
                "option_groups": reference_groups,
                "initial_option": reference_groups[0]["options"][0],
            },
            hint="Gaps are measured against this group. White British (A) is the usual NHS reference.",
        ),
        input_block(
            ids.B_MEASURE_PERIOD,
            "Reporting period",
            {
                "type": "static_select",
                "options": [option(t, k) for k, t in PERIOD_OPTIONS],
                "initial_option": _option_of(PERIOD_OPTIONS, "month"),
            },
        ),
        input_block(
            ids.B_MEASURE_QUARTERS,
            "Quarters and years",
            {
                "type": "radio_buttons",
                "options": [option(t, k) for k, t in QUARTER_OPTIONS],
                "initial_option": _option_of(QUARTER_OPTIONS, "financial"),
            },
            hint="How charts name and group quarters: 2024/25 Q1 (April to June 2024) or 2024 Q1.",
        ),
        input_block(
            ids.B_MEASURE_TARGET,
            "Target",
            text_input(placeholder="6%", max_length=20),
            optional=True,
            hint="For proportions a percentage (6%); otherwise a number in the measure's own unit.",
        ),
    ]
    return modal(
        ids.CB_MEASURE_NEW,
        "Add a measure",
        blocks,
        submit="Add measure",
        metadata={"channel_id": channel_id, "project_id": project_id},
    )


def describe_measure(measure: Mapping[str, Any]) -> str:
    direction = dict(DIRECTION_OPTIONS)[measure["direction"]].lower()
    period = dict(PERIOD_OPTIONS)[measure["period"]].lower()
    if measure["period"] == "quarter":
        period += " (calendar year)" if measure.get("quarters") == "calendar" else " (NHS financial year)"
    target = (
        f" · target {target_text(measure['kind'], measure['target'])}"
        if measure.get("target") is not None
        else ""
    )
    return (
        f"{measure['measure_type']} · {kind_label(measure['kind'])} · {direction} · "
        f"compared with {reference_label(measure['reference_group'])} · {period}{target}"
    )


def target_text(kind: str, target: float) -> str:
    return f"{target:.1%}" if kind == "proportion" else f"{target:g}"


def measure_added(measure: Mapping[str, Any], *, by: str, has_balancing: bool) -> tuple[list[Block], str]:
    text = f"<@{by}> added a measure: *{typed(measure['name'])}* ({describe_measure(measure)})."
    blocks: list[Block] = [section(text)]
    definition = f"*Counts:* {typed(measure['numerator_definition'])}"
    if measure.get("denominator_definition"):
        definition += f"\n*Out of:* {typed(measure['denominator_definition'])}"
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
                {
                    "type": "static_select",
                    "action_id": ids.A_LOG_MEASURE_PICKED,
                    "options": options,
                    "initial_option": next(o for o in options if o["value"] == str(measure_id)),
                },
                dispatch_action=True,
            )
        )
    else:
        blocks.append(section(f"*{typed(measure['name'])}*"))
    blocks.append(context(f"{describe_measure(measure)}\n{hint}"))
    blocks.append(
        input_block(
            ids.B_LOG_PERIOD,
            "Day"
            if measure["period"] == "day"
            else f"Period ({dict(PERIOD_OPTIONS)[measure['period']].lower()}: any day in it)",
            {"type": "datepicker", "initial_date": period_initial.isoformat()},
        )
    )
    zero = "0" if kind == "count" else "0/0"
    for code in groups:
        element = text_input(placeholder=placeholder, initial=values.get(code), max_length=40)
        # Blank is unknown, not zero: for the missing categories that difference decides whether completeness
        # can be reported at all.
        row_hint = (
            f"Type {zero} if there were none. Left blank, it counts as not entered, so completeness is unknown."
            if code in ethnicity.MISSING_CODES and kind != "value"
            else None
        )
        blocks.append(
            input_block(
                ids.B_LOG_ROW_PREFIX + code, ethnicity.display(code), element, optional=True, hint=row_hint
            )
        )
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
    text = f"<@{by}> entered {period} for *{typed(outcome.measure_name)}* ({groups})."
    if replaced:
        were = "was" if replaced == 1 else "were"
        text += (
            f" {counted(replaced, 'earlier value')} {were} replaced; they are kept and come back with Undo."
        )
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
        empty = [
            section(f"*{typed(project_name)}* has no measures yet. Add one with `/measure new`."),
            section(BALANCING_REMINDER),
        ]
        return empty, f"{typed(project_name)} has no measures yet."
    blocks: list[Block] = [header(f"Measures: {project_name}"[:150])]
    for row in rows[:12]:
        latest = row.get("latest")
        latest_text = period_label(latest, row["period"]) if latest else "no data yet"
        complete = row.get("completeness")
        unknown = complete.unknown_periods if complete is not None else 0
        if (complete is None or not complete.total) and not unknown:
            complete_text = "no record counts (values)" if row["kind"] == "value" else "no records yet"
        elif complete is not None and not complete.total:
            complete_text = (
                ":warning: unknown: Not stated (Z) or Not known (99) was left blank "
                f"(blank is not zero). Enter them with `/measure log {row['name']}`"
            )
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
        blocks.append(section(f"*{typed(row['name'])}*\n{describe_measure(row)}"))
        blocks.append(context(f"Latest period: {latest_text} · Ethnicity recorded: {complete_text}"))
    if len(rows) > 12:
        blocks.append(context(f"…and {len(rows) - 12} more measures."))
    if not has_balancing:
        blocks.append(section(BALANCING_REMINDER))
    text = f"{typed(project_name)}: " + "; ".join(typed(r["name"]) for r in rows)
    return blocks, text


# --- import and undo -------------------------------------------------------------------------------------------

IMPORT_FORMATS = (
    "Accepted layouts (CSV or .xlsx, first sheet): aggregated counts with columns *period, ethnicity, numerator, "
    "denominator*; one value per group with *period, ethnicity, value*; or one row per birth or episode with "
    "*date, ethnicity, outcome* (outcome 1/0, Yes/No, Y/N or True/False), which is counted up by period on the way "
    "in and never stored row by row. "
    "No identifiers: a file with NHS numbers, names, dates of birth or postcodes is refused."
)
IMPORT_EXAMPLE = (
    "```date,ethnicity,outcome\n2025-04-03,A,0\n2025-04-03,N,Yes\n2025-04-04,Not stated,No```\n"
    "or\n"
    "```period,ethnicity,numerator,denominator\n2025-04,A,14,230\n2025-04,N,9,61```"
)
IMPORT_FILETYPES = ["csv", "xlsx", "xlsm", "txt"]
# Slack's own limit for a file_input upload.
FILE_INPUT_MAX_MB = 10


def _escape(text: str) -> str:
    return typed(text)


def file_label(filename: str | None) -> str:
    """A file name as it appears in a message: Slack's control characters escaped, cut to a sensible length."""
    name = " ".join(str(filename or "the file").split())
    name = name if len(name) <= 80 else name[:79] + "…"
    return _escape(name)


def import_modal(
    *,
    channel_id: str,
    project_id: int,
    measures: Sequence[Mapping[str, Any]],
    measure_id: int | None,
    max_mb: float,
) -> View:
    """The private upload form: the file goes to the bot without being shared in the channel."""
    options = [option(str(m["name"]), str(m["id"])) for m in measures][:100]
    select: dict[str, Any] = {
        "type": "static_select",
        "options": options,
        "placeholder": plain("Choose the measure"),
    }
    chosen = next((o for o in options if o["value"] == str(measure_id)), None)
    if chosen is not None:
        select["initial_option"] = chosen
    limit = min(max_mb, FILE_INPUT_MAX_MB)
    blocks: list[Block] = [
        section(
            ":lock: The file comes to me privately: it is *not* shared in the channel. The channel sees only a "
            "summary with counts rounded for confidentiality; the details of any rows I could not use come to you "
            "alone."
        ),
        input_block(ids.B_IMPORT_MEASURE, "Measure", select),
        input_block(
            ids.B_IMPORT_FILE,
            "Extract (CSV or Excel)",
            {"type": "file_input", "filetypes": IMPORT_FILETYPES, "max_files": 1},
            hint=f"One file, up to {limit:g} MB.",
        ),
        section(IMPORT_FORMATS),
        section("For example:\n" + IMPORT_EXAMPLE),
        context(
            "Importing the same periods again replaces the earlier values (they are kept, and Undo brings them "
            "back). Each file is imported once; upload a changed file to import again."
        ),
    ]
    return modal(
        ids.CB_MEASURE_IMPORT,
        "Import data",
        blocks,
        submit="Import",
        metadata={"channel_id": channel_id, "project_id": project_id},
    )


def import_result(outcome: ImportOutcome, *, by: str) -> tuple[list[Block], str]:
    """The channel reply: rounded counts only; exact counts and row numbers go to the importer privately."""
    text = f":white_check_mark: <@{by}> imported {file_label(outcome.filename)} into *{typed(outcome.measure_name)}*."
    lines = summary_lines(outcome, safe=True)
    blocks = [
        section(text),
        section("\n".join(lines)),
        actions(button("Undo this import", ids.A_UNDO_BATCH, value=str(outcome.batch_id))),
        context(
            f"Entry {outcome.batch_id} · `/measure undo {outcome.batch_id}` also undoes it · exact figures went to "
            f"<@{by}> only."
        ),
    ]
    return blocks, f"{text} {periods_text(outcome.periods, outcome.period)}."


# Blocks per private message (Slack allows 50), leaving room for the heading and the file note.
_DETAIL_BLOCKS = 44


def _chunks(lines: Sequence[str], limit: int = 2900) -> list[str]:
    """Lines packed into section-sized texts (never splitting a line unless it alone is too long)."""
    out: list[str] = []
    current = ""
    for line in lines:
        line = line if len(line) <= limit else line[: limit - 1] + "…"
        if current and len(current) + 1 + len(line) > limit:
            out.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out


def import_details(
    *, heading: str, exact: Sequence[str], detail: Sequence[str], file_note: str | None
) -> tuple[list[Block], str]:
    """The importer's private message: exact totals, every problem (most rows first) with its first rows, notes,
    and what happened to their file."""
    text = f"{heading} (only you can see this)"
    blocks: list[Block] = [section(text)]
    if exact:
        blocks.append(section("\n".join(exact)))
    packed = _chunks([f"• {_escape(line)}" for line in detail])
    if len(packed) > _DETAIL_BLOCKS:
        left = sum(p.count("\n• ") + 1 for p in packed[_DETAIL_BLOCKS - 1 :])
        packed = [
            *packed[: _DETAIL_BLOCKS - 1],
            f"…and {left:,} more lines of problems (the largest are above). "
            "`mfi-ar import FILE` on the server lists them all.",
        ]
    blocks += [section(p) for p in packed]
    if file_note:
        blocks.append(context(file_note))
    return blocks, text


def import_refused(
    filename: str | None, public: str, *, by: str, has_details: bool
) -> tuple[list[Block], str]:
    """A refusal as the channel sees it: what to do, with no count and no row number."""
    text = (
        f":no_entry: <@{by}>'s file {file_label(filename)} was not imported, and nothing was saved. "
        f"{_escape(public)}"
    )
    if has_details:
        text += " The details are in a message only they can see."
    return [section(text)], text


def import_failed(filename: str | None) -> tuple[list[Block], str]:
    text = (
        f":warning: The import of {file_label(filename)} failed on our side and nothing was saved. "
        "Please try again; if it keeps happening, tell your Slack admin."
    )
    return [section(text)], text


def already_imported(filename: str | None, measure_name: str, batch_id: int, *, inline: bool = False) -> str:
    """Said when the same version of a file comes again; `inline` for a form's error (plain text, no mrkdwn)."""
    name = " ".join(str(filename or "This file").split())[:80] if inline else file_label(filename)
    measure, undo = (
        (measure_name, f"/measure undo {batch_id}")
        if inline
        else (f"*{typed(measure_name)}*", f"`/measure undo {batch_id}`")
    )
    return (
        f"{name} was already imported into {measure} (entry {batch_id}), so nothing was saved again. To import it "
        f"afresh, undo entry {batch_id} first ({undo}); to add newer figures, upload the new export."
    )


def file_kept_note(filename: str | None, permalink: str | None, *, deleted: bool) -> str:
    """What happened to the uploaded file, said honestly: a bot can delete only files it uploaded itself."""
    name = file_label(filename)
    if deleted:
        return f":wastebasket: I deleted {name} from Slack now that it is imported."
    # The link's address is percent-encoded so that nothing in it (a file name is typed) can close the link early.
    url = urllib.parse.quote(permalink, safe=":/?#[]@!$'()*+,;=%~") if permalink else ""
    where = f"<{url}|{name}>" if url.startswith("https://") else name
    return (
        f":lock: {where} is still in your Slack files, visible only to you (it was not shared in any channel). "
        "Slack does not let a bot delete a file someone else uploaded, so please delete it yourself: open it from "
        "*Files* in the sidebar (or your profile), choose ⋮ *More actions* and then *Delete file*."
    )


def shared_file_warning(filename: str | None) -> str:
    """Said privately to someone who shared an extract in a project channel."""
    return (
        f"If {file_label(filename)} holds patient-level rows, please delete it from the channel now "
        "(hover over it, ⋮ *More actions*, *Delete file*): everyone here can download it. I no longer import files "
        "shared in a channel; `/measure import` takes the file privately instead."
    )


def undone_message(outcome: UndoOutcome, *, by: str) -> tuple[list[Block], str]:
    what = (
        f"the import of {file_label(outcome.filename)}" if outcome.filename else f"entry {outcome.batch_id}"
    )
    done = []
    if outcome.restored:
        done.append("the values it had replaced are back")
    if outcome.deleted:
        done.append("the values it added are removed")
    text = f":leftwards_arrow_with_hook: <@{by}> undid {what} in *{typed(outcome.measure_name)}*" + (
        f"; {' and '.join(done)}." if done else "."
    )
    return [section(text)], text


def help_blocks() -> list[Block]:
    return [
        section(
            "*Measures and data*\n"
            "`/measure new` define an outcome, process or balancing measure\n"
            "`/measure log` enter one period by ethnic group\n"
            "`/measure import [measure]` load a CSV or Excel extract privately (a form, not the channel)\n"
            "`/measure list` measures, latest period and how complete ethnicity recording is\n"
            "`/measure undo [N]` undo the latest entry or import (or entry N)"
        )
    ]
