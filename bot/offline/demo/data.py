"""Seeded synthetic record-level extracts for the demo and tests: births by ethnic group with a PPH outcome flag."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

# Monthly births and PPH (>= 1,000 ml) rates before -> after the intervention, shaped on the Lancashire case
# study: Black and minority ethnic women about 12%, White women about 5%. Any other Black (P) is small on
# purpose: its monthly PPH counts are mostly 1 to 7, so disclosure control has something to do.
GROUPS: dict[str, tuple[float, float, float]] = {
    "A": (300, 0.05, 0.05),
    "C": (55, 0.06, 0.06),
    "J": (50, 0.12, 0.09),
    "K": (35, 0.12, 0.09),
    "N": (60, 0.12, 0.09),
    "M": (40, 0.12, 0.09),
    "P": (30, 0.12, 0.10),
    "Z": (15, 0.08, 0.08),
    "99": (25, 0.10, 0.10),
}
FOCUS = ("N", "M", "J", "K", "P")

# How the same category is spelled across a trust's systems; the importer maps each to one code.
SPELLINGS: dict[str, tuple[str, ...]] = {
    "A": ("A", "White - British", "White British"),
    "C": ("C", "Any other White background"),
    "J": ("J", "Asian or Asian British - Pakistani"),
    "K": ("K", "Bangladeshi"),
    "N": ("N", "Black or Black British - African", "Black African"),
    "M": ("M", "Black Caribbean"),
    "P": ("P", "Any other Black background"),
    "Z": ("Z", "Not stated"),
    "99": ("99", "Not known", ""),
}
# A few values no importer should guess at: reported back to the person importing, row by row.
UNRECOGNISABLE = ("BAME", "Other", "Mixed")


# Caesarean birth, the balancing measure: flat for most groups, but rising for Black African women after the
# intervention, so the balancing check has something real to find ("did the change cause harm to any group?").
CAESAREAN_RATES: dict[str, tuple[float, float]] = {
    "A": (0.27, 0.27),
    "C": (0.26, 0.26),
    "J": (0.29, 0.29),
    "K": (0.30, 0.30),
    "N": (0.31, 0.40),
    "M": (0.32, 0.33),
    "P": (0.31, 0.31),
    "Z": (0.28, 0.28),
    "99": (0.29, 0.29),
}


def month_starts(end: date, months: int) -> list[date]:
    """The `months` complete months before the month containing `end`, oldest first."""
    out: list[date] = []
    current = end.replace(day=1)
    for _ in range(months):
        current = (current - timedelta(days=1)).replace(day=1)
        out.append(current)
    return sorted(out)


def pph_extract(
    end: date,
    *,
    months: int = 36,
    seed: int = 2024,
    scale: float = 1.0,
    intervention_months_ago: int = 12,
    rates: dict[str, tuple[float, float]] | None = None,
    affected: tuple[str, ...] = FOCUS,
) -> pd.DataFrame:
    """One row per birth: delivery date, ethnic category (as spelled in the source systems) and the PPH flag.

    Deterministic for a given seed. `scale` multiplies the group sizes (about 1M rows at scale 46 for 3 years).
    """
    rng = np.random.default_rng(seed)
    periods = month_starts(end, months)
    intervention = periods[max(len(periods) - intervention_months_ago, 0)]
    frames: list[pd.DataFrame] = []
    for start in periods:
        next_month = (start + timedelta(days=32)).replace(day=1)
        days = (next_month - start).days
        after = start >= intervention
        for code, (births, before_rate, after_rate) in GROUPS.items():
            n = int(rng.poisson(births * scale))
            if n == 0:
                continue
            if rates is not None:
                before_rate, after_rate = rates[code]
            rate = after_rate if after and code in affected else before_rate
            spellings = SPELLINGS[code]
            frames.append(
                pd.DataFrame(
                    {
                        "Delivery Date": (np.datetime64(start, "D") + rng.integers(0, days, n)).astype(str),
                        "Ethnic Category": np.asarray(spellings, dtype=object)[
                            rng.integers(0, len(spellings), n)
                        ],
                        "Outcome": (rng.random(n) < rate).astype(int),
                    }
                )
            )
    extract = pd.concat(frames, ignore_index=True)
    odd = rng.choice(len(extract), size=len(UNRECOGNISABLE), replace=False)
    extract.loc[odd, "Ethnic Category"] = list(UNRECOGNISABLE)
    # Shuffled, as an extract sorted by patient would be; the importer must not care about order.
    order = rng.permutation(len(extract))
    return extract.iloc[order].reset_index(drop=True)


def pph_extract_csv(end: date, **kwargs: float | int) -> bytes:
    return pph_extract(end, **kwargs).to_csv(index=False).encode("utf-8")  # type: ignore[arg-type]


def caesarean_extract_csv(end: date) -> bytes:
    """The same births (same seed and sizes) with a caesarean flag instead of PPH."""
    extract = pph_extract(end, seed=2025, rates=CAESAREAN_RATES, affected=tuple(CAESAREAN_RATES))
    return extract.to_csv(index=False).encode("utf-8")
