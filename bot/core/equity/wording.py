"""The one wording layer: structured equity findings (GapChange, GroupStat, Warning) into plain English.

Every surface (/equity's headline and details, the weekly nudge, the PDSA Study, `mfi-ar report`) words a
finding here, from its fields; none re-reads another module's prose. Numbers in a sentence come from the rates
the caller shows beside it (`Rates`), so a difference or a ratio can always be recomputed from them: a channel
passes rates from the rounded counts it shows, an analyst's report the unrounded ones. Intervals, p values and
the verdicts themselves come from the unrounded data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from bot.core import ethnicity
from bot.core import periods as per
from bot.core.equity.disclosure import safe_rate
from bot.core.equity.types import GapChange, GroupStat, Warning

if TYPE_CHECKING:
    from bot.core.equity.analysis import ChannelAnalysis, MeasureAnalysis
    from bot.core.equity.disclosure import DisclosurePolicy

Name = Callable[[str], str]
Rates = Callable[
    [str, str], float | None
]  # (key, "window" | "baseline" | "recent") -> a rate, None if not shown
HARM_CODES = ("BALANCING_WORSENED", "SUBGROUP_MOVES_AGAINST_AGGREGATE")  # warnings that signal harm
_SEVERITY_RANK = {"critical": 0, "warning": 1, "caution": 2, "info": 3}


# ---------------------------------------------------------------- names and numbers as words


def period_label(d: date, period: str) -> str:
    """'7 Apr 2025', 'w/c 7 Apr 2025', 'Apr 2025', 'Apr–Jun 2025', '2025/26 Q1', '2025' or '2025/26'."""
    if period in ("day", "week", "fy_quarter", "year", "fy_year"):
        return per.label(d, period)
    if period == "quarter":
        end = date(d.year + (d.month + 2 > 12), (d.month + 1) % 12 + 1, 1)
        return f"{d:%b}–{end:%b %Y}" if end.year == d.year else f"{d:%b %Y}–{end:%b %Y}"
    return f"{d:%b %Y}"


def window_label(window: tuple[date, date] | None, period: str) -> str:
    if window is None:
        return "no data"
    if window[0] == window[1]:
        return period_label(window[0], period)
    if period == "quarter":
        first, last = period_label(window[0], period), period_label(window[1], period)
        start, end = first.split("–")[0], last.split("–")[-1]
        return f"{start}–{end}" if " " in start else f"{start} {window[0].year}–{end}"
    return f"{period_label(window[0], period)} to {period_label(window[1], period)}"


def recent_concerns(a: MeasureAnalysis, *, within: int = 3) -> list[str]:
    """Groups whose SPC chart shows special cause of concern in its last `within` points."""
    out = []
    for code, r in a.spc.items():
        valued = [p for p in r.points if p.value is not None][-within:]
        if any(p.variation == "special_cause_concern" for p in valued):
            out.append(code)
    return out


def prose_name(code: str) -> str:
    """A group's short name for sentences ("Black Caribbean"); full NHS labels stay in tables."""
    if code.startswith("REF:") or code in ("OTHERS",):
        return "all other groups combined" if code == "OTHERS" else code
    if code == "ALL":
        return "everyone"
    try:
        text = ethnicity.short_label(code)
    except ValueError:
        return code
    if code in ethnicity.NATIONAL_CODES or code in ethnicity.HIGH_LEVEL_GROUPS:
        text = text.rsplit(" (", 1)[0]
    return text


def prose_names(labels: Mapping[str, str]) -> Name:
    """Short names for codes, the caller's label for keys it made up (e.g. a reference without a group)."""

    def name(code: str) -> str:
        if code.startswith("REF:"):
            return labels.get(code, code)
        return prose_name(code)

    return name


def pct(rate: float, kind: str = "proportion") -> str:
    if kind == "rate_per_1000":
        return f"{rate * 1000:.1f} per 1,000"
    return f"{rate * 100:.1f}%"


def points(diff: float, kind: str = "proportion", *, signed: bool = False) -> str:
    scale = 1000 if kind == "rate_per_1000" else 100
    return f"{diff * scale:+.1f}" if signed else f"{abs(diff) * scale:.1f}"


