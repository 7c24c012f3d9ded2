"""What a channel or a published file may see of a measure's groups over the latest window.

One definition for the Slack dot plot and the board pack: rates and their intervals from the rounded counts
(disclosure.safe_rate), nothing beside a withheld rate.
"""

from __future__ import annotations

from bot.core.equity import analysis as an
from bot.core.equity.disclosure import DisclosurePolicy, safe_rate
from bot.core.equity.types import GroupStat


def safe_stats(a: an.MeasureAnalysis, policy: DisclosurePolicy) -> list[GroupStat]:
    """Group rows for the dot plot: rate and 95% interval from the rounded counts, no interval beside a withheld
    rate. Measures of values give each group's mean (means of fewer than the threshold are already withheld)."""
    if not a.is_rate:
        return [
            GroupStat(v.code, v.label, 0, 0, v.mean, None, None, is_reference=v.code == a.reference_group)
            for v in a.value_groups
        ]
    out = []
    for g in a.groups:
        sr = safe_rate(g.numerator, g.denominator, policy)
        low, high = sr.interval if sr.rate is not None and sr.interval is not None else (None, None)
        out.append(
            GroupStat(
                g.code, g.label, g.numerator, g.denominator, sr.rate, low, high, is_reference=g.is_reference
            )
        )
    return out
