"""The leads' weekly equity nudge: gaps, signals, data gaps, overdue PDSA steps, voices and one next step."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import pandas as pd
from sqlmodel import Session

from bot import ethnicity
from handlers.blocks import Block, context, header, section
from storage import answers_repo, pdsa_repo
from storage import repositories as repo
from storage.models import Answer, Measure, Project

logger = logging.getLogger(__name__)

NOT_AVAILABLE = "analysis not available"
_NATIONAL = tuple("ABCDEFGHJKLMNPRS")
_LOW_COMPLETENESS = {"COMPLETENESS_LOW", "COMPLETENESS_CRITICAL"}
_MAX_MEASURES = 4
_QUOTE_CHARS = 160


@dataclass
class MeasureFindings:
    """What the nudge says about one measure, plus the flags that choose the next step."""

    line: str
    warnings: list[str] = field(default_factory=list)
    completeness_low: bool = False
    concerns: list[str] = field(default_factory=list)  # groups with an SPC signal of concern


def amount(n: int, noun: str, plural: str | None = None) -> str:
    """A count as words that never reveal a number from 1 to 7: "no answers", "a few answers (fewer than 8)", "about 15 answers"."""
    from bot.equity.disclosure import cell

    many = plural or noun + "s"
    if n == 0:
        return f"no {many}"
    decision = cell(n)
    if decision.suppressed:
        return f"a few {many} (fewer than 8)"
    return f"about {decision.shown} {many}"


def _codes(groups: list[str] | tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for group in groups:
        try:
            out.extend(c for c in ethnicity.members(group) if c not in out)
        except (KeyError, ValueError):
            continue
    return out


def _frame(session: Session, measure: Measure) -> pd.DataFrame:
    assert measure.id is not None
    rows = [
        {"period": p.period_start, "group": p.group_code, "numerator": p.numerator, "denominator": p.denominator,
         "value": p.value}
        for p in answers_repo.data_points(session, measure_id=measure.id)
        if p.group_code != ethnicity.ALL
    ]
    return pd.DataFrame(rows, columns=["period", "group", "numerator", "denominator", "value"])


def _direction(measure: Measure) -> Literal["higher", "lower", "neither"]:
    return cast(Literal["higher", "lower", "neither"], measure.direction if measure.direction in ("higher", "lower", "neither") else "neither")


def _gap_verdict(frame: pd.DataFrame, *, project: Project, measure: Measure) -> str:
    from bot.equity.stats import gap_change
    from bot.equity.types import GroupCounts

    counts = frame.dropna(subset=["numerator", "denominator"])
    periods = sorted(set(counts["period"]))
    if len(periods) < 2:
        return "too early to judge the gap (one period of data so far)"
    focus = _codes(project.focus_groups)
    reference_key = measure.reference_group or project.reference_group
    if reference_key in (ethnicity.BEST, ethnicity.OTHERS):
        # Everyone outside the focus groups, including the log form's "All other groups" row.
        reference = [*(c for c in _NATIONAL if c not in focus), ethnicity.OTHERS]
    else:
        reference = _codes([reference_key])
    half = len(periods) // 2
    windows = (set(periods[:half]), set(periods[half:]))

    def total(codes: list[str], window: set[Any], key: str) -> GroupCounts:
        part = counts[counts["group"].isin(codes) & counts["period"].isin(window)]
        return GroupCounts(key, int(part["numerator"].sum()), int(part["denominator"].sum()))

    focus_label = "; ".join(ethnicity.short_label(g) for g in project.focus_groups) or "the focus groups"
    labels = {"FOCUS": focus_label, "REF": ethnicity.short_label(reference_key) if reference else "the reference group"}
    direction = _direction(measure)
    result = gap_change(
        group_before=total(focus, windows[0], "FOCUS"),
        group_after=total(focus, windows[1], "FOCUS"),
        ref_before=total(reference, windows[0], "REF"),
        ref_after=total(reference, windows[1], "REF"),
        direction="lower" if direction == "neither" else direction,
        labels=labels,
        target_gap=project.target_gap,
    )
    return _brief(result.verdict, sentences=1)


# A parenthesis that is not an ethnic-category code such as "(N)": the statistical detail, which the
# /equity view shows in full and the nudge leaves out to stay on one screen.
_DETAIL = re.compile(r"\s*\((?![A-Z0-9]{1,2}\))[^()]*\)")


def _brief(text: str, *, sentences: int = 2, limit: int = 320) -> str:
    """The first sentence(s) of a finding, without the statistical detail in brackets."""
    first_line = _DETAIL.sub("", text.split("\n", 1)[0]).strip()
    # A sentence that introduces a list (ends with a colon) means nothing once the list is cut off.
    parts = [p for p in re.split(r"(?<=[.!?:])\s+", first_line) if p and not p.endswith(":")]
    short = " ".join(parts[:sentences])
    return short if len(short) <= limit else short[: limit - 1].rstrip() + "…"


def _spc_concerns(frame: pd.DataFrame, *, measure: Measure) -> list[str]:
    from bot.equity.spc import spc_for_groups

    usable = frame[~frame["group"].isin(["Z", "99"])]
    has_counts = usable["numerator"].notna().all() and usable["denominator"].notna().all() and len(usable) > 0
    if has_counts and measure.kind == "proportion":
        data = usable[["period", "group", "numerator", "denominator"]].astype({"numerator": int, "denominator": int})
        method: Literal["mdc", "p", "run"] = "p"
    else:
        data = usable[["period", "group", "value"]]
        method = "mdc"
    results = spc_for_groups(data, method=method, direction=_direction(measure))
    return [
        ethnicity.short_label(code)
        for code, result in results.items()
        if result.points and result.points[-1].variation == "special_cause_concern"
    ]


def _measure_findings(session: Session, *, project: Project, measure: Measure, today: date) -> MeasureFindings:
    name = f"*{measure.name}* ({measure.measure_type})"
    try:
        frame = _frame(session, measure)
    except Exception:  # the nudge must still reach the leads when one measure's data cannot be read
        logger.exception("Reading data for measure %s failed", measure.id)
        return MeasureFindings(f"• {name}: {NOT_AVAILABLE}.")
    if frame.empty:
        return MeasureFindings(f"• {name}: no data yet. Add some with `/measure log` or `/measure import`.")
    parts: list[str] = []
    try:
        parts.append(_gap_verdict(frame, project=project, measure=measure))
    except Exception:  # an analysis module that is missing or fails is reported, not fatal
        logger.exception("Gap analysis failed for measure %s", measure.id)
        parts.append(f"gap: {NOT_AVAILABLE}")
    concerns: list[str] = []
    try:
        concerns = _spc_concerns(frame, measure=measure)
        if concerns:
            parts.append(f":warning: SPC signal of concern for {', '.join(concerns)}")
    except Exception:
        logger.exception("SPC failed for measure %s", measure.id)
        parts.append(f"SPC: {NOT_AVAILABLE}")
    findings = MeasureFindings(f"• {name}: " + " ".join(p.rstrip(".") + "." for p in parts))
    findings.concerns = concerns
    try:
        from bot.equity.missing import missing_warnings

        counted = frame.dropna(subset=["numerator", "denominator"]).astype({"numerator": int, "denominator": int})
        if not counted.empty:
            warnings = missing_warnings(
                counted,
                today=today,
                period=cast(Literal["week", "month", "quarter"], measure.period),
                focus_groups=_codes(project.focus_groups),
                reference=measure.reference_group if measure.reference_group in _NATIONAL else "A",
                direction=_direction(measure),
                target_gap=project.target_gap,
            )
            findings.completeness_low = any(w.code in _LOW_COMPLETENESS for w in warnings)
            findings.warnings = [
                f"{measure.name}: {_brief(w.message, sentences=3)}" for w in warnings if w.severity in ("warning", "critical")
            ]
    except Exception:
        logger.exception("Missing-data analysis failed for measure %s", measure.id)
        findings.warnings = [f"{measure.name}: missing-data {NOT_AVAILABLE}."]
    return findings


def _quote(answer: Answer, sharing_partners: set[str]) -> str:
    text = " ".join(answer.text.split())
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 1].rstrip() + "…"
    if answer.from_partner:
        who = "a service-user partner" if answer.user_id is None else f"<@{answer.user_id}> (service-user partner)"
    else:
        who = "anonymous" if answer.user_id is None else f"<@{answer.user_id}>"
    return f"> “{text}” ({who})"


def build_lead_nudge(session: Session, *, project: Project, now: datetime) -> tuple[list[Block], str]:
    """The leads' weekly DM: one screen, each line saying what to look at, under the disclosure rules."""
    assert project.id is not None
    today = now.astimezone(ZoneInfo(project.timezone)).date()
    measures = answers_repo.active_measures(session, project_id=project.id)
    outcome_like = [m for m in measures if m.measure_type != "balancing"]
    balancing = [m for m in measures if m.measure_type == "balancing"]

    findings = {m.id: _measure_findings(session, project=project, measure=m, today=today)
                for m in (outcome_like[:_MAX_MEASURES] + balancing[:2])}
    blocks: list[Block] = [header(f"Weekly equity nudge: {project.name}")]

    if outcome_like:
        lines = [findings[m.id].line for m in outcome_like[:_MAX_MEASURES]]
        if len(outcome_like) > _MAX_MEASURES:
            lines.append("• …and more measures: `/equity` lists them all.")
        blocks.append(section("*Gaps by ethnic group*\n" + "\n".join(lines)))
    else:
        blocks.append(section("*Gaps by ethnic group*\nNo measures yet, so the gap can't be tracked."))

    warnings = [w for f in findings.values() for w in f.warnings]
    if warnings:
        blocks.append(section("*Missing data*\n" + "\n".join(f"• {w}" for w in warnings[:2])))

    if balancing:
        blocks.append(section("*Balancing measures*\n" + "\n".join(findings[m.id].line for m in balancing[:2])))
    else:
        blocks.append(section("*Balancing measures*\nNone yet: nothing is watching for harm to any group."))

    cycles = answers_repo.cycles(session, project_id=project.id)
    overdue = [c for c in cycles if c.status in ("planned", "doing") and c.end_date < today]
    awaiting_act = [c for c in cycles if c.status == "studied"]
    # The same "PDSA N.S" the cards, /pdsa list and the commands use.
    ref = {c.id: f"{pdsa_repo.series_number(session, cycle=c)}.{c.ramp_step}" for c in [*overdue, *awaiting_act]}
    cycle_lines = [
        f"• PDSA {ref[c.id]} (“{c.title}”) ended on {c.end_date.day} {c.end_date:%b} and is waiting to be studied: "
        f"`/pdsa study {ref[c.id]}`"
        for c in overdue[:3]
    ] + [
        f"• PDSA {ref[c.id]} (“{c.title}”) has been studied and is waiting for a decision: `/pdsa act {ref[c.id]}`"
        for c in awaiting_act[:2]
    ]
    if cycle_lines:
        blocks.append(section("*PDSA cycles*\n" + "\n".join(cycle_lines)))

    week_answers = answers_repo.answers_this_week(session, project_id=project.id, since=now - timedelta(days=7))
    partners = repo.members(session, project_id=project.id, role="partner")
    sharing = {p.user_id for p in partners if p.share_in_channel and p.consent == "given"}
    from_partners = [a for a in week_answers if a.from_partner]
    quotable = [a for a in week_answers if a.shared or (a.from_partner and a.user_id in sharing)]
    voice = (
        f"*Voices this week*\n{amount(len(week_answers), 'answer').capitalize()} to prompts, "
        f"{amount(len(from_partners), 'answer')} from service-user partners."
    )
    if quotable:
        voice += "\n" + "\n".join(_quote(a, sharing) for a in quotable[:2])
    blocks.append(section(voice))

    step = _next_step(
        has_measures=bool(measures),
        overdue=[ref[c.id] for c in overdue],
        completeness_low=any(f.completeness_low for f in findings.values()),
        has_balancing=bool(balancing),
        awaiting_act=[ref[c.id] for c in awaiting_act],
        has_partners=any(p.consent == "given" and not p.stopped for p in partners),
        balancing_concern=next(
            ((m.name, findings[m.id].concerns[0]) for m in balancing[:2] if findings[m.id].concerns), None
        ),
        answers_this_week=len(week_answers),
    )
    blocks.append(section(f":point_right: *Suggested next step*\n{step}"))
    blocks.append(context("Counts from 1 to 7 are never shown; other counts are rounded to the nearest 5. "
                          "Change when this arrives with `/mfi schedule`."))
    return blocks[:12], f"Weekly equity nudge for {project.name}. Suggested next step: {step}"