def unit(kind: str) -> str:
    return "per 1,000" if kind == "rate_per_1000" else "percentage points"


def p_text(p: float) -> str:
    if p < 0.001:
        return "p<0.001"
    return "p>0.99" if p > 0.99 else f"p={p:.2g}"


def ratio_text(group_rate: float | None, reference_rate: float | None) -> str | None:
    """The ratio of two shown rates, so a reader can recompute it; None when the reference rate is 0 or hidden."""
    if group_rate is None or reference_rate is None or reference_rate <= 0:
        return None
    return f"{group_rate / reference_rate:.2f}"


def change_words(before: float, after: float, kind: str = "proportion") -> str:
    """'fell from 12.1% to 7.5%', 'rose from ...', or 'stayed at 5.0%' when the shown figures are equal."""
    b, a = pct(before, kind), pct(after, kind)
    if b == a:
        return f"stayed at {a}"
    return f"{'fell' if after < before else 'rose'} from {b} to {a}"


def shown(rate: float, kind: str = "proportion") -> float:
    """A rate at the precision it is printed (0.1% or 0.1 per 1,000), so sums of shown figures add up."""
    scale = 1000 if kind == "rate_per_1000" else 100
    return round(rate * scale, 1) / scale


def rounded_up(n: int) -> int:
    return max(5, math.ceil(n / 5) * 5)


# ---------------------------------------------------------------- the change in a gap


@dataclass(frozen=True)
class GapRates:
    """The four rates a gap sentence may quote (None: not shown)."""

    group_before: float | None
    group_after: float | None
    reference_before: float | None
    reference_after: float | None

    @property
    def complete(self) -> bool:
        return None not in (self.group_before, self.group_after, self.reference_before, self.reference_after)

    @classmethod
    def of(cls, gap: GapChange) -> GapRates:
        return cls(gap.baseline_rate, gap.recent_rate, gap.reference_baseline_rate, gap.reference_recent_rate)


def _shown4(rates: GapRates, kind: str) -> tuple[float, float, float, float]:
    gb, ga, rb, ra = rates.group_before, rates.group_after, rates.reference_before, rates.reference_after
    assert gb is not None and ga is not None and rb is not None and ra is not None
    return shown(gb, kind), shown(ga, kind), shown(rb, kind), shown(ra, kind)


def _reference_change_clear(gap: GapChange) -> bool:
    low, high = gap.reference_change_ci_low, gap.reference_change_ci_high
    return low is not None and high is not None and (low > 0 or high < 0)


def levelling_status(gap: GapChange, rates: GapRates | None = None, kind: str = "proportion") -> str:
    """Levelling down as a reader can check it from the rates shown: "material" needs the reference's own change to
    be clear, or its worsening to account for more than half of the narrowing in the rates shown (the analysis
    judges the share on unrounded data, which rounding for confidentiality can move); else "slight" or "none"."""
    if gap.levelling_down != "material" or _reference_change_clear(gap):
        return gap.levelling_down
    rates = rates or GapRates.of(gap)
    if not rates.complete:
        return gap.levelling_down
    gb, ga, rb, ra = _shown4(rates, kind)
    narrowing = abs(gb - rb) - abs(ga - ra)
    if narrowing <= 0 or ra == rb:
        return "none"  # the rates shown neither narrow the gap nor move the reference
    return "material" if abs(ra - rb) / narrowing > 0.5 else "slight"


def movement_words(rates: GapRates, kind: str = "proportion") -> tuple[str, str]:
    """('narrowed'|'widened'|'hardly changed', the phrase with figures), from the rates shown."""
    gb, ga, rb, ra = _shown4(rates, kind)
    before, after = abs(gb - rb), abs(ga - ra)
    b, a = points(before, kind), points(after, kind)
    if b == a:
        return "hardly changed", f"hardly changed ({b} {unit(kind)} at both times)"
    word = "narrowed" if float(a) < float(b) else "widened"
    return word, f"{word} from {b} to {a} {unit(kind)}"


