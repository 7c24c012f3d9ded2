"""Statistical disclosure control: decide which counts and rates may be posted to a Slack channel.

Rules (NHS Digital HES/ECDS method since September 2018, and the NHS England Maternity and
Neonatal Equalities dashboard for rare outcomes; see equity-stats.md section 3):

- 0 is shown as "0"; counts from 1 to ``threshold - 1`` are suppressed and shown as "<8";
  every other count is rounded to the nearest ``rounding`` (5), half up.
- Rates are computed from the rounded counts, and withheld when the numerator is below the
  threshold (the dashboard rule for rare outcomes such as PPH) or the denominator is suppressed.
- No confidence interval and no exact denominator next to a suppressed numerator.
- Rounding everything that is shown removes the need for secondary suppression. ``safe_table``
  still checks, by interval arithmetic, that no suppressed cell can be recovered from a shown
  total, and withholds the total if a non-default policy would allow it.
- Time series are posted point by point, never as cumulative totals whose differences would
  reveal a small count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.equity.intervals import wilson_interval
from bot.core.equity.types import CellDecision, GroupCounts


@dataclass(frozen=True)
class DisclosurePolicy:
    """A project's disclosure setting: counts 1..threshold-1 are suppressed, others rounded."""

    threshold: int = 8
    rounding: int = 5

    def __post_init__(self) -> None:
        # A threshold of 2 would print "<2", which can only mean 1: suppression would reveal the count.
        if self.threshold < 3:
            raise ValueError(f"threshold must be at least 3, got {self.threshold}")
        if self.rounding < 1:
            raise ValueError(f"rounding must be at least 1, got {self.rounding}")

    @property
    def suppressed_text(self) -> str:
        return f"<{self.threshold}"

    @property
    def note(self) -> str:
        """The footnote to post under any table or chart built with this policy."""
        if self.rounding > 1:
            return (
                f"Counts of 1 to {self.threshold - 1} are shown as {self.suppressed_text} and others "
                f"rounded to the nearest {self.rounding} to protect confidentiality."
            )
        return f"Counts of 1 to {self.threshold - 1} are shown as {self.suppressed_text} to protect confidentiality."


DEFAULT_POLICY = DisclosurePolicy()

GROUPED_NOTE = "Some periods or groups were grouped to protect confidentiality."


