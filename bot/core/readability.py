"""Reading age of text written for service-user partners (plain English at about age 9 to 11)."""

from __future__ import annotations

import textstat  # type: ignore[import-untyped]

# Partner-facing text should read at about age 9 to 11; above this the lead is told.
PARTNER_MAX_AGE = 11


def reading_age(text: str) -> int:
    """Approximate reading age in years: the Flesch-Kincaid grade (US school grade) plus five, at least 6."""
    if not text.strip():
        return 0
    grade = float(textstat.flesch_kincaid_grade(text))
    return max(6, round(grade + 5))


def too_hard_for_partners(text: str) -> bool:
    return reading_age(text) > PARTNER_MAX_AGE