def _stats_text(gap: GapChange, rates: GapRates, kind: str) -> str:
    """The interval evidence. Point estimates come from the rates shown (so they can be recomputed from them);
    intervals and p values from the unrounded data."""
    parts = []
    did = gap.did
    rrr = gap.ratio_of_rate_ratios
    if rates.complete:
        gb, ga, rb, ra = _shown4(rates, kind)
        did = (ga - ra) - (gb - rb)
        rrr = (ga / ra) / (gb / rb) if min(ra, rb, gb) > 0 else rrr
    if did is not None and gap.did_ci_low is not None and gap.did_ci_high is not None:
        text = (
            f"difference in differences {points(did, kind, signed=True)} points, 95% CI "
            f"{points(gap.did_ci_low, kind, signed=True)} to {points(gap.did_ci_high, kind, signed=True)}"
        )
        if gap.did_p_value is not None:
            text += f", {p_text(gap.did_p_value)}"
        parts.append(text)
    if rrr is not None and gap.rrr_ci_low is not None and gap.rrr_ci_high is not None:
        text = f"ratio of rate ratios {rrr:.2f}, 95% CI {gap.rrr_ci_low:.2f} to {gap.rrr_ci_high:.2f}"
        if gap.rrr_p_value is not None:
            text += f", {p_text(gap.rrr_p_value)}"
        parts.append(text)
    if gap.comparisons > 2:
        adjusted = [p for p in (gap.did_p_adjusted, gap.rrr_p_adjusted) if p is not None]
        if adjusted:
            parts.append(f"Holm-adjusted across {gap.comparisons} tests: {p_text(min(adjusted))}")
    return "; ".join(parts)


def levelling_words(gap: GapChange, g: str, r: str, rates: GapRates, kind: str = "proportion") -> str | None:
    """The levelling-down sentence, or None. Never says the group did not improve when it did."""
    status = levelling_status(gap, rates, kind)
    if status == "none" or not rates.complete:
        return None
    _, _, rb, ra = _shown4(rates, kind)
    evidence = f"{points(ra - rb, kind, signed=True)} points"
    low, high = gap.reference_change_ci_low, gap.reference_change_ci_high
    clear = low is not None and high is not None and (low > 0 or high < 0)
    if low is not None and high is not None:
        evidence += f", 95% CI {points(low, kind, signed=True)} to {points(high, kind, signed=True)}"
    if status == "slight":
        if points(ra - rb, kind) == "0.0":
            ci = (
                f" (95% CI for its change {points(low, kind, signed=True)} to {points(high, kind, signed=True)})"
                if low is not None and high is not None
                else ""
            )
            return f"{r}'s rate hardly moved{ci}, so the narrowing comes from {g} improving."
        return (
            f"{r}'s change ({evidence}) is too small to explain the narrowing, which comes mainly from {g} "
            "improving."
        )
    act = (
        f"Treat {r}'s worsening as a balancing-measure failure."
        if clear
        else f"{r}'s rise is not a clear change on its own, so watch its rate as a balancing measure."
    )
    if gap.group_improved:
        return (
            f"Levelling down, in part: the gap narrowed partly because {r} got worse ({evidence}), as well as "
            f"because {g} improved. {act}"
        )
    return f"Levelling down: the gap narrowed because {r} got worse ({evidence}); {g} did not improve. {act}"


def power_words(gap: GapChange, *, power: float = 0.8, smallest: int | None = None) -> str | None:
    if gap.established or not gap.needed_per_period:
        return None
    needed = rounded_up(gap.needed_per_period)
    what = "reach the target gap" if gap.target_gap is not None else "detect a change in the gap of this size"
    if smallest is not None and smallest > 0 and gap.needed_per_period > 50 * smallest:
        return (
            f"A change this small cannot be detected at this unit's size (it would need about {needed:,} per "
            "group in each window): compare high-level groups, or judge the change from the run chart."
        )
    return (
        f"To {what} with {power:.0%} power would need about {needed:,} per group in each window, so "
        "'not established' does not mean 'no change'."
    )


