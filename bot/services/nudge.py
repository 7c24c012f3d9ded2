"""The leads' weekly equity nudge: gaps, signals, data gaps, overdue PDSA steps, voices and one next step."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast
from zoneinfo import ZoneInfo

import pandas as pd
from sqlmodel import Session

from bot.core import ethnicity
from bot.core.blockkit import Block, context, header, section, typed
from bot.core.equity import analysis as an
from bot.core.equity import wording
from bot.core.equity.disclosure import DisclosurePolicy, cell
from storage import answers_repo, measures_repo, pdsa_repo
from storage import repositories as repo
from storage.models import Answer, Measure, Project

if TYPE_CHECKING:
    from bot.core.equity.analysis import ChannelAnalysis

logger = logging.getLogger(__name__)

NOT_AVAILABLE = "analysis not available"
_LOW_COMPLETENESS = {"COMPLETENESS_LOW", "COMPLETENESS_CRITICAL"}
_MISSING_PREFIXES = ("COMPLETENESS", "MISSING", "GROUP_ABSENT", "STALE")
_MAX_MEASURES = 4
_QUOTE_CHARS = 160


@dataclass
class MeasureFindings:
    """What the nudge says about one measure, plus the flags that choose the next step."""

    line: str
    warnings: list[str] = field(default_factory=list)
    completeness_low: bool = False
    concerns: list[str] = field(default_factory=list)  # groups with an SPC signal of concern
    harm: list[str] = field(default_factory=list)  # harm signals, worded by bot.core.equity.wording


def amount(n: int, noun: str, plural: str | None = None) -> str:
    """A count as words that never reveal a number from 1 to 7: "no answers", "a few answers (fewer than 8)", "about 15 answers"."""
    many = plural or noun + "s"
    if n == 0:
        return f"no {many}"
    decision = cell(n)
    if decision.suppressed:
        return f"a few {many} (fewer than 8)"
    return f"about {decision.shown} {many}"


def _frame(session: Session, measure: Measure) -> pd.DataFrame:
    assert measure.id is not None
    rows = [
        {key: row[key] for key in ("period", "group", "numerator", "denominator", "value")}
        for row in measures_repo.data_points(session, measure_id=measure.id)
        if row["group"] != ethnicity.ALL
    ]
    return pd.DataFrame(rows, columns=["period", "group", "numerator", "denominator", "value"])


def _direction(measure: Measure) -> Literal["higher", "lower", "neither"]:
    return cast(
        Literal["higher", "lower", "neither"],
        measure.direction if measure.direction in ("higher", "lower", "neither") else "neither",
    )


def _analysis(frame: pd.DataFrame, *, project: Project, measure: Measure, today: date) -> ChannelAnalysis:
    """The same analysis /equity posts (same reference, focus groups, windows and disclosure rule), so the
    nudge and /equity make one set of comparisons and quote the same figures."""
    rebase: dict[str, list[date]] = {}
    for entry in measure.rebase_dates or []:
        group, _, day = str(entry).rpartition("=")
        try:
            rebase.setdefault(group.strip() or an.TOTAL, []).append(date.fromisoformat(day.strip()))
        except ValueError:
            continue
    return an.analyse_for_channel(
        frame,
        kind=measure.kind,
        direction=_direction(measure),
        reference=measure.reference_group or project.reference_group or "A",
        focus_groups=list(project.focus_groups or []),
        period=measure.period,
        spc_method=measure.spc_method,
        rebase=rebase,
        target=measure.target,
        today=today,
        window_months=3,
        target_gap=project.target_gap,
        policy=_policy(project),
        measure_type=measure.measure_type,
        name=measure.name,
    )


def _policy(project: Project) -> DisclosurePolicy:
    return DisclosurePolicy(threshold=max(project.suppression_threshold or 8, 3))


def _measure_findings(
    session: Session, *, project: Project, measure: Measure, today: date
) -> MeasureFindings:
    name = f"*{_escape(measure.name)}* ({measure.measure_type})"
    try:
        frame = _frame(session, measure)
    except Exception:  # the nudge must still reach the leads when one measure's data cannot be read
        logger.exception("Reading data for measure %s failed", measure.id)
        return MeasureFindings(f"• {name}: {NOT_AVAILABLE}.")
    if frame.empty:
        return MeasureFindings(f"• {name}: no data yet. Add some with `/measure log` or `/measure import`.")
    try:
        ca = _analysis(frame, project=project, measure=measure, today=today)
    except Exception:  # an analysis that fails is reported, not fatal
        logger.exception("Equity analysis failed for measure %s", measure.id)
        return MeasureFindings(f"• {name}: gap: {NOT_AVAILABLE}.")
    a = ca.analysis
    line, harm = wording.nudge_line(ca, _policy(project))
    findings = MeasureFindings(f"• {name}: {line}")
    # A harm line that already names the measure (the balancing check's own words) is not prefixed with it again.
    # (The analysis already escaped the measure name inside its own words.)
    findings.harm = [
        h[0].upper() + h[1:]
        if h.lower().startswith(_escape(measure.name).lower())
        else f"{_escape(measure.name)}: {h}"
        for h in harm
    ]
    findings.concerns = [wording.prose_name(c) for c in an.recent_concerns(a, within=1)]
    findings.completeness_low = any(w.code in _LOW_COMPLETENESS for w in a.warnings)
    findings.warnings = [
        f"{_escape(measure.name)}: {wording.short(w)}"
        for w in wording.ordered_flags(a.warnings)
        if w.severity in ("warning", "critical") and w.code.startswith(_MISSING_PREFIXES)
    ]
    return findings


def _escape(text: str) -> str:  # a measure name, inside mrkdwn
    return typed(text)


def _quote(answer: Answer, sharing_partners: set[str]) -> str:
    text = " ".join(answer.text.split())
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 1].rstrip() + "…"
    if answer.from_partner:
        who = (
            "a service-user partner"
            if answer.user_id is None
            else f"<@{answer.user_id}> (service-user partner)"
        )
    else:
        who = "anonymous" if answer.user_id is None else f"<@{answer.user_id}>"
    return f"> “{typed(text)}” ({who})"


def build_lead_nudge(session: Session, *, project: Project, now: datetime) -> tuple[list[Block], str]:
    """The leads' weekly DM: one screen, each line saying what to look at, under the disclosure rules."""
    assert project.id is not None
    today = now.astimezone(ZoneInfo(project.timezone)).date()
    measures = measures_repo.measures_for_project(session, project_id=project.id)
    outcome_like = [m for m in measures if m.measure_type != "balancing"]
    balancing = [m for m in measures if m.measure_type == "balancing"]

    findings = {
        m.id: _measure_findings(session, project=project, measure=m, today=today)
        for m in (outcome_like[:_MAX_MEASURES] + balancing[:2])
    }
    blocks: list[Block] = [header(f"Weekly equity nudge: {project.name}")]

    harm = [h for f in findings.values() for h in f.harm]
    if harm:
        # Harm first: a worsening balancing measure, levelling down, a group moving against the aggregate.
        blocks.append(section("*:warning: Harm to check*\n" + "\n".join(f"• {h}" for h in harm[:3])))

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
        blocks.append(
            section("*Balancing measures*\n" + "\n".join(findings[m.id].line for m in balancing[:2]))
        )
    else:
        blocks.append(section("*Balancing measures*\nNone yet: nothing is watching for harm to any group."))

    cycles = answers_repo.cycles(session, project_id=project.id)
    overdue = [c for c in cycles if c.status in ("planned", "doing") and c.end_date < today]
    awaiting_act = [c for c in cycles if c.status == "studied"]
    # The same "PDSA N.S" the cards, /pdsa list and the commands use.
    ref = {
        c.id: f"{pdsa_repo.series_number(session, cycle=c)}.{c.ramp_step}" for c in [*overdue, *awaiting_act]
    }
    cycle_lines = [
        f"• PDSA {ref[c.id]} (“{typed(c.title)}”) ended on {c.end_date.day} {c.end_date:%b} and is waiting to be "
        f"studied: `/pdsa study {ref[c.id]}`"
        for c in overdue[:3]
    ] + [
        f"• PDSA {ref[c.id]} (“{typed(c.title)}”) has been studied and is waiting for a decision: "
        f"`/pdsa act {ref[c.id]}`"
        for c in awaiting_act[:2]
    ]
    if cycle_lines:
        blocks.append(section("*PDSA cycles*\n" + "\n".join(cycle_lines)))

    # Only what the team may see: anonymous answers wait until enough people could have given them.
    week_answers = [
        s.answer
        for s in answers_repo.answers_this_week(session, project=project, since=now - timedelta(days=7))
    ]
    partners = repo.members(session, project_id=project.id, role="partner")
    sharing = {p.user_id for p in partners if p.share_in_channel and p.consent == "given"}
    from_partners = [a for a in week_answers if a.from_partner]
    quotable = [a for a in week_answers if a.shared or (a.from_partner and a.user_id in sharing)]
    # "Answers you can read": a held-back anonymous answer is not counted, so "no answers" would be untrue.
    voice = (
        f"*Voices this week*\nAnswers you can read: {amount(len(week_answers), 'answer')} to prompts, "
        f"{amount(len(from_partners), 'answer')} from service-user partners."
    )
    if quotable:
        voice += "\n" + "\n".join(_quote(a, sharing) for a in quotable[:2])
    # Whatever was held back is not hinted at: "one is waiting" would say that a lone partner answered.
    voice += "\n_Anonymous answers are counted and shown only once enough people could have given them._"
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
    blocks.append(
        context(
            "Counts from 1 to 7 are never shown; other counts are rounded to the nearest 5. "
            "Change when this arrives with `/mfi schedule`."
        )
    )
    return blocks[:12], f"Weekly equity nudge for {typed(project.name)}. Suggested next step: {step}"


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
        return (
            f"Look at *{typed(measure)}* for {group}: the balancing measure shows a signal of concern. Is the change "
            f"causing harm for this group? `/equity {typed(measure)}`"
        )
    if completeness_low:
        return (
            "Fix ethnicity recording: too many records are Not known (99). Check where ethnicity is asked and "
            "recorded in the pathway, and how the question is asked."
        )
    if not has_balancing:
        return "Define a balancing measure to catch harm to any group: `/measure new` and choose type *balancing*."
    if awaiting_act:
        return f"Decide what to do with PDSA {awaiting_act[0]}: adopt, adapt or abandon. `/pdsa act {awaiting_act[0]}`"
    if not has_partners:
        return "Invite a service-user partner with lived experience: `/mfi partners`."
    if answers_this_week:
        return "Bring this week's answers to your next huddle and ask who the current test is working for."
    return "Put this week's prompt to the team at your next huddle: who is the current test working for, and who not?"
