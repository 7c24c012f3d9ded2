"""PDSA logic with no I/O: parse predictions, window arithmetic, score predictions against observed results."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from bot.core import ethnicity
from bot.core.equity.disclosure import DEFAULT_POLICY, DisclosurePolicy, SafeRate, safe_rate
from bot.core.equity.stats import wilson_interval
from bot.core.equity.types import GroupCounts

OVERALL = "ALL"
Outcome = Literal["held", "not_held", "not_judged"]
DirectionWord = Literal["better", "same", "worse", "higher", "lower"]

PREDICTION_HINT = (
    'Start with a value ("9%", "0.09" or "9 per 1,000") or a direction (better, same, worse), '
    'then a dash and why, e.g. "9% — interpreters at booking reach more Black African women".'
)

_DIRECTION_WORDS: dict[str, DirectionWord] = {
    "better": "better",
    "improve": "better",
    "improves": "better",
    "improved": "better",
    "worse": "worse",
    "worsen": "worse",
    "worsens": "worse",
    "same": "same",
    "no change": "same",
    "unchanged": "same",
    "stay the same": "same",
    "stays the same": "same",
    "higher": "higher",
    "up": "higher",
    "rise": "higher",
    "rises": "higher",
    "increase": "higher",
    "increases": "higher",
    "lower": "lower",
    "down": "lower",
    "fall": "lower",
    "falls": "lower",
    "decrease": "lower",
    "decreases": "lower",
}
_SEPARATOR = re.compile(r"\s*(?:—|–|--|\s-\s|:|;|,(?!\d{3})|\bbecause\b)\s*", re.IGNORECASE)
_VALUE = re.compile(
    r"^(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>%|percent|per\s*(?:1,?000|thousand)|/\s*1,?000)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Prediction:
    """What the team expects for one group (or overall): a value (a fraction) or a direction, and why."""

    group: str
    value: float | None
    direction: DirectionWord | None
    reason: str
    text: str  # as typed, kept so the card quotes the team's own words

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "value": self.value,
            "direction": self.direction,
            "reason": self.reason,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        direction = data.get("direction")
        return cls(
            group=str(data["group"]),
            value=float(data["value"]) if data.get("value") is not None else None,
            direction=direction if direction in _DIRECTION_WORDS.values() else None,
            reason=str(data.get("reason") or ""),
            text=str(data.get("text") or ""),
        )


class PredictionError(ValueError):
    """A prediction the bot cannot read; the message says how to write it."""


def parse_prediction(text: str, *, group: str, kind: str = "proportion") -> Prediction:
    """Read "9% — why", "0.09: why", "9 per 1,000 because why" or "better — why" into a Prediction.

    A bare number above 1 is read in the measure's own unit: a percentage for proportions, per 1,000
    for rates per 1,000. Values are stored as fractions (9% -> 0.09; 9 per 1,000 -> 0.009).
    """
    raw = " ".join(text.split())
    if not raw:
        raise PredictionError("Write a value or a direction, then why. " + PREDICTION_HINT)
    parts = _SEPARATOR.split(raw, maxsplit=1)
    head = parts[0].strip().rstrip(".").strip()
    reason = parts[1].strip() if len(parts) > 1 else ""
    lowered = head.lower()
    direction = _DIRECTION_WORDS.get(lowered)
    value: float | None = None
    if direction is None:
        match = _VALUE.match(head)
        if match is None:
            raise PredictionError(
                f"I couldn't read “{head[:40]}” as a value or a direction. " + PREDICTION_HINT
            )
        number = float(match.group("num"))
        unit = (match.group("unit") or "").lower().replace(" ", "")
        if unit in ("%", "percent"):
            value = number / 100
        elif unit:
            value = number / 1000
        elif number <= 1 and kind in ("proportion", "rate_per_1000"):
            value = number
        elif kind == "rate_per_1000":
            value = number / 1000
        elif kind == "proportion":
            value = number / 100
        else:
            value = number
        if kind in ("proportion", "rate_per_1000") and not 0 <= value <= 1:
            raise PredictionError(f"“{head}” is more than 100%. " + PREDICTION_HINT)
    if not reason:
        raise PredictionError(
            "Say why you expect this, after a dash: the reason is what the team learns from when the result comes in. "
            + PREDICTION_HINT
        )
    return Prediction(group=group, value=value, direction=direction, reason=reason, text=raw)


def format_value(value: float, kind: str = "proportion") -> str:
    if kind == "rate_per_1000":
        return f"{value * 1000:.1f} per 1,000"
    if kind == "proportion":
        return f"{value:.1%}"
    return f"{value:g}"


def describe_prediction(prediction: Prediction, kind: str = "proportion") -> str:
    what = (
        format_value(prediction.value, kind)
        if prediction.value is not None
        else (prediction.direction or "?")
    )
    return f"{what} — {prediction.reason}"


# ---------------------------------------------------------------- windows and periods


def period_end(start: date, period: str) -> date:
    """The last day of the period that begins on `start` (day, week, month or quarter)."""
    if period == "day":
        return start
    if period == "week":
        return start + timedelta(days=6)
    months = 3 if period == "quarter" else 1
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    first_next = date(year, month, 1)
    if start.day == 1:
        return first_next - timedelta(days=1)
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) - timedelta(days=1)


def overlaps(period_start: date, period: str, start: date, end: date) -> bool:
    return period_start <= end and period_end(period_start, period) >= start


def baseline_window(start: date, end: date) -> tuple[date, date]:
    """The window of the same length immediately before the cycle's window."""
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