def gap_verdict(
    gap: GapChange,
    name: Name,
    *,
    rates: GapRates | None = None,
    kind: str = "proportion",
    alpha: float = 0.05,
    power: float = 0.8,
    recording_critical: bool = False,
) -> str:
    """The full verdict on one gap, every caveat included (the details thread and the analyst's report)."""
    g, r = name(gap.group), name(gap.reference)
    rates = rates or GapRates.of(gap)
    if gap.did is None and gap.ratio_of_rate_ratios is None:
        return gap.verdict or f"Too few to compare the gap between {g} and {r}."
    if recording_critical:
        return (
            f"The gap between {g} and {r} is not judged: ethnicity is recorded for under 80% of records, so "
            "any change could come from who is missing. Improve recording first."
        )
    stats = _stats_text(gap, rates, kind)
    if not rates.complete:
        verdict = "established" if gap.established else "not established at these numbers"
        return (
            f"The change in the gap between {g} and {r} is {verdict} ({stats}); some windows have too few "
            "events to show their rates."
        )
    word, movement = movement_words(rates, kind)
    sentences: list[str] = []
    if word == "hardly changed" and not gap.established:
        sentences.append(f"The gap between {g} and {r} {movement}: no change is established ({stats}).")
    elif gap.established:
        scale = ""
        did_ok = (gap.did_p_adjusted if gap.did_p_adjusted is not None else gap.did_p_value or 1.0) <= alpha
        rrr_ok = (gap.rrr_p_adjusted if gap.rrr_p_adjusted is not None else gap.rrr_p_value or 1.0) <= alpha
        if did_ok and not rrr_ok:
            scale = " The absolute gap changed, but a change in the relative gap is not established."
        elif rrr_ok and not did_ok:
            scale = " The relative gap changed, but a change in the absolute gap is not established."
        sentences.append(f"The gap between {g} and {r} {movement} ({stats}): an established change.{scale}")
    elif gap.thin:
        sentences.append(
            f"The gap between {g} and {r} {movement}, but the change is not established ({stats}): "
            "some windows have fewer than 5 events or non-events, too few to trust these intervals."
        )
    elif (gap.did_p_value or 1.0) <= alpha or (gap.rrr_p_value or 1.0) <= alpha:
        why = (
            "after allowing for the number of comparisons made"
            if gap.comparisons > 2 and (gap.relative_change or 0) >= 0.1
            else "the change is under a 10% relative change in the gap"
        )
        sentences.append(f"The gap between {g} and {r} {movement} ({stats}); not established: {why}.")
    else:
        sentences.append(
            f"The gap between {g} and {r} {movement}, but at these numbers the change is not "
            f"established ({stats})."
        )
    assert rates.group_before is not None and rates.group_after is not None
    assert rates.reference_before is not None and rates.reference_after is not None
    own = f"{g} {change_words(rates.group_before, rates.group_after, kind)}"
    if gap.group_change_p is not None and pct(rates.group_before, kind) != pct(rates.group_after, kind):
        own += f" ({p_text(gap.group_change_p)} for that change on its own)"
    sentences.append(f"{own}; {r} {change_words(rates.reference_before, rates.reference_after, kind)}.")
    levelling = levelling_words(gap, g, r, rates, kind)
    if levelling:
        sentences.append(levelling)
    pw = power_words(gap, power=power)
    if pw:
        sentences.append(pw)
    sentences.extend(gap.notes)
    return " ".join(sentences)


def gap_brief(
    gap: GapChange,
    name: Name,
    *,
    since: str | None,
    rates: GapRates | None = None,
    kind: str = "proportion",
    recording_critical: bool = False,
) -> str:
    """One short sentence for a headline or the nudge; a levelling-down caveat always travels with it."""
    g, r = name(gap.group), name(gap.reference)
    rates = rates or GapRates.of(gap)
    when = f" since {since}" if since else ""
    if recording_critical:
        return f"gap for {g} not judged: too many records lack ethnicity"
    if gap.did is None and gap.ratio_of_rate_ratios is None:
        return f"too few records to judge the gap{when}"
    word = movement_words(rates, kind)[0] if rates.complete else "changed"
    if levelling_status(gap, rates, kind) == "material":
        how = "partly because" if gap.group_improved else "only because"
        return f"gap {word}{when} {how} {r} got worse (levelling down)"
    if word == "hardly changed":
        return f"gap hardly changed{when}"
    if gap.established:
        return f"gap {word}{when} (established)"
    return f"gap {word}{when}, not established"


# ---------------------------------------------------------------- groups