def _round_half_up(n: int, step: int) -> int:
    return ((n + step // 2) // step) * step


def cell(n: int, policy: DisclosurePolicy = DEFAULT_POLICY) -> CellDecision:
    """Decide how one count may be shown: "0", "<8" (suppressed) or rounded to the nearest 5."""
    if n < 0:
        raise ValueError(f"a count cannot be negative, got {n}")
    if n == 0:
        return CellDecision(raw=0, shown="0", rounded=0, suppressed=False)
    if n < policy.threshold:
        return CellDecision(raw=n, shown=policy.suppressed_text, rounded=None, suppressed=True)
    # Never round a non-zero count down to 0: "0" must only ever mean a true zero.
    rounded = max(_round_half_up(n, policy.rounding), policy.rounding)
    return CellDecision(raw=n, shown=str(rounded), rounded=rounded, suppressed=False)


@dataclass
class SafeRate:
    """A numerator, denominator and rate as they may be posted.

    ``numerator.raw`` and ``denominator.raw`` are kept for computation and the audit log; post only
    ``.shown``, ``rate`` and ``interval``. ``rate`` is a fraction computed from the rounded counts, and
    ``interval`` (95% Wilson) from the same rounded counts, so the interval shown always contains the rate shown
    beside it and nothing posted is a function of the exact counts. (An interval from the exact counts beside a
    rate from rounded ones could exclude it, e.g. "100.0% (75.4% to 99.1%)" for 18 of 19, and its two ends
    would let a reader solve for the exact counts that the rounding hides.) Inference (verdicts, ratios) still
    uses the exact counts.
    """

    numerator: CellDecision
    denominator: CellDecision
    rate: float | None
    show_interval: bool
    reason: str | None
    interval: tuple[float, float] | None = None

    def text(self, unit: str = "") -> str:
        """Disclosure-safe text, e.g. "15 of 120 (12.5%)" or "<8 of 120 (rate not shown: ...)"."""
        unit_text = f" {unit}" if unit else ""
        base = f"{self.numerator.shown} of {self.denominator.shown}{unit_text}"
        if self.rate is None:
            return f"{base} (rate not shown: {self.reason})"
        return f"{base} ({self.rate:.1%})"


def safe_rate(numerator: int, denominator: int, policy: DisclosurePolicy = DEFAULT_POLICY) -> SafeRate:
    """Apply the rules to one numerator and denominator; the rate comes from the rounded counts."""
    if numerator > denominator:
        raise ValueError(f"numerator {numerator} is larger than denominator {denominator}")
    num = cell(numerator, policy)
    den = cell(denominator, policy)
    reason: str | None = None
    if denominator == 0:
        reason = "no records"
    elif den.suppressed:
        reason = f"fewer than {policy.threshold} records"
    elif numerator == 0:
        # The dashboard withholds rates below the threshold, zero included: 0 events in a small
        # unit says little, and a 0% headline invites over-reading.
        reason = f"no events (rates are shown from {policy.threshold} events)"
    elif numerator < policy.threshold:
        reason = f"fewer than {policy.threshold} events"
    if reason is not None:
        return SafeRate(numerator=num, denominator=den, rate=None, show_interval=False, reason=reason)
    assert num.rounded is not None and den.rounded is not None  # both pass the threshold here
    low, high = wilson_interval(num.rounded, den.rounded)
    return SafeRate(
        numerator=num,
        denominator=den,
        rate=num.rounded / den.rounded,
        show_interval=True,
        reason=None,
        interval=(low, high) if low is not None and high is not None else None,
    )


def safe_series(
    values: Sequence[tuple[int, int]], policy: DisclosurePolicy = DEFAULT_POLICY
) -> list[SafeRate]:
    """Per-period (numerator, denominator) points of one group, each controlled on its own.

    Never post running or cumulative totals next to these: the difference between two
    consecutive totals would reveal a small period count exactly.
    """
    return [safe_rate(n, d, policy) for n, d in values]


@dataclass
class SafeTable:
    """Group rows (and an optional total) as they may be posted."""

    rows: dict[str, SafeRate]
    total: SafeRate | None
    suppressed: list[str]  # codes with a suppressed cell: for the log only, never posted
    note: str
    needs_grouping: bool


def _feasible(decision: CellDecision, policy: DisclosurePolicy) -> tuple[int, int]:
    """The range of raw counts a reader could infer from what is shown."""
    if decision.rounded == 0 and not decision.suppressed:
        return (0, 0)
    if decision.suppressed:
        return (1, policy.threshold - 1)
    assert decision.rounded is not None
    candidates = [
        n
        for n in range(
            max(policy.threshold, decision.rounded - policy.rounding), decision.rounded + policy.rounding + 1
        )
        if cell(n, policy).shown == decision.shown
    ]
    return (min(candidates), max(candidates))


def _total_reveals(parts: Sequence[CellDecision], total: CellDecision, policy: DisclosurePolicy) -> bool:
    """True when the shown total and shown parts pin a suppressed part to a single value.

    When the total is the exact sum of the parts a reader can subtract; when it holds more (groups
    not listed in the table) they only learn an upper bound.
    """
    raw_sum = sum(p.raw for p in parts)
    if total.raw < raw_sum:
        return False
    is_sum = total.raw == raw_sum
    ranges = [_feasible(p, policy) for p in parts]
    t_low, t_high = _feasible(total, policy)
    low_sum = sum(r[0] for r in ranges)
    high_sum = sum(r[1] for r in ranges)
    for part, (low, high) in zip(parts, ranges, strict=True):
        if not part.suppressed:
            continue
        # One linear constraint over intervals, so this intersection is exactly what can be inferred.
        implied_low = max(low, t_low - (high_sum - high)) if is_sum else low
        implied_high = min(high, t_high - (low_sum - low))
        if implied_high - implied_low < 1:
            return True
    return False


def _looks_rounded(decision: CellDecision, policy: DisclosurePolicy) -> bool:
    return decision.shown in ("0", policy.suppressed_text) or (
        decision.rounded is not None and decision.rounded % policy.rounding == 0
    )


def safe_table(
    rows: Sequence[GroupCounts],
    *,
    policy: DisclosurePolicy = DEFAULT_POLICY,
    total: GroupCounts | None = None,
) -> SafeTable:
    """Apply the rules to a set of group rows and an optional total, blocking back-calculation."""
    codes = [r.code for r in rows]
    if len(set(codes)) != len(codes):
        raise ValueError("duplicate group codes in a table")
    safe_rows = {r.code: safe_rate(r.numerator, r.denominator, policy) for r in rows}
    safe_total = safe_rate(total.numerator, total.denominator, policy) if total is not None else None
    suppressed = [
        code for code, sr in safe_rows.items() if sr.numerator.suppressed or sr.denominator.suppressed
    ]
    note = policy.note
    shown = list(safe_rows.values()) + ([safe_total] if safe_total is not None else [])
    for sr in shown:
        # By construction everything shown is 0, suppressed or rounded: never an exact small-unit count.
        assert _looks_rounded(sr.numerator, policy) and _looks_rounded(sr.denominator, policy)
    if safe_total is not None:
        parts = list(safe_rows.values())
        reveals = _total_reveals(
            [p.numerator for p in parts], safe_total.numerator, policy
        ) or _total_reveals([p.denominator for p in parts], safe_total.denominator, policy)
        # With the default policy (threshold 8, rounding 5) this never triggers; a weaker project
        # setting (say threshold 7 or no rounding) could otherwise let a reader subtract.
        if reveals:
            safe_total = None
            suppressed.append("ALL")
            note += " The total is not shown because, with these numbers, it could reveal a suppressed count."
    return SafeTable(
        rows=safe_rows,
        total=safe_total,
        suppressed=suppressed,
        note=note,
        needs_grouping=needs_grouping(rows, policy),
    )


def needs_grouping(rows: Sequence[GroupCounts], policy: DisclosurePolicy = DEFAULT_POLICY) -> bool:
    """True when most rows with any records would have their rate withheld."""
    present = [r for r in rows if r.denominator > 0]
    if not present:
        return False
    withheld = sum(1 for r in present if safe_rate(r.numerator, r.denominator, policy).rate is None)
    return withheld * 2 > len(present)


def grouping_suggestion(rows: Sequence[GroupCounts], policy: DisclosurePolicy = DEFAULT_POLICY) -> str | None:
    """Plain-language advice when most cells are too small to show, else None."""
    if not needs_grouping(rows, policy):
        return None
    return (
        f"Most groups have fewer than {policy.threshold} events in a period, so their rates cannot be shown. "
        "Try monthly or quarterly periods instead of weekly ones, or the five high-level ethnic groups "
        "(never a single 'BAME' group). Results shown that way are grouped to protect confidentiality."
    )


_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"
_WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_COUNT_NOUNS = (
    "events?|births?|women|woman|men|people|persons?|patients?|records?|cases?|babies|baby|"
    "mothers?|admissions?|deliveries|referrals?|episodes?|incidents?"
)
# Each pattern has one named group "n": the number that is being used as a count.
_COUNT_CONTEXTS = [
    re.compile(rf"\bn\s*=\s*(?P<n>{_NUMBER})\b", re.IGNORECASE),
    re.compile(rf"(?<![\d.,/])(?P<n>{_NUMBER})\s+(?:out\s+)?of\s+(?:{_NUMBER})\b", re.IGNORECASE),
    re.compile(rf"(?<![\d.,/])(?P<n>{_NUMBER})\s*/\s*(?:{_NUMBER})(?![\d/])"),
    re.compile(rf"(?<![\d.,/])(?:{_NUMBER})\s*/\s*(?P<n>{_NUMBER})(?![\d/.])"),
    re.compile(rf"(?<![\d.,/])(?:{_NUMBER})\s+(?:out\s+)?of\s+(?P<n>{_NUMBER})(?![\d.%])", re.IGNORECASE),
    re.compile(
        rf"(?<![\d.,/])(?P<n>{_NUMBER}|{'|'.join(_WORD_NUMBERS)})\s+(?:[A-Za-z-]+\s+){{0,2}}(?:{_COUNT_NOUNS})\b",
        re.IGNORECASE,
    ),
    re.compile(rf"(?<![\d:])[:=]\s*(?P<n>{_NUMBER})(?![\d.%:])(?!\s*(?:%|per\b|pp\b|percent))"),
]


def _as_int(token: str) -> int:
    lowered = token.lower()
    if lowered in _WORD_NUMBERS:
        return _WORD_NUMBERS[lowered]
    return int(token.replace(",", ""))


def _can_be_shown(value: int, policy: DisclosurePolicy) -> bool:
    """Whether ``cell`` could ever print this value (so seeing it is not itself a problem)."""
    if value == 0:
        return True
    return any(
        cell(n, policy).shown == str(value) for n in range(policy.threshold, value + policy.rounding + 1)
    )


def check_text_for_disclosure(
    text: str,
    raw_counts: Iterable[int],
    policy: DisclosurePolicy = DEFAULT_POLICY,
    *,
    suppressed_denominators: Iterable[int] = (),
    labels: Iterable[str] = (),
) -> list[str]:
    """Problems that would make ``text`` unsafe to post; an empty list means none were found.

    Flags: any integer from 1 to threshold-1 that ``cell`` could never print, when it is used as a
    count ("n=3", "3 of 41", "3/41", "3 PPH events", "two women", "Black African (N): 3", or right
    after one of ``labels``); and any exact denominator of a suppressed row (``suppressed_denominators``)
    used as a count. ``raw_counts`` (the data's raw counts) only sharpens the message.

    Limits, by design: it reads text, not charts or images; it cannot tell a count from another
    small number outside these contexts ("3 weeks", "step 2"); it does not detect differencing across
    messages, nor a small count recoverable from an exact-looking percentage and a rounded total. It
    is a test net for the whole suite, not a guarantee.
    """
    small_raw = {c for c in raw_counts if 0 < c < policy.threshold}
    exact_dens = {d for d in suppressed_denominators if d > 0 and not _can_be_shown(d, policy)}
    patterns = list(_COUNT_CONTEXTS)
    for name in labels:
        if name:
            patterns.append(re.compile(rf"{re.escape(name)}\)?\s*[:=\-–]?\s*(?P<n>{_NUMBER})(?![\d.%])"))
    problems: list[str] = []
    seen: set[tuple[int, int]] = set()
    for pattern in patterns:
        for match in pattern.finditer(text):
            start = match.start("n")
            value = _as_int(match.group("n"))
            if (start, value) in seen:
                continue
            context = text[max(0, match.start() - 20) : match.end() + 20].replace("\n", " ")
            if 0 < value < policy.threshold and not _can_be_shown(value, policy):
                seen.add((start, value))
                where = " (matches a raw count in the data)" if value in small_raw else ""
                problems.append(f"small count {value} shown as a count{where}: ...{context}...")
            elif value in exact_dens:
                seen.add((start, value))
                problems.append(f"exact denominator {value} of a suppressed row: ...{context}...")
    return problems