def group_codes_for(code: str) -> tuple[str, ...]:
    """The data codes a prediction group covers (a high-level group sums its categories)."""
    return ethnicity.members(code)


def parse_counts(text: str) -> tuple[int, int]:
    """ "12/140" or "12 of 140" -> (12, 140); raises ValueError with a plain message."""
    match = re.fullmatch(r"\s*(\d[\d,]*)\s*(?:/|of|out of)\s*(\d[\d,]*)\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError("Write events/total, e.g. 12/140 (events first, then everyone in the group).")
    num, den = int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))
    if num > den:
        raise ValueError("The events can't be more than the total: write events/total, e.g. 12/140.")
    return num, den


# ---------------------------------------------------------------- scoring


@dataclass
class GroupResult:
    """One group's prediction against what was observed, as it may be posted."""

    group: str
    prediction: Prediction | None
    observed: SafeRate | None
    interval: tuple[float, float] | None  # from the shown (rounded) counts; None next to a suppressed cell
    baseline_rate: float | None
    outcome: Outcome
    reason: str


def _rounded(rate: SafeRate) -> GroupCounts | None:
    if rate.rate is None or rate.numerator.rounded is None or rate.denominator.rounded is None:
        return None
    return GroupCounts("x", rate.numerator.rounded, rate.denominator.rounded)


def _wanted_sign(direction: DirectionWord, measure_direction: str) -> int | None:
    """+1 for a rise, -1 for a fall, 0 for no change; None when "better" has no meaning for the measure."""
    if direction == "same":
        return 0
    if direction == "higher":
        return 1
    if direction == "lower":
        return -1
    if measure_direction not in ("higher", "lower"):
        return None
    up_is_better = measure_direction == "higher"
    return 1 if (direction == "better") == up_is_better else -1


def score_prediction(
    prediction: Prediction | None,
    observed: GroupCounts | None,
    baseline: GroupCounts | None,
    *,
    measure_direction: str = "lower",
    policy: DisclosurePolicy = DEFAULT_POLICY,
) -> GroupResult:
    """Judge one prediction. Everything is computed from the counts as they may be shown (rounded), so the
    verdict agrees with the posted rate and interval; a suppressed cell is never judged."""
    group = prediction.group if prediction else (observed.code if observed else "?")
    if observed is None or observed.denominator == 0:
        return GroupResult(group, prediction, None, None, None, "not_judged", "no data for this window")
    shown = safe_rate(observed.numerator, observed.denominator, policy)
    counts = _rounded(shown)
    interval: tuple[float, float] | None = None
    if counts is not None:
        low, high = wilson_interval(counts.numerator, counts.denominator)
        if low is not None and high is not None:
            interval = (low, high)
    base_rate: float | None = None
    if baseline is not None and baseline.denominator > 0:
        base_counts = _rounded(safe_rate(baseline.numerator, baseline.denominator, policy))
        if base_counts is not None:
            base_rate = base_counts.numerator / base_counts.denominator
    if prediction is None:
        return GroupResult(group, None, shown, interval, base_rate, "not_judged", "no prediction was made")
    if counts is None or interval is None or shown.rate is None:
        return GroupResult(
            group, prediction, shown, None, base_rate, "not_judged", f"too few to judge: {shown.reason}"
        )
    rate = shown.rate
    if prediction.value is not None:
        held = interval[0] <= prediction.value <= interval[1]
        why = (
            "the predicted value is inside the 95% interval of the result"
            if held
            else "the predicted value is outside the 95% interval of the result"
        )
        return GroupResult(group, prediction, shown, interval, base_rate, "held" if held else "not_held", why)
    assert prediction.direction is not None
    if base_rate is None:
        return GroupResult(
            group,
            prediction,
            shown,
            interval,
            None,
            "not_judged",
            "no showable result for the window before the cycle to compare with",
        )
    sign = _wanted_sign(prediction.direction, measure_direction)
    if sign is None:
        return GroupResult(
            group,
            prediction,
            shown,
            interval,
            base_rate,
            "not_judged",
            "the measure has no better direction, so better or worse can't be judged",
        )
    if sign == 0:
        held = interval[0] <= base_rate <= interval[1]
        why = (
            "the rate before the cycle is "
            + ("inside" if held else "outside")
            + " the 95% interval of the result"
        )
    else:
        change = rate - base_rate
        held = change * sign > 0
        why = f"the rate {'rose' if change > 0 else 'fell' if change < 0 else 'did not change'} against the window before"
    return GroupResult(group, prediction, shown, interval, base_rate, "held" if held else "not_held", why)