def _next_step(
    *,
    has_measures: bool,
    overdue: list[str],
    completeness_low: bool,
    has_balancing: bool,
    awaiting_act: list[str],
    has_partners: bool,
    balancing_concern: tuple[str, str] | None = None,
    answers_this_week: int = 0,
) -> str:
    """The single most useful thing to do this week, by a fixed order of rules."""
    if not has_measures:
        return "Define an outcome measure split by ethnic group: `/measure new`."
    if overdue:
        return f"Study PDSA {overdue[0]}: what happened for each ethnic group, against your predictions? `/pdsa study {overdue[0]}`"
    if balancing_concern:
        measure, group = balancing_concern
        return (f"Look at *{measure}* for {group}: the balancing measure shows a signal of concern. Is the change "
                f"causing harm for this group? `/equity {measure}`")
    if completeness_low:
        return ("Fix ethnicity recording: too many records are Not known (99). Check where ethnicity is asked and "
                "recorded in the pathway, and how the question is asked.")
    if not has_balancing:
        return "Define a balancing measure to catch harm to any group: `/measure new` and choose type *balancing*."
    if awaiting_act:
        return f"Decide what to do with PDSA {awaiting_act[0]}: adopt, adapt or abandon. `/pdsa act {awaiting_act[0]}`"
    if not has_partners:
        return "Invite a service-user partner with lived experience: `/mfi partners`."
    if answers_this_week:
        return "Bring this week's answers to your next huddle and ask who the current test is working for."
    return "Put this week's prompt to the team at your next huddle: who is the current test working for, and who not?"
