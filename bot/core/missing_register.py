"""Who is missing, found in a measure's data: entries for the who-is-missing register (pure).

Three things the analysis can see (equity-stats.md, section 1.3; never a count, so nothing from 1 to 7 can be
recovered from an entry):
- a group with records before but none in the recent periods (absent recently);
- a focus group with too few records in the recent periods to compare safely (the same rule that suppresses
  its counts in the channel);
- a high share of records where ethnicity is Not stated (Z) or Not known (99) in the recent periods.
Each finding has a stable key, so the register adds it once however often the analysis runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bot.core import ethnicity
from bot.core.equity.missing import NATIONAL_CODES, NOT_KNOWN, NOT_STATED, Tiers, summarise_missing

RECENT_PERIODS = 3
DEFAULT_TIERS = Tiers()


@dataclass(frozen=True)
class Found:
    key: str  # "<measure id>:<reason>[:<group>]"
    who: str  # plain words for the register (no numbers)


def _label(code: str) -> str:
    try:
        return ethnicity.display(code)
    except (KeyError, ValueError):
        return code


def find_missing(
    frame: pd.DataFrame,
    *,
    measure_id: int,
    measure_name: str,
    focus_groups: Sequence[str],
    threshold: int,
    tiers: Tiers = DEFAULT_TIERS,
) -> list[Found]:
    """Register entries from one measure's tidy frame (period, group, numerator, denominator)."""
    if frame.empty:
        return []
    data = frame[frame["group"] != "ALL"].copy()
    data["denominator"] = pd.to_numeric(data["denominator"], errors="coerce").fillna(0)
    periods = sorted(set(data["period"]))
    recent = set(periods[-RECENT_PERIODS:])
    in_recent = data[data["period"].isin(recent)]
    earlier = data[~data["period"].isin(recent)]
    recent_totals = in_recent.groupby("group")["denominator"].sum()
    earlier_groups = set(earlier[earlier["denominator"] > 0]["group"])
    found: list[Found] = []
    name = measure_name.strip()
    window = f"the last {len(recent)} periods" if len(recent) > 1 else "the latest period"
    if len(periods) > RECENT_PERIODS:
        for code in dict.fromkeys([*focus_groups, *NATIONAL_CODES]):
            if code in earlier_groups and float(recent_totals.get(code, 0)) <= 0:
                found.append(
                    Found(
                        f"{measure_id}:absent:{code}",
                        f"{_label(code)}: no records in “{name}” in {window}, although there were before.",
                    )
                )
    for code in focus_groups:
        total = float(recent_totals.get(code, 0))
        if 0 < total < threshold:
            found.append(
                Found(
                    f"{measure_id}:small:{code}",
                    f"{_label(code)}: too few records in “{name}” in {window} to compare safely.",
                )
            )
    summary = summarise_missing(in_recent)
    limit = 1 - tiers.ok
    if summary.not_known_share is not None and summary.not_known_share > limit:
        found.append(
            Found(
                f"{measure_id}:not_known",
                f"People whose ethnicity is Not known ({NOT_KNOWN}, never asked or not recorded) in “{name}”: "
                f"a high share of records in {window}.",
            )
        )
    if summary.not_stated_share is not None and summary.not_stated_share > limit:
        found.append(
            Found(
                f"{measure_id}:not_stated",
                f"People who chose not to state their ethnicity ({NOT_STATED}) in “{name}”: a high share of "
                f"records in {window}.",
            )
        )
    return found
