"""Pure Block Kit builders for PDSA cycles: the plan/do/study/act modals, the cycle card, lists and Home."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.core import pdsa
from bot.services.pdsa import CycleInfo
from handlers.blocks import (
    Block,
    View,
    actions,
    button,
    context,
    divider,
    fields,
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

MAX_GROUP_INPUTS = 40  # keeps every modal well inside Slack's 100 blocks


@dataclass(frozen=True)
class MeasureInfo:
    id: int
    name: str
    measure_type: str
    kind: str


def nice_date(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _group_label(code: str) -> str:
    return pdsa.group_name(code)


# ---------------------------------------------------------------- the plan modal (new, next cycle, edit)


def idea_blocks(
    ideas: Sequence[tuple[int, str]], drivers: Sequence[tuple[int, str]], current: Any
) -> list[Block]:
    """Hang the cycle off the driver diagram: one of its change ideas, or this idea added under one of its drivers."""
    if not drivers:
        return [context("Map the drivers of the gap with `/mfi drivers`, and each cycle can hang off one.")]
    out: list[Block] = []
    if ideas:
        options = [option(_short(text), str(idea_id)) for idea_id, text in ideas][:100]
        element: dict[str, Any] = {
            "type": "static_select",
            "placeholder": plain("Choose a change idea"),
            "options": options,
        }
        chosen = next((o for o in options if o["value"] == str(current)), None)
        if chosen:
            element["initial_option"] = chosen
        out.append(input_block(ids.B_PDSA_IDEA, "Change idea on the driver diagram", element, optional=True))
    driver_options = [option(_short(text), str(driver_id)) for driver_id, text in drivers][:100]
    out.append(
        input_block(
            ids.B_PDSA_IDEA_DRIVER,
            "Or add it to the diagram, under this driver" if ideas else "Add it to the driver diagram, under",
            {"type": "static_select", "placeholder": plain("Choose a driver"), "options": driver_options},
            optional=True,
            hint="The change idea above is added to the diagram in these words (300 characters at most).",
        )
    )
    return out


def _short(text: str, limit: int = 75) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return (cut or text[: limit - 1]) + "…"


def plan_modal(
    *,
    callback_id: str,
    groups: Sequence[str],
    measures: Sequence[MeasureInfo],
    earlier_cycles: Sequence[tuple[int, str]] = (),
    initial: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any],
    notice: str | None = None,
    ideas: Sequence[tuple[int, str]] = (),
    drivers: Sequence[tuple[int, str]] = (),
) -> View:
    """Plan a cycle: the question, the measures, a prediction per group, who/where/when, and who shaped it."""
    p = initial or {}
    outcome_measures = [m for m in measures if m.measure_type != "balancing"] or list(measures)
    balancing = [m for m in measures if m.measure_type == "balancing"]
    blocks: list[Block] = []
    if notice:
        blocks.append(section(notice))
    blocks += [
        input_block(
            ids.B_PDSA_TITLE,
            "Title of this test",
            text_input(initial=p.get("title"), max_length=150, placeholder="Interpreter at booking"),
        ),
        input_block(
            ids.B_PDSA_CHANGE,
            "The change idea being tested",
            text_input(initial=p.get("change_idea"), multiline=True, max_length=2000),
        ),
        *idea_blocks(ideas, drivers, p.get("change_idea_id")),
        input_block(
            ids.B_PDSA_QUESTION,
            "The question this cycle answers",
            text_input(
                initial=p.get("question"),
                multiline=True,
                max_length=2000,
                placeholder="Will offering an interpreter at booking change ... for ...?",
            ),
        ),
    ]
    if outcome_measures:
        options = [option(m.name, str(m.id)) for m in outcome_measures][:100]
        element: dict[str, Any] = {
            "type": "multi_static_select",
            "options": options,
            "placeholder": plain("Choose one or more measures"),
        }
        chosen = {str(i) for i in p.get("measure_ids") or []}
        initial_options = [o for o in options if o["value"] in chosen]
        if initial_options:
            element["initial_options"] = initial_options
        blocks.append(
            input_block(
                ids.B_PDSA_MEASURES,
                "Measures to judge it",
                element,
                optional=True,
                hint="The predictions below are judged against the first of these.",
            )
        )
    else:
        blocks.append(
            section(
                ":warning: *This project has no measures yet*, so a prediction has nothing to be judged against. "
                "Add one first with `/measure new` (or the project card's *Add a measure*), then plan the cycle.",
                block_id=ids.B_PDSA_MEASURES,
            )
        )
    blocks.append(
        section(
            "*Predict what will happen*, overall and for each group the aim is for, and for the reference group. "
            "One line each: a value or a direction, then a dash and why. " + pdsa.PREDICTION_HINT
        )
    )
    existing = {str(pr.get("group")): str(pr.get("text") or "") for pr in p.get("predictions") or []}
    for code in list(dict.fromkeys(groups))[:MAX_GROUP_INPUTS]:
        blocks.append(
            input_block(
                ids.B_PDSA_PREDICT_PREFIX + code,
                f"Prediction: {_group_label(code)}",
                text_input(
                    initial=existing.get(code),
                    max_length=500,
                    placeholder="9% — interpreters at booking reach more women who need them",
                ),
                optional=True,
            )
        )
    start: dict[str, Any] = {"type": "datepicker"}
    end: dict[str, Any] = {"type": "datepicker"}
    if p.get("start_date"):
        start["initial_date"] = str(p["start_date"])
    if p.get("end_date"):
        end["initial_date"] = str(p["end_date"])
    plan = p.get("plan") or {}
    blocks += [
        input_block(
            ids.B_PDSA_WHO,
            "Who will run it",
            text_input(initial=plan.get("who"), max_length=500),
            optional=True,
        ),
        input_block(
            ids.B_PDSA_WHERE, "Where", text_input(initial=plan.get("where"), max_length=500), optional=True
        ),
        input_block(ids.B_PDSA_START, "Start date", start),
        input_block(
            ids.B_PDSA_END,
            "End date",
            end,
            hint="The Study compares data for these dates with the same number of days just before.",
        ),
        input_block(
            ids.B_PDSA_TASKS,
            "Tasks (one per line)",
            text_input(initial="\n".join(plan.get("tasks") or []) or None, multiline=True, max_length=3000),
            optional=True,
        ),
        input_block(
            ids.B_PDSA_INVOLVEMENT,
            "Who from the communities most affected shaped this test?",
            text_input(initial=p.get("involvement"), multiline=True, max_length=2000),
            hint='Names, roles or groups. If no one has yet, write "not yet": the bot will remind the team '
            "and list it on the Home tab until someone has.",
        ),
    ]
    if balancing:
        options = [option(m.name, str(m.id)) for m in balancing][:100]
        bal: dict[str, Any] = {
            "type": "static_select",
            "options": options,
            "placeholder": plain("Choose a balancing measure"),
        }
        current = next((o for o in options if o["value"] == str(p.get("balancing_measure_id"))), None)
        if current:
            bal["initial_option"] = current
        blocks.append(
            input_block(
                ids.B_PDSA_BALANCING,
                "Balancing measure to watch",
                bal,
                optional=True,
                hint="Watches for harm the change might cause, group by group.",
            )
        )
    else:
        blocks.append(
            section(
                ":eyes: No balancing measure yet. The framework asks teams to watch for unintended harm that could "
                "deepen disparities: add one with `/measure new` (type: balancing).",
                block_id=ids.B_PDSA_BALANCING,
            )
        )
    if earlier_cycles and callback_id == ids.CB_PDSA_NEW:
        options = [option(text, str(cid)) for cid, text in earlier_cycles][-100:]
        cont: dict[str, Any] = {
            "type": "static_select",
            "options": options,
            "placeholder": plain("A new change idea"),
        }
        current = next((o for o in options if o["value"] == str(p.get("continue_cycle_id"))), None)
        if current:
            cont["initial_option"] = current
        blocks.append(
            input_block(
                ids.B_PDSA_CONTINUE,
                "Continues an earlier cycle (a ramp)?",
                cont,
                optional=True,
                hint="Choose the cycle this one builds on; leave empty for a new change idea.",
            )
        )
    titles = {ids.CB_PDSA_NEW: "Plan a PDSA cycle", ids.CB_PDSA_EDIT: "Edit the PDSA cycle"}
    submit = "Save changes" if callback_id == ids.CB_PDSA_EDIT else "Post the plan"
    return modal(
        callback_id, titles.get(callback_id, "Plan a PDSA cycle"), blocks, submit=submit, metadata=metadata
    )


# ---------------------------------------------------------------- Do, Study and Act modals


def do_modal(cycle: CycleInfo, *, metadata: Mapping[str, Any]) -> View:
    radio = {
        "type": "radio_buttons",
        "options": [option("Yes", "yes"), option("Partly", "partly"), option("No", "no")],
    }
    blocks = [
        section(
            f"*PDSA {cycle.ref}: {typed(cycle.title)}*\nLog what happened. You can add several entries while the test runs."
        ),
        input_block(ids.B_PDSA_DO_WHAT, "What happened?", text_input(multiline=True, max_length=3000)),
        input_block(ids.B_PDSA_DO_AS_PLANNED, "Did it run as planned?", radio),
        input_block(
            ids.B_PDSA_DO_OBSERVATIONS,
            "Observations (anything surprising, who it reached, who it missed)",
            text_input(multiline=True, max_length=3000),
            optional=True,
        ),
    ]
    return modal(ids.CB_PDSA_DO, f"Do: PDSA {cycle.ref}", blocks, submit="Log it", metadata=metadata)


def study_modal(
    cycle: CycleInfo,
    *,
    measure: MeasureInfo | None,
    groups: Sequence[str],
    prefill: Mapping[str, tuple[int, int]],
    missing_text: str | None,
    metadata: Mapping[str, Any],
) -> View:
    """Results per group, pre-filled from logged data; a person can type or correct them as events/total."""
    window = f"{nice_date(cycle.start_date)} to {nice_date(cycle.end_date)}"
    intro = f"*PDSA {cycle.ref}: {typed(cycle.title)}*\nResults for *{typed(measure.name) if measure else 'the measure'}*, {window}."
    blocks: list[Block] = [section(intro)]
    if prefill:
        blocks.append(
            context(
                "Filled in from the data logged for these dates (only you can see this form). "
                "Correct anything that is wrong."
            )
        )
    if missing_text:
        blocks.append(section(missing_text))
    for code in list(dict.fromkeys(groups))[:MAX_GROUP_INPUTS]:
        counts = prefill.get(code)
        blocks.append(
            input_block(
                ids.B_PDSA_OBSERVED_PREFIX + code,
                f"Observed: {_group_label(code)}",
                text_input(
                    initial=f"{counts[0]}/{counts[1]}" if counts else None,
                    max_length=40,
                    placeholder="12/140",
                ),
                optional=True,
                hint="events/total for the cycle's dates",
            )
        )
    blocks.append(
        input_block(
            ids.B_PDSA_STUDY_LEARNING,
            "What did you learn?",
            text_input(multiline=True, max_length=3000),
            optional=True,
        )
    )
    blocks.append(
        input_block(
            ids.B_PDSA_STUDY_NOT_FOR,
            "Who did this not work for?",
            text_input(multiline=True, max_length=500),
            optional=True,
            hint="A group, never a person. It is added to the register of who is missing (`/mfi missing`).",
        )
    )
    return modal(ids.CB_PDSA_STUDY, f"Study: PDSA {cycle.ref}", blocks, submit="Compare", metadata=metadata)


def act_modal(
    cycle: CycleInfo, *, measure_name: str | None, metadata: Mapping[str, Any], harm: Sequence[str] = ()
) -> View:
    blocks: list[Block] = [section(f"*PDSA {cycle.ref}: {typed(cycle.title)}*")]
    if harm:
        # Harm first: the Study's harm signal, and the team's response to it before anything is adopted.
        blocks.append(
            section(
                ":warning: *The Study found a harm signal*\n"
                + "\n".join(f"• {h[0].upper()}{h[1:]}" for h in harm[:5])
            )
        )
        blocks.append(
            input_block(
                ids.B_PDSA_ACT_HARM,
                "How will the team respond to this harm signal?",
                text_input(multiline=True, max_length=3000),
                optional=True,
                hint="Needed before you adopt the change.",
            )
        )
    if cycle.status not in ("studied", "acted"):
        blocks.append(
            section(
                ":warning: *This cycle hasn't been studied yet.* You can still decide, but the decision won't rest on the "
                "results for each group, and a warning will be kept in the cycle's history. "
                f"To study it first, close this and use `/pdsa study {cycle.ref}`."
            )
        )
    decision = {
        "type": "radio_buttons",
        "options": [
            option("Adopt: make it how we work", "adopt"),
            option("Adapt: change it and test again", "adapt"),
            option("Abandon: stop this change", "abandon"),
        ],
    }
    involved = {
        "type": "radio_buttons",
        "options": [option("Yes", "yes"), option("Partly", "partly"), option("No", "no")],
    }
    blocks += [
        input_block(ids.B_PDSA_DECISION, "Decision", decision),
        input_block(ids.B_PDSA_ACT_REASON, "Why?", text_input(multiline=True, max_length=3000)),
        input_block(ids.B_PDSA_ACT_INVOLVED, "Did those most affected take part in this decision?", involved),
        input_block(
            ids.B_PDSA_ACT_WHO,
            "Who took part?",
            text_input(max_length=500),
            optional=True,
            hint="Needed when the answer is yes or partly.",
        ),
    ]
    if measure_name:
        blocks += [
            input_block(
                ids.B_PDSA_REBASE,
                "SPC limits",
                {
                    "type": "checkboxes",
                    "options": [
                        option(f"Adopted: recalculate {measure_name[:40]}'s limits from a date", "rebase")
                    ],
                },
                optional=True,
            ),
            input_block(
                ids.B_PDSA_REBASE_DATE,
                "Recalculate limits from",
                {"type": "datepicker"},
                optional=True,
                hint="Only for an adopted change that has shifted the process.",
            ),
        ]
    return modal(
        ids.CB_PDSA_ACT, f"Act: PDSA {cycle.ref}", blocks, submit="Record decision", metadata=metadata
    )


# ---------------------------------------------------------------- the card and messages


def _predictions_text(cycle: CycleInfo) -> str:
    if not cycle.predictions:
        return "_No predictions recorded._"
    lines = []
    for data in cycle.predictions:
        prediction = pdsa.Prediction.from_dict(data)
        lines.append(
            f"• *{_group_label(prediction.group)}*: {typed(pdsa.describe_prediction(prediction, cycle.kind))}"
        )
    return "\n".join(lines)


STATUS_TEXT = {"planned": "Planned", "doing": "Doing", "studied": "Studied", "acted": "Acted"}


def cycle_card(cycle: CycleInfo, *, buttons: bool = True) -> list[Block]:
    plan = cycle.plan or {}
    involvement = typed(cycle.involvement or "not recorded")
    if cycle.involvement_pending:
        involvement = (
            ":hourglass: *Not yet*: no one from the communities most affected has shaped this test yet."
        )
    tasks = plan.get("tasks") or []
    blocks: list[Block] = [
        header(f"PDSA {cycle.ref}: {cycle.title}"),
        section(
            f"*Change idea*\n{typed(cycle.change_idea)}"
            + (f"\n_On the driver diagram, under:_ {typed(cycle.driver[:200])}" if cycle.driver else "")
            + f"\n*Question*\n{typed(cycle.question)}"
        ),
        section("*Predictions*\n" + _predictions_text(cycle)),
        fields(
            [
                ("When", f"{nice_date(cycle.start_date)} to {nice_date(cycle.end_date)}"),
                (
                    "Who / where",
                    " · ".join(typed(x) for x in (plan.get("who"), plan.get("where")) if x) or "not set",
                ),
                (
                    "Measure" if len(cycle.measures) == 1 else "Measures",
                    ", ".join(typed(m) for m in cycle.measures) or "none",
                ),
                ("Balancing measure", typed(cycle.balancing or "none chosen")),
                ("Shaped by those most affected", involvement),
            ]
        ),
    ]
    if tasks:
        blocks.append(section("*Tasks*\n" + "\n".join(f"• {typed(t)}" for t in tasks[:20])))
    status = STATUS_TEXT.get(cycle.status, cycle.status)
    if cycle.decision:
        status += f" ({typed(cycle.decision)})"
    # One numbering everywhere: "PDSA N.S", where S is the ramp step (never the cycle's internal number).
    ramp = f"ramp step {cycle.ramp_step} · " if cycle.ramp_step > 1 else ""
    blocks.append(context(f"PDSA {cycle.ref} · {ramp}*{status}* · Next: {cycle.next_step}"))
    if buttons:
        value = str(cycle.id)
        blocks.append(
            actions(
                button(
                    "Do", ids.A_PDSA_DO, value=value, style="primary" if cycle.status == "planned" else None
                ),
                button(
                    "Study",
                    ids.A_PDSA_STUDY,
                    value=value,
                    style="primary" if cycle.status == "doing" else None,
                ),
                button(
                    "Act", ids.A_PDSA_ACT, value=value, style="primary" if cycle.status == "studied" else None
                ),
                button("Edit", ids.A_PDSA_EDIT, value=value),
            )
        )
    return blocks


def cycle_text(cycle: CycleInfo) -> str:
    return f"PDSA {cycle.ref}: {typed(cycle.title)} ({STATUS_TEXT.get(cycle.status, cycle.status)}). {typed(cycle.question)}"


def list_blocks(cycles: Sequence[CycleInfo], *, record: str | None) -> list[Block]:
    if not cycles:
        return [
            section(
                "No PDSA cycles yet. Plan the first with `/pdsa new`: it asks for a prediction for each group "
                "the aim is for, so the Study can show who the change worked for."
            )
        ]
    blocks: list[Block] = [header("PDSA cycles")]
    for cycle in cycles[-40:]:
        flag = " :rotating_light: *OVERDUE*" if cycle.overdue else ""
        pending = (
            " · :hourglass: involvement not yet"
            if cycle.involvement_pending and cycle.status != "acted"
            else ""
        )
        status = STATUS_TEXT.get(cycle.status, cycle.status) + (
            f" ({typed(cycle.decision)})" if cycle.decision else ""
        )
        blocks.append(
            section(
                f"*PDSA {cycle.ref}: {typed(cycle.title)}*{flag}\n{status}{pending} · Next: {cycle.next_step}"
            )
        )
    if record:
        blocks.append(divider())
        blocks.append(section(f"*Our predictions so far*\n{record}"))
    blocks.append(context("`/pdsa show N` for a cycle's card and history · `/pdsa new` to plan another"))
    return blocks[:50]


def show_blocks(cycle: CycleInfo) -> list[Block]:
    blocks = cycle_card(cycle, buttons=True)
    if cycle.history:
        blocks.append(divider())
        blocks.append(section("*History*\n" + "\n".join(cycle.history[-25:])))
    return blocks


def home_section(cycles: Sequence[CycleInfo], *, record: str | None) -> list[Block]:
    """The PDSA part of a project's Home section: open cycles with their next step, overdue ones flagged."""
    open_cycles = [c for c in cycles if c.status != "acted"]
    pending = [c for c in cycles if c.involvement_pending and c.status != "acted"]
    if not open_cycles and not record:
        return []
    lines = []
    for cycle in open_cycles[-12:]:
        flag = ":rotating_light: *OVERDUE* " if cycle.overdue else ""
        lines.append(f"• {flag}*PDSA {cycle.ref}: {typed(cycle.title)}* · Next: {cycle.next_step}")
    blocks: list[Block] = []
    if lines:
        blocks.append(section("*Open PDSA cycles*\n" + "\n".join(lines)))
    if pending:
        blocks.append(
            section(
                ":hourglass: *Still to involve those most affected:* "
                + ", ".join(f"PDSA {c.ref}" for c in pending)
                + ". Record who shaped each test with `/pdsa edit N`."
            )
        )
    if record:
        blocks.append(context(record))
    return blocks