def score_all(
    predictions: Sequence[Prediction],
    groups: Sequence[str],
    observed: Mapping[str, GroupCounts],
    baseline: Mapping[str, GroupCounts],
    *,
    measure_direction: str = "lower",
    policy: DisclosurePolicy = DEFAULT_POLICY,
) -> list[GroupResult]:
    by_group = {p.group: p for p in predictions}
    order = list(dict.fromkeys([*groups, *by_group]))
    results = []
    for group in order:
        result = score_prediction(
            by_group.get(group),
            observed.get(group),
            baseline.get(group),
            measure_direction=measure_direction,
            policy=policy,
        )
        result.group = group
        results.append(result)
    return results


def group_name(code: str) -> str:
    return "Everyone (overall)" if code == OVERALL else ethnicity.display(code)


def worked_for_everyone(results: Sequence[GroupResult]) -> str:
    """One plain sentence: did the change do what was predicted for every group?"""
    judged = [r for r in results if r.prediction is not None and r.outcome != "not_judged"]
    failed = [group_name(r.group) for r in judged if r.outcome == "not_held"]
    unjudged = [
        group_name(r.group) for r in results if r.prediction is not None and r.outcome == "not_judged"
    ]
    if not judged:
        text = "No prediction could be judged: the results are missing or too few to show."
    elif failed:
        text = "The prediction did *not* hold for " + ", ".join(failed) + "."
    else:
        text = "The predictions held for every group that could be judged."
    if unjudged:
        text += " Could not be judged: " + ", ".join(unjudged) + "."
    return text


def result_line(result: GroupResult, kind: str = "proportion") -> str:
    """ "*Group* — predicted 9.0% · observed 15 of 120 (12.5%, 95% CI ...) · held", disclosure-safe."""
    predicted = (
        "predicted " + describe_prediction(result.prediction, kind).split(" — ")[0]
        if result.prediction
        else "no prediction"
    )
    if result.observed is None:
        observed = "no data"
    elif result.observed.rate is None:
        observed = f"{result.observed.numerator.shown} of {result.observed.denominator.shown} (rate not shown: {result.observed.reason})"
    else:
        observed = f"{result.observed.numerator.shown} of {result.observed.denominator.shown} ({format_value(result.observed.rate, kind)}"
        if result.interval is not None:
            observed += f", 95% CI {format_value(result.interval[0], kind)} to {format_value(result.interval[1], kind)}"
        observed += ")"
    verdict = {
        "held": ":white_check_mark: held",
        "not_held": ":x: did not hold",
        "not_judged": ":grey_question: could not be judged",
    }[result.outcome]
    return f"*{group_name(result.group)}* — {predicted} · observed {observed} · {verdict} ({result.reason})"


# ---------------------------------------------------------------- the project's record of predictions


@dataclass
class RecordLine:
    group: str
    held: int = 0
    judged: int = 0
    not_judged: int = 0


@dataclass
class PredictionRecord:
    lines: dict[str, RecordLine] = field(default_factory=dict)

    def add(self, group: str, outcome: str) -> None:
        line = self.lines.setdefault(group, RecordLine(group))
        if outcome == "not_judged":
            line.not_judged += 1
        else:
            line.judged += 1
            line.held += outcome == "held"

    def text(self) -> str | None:
        """E.g. "Predictions held for White - British (A) 3 times out of 3, ..." (counts of cycles, not patients)."""
        judged = [line for line in self.lines.values() if line.judged]
        if not judged:
            return None
        parts = [
            f"for {group_name(line.group)} {line.held} time{'' if line.held == 1 else 's'} out of {line.judged}"
            for line in judged
        ]
        return "Predictions held " + "; ".join(parts) + " (studied cycles, not patients)."


def prediction_record(scores: Iterable[Mapping[str, Any]]) -> PredictionRecord:
    """Build the record from stored study scores: dicts with "group" and "outcome"."""
    record = PredictionRecord()
    for score in scores:
        if score.get("predicted"):
            record.add(str(score["group"]), str(score["outcome"]))
    return record