def group_comparison(
    g: GroupStat,
    shown_rate: float | None,
    shown_ref_rate: float | None,
    reference: str,
    name: Name,
    kind: str = "proportion",
) -> str:
    """'9.1% against 5.0% for White British: rate ratio 1.82, a clear difference' (ratio from the shown rates)."""
    if shown_rate is None:
        return f"{name(g.code)}: too few events to show a rate safely"
    ref = name(reference)
    text = f"{name(g.code)}: {pct(shown_rate, kind)}"
    if shown_ref_rate is None:
        return text + f" (the {ref} rate is not shown)"
    text += f" against {pct(shown_ref_rate, kind)} for {ref}"
    if shown_ref_rate == 0 and shown_rate > 0:
        return text + f": {ref} had no events, so no ratio can be given"
    ratio = ratio_text(shown_rate, shown_ref_rate)
    if ratio is not None and g.rate_ratio_ci_low is not None and g.rate_ratio_ci_high is not None:
        clear = g.rate_ratio_ci_low > 1 or g.rate_ratio_ci_high < 1
        text += f": rate ratio {ratio}, " + ("a clear difference" if clear else "not a clear difference")
    return text


# ---------------------------------------------------------------- flags: harm first


def flag_rank(w: Warning) -> tuple[int, int]:
    return (0 if w.code in HARM_CODES else 1, _SEVERITY_RANK.get(w.severity, 4))


def short(w: Warning) -> str:
    return w.short or w.message.split("\n", 1)[0]


def ordered_flags(warnings: Sequence[Warning]) -> list[Warning]:
    """Harm first (levelling down, a worsening balancing measure, a group against the aggregate), then by
    severity; info notes last."""
    return sorted(warnings, key=flag_rank)


def is_harm(w: Warning) -> bool:
    return w.code in HARM_CODES


# ---------------------------------------------------------------- measure-level headlines


def headline(
    a: MeasureAnalysis, *, rates: Callable[[str, str], float | None], kind: str | None = None
) -> str:
    """The analyst headline (report, JSON): the same findings as the channel headline, as one paragraph."""
    kind = kind or a.kind
    name = prose_names(a.labels)
    if not a.periods:
        return f"{a.name}: no data yet, so there is nothing to compare."
    parts: list[str] = []
    harm = harm_lines(a, name)
    if harm:
        parts.append("Harm to check: " + "; ".join(harm) + ".")
    if a.recording_critical:
        parts.append(critical_words(a))
    if not a.is_rate:
        parts.append(
            f"{a.name} is a value measure: groups are compared by their mean over the latest window, "
            "without rates, intervals or tests of the gap."
        )
    elif a.reference_group is None:
        parts.append(f"{a.name}: no usable reference group, so no gap is estimated.")
    elif not a.recording_critical:
        since = window_label(a.baseline, a.period) if a.baseline else "the baseline"
        for code in headline_groups(a):
            g = next((s for s in a.groups if s.code == code), None)
            if g is None:
                continue
            ref_code = comparison_reference(a, g)
            line = group_comparison(g, rates(code, "window"), rates(ref_code, "window"), ref_code, name, kind)
            gap = next((x for x in a.gaps if x.group == code), None)
            if gap is not None:
                line += "; " + gap_brief(gap, name, since=since, rates=gap_rates(a, gap, rates), kind=kind)
            parts.append(line + ".")
    watch = [short(w) for w in ordered_flags(a.warnings) if is_harm(w) and w.severity == "caution"]
    if watch:
        parts.append("Keep watching: " + "; ".join(watch) + ".")
    concerns = [name(c) for c in recent_concerns(a)]
    if concerns:
        parts.append("Special cause of concern in recent points for " + "; ".join(concerns) + ".")
    elif a.spc:
        parts.append("No recent special-cause signal of concern on the SPC charts.")
    return " ".join(parts)


def headline_groups(a: MeasureAnalysis) -> list[str]:
    """The focus groups; without any, the widest gap that has enough events to be shown."""
    by_code = {g.code: g for g in a.groups}
    focus = [f for f in a.focus_groups if f in by_code]
    if focus:
        return focus
    compared = [
        g
        for g in a.groups
        if not g.is_reference and g.code in ethnicity.NATIONAL_CODES and g.rate_difference is not None
    ]
    widest = sorted(compared, key=lambda g: (g.numerator < 8, -abs(g.rate_difference or 0.0)))
    return [g.code for g in widest[:1]]


def comparison_reference(a: MeasureAnalysis, g: GroupStat) -> str:
    """The key whose rate the group is compared with: the reference, or the reference without the group."""
    return a.reference_for.get(g.code, a.reference_group or "")


def gap_rates(a: MeasureAnalysis, gap: GapChange, rates: Callable[[str, str], float | None]) -> GapRates:
    ref = a.reference_for.get(gap.group, gap.reference)
    return GapRates(
        rates(gap.group, "baseline"), rates(gap.group, "recent"), rates(ref, "baseline"), rates(ref, "recent")
    )


def critical_words(a: MeasureAnalysis) -> str:
    valid = a.missing.valid_share if a.missing else None
    share = f"{valid:.0%}" if valid is not None else "too few"
    return (
        f"Ethnicity is recorded for only {share} of records, so no comparison between groups is headlined: "
        "the missing records could change any comparison. See the completeness chart and the bounds in the details, and "
        "improve recording first."
    )


def shown_rates(a: MeasureAnalysis, policy: DisclosurePolicy) -> Rates:
    """Rates as a channel may show them (the display rule): from the rounded counts, None when withheld.

    Every rate, ratio and difference a channel reads is computed from these, so each can be recomputed from
    the rates beside it; intervals, p values and verdicts come from the unrounded data.
    """
    sources = {"window": a.window_counts, "baseline": a.baseline_counts, "recent": a.recent_counts}

    def rate(code: str, which: str) -> float | None:
        c = sources[which].get(code)
        return None if c is None else safe_rate(c.numerator, c.denominator, policy).rate

    return rate


def harm_lines(a: MeasureAnalysis, name: Name) -> list[str]:
    """Harm signals, most direct first: levelling down, a worsening balancing measure, a group moving against
    an improving aggregate, then special cause of concern in a focus group's recent points."""
    out: list[str] = []
    if not a.recording_critical:
        for gap in a.gaps:
            # Harm is headlined when the reference's own worsening is clear or the narrowing is established;
            # otherwise the levelling-down caveat still travels with the gap's own line.
            clear = (
                gap.reference_change_ci_low is not None
                and gap.reference_change_ci_high is not None
                and (gap.reference_change_ci_low > 0 or gap.reference_change_ci_high < 0)
            )
            if gap.levelling_down == "material" and (clear or gap.established):
                how = "partly because" if gap.group_improved else "only because"
                out.append(
                    f"the gap for {name(gap.group)} narrowed {how} {name(gap.reference)} got worse "
                    "(levelling down)"
                )
    out += [
        short(w) for w in ordered_flags(a.warnings) if is_harm(w) and w.severity in ("warning", "critical")
    ]
    focus = set(a.focus_groups) | ({a.reference_group} if a.reference_group else set())
    concerns = [name(c) for c in recent_concerns(a) if c in focus]
    if concerns:
        out.append("special cause of concern in recent points for " + ", ".join(concerns))
    return out


def headline_group_line(a: MeasureAnalysis, code: str, rates: Rates, name: Name) -> str:
    """One focus group for the channel headline: rate against the reference, the ratio from those two rates,
    and the gap's verdict with its caveat."""
    g = next((s for s in a.groups if s.code == code), None)
    if g is None or g.denominator == 0:
        return f"*{name(code)}*: no records in this window"
    rate = rates(code, "window")
    if rate is None:
        return f"*{name(code)}*: too few events to show a rate safely"
    ref_key = comparison_reference(a, g)
    ref_rate = rates(ref_key, "window")
    text = f"*{name(code)}* {pct(rate, a.kind)}"
    vs_whom = f" for {name(ref_key)}" if ref_key != a.reference_group else ""
    ref_counts = a.window_counts.get(ref_key)
    if (
        ref_rate is None
        and ref_counts is not None
        and ref_counts.denominator > 0
        and ref_counts.numerator == 0
    ):
        text += f" vs no events for {name(ref_key)}, so no ratio can be given"
    elif ref_rate is None:
        text += f" ({name(ref_key)} rate not shown)"
    else:
        text += f" vs {pct(ref_rate, a.kind)}{vs_whom}"
        ratio = ratio_text(rate, ref_rate)
        if ratio is not None and g.rate_ratio_ci_low is not None and g.rate_ratio_ci_high is not None:
            clear = g.rate_ratio_ci_low > 1 or g.rate_ratio_ci_high < 1
            text += f", ratio {ratio} ({'a clear' if clear else 'not a clear'} difference)"
    gap = next((x for x in a.gaps if x.group == code), None)
    if gap is not None:
        brief = gap_brief(gap, name, since=None, rates=gap_rates(a, gap, rates), kind=a.kind)
        text += ". " + brief[0].upper() + brief[1:]
    return text + "."