# ---------------------------------------------------------------- where a cycle is up to


RUNNING = ("planned", "doing")  # not yet studied: the cycle is open


@dataclass(frozen=True)
class CycleCounts:
    """One reading of a project's cycles, shared by the project card, Home and the prompt chooser."""

    open: int  # planned or doing: not yet studied
    running: int  # open and still within its test dates
    awaiting_study: int  # open and past its end date: the test has run, its Study is due
    studied: int  # studied or acted
    acted: int


def count_cycles(cycles: Iterable[tuple[str, date]], *, today: date) -> CycleCounts:
    """Counts from each cycle's (status, end date): open cycles are either still running or awaiting study."""
    rows = list(cycles)
    open_ends = [end for status, end in rows if status in RUNNING]
    return CycleCounts(
        open=len(open_ends),
        running=sum(1 for end in open_ends if end > today),
        awaiting_study=sum(1 for end in open_ends if end <= today),
        studied=sum(1 for status, _ in rows if status in ("studied", "acted")),
        acted=sum(1 for status, _ in rows if status == "acted"),
    )


def is_overdue(status: str, end_date: date, today: date, *, retrospective: bool = False) -> bool:
    """Past its end date and not yet studied. A retrospective cycle (planned after its dates, to record a test
    that has already run) is never overdue: logging it late is the point."""
    return status in ("planned", "doing") and end_date < today and not retrospective


def next_step(
    status: str,
    ref: str,
    end_date: date,
    today: date,
    decision: str | None = None,
    *,
    retrospective: bool = False,
) -> str:
    if retrospective and status == "planned" and end_date < today:
        return (
            f"This test has already run: log what happened (`/pdsa do {ref}`), then study it "
            f"(`/pdsa study {ref}`)"
        )
    if status == "planned":
        step = f"Do: run the test and log what happens (`/pdsa do {ref}`)"
    elif status == "doing":
        step = f"Study: compare the results with the predictions (`/pdsa study {ref}`)"
    elif status == "studied":
        step = f"Act: adopt, adapt or abandon (`/pdsa act {ref}`)"
    else:
        return f"Closed: {decision or 'decided'}"
    if is_overdue(status, end_date, today, retrospective=retrospective):
        ended = f"*OVERDUE*: the test ended on {end_date.day} {end_date:%b %Y} and has not been studied. "
        if status == "doing":
            return ended + f"Study it now (`/pdsa study {ref}`)"
        # Nothing was logged: say what happened first (it may have run, or not), then study it.
        return ended + f"Log what happened (`/pdsa do {ref}`), then study it (`/pdsa study {ref}`)"
    return step


def expected_periods(start: date, end: date, period: str) -> list[date]:
    """Period starts (days, Mondays, first of the month, or first of the quarter) whose period overlaps start..end."""
    if period in ("day", "week"):
        current = start - timedelta(days=start.weekday()) if period == "week" else start
        step_days = 7 if period == "week" else 1
        out = []
        while current <= end:
            out.append(current)
            current += timedelta(days=step_days)
        return out
    months = 3 if period == "quarter" else 1
    first_month = start.month - (start.month - 1) % months
    current = date(start.year, first_month, 1)
    out = []
    while current <= end:
        out.append(current)
        index = current.month - 1 + months
        current = date(current.year + index // 12, index % 12 + 1, 1)
    return out


def describe_periods(periods: Sequence[date], period: str) -> str:
    if period == "day":
        return ", ".join(f"{p.day} {p:%b %Y}" for p in periods)
    if period == "week":
        return ", ".join(f"week of {p.day} {p:%b %Y}" for p in periods)
    if period == "quarter":
        return ", ".join(f"quarter from {p:%b %Y}" for p in periods)
    return ", ".join(f"{p:%b %Y}" for p in periods)


def periods_before(start: date, end: date, period: str) -> tuple[date, date]:
    """The window made of as many whole periods as the cycle touches, immediately before its first period.

    Aggregated data come in whole periods, so "the same length before" is counted in periods: a cycle over
    March to May is compared with December to February, never with a sliver of November.
    """
    touched = expected_periods(start, end, period)
    first = touched[0] if touched else start
    if period in ("day", "week"):
        days = (7 if period == "week" else 1) * max(len(touched), 1)
        return first - timedelta(days=days), first - timedelta(days=1)
    months = (3 if period == "quarter" else 1) * max(len(touched), 1)
    index = first.month - 1 - months
    return date(first.year + index // 12, index % 12 + 1, 1), first - timedelta(days=1)