def bounds_lines(a: MeasureAnalysis, threshold: int) -> list[str]:
    """Best- and worst-case rates for the focus groups if the records without ethnicity belonged to them."""
    missing = [c for k, c in a.window_counts.items() if k in ethnicity.MISSING_CODES]
    m_num, m_den = sum(c.numerator for c in missing), sum(c.denominator for c in missing)
    if m_den == 0:
        return []
    out = []
    for code in headline_groups(a):
        c = a.window_counts.get(code)
        if c is None or c.denominator == 0 or c.numerator < threshold:
            continue
        low = c.numerator / (c.denominator + m_den - m_num)
        high = (c.numerator + m_num) / (c.denominator + m_num)
        out.append(
            f"{prose_name(code)}: if the records without ethnicity were in this group, its rate could be "
            f"anywhere from {pct(low, a.kind)} to {pct(high, a.kind)}."
        )
    return out


def channel_flag(ca: ChannelAnalysis) -> str | None:
    """The single most important harm or missing-data flag for the channel headline."""
    a = ca.analysis
    harm = harm_lines(a, prose_names(a.labels))
    if harm:
        return ":warning: Harm to check: " + harm[0][0].upper() + harm[0][1:] + "."
    if a.recording_critical:
        valid = a.missing.valid_share if a.missing else None
        share = f"{valid:.0%}" if valid is not None else "too few"
        return (
            f":red_circle: Ethnicity is recorded for only {share} of records, so no comparison between groups "
            "is headlined: bounds and the completeness chart are in the details."
        )
    flags = [
        w
        for w in ordered_flags(a.warnings)
        if w.severity in ("critical", "warning")
        and w.code.startswith(("COMPLETENESS", "MISSING", "GROUP_ABSENT"))
    ]
    if flags:
        return ":warning: " + short(flags[0])
    watch = [w for w in ordered_flags(a.warnings) if is_harm(w) and w.severity == "caution"]
    if watch:
        text = short(watch[0])
        return ":eyes: Keep watching: " + text[0].upper() + text[1:] + "."
    return None


def _sentence(text: str) -> str:
    """A line made a sentence when lines are run together (the nudge), so each ends with a full stop."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def nudge_line(ca: ChannelAnalysis, policy: DisclosurePolicy) -> tuple[str, list[str]]:
    """The weekly nudge's words for one measure: the same groups, figures and caveats as /equity's headline
    (one set of comparisons everywhere), and its harm signals for the nudge's first section."""
    a = ca.analysis
    name = prose_names(a.labels)
    harm = harm_lines(a, name)
    window = window_label(a.window, a.period)
    if not a.periods:
        return "no data yet.", harm
    if not a.is_rate:
        return f"a value measure, compared by group means over {window}.", harm
    if a.reference_group is None:
        return "no usable reference group, so no gap is estimated.", harm
    if a.recording_critical:
        valid = a.missing.valid_share if a.missing else None
        share = f"{valid:.0%}" if valid is not None else "too few"
        return (
            f"ethnicity is recorded for only {share} of records, so no comparison between groups is headlined: "
            "improve recording first.",
            harm,
        )
    rates = shown_rates(a, policy)
    ref = a.reference_group
    parts = [
        _sentence(headline_group_line(a, code, rates, name).replace("*", "")) for code in headline_groups(a)
    ]
    against = "all the other groups" if ref == ethnicity.OTHERS else name(ref)
    line = f"{window}, against {against}: " + " ".join(parts)
    flag = channel_flag(ca)
    if flag and flag.startswith(":eyes:"):
        line += " " + flag  # the same "keep watching" flag as /equity's headline
    return line, harm
